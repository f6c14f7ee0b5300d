//! [`AutoscaledPool`]: the seed's API (`run`, `abort`, `pause`, `resume`, `current_concurrency`,
//! `desired_concurrency`, three task functions, settings) over any runtime.
//!
//! It is generic over the runtime so that the adapters (`pool-tokio`, `pool-smol`, `pool-async-std`) are only
//! a clock, a timer and a spawner plus type aliases: everything a user can observe about a pool's behaviour
//! is decided here, in the core.
//!
//! `builder.rs` holds the [`Builder`]; `boxed.rs` the nameable [`BoxTaskFns`]; `mode.rs` the task modes; `sleep.rs` a runtime-neutral sleep;
//! `stream.rs` the stream combinator, [`AutoscaledStreamExt`]; `queue/` the [`CrawlQueue`].

mod boxed;
mod builder;
mod mode;
mod queue;
mod slab;
mod sleep;
mod stream;

use alloc::boxed::Box;
use core::fmt;
use core::time::Duration;
use std::sync::Mutex;

use crate::budget::BudgetMember;
use crate::config::{ConfigError, PoolConfig};
use crate::driver::{Handle, PoolError, Run, Setter};
use crate::pool::{Pool, RunError, RunReport};
use crate::scale::ScalingPolicy;
use crate::seams::{EventSink, Launch, Runtime, Sensors, Spawn, TaskFns};
use crate::status::SystemInfo;
use crate::time::Instant;

pub use boxed::BoxTaskFns;
pub use builder::{Builder, BuiltPool};
pub use mode::{DrainTimeout, Launcher, TaskMode};
pub use queue::{CrawlQueue, CrawlReport, Ctx, FailedItem, RetrySettings};
pub use sleep::{Sleep, sleep};
pub use stream::{
    Autoscaled, AutoscaledStreamExt, Done, ItemSource, ItemTask, Items, RetryItems, RetryTask,
    Retrying,
};

/// A scaling policy chosen at run time.
pub type BoxPolicy = Box<dyn ScalingPolicy + Send>;
struct Inner<Fns, Se> {
    pool: Pool<BoxPolicy>,
    fns: Fns,
    sensors: Se,
    sink: Box<dyn EventSink + Send>,
    budget: Option<BudgetMember>,
}

/// An autoscaled pool on runtime `Rt`. Adapters export it as a non-generic-runtime alias.
///
/// `run` borrows the pool for the length of the run; everything else takes `&self` and works from inside
/// tasks and from other threads, directly or through a cloned [`Handle`].
pub struct AutoscaledPool<Rt, Fns, Se> {
    config: PoolConfig,
    runtime: Rt,
    handle: Handle,
    mode: TaskMode,
    inner: Mutex<Option<Inner<Fns, Se>>>,
}

impl<Rt, Fns, Se> fmt::Debug for AutoscaledPool<Rt, Fns, Se> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoscaledPool")
            .field("handle", &self.handle)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Puts the run state back into its pool when the run ends, or when the run's future is dropped.
struct Taken<'a, Fns, Se> {
    slot: &'a Mutex<Option<Inner<Fns, Se>>>,
    inner: Option<Inner<Fns, Se>>,
}

impl<Fns, Se> Drop for Taken<'_, Fns, Se> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(inner);
        }
    }
}

impl<Rt, Fns, Se> AutoscaledPool<Rt, Fns, Se>
where
    Rt: Runtime + Spawn + Clone,
    Fns: TaskFns,
    Fns::Task: Send + 'static,
    Fns::Error: Send + 'static,
    Fns::Ok: Send + 'static,
    Se: Sensors,
{
    /// Runs the pool until `is_finished` says so (and every task has ended), the first error, or an abort.
    ///
    /// # Errors
    ///
    /// The first task or task-function error, unchanged, in [`PoolError::Task`]; a panic as
    /// [`PoolError::Panicked`]; [`PoolError::AlreadyRunning`] if a run is active.
    ///
    /// # Examples
    ///
    /// On the virtual-time harness, whose `&Sim` is a runtime with a spawner (on tokio, the builder is
    /// `pool_tokio::AutoscaledPool::builder()` and the run is awaited in an async function):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use pool_core::testing::Sim;
    /// use pool_core::{Builder, PoolError};
    ///
    /// let sim = Sim::new();
    /// let left = Arc::new(AtomicU32::new(50));
    /// let (a, b, c) = (left.clone(), left.clone(), left.clone());
    /// let pool = Builder::new(&sim, ())
    ///     .run_task(move || {
    ///         let n = a.fetch_sub(1, Ordering::SeqCst);
    ///         async move { if n == 7 { Err("page 7 is gone") } else { Ok(()) } }
    ///     })
    ///     .is_task_ready(move || { let r = b.load(Ordering::SeqCst) > 0; async move { Ok(r) } })
    ///     .is_finished(move || { let f = c.load(Ordering::SeqCst) == 0; async move { Ok(f) } })
    ///     .build()
    ///     .unwrap();
    /// // The first error ends the run, unchanged; the running tasks finish first.
    /// let ended = sim.block_on(pool.run()).unwrap();
    /// assert_eq!(ended.unwrap_err(), PoolError::Task("page 7 is gone"));
    /// // The pool is free for another run once this one has ended.
    /// assert!(!pool.handle().is_running());
    /// ```
    pub async fn run(&self) -> Result<RunReport, PoolError<Fns::Error>> {
        let launcher = Launcher::for_mode(self.mode, self.runtime.clone());
        self.run_with(launcher).await
    }
}

impl<Rt, Fns, Se> AutoscaledPool<Rt, Fns, Se>
where
    Rt: Runtime + Clone,
    Fns: TaskFns,
    Se: Sensors,
{
    /// Runs the pool with every task polled in place by the run's own future, whatever the task mode, so
    /// tasks need not be `Send` or `'static` (an `Rc`, a `RefCell`, a borrow of the caller's data): for a
    /// current-thread runtime, a `LocalSet`, or `smol::LocalExecutor`. Otherwise as [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use pool_core::testing::Sim;
    /// use pool_core::Builder;
    ///
    /// let sim = Sim::new();
    /// let left = Rc::new(Cell::new(30)); // not `Send`
    /// let (a, b, c) = (left.clone(), left.clone(), left.clone());
    /// let pool = Builder::new(sim.runtime().clone(), ())
    ///     .run_task(move || {
    ///         a.set(a.get() - 1);
    ///         let a = a.clone();
    ///         async move { let _still_here = a; Ok::<(), ()>(()) }
    ///     })
    ///     .is_task_ready(move || { let r = b.get() > 0; async move { Ok(r) } })
    ///     .is_finished(move || { let f = c.get() == 0; async move { Ok(f) } })
    ///     .build()
    ///     .unwrap();
    /// let report = sim.block_on(pool.run_local()).unwrap().unwrap();
    /// assert_eq!(report.succeeded, 30);
    /// ```
    pub async fn run_local(&self) -> Result<RunReport, PoolError<Fns::Error>> {
        self.run_with(crate::driver::InPlace).await
    }

    /// One run with `launcher`: takes the run state out of the pool for the run's length (it goes back
    /// however the run ends, a drop included) and drives it.
    async fn run_with<L: Launch<Fns::Task>>(
        &self,
        launcher: L,
    ) -> Result<RunReport, PoolError<Fns::Error>> {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut taken = Taken {
            slot: &self.inner,
            inner: Some(taken.ok_or(PoolError::AlreadyRunning)?),
        };
        let Some(inner) = taken.inner.as_mut() else {
            return Err(PoolError::AlreadyRunning);
        };
        let mut run = Run::new(
            &mut inner.pool,
            &self.handle,
            &mut inner.fns,
            &self.runtime,
            launcher,
            &mut inner.sensors,
            &mut *inner.sink,
        )?;
        if let Some(member) = &inner.budget {
            run = run.with_budget(member);
        }
        self.runtime.drive(run).await
    }
}

impl<Rt: Runtime + Clone, Fns, Se> AutoscaledPool<Rt, Fns, Se> {
    /// The settings the pool was built with, the autoscale interval resolved (the policy's preferred one
    /// unless one was set). The setters change the bounds in force, not these.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// A cloneable, thread-safe handle to this pool.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
    /// Aborts the active run, cancelling its tasks, and waits until it has ended; the run returns `Ok` with
    /// `aborted` set.
    ///
    /// # Errors
    ///
    /// [`RunError::NotRunning`] when no run is active.
    pub async fn abort(&self) -> Result<(), RunError> {
        self.handle.abort().await
    }
    /// Stops new starts; running tasks go on.
    pub fn pause(&self) {
        self.handle.pause();
    }
    /// Lets the pool start tasks again, at once.
    pub fn resume(&self) {
        self.handle.resume();
    }
    /// Wakes the pool to ask `is_task_ready` again now.
    pub fn notify(&self) {
        self.handle.notify();
    }
    /// Tasks running now.
    pub fn current_concurrency(&self) -> usize {
        self.handle.current_concurrency()
    }
    /// Desired concurrency.
    pub fn desired_concurrency(&self) -> usize {
        self.handle.desired_concurrency()
    }
    /// Sets desired concurrency, clamped into `[min, max]`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_desired_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        self.set_idle(Setter::Desired, |p, now| p.set_desired_concurrency(now, n))
            .unwrap_or_else(|| self.handle.set_desired_concurrency(n))
    }
    /// Sets the floor.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0, [`ConfigError::MinAboveMax`] above the ceiling.
    pub fn set_min_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        self.set_idle(Setter::Min, |p, now| p.set_min_concurrency(now, n))
            .unwrap_or_else(|| self.handle.set_min_concurrency(n))
    }
    /// Sets the ceiling; desired and min follow it down.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_max_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        self.set_idle(Setter::Max, |p, now| p.set_max_concurrency(now, n))
            .unwrap_or_else(|| self.handle.set_max_concurrency(n))
    }

    /// A setter applied to the idle machine, superseding the same setter requested earlier through a handle;
    /// `None` while running (the handle relays it).
    fn set_idle(
        &self,
        setter: Setter,
        f: impl FnOnce(&mut Pool<BoxPolicy>, Instant) -> Result<(), ConfigError>,
    ) -> Option<Result<(), ConfigError>> {
        // Under the pool's lock, so no run can start between the change and the dropped request.
        self.with_idle_pool(|p, now| {
            let out = f(p, now);
            if out.is_ok() {
                self.handle.supersede(setter);
            }
            out
        })
    }

    /// Applies `f` directly when no run holds the machine; `None` while running (the handle relays it).
    fn with_idle_pool<T>(&self, f: impl FnOnce(&mut Pool<BoxPolicy>, Instant) -> T) -> Option<T> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = guard.as_mut()?;
        let out = f(&mut inner.pool, self.runtime.now());
        self.handle.sync_from(&inner.pool);
        Some(out)
    }

    /// The verdicts over the current window (5 s by default): what gates starts.
    pub fn current_system_info(&self) -> SystemInfo {
        self.handle
            .current_system_info()
            .or_else(|| self.with_idle_pool(|p, now| p.current_info(now)))
            .unwrap_or_else(|| self.with_run_fallback())
    }

    /// The verdicts over the whole history (30 s by default): what drives autoscaling.
    pub fn historical_system_info(&self) -> SystemInfo {
        self.handle
            .historical_system_info()
            .or_else(|| self.with_idle_pool(|p, now| p.historical_info(now)))
            .unwrap_or_else(|| self.with_run_fallback())
    }

    fn with_run_fallback(&self) -> SystemInfo {
        // A run started but has not sampled its sensors yet: an empty verdict, like Crawlee's before the
        // first snapshot.
        Pool::new(PoolConfig::default())
            .map(|p| p.current_info(self.runtime.now()))
            .unwrap_or_else(|_| unreachable_info())
    }

    /// Pauses, then waits until every running task has finished, or `timeout` passes (the pool then stays
    /// paused). Crawlee for JavaScript's `pause(timeoutSecs)`, with the timeout in real seconds.
    ///
    /// # Errors
    ///
    /// [`DrainTimeout`] when tasks are still running after `timeout`.
    pub async fn pause_and_drain(&self, timeout: Option<Duration>) -> Result<(), DrainTimeout> {
        self.pause();
        let Some(timeout) = timeout else {
            self.handle.drained().await;
            return Ok(());
        };
        let sleep = sleep(&self.runtime, timeout);
        let drained = async {
            self.handle.drained().await;
            true
        };
        let slept = async {
            sleep.await;
            false
        };
        if futures_lite::future::or(drained, slept).await {
            Ok(())
        } else {
            Err(DrainTimeout {
                timeout,
                still_running: self.current_concurrency(),
            })
        }
    }
}

fn unreachable_info() -> SystemInfo {
    // Only reached if the default configuration were invalid, which a unit test rules out.
    let zero = crate::status::LoadRatioInfo {
        limit_ratio: 0.0,
        actual_ratio: 0.0,
        samples: 0,
        newest: None,
        stale: false,
    };
    SystemInfo {
        created_at: Instant::ZERO,
        cpu: zero,
        memory: zero,
        event_loop: zero,
        client: zero,
        custom: heapless::Vec::new(),
    }
}
