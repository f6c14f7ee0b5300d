//! The core's adapter conformance suite on smol.

pool_core::conformance_tests!(pool_smol::SmolRuntime, smol::block_on);
