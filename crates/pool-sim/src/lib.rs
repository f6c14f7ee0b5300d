//! A seeded, deterministic simulator for `pool-core`'s scaling policies.
//!
//! [`scenario`] reads the system descriptions, [`model`] runs a pool through one in virtual time, [`metrics`]
//! scores runs against an oracle found by a fixed-concurrency sweep, [`report`] prints the table and writes
//! `summary.json`, [`known_misses`] holds the default policy to the targets and to the floors of its known
//! misses, and [`svg`] draws each scenario.

pub mod known_misses;
pub mod metrics;
pub mod model;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod svg;
