//! The workspace's end-to-end tests, under `tests/`; this library is empty.
//!
//! They run on real clocks, with real memory, on the real host and over loopback HTTP, so how long they take
//! and what they see depend on the machine and on everything else running on it. They therefore live apart
//! from the unit tests, which `cargo xtask ci` runs with `--exclude e2e`, and run in CI's own `e2e` step
//! (`cargo test -p e2e --all-features`), with time bounds generous enough for a busy two-core machine:
//!
//! - `crawl.rs`: the crawl demo (`crates/crawl-demo`) on a small site over 127.0.0.1, with 200 ms ticks;
//! - `memory.rs`: tasks that really allocate under a fixed memory budget, with the real memory sensor;
//! - `real_machine.rs`: this host's `/proc` and `/sys` read without a warning;
//! - `conformance.rs`: the adapter conformance cases that bound the wall clock, on every adapter.
