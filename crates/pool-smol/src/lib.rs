//! An autoscaled task pool on smol: Crawlee's `AutoscaledPool` for Rust.
//!
//! [`SmolRuntime`] gives `pool-core` a clock, an `async-io` timer re-armed in place, and an
//! `async-executor` spawner (smol's global executor unless you hand it your own). Every behaviour lives in
//! `pool-core`.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use pool_smol::{AutoscaledPool, ConcurrencySettings};
//!
//! let left = Arc::new(AtomicU32::new(50));
//! let (a, b, c) = (left.clone(), left.clone(), left.clone());
//! let pool = AutoscaledPool::builder()
//!     .concurrency_settings(ConcurrencySettings::default().with_max(10))
//!     .run_task(move || { a.fetch_sub(1, Ordering::SeqCst); async { Ok::<(), std::io::Error>(()) } })
//!     .is_task_ready(move || { let r = b.load(Ordering::SeqCst) > 0; async move { Ok(r) } })
//!     .is_finished(move || { let f = c.load(Ordering::SeqCst) == 0; async move { Ok(f) } })
//!     .build()
//!     .unwrap();
//! let report = smol::block_on(pool.run()).unwrap();
//! assert_eq!(report.succeeded, 50);
//! ```
//!
//! The item form: a stream of futures in, their results out in completion order.
//!
//! ```
//! use futures_lite::{StreamExt, stream};
//! use pool_smol::{AutoscaledPool, AutoscaledStreamExt, ConcurrencySettings};
//!
//! let squares = stream::iter(1..=100u64).map(|n| async move { n * n });
//! let pool = AutoscaledPool::builder()
//!     .concurrency_settings(ConcurrencySettings::default().with_max(10));
//! let total: u64 = smol::block_on(squares.autoscaled(pool).unwrap().fold(0, |a, b| a + b));
//! assert_eq!(total, 338_350);
//! ```

mod runtime;

pub use runtime::{SmolJoin, SmolRuntime, SmolTimer};

pool_adapter::adapter_api!(SmolRuntime, "smol");
