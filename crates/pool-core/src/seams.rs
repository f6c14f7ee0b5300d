//! Every seam between the machine and the world, in one place: the adapter author's checklist.
//!
//! An adapter for a new runtime implements, in about a hundred lines and with no policy of its own:
//!
//! 1. [`Clock`]: a monotonic `now`, as an [`Instant`] since an epoch the adapter chooses.
//! 2. [`Timer`]: one timer the driver re-arms in place (`reset`), waking the task that last polled it.
//! 3. [`Runtime`]: the clock plus a timer factory; optionally [`Runtime::drive`] to wrap the driver future
//!    (tokio opts out of its cooperative budget there).
//! 4. [`Spawn`] (`alloc`): spawning a task whose join handle turns a panic into a
//!    [`TaskPanic`], and cancelling it. The driver's [`Spawned`](crate::Spawned) launcher
//!    uses it; [`InPlace`](crate::InPlace) needs none.
//! 5. [`DefaultRuntime`] (`std`): how [`AutoscaledPool::builder`](crate::AutoscaledPool::builder) makes the
//!    runtime and which [`Sensors`] it samples by default.
//!
//! The other seams are the driver's, and users or tests implement them:
//!
//! - [`Sensors`]: CPU, memory and custom readings, sampled when the machine asks.
//! - [`TaskFns`]: the three user functions (`run_task`, `is_task_ready`, `is_finished`); build one from
//!   closures with [`task_fns`](crate::task_fns).
//! - [`Launch`] (`alloc`): how a task future runs, in place or spawned.
//! - [`EventSink`]: where the machine's events go (a logger, metrics, a test's trace).
//!
//! The test harness (`testing`, feature `test-util`) implements the time seams in virtual time, and
//! `testing::conformance` is the suite an adapter runs on its real runtime to prove it honours them.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

#[cfg(feature = "alloc")]
use crate::driver::TaskPanic;
use crate::outcome::Outcome;
use crate::pool::{Event, Pool};
use crate::scale::ScalingPolicy;
use crate::time::Instant;

/// A monotonic clock.
///
/// Implementations MUST:
/// - never go backwards;
/// - never fail or block;
/// - use one epoch for every instant they return.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// A timer that can be re-armed without being rebuilt, so the driver allocates it once per run.
///
/// Implementations MUST wake the task that last polled it once `at` has passed. The driver decides expiry by
/// comparing [`Clock::now`] with its deadline, never by trusting `poll_elapsed` alone, so a spurious
/// `Ready` is harmless.
pub trait Timer {
    /// Re-arms the timer for `at`.
    fn reset(self: Pin<&mut Self>, at: Instant);
    /// `Ready` once the deadline has passed.
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A clock plus a timer factory: what the driver needs from a runtime to keep time.
pub trait Runtime: Clock {
    /// The runtime's timer.
    type Timer: Timer;
    /// A timer armed for `at`.
    fn timer(&self, at: Instant) -> Self::Timer;

    /// Wraps the pool's driver future before it runs; the default returns it as it is.
    ///
    /// A runtime with cooperative budgeting (tokio) opts the driver out of it: the driver polls in-place
    /// tasks itself and bounds its own work per poll, and a budget spent by the driver would make those tasks
    /// return `Pending` and wake themselves at once, over and over.
    fn drive<F: Future>(&self, driver: F) -> impl Future<Output = F::Output> {
        driver
    }
}

/// A source of CPU, memory and custom-signal readings, sampled when the machine asks
/// ([`crate::Action::SampleSensors`]).
///
/// Sampling MUST be cheap and non-blocking: it runs inside the driver's poll. A sensor measures deltas
/// between calls rather than sleeping inside one.
pub trait Sensors {
    /// Reads every sensor and reports to `pool` through `handle_cpu`, `handle_memory` and `handle_signal`.
    /// Rejected readings are reported by the pool as events; the sensor need not handle them.
    fn sample<P: ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>);
}

/// No sensors: only the machine's own event-loop and client probes feed it.
impl Sensors for () {
    fn sample<P: ScalingPolicy>(&mut self, _now: Instant, _pool: &mut Pool<P>) {}
}

/// Borrowed sensors, so their state (CPU deltas, say) outlives one run.
impl<S: Sensors + ?Sized> Sensors for &mut S {
    fn sample<P: ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>) {
        (**self).sample(now, pool);
    }
}

/// Two sensor sets, sampled in order.
impl<A: Sensors, B: Sensors> Sensors for (A, B) {
    fn sample<P: ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>) {
        self.0.sample(now, pool);
        self.1.sample(now, pool);
    }
}

/// The three user functions the pool drives, bundled so the driver names one type instead of six.
///
/// Build one from closures with [`task_fns`](crate::task_fns).
pub trait TaskFns {
    /// The user's error type; it flows out of the run unchanged.
    type Error;
    /// What a task returns when it ends without an error: `()` (a success) or an [`Outcome`].
    type Ok: Into<Outcome>;
    /// The task future.
    type Task: Future<Output = Result<Self::Ok, Self::Error>>;
    /// The readiness future.
    type Ready: Future<Output = Result<bool, Self::Error>>;
    /// The finished future.
    type Finished: Future<Output = Result<bool, Self::Error>>;
    /// Starts a task. Called only after `is_task_ready` answered `true` and the gate stayed open.
    fn run_task(&mut self) -> Self::Task;
    /// Whether a task should start. Called only when the pool has capacity.
    fn is_task_ready(&mut self) -> Self::Ready;
    /// Whether the run is over. Called only when no task is ready and none is running.
    fn is_finished(&mut self) -> Self::Finished;

    /// Answers readiness by polling, for a source with no future to hand out (a stream of items). `None`, the
    /// default, makes the driver ask [`is_task_ready`](TaskFns::is_task_ready) and poll the future it
    /// returns.
    ///
    /// Called only when the pool has capacity. A `Pending` answer is asked again on the next wake while the
    /// pool has capacity, so the source MUST arrange that wake through `cx`, as any `poll` function does.
    fn poll_task_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<bool, Self::Error>>> {
        let _ = cx;
        None
    }

    /// Takes what a task that ended by itself returned and says how it ended; the default is `ok.into()`.
    ///
    /// A source that hands task results on (the autoscaled stream) keeps them here. A task the pool timed
    /// out or cancelled is dropped without this call.
    fn task_ended(&mut self, ok: Self::Ok) -> Outcome {
        ok.into()
    }
}

#[cfg(feature = "alloc")]
/// How task futures run: in the driver or on an executor.
pub trait Launch<F: Future> {
    /// A started task, resolving to its output or its panic.
    type Running: Future<Output = Result<F::Output, TaskPanic>>;
    /// Starts `task`.
    fn launch(&self, task: F) -> Self::Running;
    /// Asks a running task to stop. Returns `true` when dropping `running` is all it takes (the driver then
    /// drops it at once); `false` when the driver must keep polling it until it resolves.
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool;

    /// Whether a `running` that resolved is worth keeping for [`relaunch`](Launch::relaunch): `false`, the
    /// default, drops it as soon as its task ended.
    fn reuses(&self) -> bool {
        false
    }

    /// Starts `task` in `running`, a value this launcher made whose task resolved, instead of making a new
    /// one; `Err(task)`, the default, says it cannot, and the driver calls [`launch`](Launch::launch).
    ///
    /// # Errors
    ///
    /// The task, given back, when `running` cannot take it.
    fn relaunch(&self, _running: Pin<&mut Self::Running>, task: F) -> Result<(), F> {
        Err(task)
    }

    /// Whether tasks run on threads other than the driver's, so that a task can end while the driver waits:
    /// the driver then lingers a little before it sleeps (see `driver/run/linger.rs`). `false`, the default,
    /// for launchers whose tasks the driver polls itself.
    fn runs_elsewhere(&self) -> bool {
        false
    }

    /// Told by the driver when its tasks start or stop ending often (at least once per 50 µs on average over
    /// the last millisecond): workers that linger before they sleep, as the driver does, linger only while
    /// `hot`. Ignored by default.
    fn pace(&self, hot: bool) {
        let _ = hot;
    }

    /// Ends a kept `running` whose task resolved, at the end of the run: `Ready` once nothing of it is left on
    /// the executor, so a run never returns with work of its own still queued there. `Ready` at once, the
    /// default, for launchers that keep nothing.
    fn poll_retire(&self, running: Pin<&mut Self::Running>, cx: &mut Context<'_>) -> Poll<()> {
        let _ = (running, cx);
        Poll::Ready(())
    }
}

#[cfg(feature = "alloc")]
/// A runtime's spawner, for [`Spawned`](crate::Spawned).
pub trait Spawn {
    /// A join handle that resolves to the task's output, or its panic.
    type Handle<T: Send + 'static>: Future<Output = Result<T, TaskPanic>> + Unpin;
    /// Spawns `task` on the executor.
    fn spawn<F>(&self, task: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// Requests cancellation; the handle then resolves once the task is gone.
    fn cancel<T: Send + 'static>(&self, handle: &mut Self::Handle<T>);
}

/// What an adapter's runtime provides beyond the seams: how to make one, and its default sensors.
#[cfg(feature = "std")]
pub trait DefaultRuntime: Runtime + Spawn + Clone {
    /// The sensors a pool on this runtime samples unless told otherwise.
    type Sensors: Sensors;
    /// A runtime handle for the current context.
    fn create() -> Self;
    /// The default sensors.
    fn default_sensors(&self) -> Self::Sensors;
}

/// Sends events somewhere: a logger, a metrics exporter, a test's trace.
pub trait EventSink {
    /// Called once per event, in order.
    fn event(&mut self, event: &Event);
}
