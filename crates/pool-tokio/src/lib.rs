//! An autoscaled task pool on tokio: Crawlee's `AutoscaledPool` for Rust.
//!
//! This crate is a runtime seam and nothing else: [`TokioRuntime`] gives `pool-core` a clock that follows
//! `tokio::time` (so `#[tokio::test(start_paused = true)]` works), a re-armable timer and a spawner. Every
//! behaviour lives in `pool-core`.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use pool_tokio::{AutoscaledPool, ConcurrencySettings};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let queue = Arc::new(AtomicU32::new(100));
//! let (q1, q2) = (queue.clone(), queue.clone());
//! let pool = AutoscaledPool::builder()
//!     .concurrency_settings(ConcurrencySettings::default().with_max(20))
//!     .run_task(move || {
//!         let q = q1.clone();
//!         async move {
//!             q.fetch_sub(1, Ordering::SeqCst);
//!             Ok::<(), std::io::Error>(())
//!         }
//!     })
//!     .is_task_ready({
//!         let q = q2.clone();
//!         move || { let ready = q.load(Ordering::SeqCst) > 0; async move { Ok(ready) } }
//!     })
//!     .is_finished(move || { let done = q2.load(Ordering::SeqCst) == 0; async move { Ok(done) } })
//!     .build()
//!     .unwrap();
//! let report = pool.run().await.unwrap();
//! assert_eq!(report.succeeded, 100);
//! # }
//! ```
//!
//! # Features
//!
//! - `metrics`: gauges and counters through the `metrics` facade (`pool_tokio::metrics`: an event sink, a
//!   handle reader and a `run_task` wrapper), from `pool-core`.
//!
//! The crawl demo, `cargo run --release -p crawl-demo`, crawls a local site that pushes back
//! and draws how the pool adapted.

mod runtime;

pub use runtime::{TokioJoin, TokioRuntime, TokioTimer};

pool_adapter::adapter_api!(TokioRuntime, "tokio");

// The workspace README's examples (the core in virtual time, the tokio quick start) are compiled and run as
// doctests here, where both `pool-core`'s harness and this crate are in scope, so they cannot rot.
// `cfg(doctest)` keeps the path outside this crate from mattering to anything but `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct WorkspaceReadme;

// The migration guide's side-by-side programs, compiled and run the same way.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/migrating-from-crawlee.md")]
struct MigratingFromCrawlee;
