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
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pool_core::{Clock, DefaultRuntime, InPlace, Instant, Launch, Runtime, Spawn, Timer};
pub use pool_core::{
    ConcurrencySettings, ConfigError, DrainTimeout, Event, Handle, PoolConfig, PoolError, RunError,
    RunReport, ScalingSettings, SnapshotSettings, StatusSettings, SystemInfo, TaskMode, TaskPanic,
};
pub use pool_sensors::{
    ClientErrors, CpuMode, LoadSignal, SensorSettings, SystemSensors, snapshot_settings_from_env,
};

/// An autoscaled pool on async-std. Build one with `AutoscaledPool::builder()`.
pub type AutoscaledPool<Fns = (), Se = ()> = pool_core::AutoscaledPool<AsyncStdRuntime, Fns, Se>;

/// async-std's clock, `async-io` timers and spawner.
#[derive(Clone, Copy, Debug)]
pub struct AsyncStdRuntime {
    epoch: std::time::Instant,
}

impl AsyncStdRuntime {
    /// A runtime whose epoch is now.
    pub fn new() -> Self {
        AsyncStdRuntime {
            epoch: std::time::Instant::now(),
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
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// An `async-io` timer, re-armed in place.
#[derive(Debug)]
pub struct AsyncStdTimer {
    timer: async_io::Timer,
    epoch: std::time::Instant,
}

impl Timer for AsyncStdTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        // An unrepresentable deadline (`FAR_FUTURE`) means "never".
        match self.epoch.checked_add(Duration::from_nanos(at.as_nanos())) {
            Some(t) => self.timer.set_at(t),
            None => self.timer = async_io::Timer::never(),
        }
    }
    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

impl Runtime for AsyncStdRuntime {
    type Timer = AsyncStdTimer;
    fn timer(&self, at: Instant) -> AsyncStdTimer {
        let mut t = AsyncStdTimer {
            timer: async_io::Timer::never(),
            epoch: self.epoch,
        };
        Pin::new(&mut t).reset(at);
        t
    }
}

/// A spawned task whose panics become [`TaskPanic`]s.
#[derive(Debug)]
pub struct AsyncStdJoin<T>(Option<async_std::task::JoinHandle<Result<T, TaskPanic>>>);

impl<T> Future for AsyncStdJoin<T> {
    type Output = Result<T, TaskPanic>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(h) => Pin::new(h).poll(cx),
            None => Poll::Ready(Err(TaskPanic {
                message: String::from("cancelled"),
            })),
        }
    }
}

impl Spawn for AsyncStdRuntime {
    type Handle<T: Send + 'static> = AsyncStdJoin<T>;

    fn spawn<F>(&self, task: F) -> AsyncStdJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        AsyncStdJoin(Some(async_std::task::spawn(InPlace.launch(task))))
    }

    fn cancel<T: Send + 'static>(&self, handle: &mut AsyncStdJoin<T>) {
        // Dropping an async-std handle detaches rather than cancels; `cancel` is async, so it runs as its own
        // small task.
        if let Some(h) = handle.0.take() {
            drop(async_std::task::spawn(async move {
                h.cancel().await;
            }));
        }
    }
}

impl DefaultRuntime for AsyncStdRuntime {
    type Sensors = SystemSensors;
    fn create() -> Self {
        AsyncStdRuntime::new()
    }
    fn default_sensors(&self) -> Self::Sensors {
        SystemSensors::new(SensorSettings::default())
    }
}
