//! The crawl demo's library: the synthetic site ([`site`]), the crawler ([`crawler`]) and the chart
//! ([`chart`]).
//!
//! The `crawl` binary (`cargo run --release -p crawl-demo`) adds the command line and the progress bar; the
//! end-to-end test in `crates/e2e/tests/crawl.rs` drives the same site and crawler on a small site. The demo
//! is a crate of its own so that its HTTP stack, progress bar and plotting library stay out of `pool-tokio`'s
//! dependency graph.

pub mod chart;
pub mod crawler;
pub mod site;
