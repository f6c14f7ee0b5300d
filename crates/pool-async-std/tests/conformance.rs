//! The core's adapter conformance suite on async-std.

pool_core::conformance_tests!(pool_async_std::AsyncStdRuntime, async_std::task::block_on);
