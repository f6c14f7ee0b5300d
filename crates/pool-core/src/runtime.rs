//! The seams between the machine and the world: a clock, a re-armable timer, sensors, and (with `alloc`) a
//! way to run tasks.
//!
//! Adapters implement these in about a hundred lines; the test harness implements them in virtual time.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::pool::Pool;
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
/// Build one from closures with [`task_fns`].
pub trait TaskFns {
    /// The user's error type; it flows out of the run unchanged.
    type Error;
    /// The task future.
    type Task: Future<Output = Result<(), Self::Error>>;
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
}

/// [`TaskFns`] from three closures.
#[derive(Clone, Debug)]
pub struct FnTasks<R, T, F> {
    run: R,
    ready: T,
    finished: F,
}

/// Bundles `run_task`, `is_task_ready` and `is_finished` closures.
///
/// # Examples
///
/// ```
/// let fns = pool_core::task_fns(
///     || async { Ok::<(), std::io::Error>(()) },
///     || async { Ok(true) },
///     || async { Ok(false) },
/// );
/// # let _ = fns;
/// ```
pub fn task_fns<R, T, F, E, FR, FT, FF>(
    run_task: R,
    is_task_ready: T,
    is_finished: F,
) -> FnTasks<R, T, F>
where
    R: FnMut() -> FR,
    T: FnMut() -> FT,
    F: FnMut() -> FF,
    FR: Future<Output = Result<(), E>>,
    FT: Future<Output = Result<bool, E>>,
    FF: Future<Output = Result<bool, E>>,
{
    FnTasks {
        run: run_task,
        ready: is_task_ready,
        finished: is_finished,
    }
}

impl<R, T, F, E, FR, FT, FF> TaskFns for FnTasks<R, T, F>
where
    R: FnMut() -> FR,
    T: FnMut() -> FT,
    F: FnMut() -> FF,
    FR: Future<Output = Result<(), E>>,
    FT: Future<Output = Result<bool, E>>,
    FF: Future<Output = Result<bool, E>>,
{
    type Error = E;
    type Task = FR;
    type Ready = FT;
    type Finished = FF;
    fn run_task(&mut self) -> FR {
        (self.run)()
    }
    fn is_task_ready(&mut self) -> FT {
        (self.ready)()
    }
    fn is_finished(&mut self) -> FF {
        (self.finished)()
    }
}
