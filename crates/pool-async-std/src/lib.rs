//! An autoscaled task pool on async-std: Crawlee's `AutoscaledPool` for Rust.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052), so this adapter is feature-frozen and as thin as
//! possible: a clock, an `async-io` timer and `async_std::task::spawn`. Prefer `pool-smol` or `pool-tokio`.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use pool_async_std::{AutoscaledPool, ConcurrencySettings};
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
//! let report = async_std::task::block_on(pool.run()).unwrap();
//! assert_eq!(report.succeeded, 50);
//! ```

use core::future::Future;

use pool_adapter::{AsyncIoTimer, Epoch, Join};
use pool_core::{Clock, InPlace, Instant, Launch, Runtime, Spawn};

pool_adapter::adapter_api!(AsyncStdRuntime, "async-std");

/// async-std's clock, `async-io` timers and spawner.
#[derive(Clone, Copy, Debug)]
pub struct AsyncStdRuntime {
    epoch: Epoch,
}

impl AsyncStdRuntime {
    /// A runtime whose epoch is now.
    pub fn new() -> Self {
        AsyncStdRuntime {
            epoch: Epoch::new(),
        }
    }
}

impl Default for AsyncStdRuntime {
    fn default() -> Self {
        AsyncStdRuntime::new()
    }
}

impl Clock for AsyncStdRuntime {
    fn now(&self) -> Instant {
        self.epoch.now()
    }
}

/// An `async-io` timer, re-armed in place.
pub type AsyncStdTimer = AsyncIoTimer;

impl Runtime for AsyncStdRuntime {
    type Timer = AsyncStdTimer;
    fn timer(&self, at: Instant) -> AsyncStdTimer {
        self.epoch.timer(at)
    }
}

/// A spawned task whose panics become [`TaskPanic`]s.
pub type AsyncStdJoin<T> = Join<async_std::task::JoinHandle<Result<T, TaskPanic>>>;

impl Spawn for AsyncStdRuntime {
    type Handle<T: Send + 'static> = AsyncStdJoin<T>;

    fn spawn<F>(&self, task: F) -> AsyncStdJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Join::new(async_std::task::spawn(InPlace.launch(task)))
    }

    fn cancel<T: Send + 'static>(&self, handle: &mut AsyncStdJoin<T>) {
        // Dropping an async-std handle detaches rather than cancels; `cancel` is async, so it runs as its own
        // small task.
        if let Some(h) = handle.take() {
            drop(async_std::task::spawn(async move {
                h.cancel().await;
            }));
        }
    }
}
