//! [`AutoscaledPool`]: the seed's API (`run`, `abort`, `pause`, `resume`, `current_concurrency`,
//! `desired_concurrency`, three task functions, settings) over any runtime.
//!
//! It is generic over the runtime so that the adapters (`pool-tokio`, `pool-smol`, `pool-async-std`) are only
//! a clock, a timer and a spawner plus type aliases: everything a user can observe about a pool's behaviour
//! is decided here, in the core.

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Mutex;

use crate::adaptive::AdaptivePolicy;
use crate::config::{
    ConcurrencySettings, ConfigError, PoolConfig, ScalingSettings, SnapshotSettings, StatusSettings,
};
use crate::driver::{
    CatchPanic, EventSink, Handle, InPlace, Launch, PoolError, Run, Spawn, TaskPanic,
};
use crate::pool::{Pool, RunError, RunReport};
use crate::runtime::{FnTasks, Runtime, Sensors, TaskFns, Timer};
use crate::scale::{CrawleePolicy, ScalingPolicy};
use crate::status::SystemInfo;
use crate::time::Instant;

/// The autoscale tick [`AdaptivePolicy`] is tuned for, and so the builder's default.
const ADAPTIVE_TICK: Duration = Duration::from_secs(1);

/// A scaling policy chosen at run time.
pub type BoxPolicy = Box<dyn ScalingPolicy + Send>;

/// How tasks run: spawned on the runtime's executor (the default; tasks run in parallel on a multi-thread
/// runtime), or polled in place by the pool's own future (no spawn per task; best for I/O-bound tasks and
/// single-threaded runtimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TaskMode {
    /// One spawn per task on the runtime's executor.
    #[default]
    Spawned,
    /// Polled inside the pool's future.
    InPlace,
}

/// The launcher an [`AutoscaledPool`] uses, chosen by [`TaskMode`].
#[derive(Clone, Debug)]
pub enum Launcher<S> {
    /// Poll in place.
    InPlace,
    /// Spawn with `S`.
    Spawned(S),
}

pin_project_lite::pin_project! {
    /// A task started by a [`Launcher`]: the task future itself, or the executor's join handle.
    // pin-project-lite accepts no doc comments on enum fields, so the variants' fields go undocumented.
    #[allow(missing_docs)]
    #[project = RunningProj]
    #[derive(Debug)]
    pub enum Running<F, H> {
        /// Polled in place.
        InPlace { #[pin] task: CatchPanic<F> },
        /// A join handle.
        Spawned { handle: H },
    }
}

impl<F: Future, H: Future<Output = Result<F::Output, TaskPanic>> + Unpin> Future for Running<F, H> {
    type Output = Result<F::Output, TaskPanic>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RunningProj::InPlace { task } => task.poll(cx),
            RunningProj::Spawned { handle } => Pin::new(handle).poll(cx),
        }
    }
}

impl<S: Spawn, F> Launch<F> for Launcher<S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = Running<F, S::Handle<F::Output>>;
    fn launch(&self, task: F) -> Self::Running {
        match self {
            Launcher::InPlace => Running::InPlace {
                task: InPlace.launch(task),
            },
            Launcher::Spawned(s) => Running::Spawned {
                handle: s.spawn(task),
            },
        }
    }
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool {
        match (self, running.project()) {
            (Launcher::Spawned(s), RunningProj::Spawned { handle }) => {
                s.cancel(handle);
                false
            }
            _ => true,
        }
    }
}

/// The pause-and-drain wait timed out; the pool stays paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainTimeout {
    /// The timeout that passed.
    pub timeout: Duration,
    /// Tasks still running when it passed.
    pub still_running: usize,
}

impl fmt::Display for DrainTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the pool's running tasks did not finish in {:.3} s after pause ({} still running); the pool stays paused",
            self.timeout.as_secs_f64(),
            self.still_running
        )
    }
}

impl core::error::Error for DrainTimeout {}

/// What an adapter's runtime provides beyond the seams: how to make one, and its default sensors.
pub trait DefaultRuntime: Runtime + Spawn + Clone {
    /// The sensors a pool on this runtime samples unless told otherwise.
    type Sensors: Sensors;
    /// A runtime handle for the current context.
    fn create() -> Self;
    /// The default sensors.
    fn default_sensors(&self) -> Self::Sensors;
}

impl<Rt: DefaultRuntime> AutoscaledPool<Rt, (), ()> {
    /// A builder with default settings and the runtime's default sensors.
    ///
    /// # Examples
    ///
    /// See the adapters (`pool-tokio`, `pool-smol`, `pool-async-std`), which export this type for their
    /// runtime.
    pub fn builder() -> Builder<Rt, (), (), (), Rt::Sensors> {
        let rt = Rt::create();
        let sensors = rt.default_sensors();
        Builder::new(rt, sensors)
    }
}

/// Builds an [`AutoscaledPool`]. `build` exists only once all three task functions are set.
pub struct Builder<Rt, R, T, F, Se> {
    runtime: Rt,
    config: PoolConfig,
    policy: BoxPolicy,
    sensors: Se,
    sink: Box<dyn EventSink + Send>,
    mode: TaskMode,
    run_task: R,
    is_task_ready: T,
    is_finished: F,
}

impl<Rt, R, T, F, Se> fmt::Debug for Builder<Rt, R, T, F, Se> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<Rt, Se> Builder<Rt, (), (), (), Se> {
    /// A builder on `runtime` with `sensors` and default settings; adapters call this.
    ///
    /// The default policy is [`AdaptivePolicy`] with a 1 s autoscale tick, the policy that won the simulator
    /// suite (`docs/algorithm.md`); [`Builder::crawlee_parity`] selects Crawlee's controller and its 10 s tick
    /// instead.
    pub fn new(runtime: Rt, sensors: Se) -> Self {
        let mut config = PoolConfig::default();
        config.scaling.autoscale_interval = ADAPTIVE_TICK;
        Builder {
            runtime,
            config,
            policy: Box::new(AdaptivePolicy::default()),
            sensors,
            #[cfg(feature = "tracing")]
            sink: Box::new(crate::trace::TracingSink),
            #[cfg(not(feature = "tracing"))]
            sink: Box::new(()),
            mode: TaskMode::default(),
            run_task: (),
            is_task_ready: (),
            is_finished: (),
        }
    }
}

impl<Rt, R, T, F, Se> Builder<Rt, R, T, F, Se> {
    /// Concurrency bounds and the rate cap.
    #[must_use]
    pub fn concurrency_settings(mut self, s: ConcurrencySettings) -> Self {
        self.config.concurrency = s;
        self
    }
    /// Autoscaling cadence and steps.
    #[must_use]
    pub fn scaling_settings(mut self, s: ScalingSettings) -> Self {
        self.config.scaling = s;
        self
    }
    /// Load windows and thresholds.
    #[must_use]
    pub fn status_settings(mut self, s: StatusSettings) -> Self {
        self.config.status = s;
        self
    }
    /// Snapshot rules, the memory budget and the sensor cadence.
    #[must_use]
    pub fn snapshot_settings(mut self, s: SnapshotSettings) -> Self {
        self.config.snapshot = s;
        self
    }
    /// Every setting at once.
    #[must_use]
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }
    /// A per-task timeout; see [`PoolConfig::timeout_policy`] for what it does.
    #[must_use]
    pub fn task_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.task_timeout = timeout;
        self
    }
    /// The scaling policy ([`AdaptivePolicy`] by default). The autoscale tick is set separately, with
    /// [`Builder::scaling_settings`].
    #[must_use]
    pub fn policy(mut self, policy: impl ScalingPolicy + Send + 'static) -> Self {
        self.policy = Box::new(policy);
        self
    }
    /// Crawlee's behaviour, exactly: [`CrawleePolicy`] with Crawlee's scaling settings (a 10 s tick, steps of
    /// 5 %). Call it before any other scaling setting you want to keep.
    #[must_use]
    pub fn crawlee_parity(mut self) -> Self {
        self.policy = Box::new(CrawleePolicy);
        self.config.scaling = ScalingSettings::default();
        self
    }
    /// Where events go (decisions, refusals, status records).
    #[must_use]
    pub fn events(mut self, sink: impl EventSink + Send + 'static) -> Self {
        self.sink = Box::new(sink);
        self
    }
    /// Spawned (default) or in-place tasks.
    #[must_use]
    pub fn task_mode(mut self, mode: TaskMode) -> Self {
        self.mode = mode;
        self
    }
    /// Replaces the sensors.
    pub fn sensors<Se2>(self, sensors: Se2) -> Builder<Rt, R, T, F, Se2> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors,
            sink: self.sink,
            mode: self.mode,
            run_task: self.run_task,
            is_task_ready: self.is_task_ready,
            is_finished: self.is_finished,
        }
    }
    /// The task: an async closure returning `Result<(), E>`.
    pub fn run_task<R2>(self, f: R2) -> Builder<Rt, R2, T, F, Se> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            run_task: f,
            is_task_ready: self.is_task_ready,
            is_finished: self.is_finished,
        }
    }
    /// Whether a task should start: an async closure returning `Result<bool, E>`, asked only when there is
    /// capacity.
    pub fn is_task_ready<T2>(self, f: T2) -> Builder<Rt, R, T2, F, Se> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            run_task: self.run_task,
            is_task_ready: f,
            is_finished: self.is_finished,
        }
    }
    /// Whether the run is over: an async closure returning `Result<bool, E>`, asked only when no task is ready
    /// and none runs.
    pub fn is_finished<F2>(self, f: F2) -> Builder<Rt, R, T, F2, Se> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            run_task: self.run_task,
            is_task_ready: self.is_task_ready,
            is_finished: f,
        }
    }
}

impl<Rt, R, T, F, Se, E, FR, FT, FF> Builder<Rt, R, T, F, Se>
where
    R: FnMut() -> FR,
    T: FnMut() -> FT,
    F: FnMut() -> FF,
    FR: Future<Output = Result<(), E>>,
    FT: Future<Output = Result<bool, E>>,
    FF: Future<Output = Result<bool, E>>,
{
    /// Validates the settings and builds the pool.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as a [`ConfigError`].
    pub fn build(self) -> Result<BuiltPool<Rt, R, T, F, Se>, ConfigError> {
        let pool = Pool::with_policy(self.config, self.policy)?;
        let handle = Handle::new(&pool);
        let fns = crate::runtime::task_fns(self.run_task, self.is_task_ready, self.is_finished);
        Ok(AutoscaledPool {
            runtime: self.runtime,
            handle,
            mode: self.mode,
            inner: Mutex::new(Some(Inner {
                pool,
                fns,
                sensors: self.sensors,
                sink: self.sink,
            })),
        })
    }
}

/// The pool a [`Builder`] builds from three closures.
pub type BuiltPool<Rt, R, T, F, Se> = AutoscaledPool<Rt, FnTasks<R, T, F>, Se>;

struct Inner<Fns, Se> {
    pool: Pool<BoxPolicy>,
    fns: Fns,
    sensors: Se,
    sink: Box<dyn EventSink + Send>,
}

/// An autoscaled pool on runtime `Rt`. Adapters export it as a non-generic-runtime alias.
///
/// `run` borrows the pool for the length of the run; everything else takes `&self` and works from inside
/// tasks and from other threads, directly or through a cloned [`Handle`].
pub struct AutoscaledPool<Rt, Fns, Se> {
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
    Se: Sensors,
{
    /// Runs the pool until `is_finished` says so (and every task has ended), the first error, or an abort.
    ///
    /// # Errors
    ///
    /// The first task or task-function error, unchanged, in [`PoolError::Task`]; a panic as
    /// [`PoolError::Panicked`]; [`PoolError::AlreadyRunning`] if a run is active.
    pub async fn run(&self) -> Result<RunReport, PoolError<Fns::Error>> {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut taken = Taken {
            slot: &self.inner,
            inner: Some(taken.ok_or(PoolError::AlreadyRunning)?),
        };
        let Some(inner) = taken.inner.as_mut() else {
            return Err(PoolError::AlreadyRunning);
        };
        let launcher = match self.mode {
            TaskMode::Spawned => Launcher::Spawned(self.runtime.clone()),
            TaskMode::InPlace => Launcher::InPlace,
        };
        let run = Run::new(
            &mut inner.pool,
            &self.handle,
            &mut inner.fns,
            &self.runtime,
            launcher,
            &mut inner.sensors,
            &mut *inner.sink,
        )?;
        self.runtime.drive(run).await
    }
}

impl<Rt: Runtime + Clone, Fns, Se> AutoscaledPool<Rt, Fns, Se> {
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
        self.with_idle_pool(|p, now| p.set_desired_concurrency(now, n))
            .unwrap_or_else(|| self.handle.set_desired_concurrency(n))
    }
    /// Sets the floor.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0, [`ConfigError::MinAboveMax`] above the ceiling.
    pub fn set_min_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        self.with_idle_pool(|p, now| p.set_min_concurrency(now, n))
            .unwrap_or_else(|| self.handle.set_min_concurrency(n))
    }
    /// Sets the ceiling; desired and min follow it down.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_max_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        self.with_idle_pool(|p, now| p.set_max_concurrency(now, n))
            .unwrap_or_else(|| self.handle.set_max_concurrency(n))
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

/// A sleep of `d` on `rt`'s timer: a runtime-neutral way for code generic over the runtime (such as the
/// adapter conformance suite) to wait.
pub fn sleep<Rt: Runtime + Clone>(rt: &Rt, d: Duration) -> Sleep<Rt> {
    let at = rt.now() + d;
    Sleep {
        timer: Box::pin(rt.timer(at)),
        at,
        rt: rt.clone(),
    }
}

/// The future returned by [`sleep`]; expiry is decided by the runtime's clock.
pub struct Sleep<Rt: Runtime> {
    timer: Pin<Box<Rt::Timer>>,
    at: Instant,
    rt: Rt,
}

impl<Rt: Runtime> fmt::Debug for Sleep<Rt> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

// The timer is pinned in its own box and the runtime handle is never pinned, so `Sleep` may move.
impl<Rt: Runtime> Unpin for Sleep<Rt> {}

impl<Rt: Runtime> Future for Sleep<Rt> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.rt.now() >= self.at {
            return Poll::Ready(());
        }
        let _ = self.timer.as_mut().poll_elapsed(cx);
        if self.rt.now() >= self.at {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
