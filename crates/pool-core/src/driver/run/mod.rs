//! [`Run`]: the future that drives one run of a [`Pool`], and its main loop.
//!
//! The loop applies handle requests, runs due ticks, samples sensors, expires task timeouts, reaps woken
//! tasks (`slots.rs`) and starts new ones while the gate is open (`start.rs`). It sleeps on its one
//! re-armable timer and its waker.
//!
//! The functions on the per-task path carry `#[inline]`. The driver is generic, so it is compiled in the
//! user's crate, where the instances from each source module land in a codegen unit of their own and are not
//! inlined into one another without the hint: splitting the driver into these files cost 26 % more
//! instructions per no-op task until they were marked (callgrind,
//! `pool-bench noop pool_tokio_ct_inplace 200000 100`, then named `pool_tokio_ct`: 75.4M before the split,
//! 94.9M after, 73.3M with the hints).

mod abandon;
mod linger;
mod parts;
mod permits;
mod slots;
mod start;

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use self::linger::Linger;
use self::parts::{FinishedCheck, Fns, ReadyCheck, Rt, Task, TaskResult};
pub use self::parts::{FnsPart, Owned, PoolPart, RuntimePart};
use self::permits::Permits;
use self::slots::{Ended, Slots};
use super::PoolError;
use super::control::Handle;
use crate::outcome::Outcome;
use crate::pool::{Action, Pool, RunReport, TaskOutcome, Verdict};
use crate::scale::ScalingPolicy;
use crate::seams::{Clock, EventSink, Launch, Runtime, Sensors, TaskFns, Timer};
use crate::sync::Ordering;
use crate::time::Instant;

/// The most start attempts and reaps in one poll before the driver yields to its executor.
const BUDGET: u32 = 256;

/// The most task slots (and wake bits) a run reserves before its first task, whatever the ceiling.
const PREALLOCATED_SLOTS: usize = 4096;

/// The most tasks started back to back in one step of the driver's loop.
const START_BATCH: u32 = 32;

/// How many loop iterations of one poll share one clock reading.
const CLOCK_EVERY: u32 = 16;

/// One run of a pool: a future resolving to the run's report, or its first error.
///
/// Build it with [`Run::new`]. Polled again after it completed, it answers
/// `Err(`[`PoolError::RunEnded`]`)` at once. It borrows the machine, the task functions and the runtime;
/// [`Driver`] is the same future over parts it may own.
pub type Run<'a, P, F, Rt, L, S, O> = Driver<&'a mut Pool<P>, &'a mut F, &'a Rt, L, S, O>;

/// The run driver over parts it owns or borrows: the machine (`Pl`, a `&mut Pool<P>` or an
/// `Owned<Pool<P>>`), the task functions (`Fs`, likewise) and the runtime (`Rb`, a `&Rt` or an `Owned<Rt>`).
///
/// [`Run`] is the borrowing form, what [`Run::new`] builds. An owning form is what a value that must outlive
/// the caller's stack frame holds: the autoscaled stream (`AutoscaledStreamExt`) owns its driver.
pub struct Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: PoolPart,
    Fs: FnsPart,
    Rb: RuntimePart,
    L: Launch<Task<Fs>>,
{
    pool: Pl,
    handle: Handle,
    fns: Fs,
    rt: Rb,
    launcher: L,
    sensors: S,
    sink: O,
    timer: Pin<Box<<Rt<Rb> as Runtime>::Timer>>,
    armed: Instant,
    slots: Slots<L::Running>,
    ready_check: Pin<Box<ReadyCheck<Fs>>>,
    finished_check: Pin<Box<FinishedCheck<Fs>>>,
    asked_ready: bool,
    asked_finished: bool,
    cancelled_all: bool,
    number: usize,
    error: Option<PoolError<<Fns<Fs> as TaskFns>::Error>>,
    done: bool,
    permits: Permits,
    /// The shared budget refused a permit since the last wake or the last task end.
    budget_blocked: bool,
    linger: Linger,
}

impl<Pl, Fs, Rb, L, S, O> fmt::Debug for Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: PoolPart,
    Fs: FnsPart,
    Rb: RuntimePart,
    L: Launch<Task<Fs>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("current", &self.pool.part_ref().current_concurrency())
            .field("desired", &self.pool.part_ref().desired_concurrency())
            .field("slots", &self.slots.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<Pl, Fs, Rb, L, S, O> Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: PoolPart,
    Fs: FnsPart,
    Rb: RuntimePart,
    L: Launch<Task<Fs>>,
    S: Sensors,
    O: EventSink,
{
    /// Starts a run of `pool` at `rt.now()`.
    ///
    /// # Errors
    ///
    /// [`PoolError::AlreadyRunning`] when `handle` belongs to a pool that is already running, or `pool` is.
    pub fn new(
        mut pool: Pl,
        handle: &Handle,
        fns: Fs,
        rt: Rb,
        launcher: L,
        sensors: S,
        sink: O,
    ) -> Result<Self, PoolError<<Fns<Fs> as TaskFns>::Error>> {
        let shared = &handle.shared;
        // Run numbers start at 1 (0 means "none") and skip 0 if they ever wrap.
        let number = shared
            .runs
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1)
            .max(1);
        if shared
            .running
            .compare_exchange(0, number, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(PoolError::AlreadyRunning);
        }
        let now = rt.part_ref().now();
        if pool.part().start_run(now).is_err() {
            shared.running.store(0, Ordering::Release);
            return Err(PoolError::AlreadyRunning);
        }
        // Slots and wake bits are reserved up front for the ceiling, but no further than `PREALLOCATED_SLOTS`:
        // a valid ceiling may be `usize::MAX`. Slots past it are pushed when first needed and woken through
        // the wake set's overflow mark.
        let cap = pool.part().max_concurrency().min(PREALLOCATED_SLOTS);
        let reuse = launcher.reuses();
        let mut run = Driver {
            timer: Box::pin(rt.part_ref().timer(now)),
            armed: now,
            pool,
            handle: handle.clone(),
            fns,
            rt,
            launcher,
            sensors,
            sink,
            slots: Slots::new(cap, handle.shared.clone(), reuse),
            ready_check: Box::pin(None),
            finished_check: Box::pin(None),
            asked_ready: false,
            asked_finished: false,
            cancelled_all: false,
            number,
            error: None,
            done: false,
            permits: Permits::default(),
            budget_blocked: false,
            linger: Linger::new(now),
        };
        // A read-modify-write, not a store: a store could land after a handle's concurrent request in the
        // flag's modification order without synchronising with it, so `apply_control` would read this run's own
        // `true`, see a stale `paused` or setter, and clear the only mark of the request (a pause or resume
        // lost for the whole run; found by the loom model `task_wakeup_and_handle_controls_are_never_lost`).
        run.handle.shared.dirty.fetch_or(true, Ordering::AcqRel);
        run.apply_control(now);
        run.publish();
        Ok(run)
    }

    /// Draws a permit for each start from `member`'s [`SharedBudget`](crate::SharedBudget), and gives it
    /// back when the task ends; refusals are [`Refusal::Budget`](crate::Refusal::Budget).
    #[cfg(feature = "std")]
    #[must_use]
    pub fn with_budget(mut self, member: &crate::budget::BudgetMember) -> Self {
        let desired = self.pool.part_ref().desired_concurrency();
        self.permits = Permits::new(member.for_run(), &self.handle, desired);
        self
    }

    /// The task functions, between polls: where an owner that hands task results on keeps them.
    #[inline]
    pub fn task_fns(&mut self) -> &mut Fns<Fs> {
        self.fns.part()
    }

    /// Applies the handle's pending requests. The check is inlined into the hot loops; the work is not, as
    /// requests are rare.
    #[inline(always)]
    fn apply_control(&mut self, now: Instant) {
        if self.handle.shared.dirty.load(Ordering::Relaxed) {
            self.apply_requests(now);
        }
    }

    #[cold]
    #[inline(never)]
    fn apply_requests(&mut self, now: Instant) {
        let sh = &self.handle.shared;
        if !sh.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let paused = sh.paused.load(Ordering::Acquire);
        if paused != self.pool.part().is_paused() {
            if paused {
                self.pool.part().pause();
            } else {
                self.pool.part().resume();
            }
        }
        // Setter errors were reported to the caller by the handle already; a request that raced with
        // another setter into an invalid combination is dropped.
        let max = sh.set_max.swap(0, Ordering::AcqRel);
        if max != 0 {
            let _ = self.pool.part().set_max_concurrency(now, max);
        }
        let min = sh.set_min.swap(0, Ordering::AcqRel);
        if min != 0 {
            let _ = self.pool.part().set_min_concurrency(now, min);
        }
        let desired = sh.set_desired.swap(0, Ordering::AcqRel);
        if desired != 0 {
            let _ = self.pool.part().set_desired_concurrency(now, desired);
        }
        for _ in 0..sh.throttles.swap(0, Ordering::AcqRel) {
            self.pool.part().handle_throttle(now, None);
        }
        let timed = sh.timed_throttles.swap(0, Ordering::AcqRel);
        if timed > 0 {
            let ms = sh.retry_after_ms.swap(0, Ordering::AcqRel) as u64;
            for _ in 0..timed {
                self.pool
                    .part()
                    .handle_throttle(now, Some(Duration::from_millis(ms)));
            }
        }
        if sh.abort.load(Ordering::Acquire) == self.number && !self.pool.part().is_aborted() {
            let _ = self.pool.part().abort();
        }
    }

    #[inline]
    fn publish(&self) {
        // Only the driver writes these, so a load-compare-store skips the shared-cache-line write when nothing
        // changed, which is most iterations.
        let sh = &self.handle.shared;
        let current = self.pool.part_ref().current_concurrency();
        if sh.current.load(Ordering::Relaxed) != current {
            sh.current.store(current, Ordering::Release);
            if current == 0 {
                sh.drained.notify(usize::MAX);
            }
        }
        let desired = self.pool.part_ref().desired_concurrency();
        if sh.desired.load(Ordering::Relaxed) != desired {
            self.permits.demand(desired);
        }
        let counts = self.pool.part_ref().counts();
        for (cell, value) in [
            (&sh.desired, self.pool.part_ref().desired_concurrency()),
            (&sh.min, self.pool.part_ref().min_concurrency()),
            (&sh.max, self.pool.part_ref().max_concurrency()),
            (&sh.succeeded, counts.0 as usize),
            (&sh.throttled, counts.1 as usize),
            (&sh.failed, counts.2 as usize),
        ] {
            if cell.load(Ordering::Relaxed) != value {
                cell.store(value, Ordering::Release);
            }
        }
    }

    fn publish_info(&self, now: Instant) {
        #[cfg(feature = "std")]
        {
            let pair = (
                self.pool.part_ref().current_info(now),
                self.pool.part_ref().historical_info(now),
            );
            *self
                .handle
                .shared
                .info
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(pair);
        }
        #[cfg(not(feature = "std"))]
        let _ = now;
    }

    #[inline]
    fn flush_events(&mut self) {
        while let Some(e) = self.pool.part().poll_event() {
            self.sink.event(&e);
        }
    }

    fn record_error(&mut self, verdict: Verdict, error: PoolError<<Fns<Fs> as TaskFns>::Error>) {
        keep_first(&mut self.error, verdict, error);
    }

    /// Reports a task that ended without a success to the machine (a timeout, a panic while creating it),
    /// keeping its error if it is the run's first.
    #[inline]
    fn finish_task(
        &mut self,
        now: Instant,
        outcome: TaskOutcome,
        error: Option<PoolError<<Fns<Fs> as TaskFns>::Error>>,
    ) {
        finish(
            self.pool.part(),
            &self.permits,
            &mut self.error,
            now,
            now,
            outcome,
            error,
        );
    }

    /// Cancels every running task and drops pending task-function calls.
    fn cancel_all(&mut self, now: Instant) {
        self.cancelled_all = true;
        self.ready_check.set(None);
        self.finished_check.set(None);
        let launcher = &self.launcher;
        for _ in 0..self.slots.cancel_all(|task| launcher.cancel(task)) {
            self.permits.release(TaskOutcome::Cancelled);
            self.pool
                .part()
                .handle_task_finished(now, TaskOutcome::Cancelled);
        }
    }

    #[inline]
    fn expire_timeouts(&mut self, now: Instant) {
        let launcher = &self.launcher;
        for _ in 0..self.slots.expire(now, |task| launcher.cancel(task)) {
            self.finish_task(now, TaskOutcome::TimedOut, None);
        }
    }

    /// Polls the tasks whose wakers fired. Returns how many ended.
    #[inline]
    fn reap(&mut self, now: Instant) -> usize {
        let (pool, error, fns) = (self.pool.part(), &mut self.error, self.fns.part());
        let permits = &self.permits;
        self.slots.reap(|ended| {
            let started = ended.started;
            let (outcome, e) = outcome_of(ended, fns);
            finish(pool, permits, error, now, started, outcome, e);
        })
    }

    fn end(
        &mut self,
        now: Instant,
    ) -> Poll<Result<RunReport, PoolError<<Fns<Fs> as TaskFns>::Error>>> {
        self.done = true;
        self.ready_check.set(None);
        self.finished_check.set(None);
        let report = self.pool.part().end_run(now);
        self.permits.leave();
        self.flush_events();
        self.publish();
        let sh = &self.handle.shared;
        sh.running.store(0, Ordering::Release);
        sh.drained.notify(usize::MAX);
        sh.ended.notify(usize::MAX);
        Poll::Ready(match (self.error.take(), report) {
            (Some(e), _) => Err(e),
            (None, Ok(r)) => Ok(r),
            // `end` runs only once the machine says the run is done, so this cannot happen; report it as the
            // closest thing rather than panicking.
            (None, Err(_)) => Err(PoolError::AlreadyRunning),
        })
    }
}

// The driver never pins its fields in place: the task slots, checks and timer are pinned in their own boxes.
// So moving a `Run` never moves a pinned value, and it may be `Unpin` whatever its parameters are.
impl<Pl, Fs, Rb, L, S, O> Unpin for Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: PoolPart,
    Fs: FnsPart,
    Rb: RuntimePart,
    L: Launch<Task<Fs>>,
{
}

impl<Pl, Fs, Rb, L, S, O> Future for Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: PoolPart,
    Fs: FnsPart,
    Rb: RuntimePart,
    L: Launch<Task<Fs>>,
    S: Sensors,
    O: EventSink,
{
    type Output = Result<RunReport, PoolError<<Fns<Fs> as TaskFns>::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (pinned state lives in boxes), so the driver itself can move.
        let this = Pin::into_inner(self);
        // Polled again after it completed: a defined answer instead of a future that never wakes.
        if this.done {
            return Poll::Ready(Err(PoolError::RunEnded));
        }
        this.handle.shared.waker.register(cx.waker());
        // Each wake is a new chance: readiness and finish are asked again once per wake, never in a spin.
        this.asked_ready = false;
        this.asked_finished = false;
        this.budget_blocked = false;
        let mut budget = BUDGET;
        let mut now = this.rt.part_ref().now();
        loop {
            // A clock read costs as much as a short task's whole trip through the pool, so the clock is read
            // once per poll and again every few iterations; the iterations of one poll span microseconds.
            if (BUDGET - budget) % CLOCK_EVERY == CLOCK_EVERY - 1 {
                now = this.rt.part_ref().now();
            }
            this.apply_control(now);
            if this.pool.part().poll_timeout().is_some_and(|t| now >= t) {
                // Sensors first, so a probe or tick due now decides on readings (and drained client errors) of
                // now, not of the sample before.
                if this.pool.part().poll_sample(now) {
                    this.sensors.sample(now, this.pool.part());
                    this.publish_info(now);
                }
                this.pool.part().handle_timeout(now);
            }
            while let Some(action) = this.pool.part().poll_action() {
                match action {
                    Action::SampleSensors => {
                        this.sensors.sample(now, this.pool.part());
                        this.publish_info(now);
                    }
                }
            }
            if this.pool.part().is_aborted() && !this.cancelled_all {
                this.cancel_all(now);
            }
            this.expire_timeouts(now);
            let reaped = this.reap(now);
            this.note_ends(now, reaped);
            // A task that just ended may have used its handle (a reported throttle, a pause) on its way out;
            // that must bind the start it made room for.
            if reaped > 0 {
                this.apply_control(now);
                this.budget_blocked = false;
            }
            if this.pool.part().is_draining() && this.pool.part().current_concurrency() == 0 {
                // Workers kept for reuse end first, so that nothing of the run is left on the executor.
                if !this.slots.retire(&this.launcher) {
                    this.flush_events();
                    return Poll::Pending;
                }
                return this.end(now);
            }
            let started = this.step_start(cx, now);
            this.flush_events();
            this.publish();
            // Nothing to do: before it sleeps, a driver whose tasks run elsewhere lingers for the next end.
            if reaped == 0 && !started && !this.linger() {
                break;
            }
            budget -= 1;
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let next_task_deadline = this.slots.next_deadline().unwrap_or(Instant::FAR_FUTURE);
        let deadline = this
            .pool
            .part()
            .poll_timeout()
            .unwrap_or(Instant::FAR_FUTURE)
            .min(next_task_deadline);
        if deadline != this.armed {
            this.timer.as_mut().reset(deadline);
            this.armed = deadline;
        }
        if this.timer.as_mut().poll_elapsed(cx).is_ready() && this.rt.part_ref().now() >= deadline {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Keeps `error` as the run's error if the machine says it is the first.
#[inline]
fn keep_first<E>(first: &mut Option<PoolError<E>>, verdict: Verdict, error: PoolError<E>) {
    if verdict == Verdict::FirstError && first.is_none() {
        *first = Some(error);
    }
}

/// Reports a task that started at `started` and ended at `now` to `pool`, keeping its error (a timeout's, when
/// it has none) if it is the first.
// Always inlined: the task-end path's body; out of line (as the budget's release made it) it cost 50
// instructions a no-op task (callgrind, `pool-bench noop pool_tokio_ct_inplace 200000 100`).
#[inline(always)]
fn finish<P: ScalingPolicy, E>(
    pool: &mut Pool<P>,
    permits: &Permits,
    first: &mut Option<PoolError<E>>,
    now: Instant,
    started: Instant,
    outcome: TaskOutcome,
    error: Option<PoolError<E>>,
) {
    permits.release(outcome);
    let verdict = pool.handle_task_finished_since(now, started, outcome);
    let error = match (outcome, error) {
        (_, Some(e)) => Some(e),
        (TaskOutcome::TimedOut, None) => pool.task_timeout().map(PoolError::TimedOut),
        _ => None,
    };
    if let Some(e) = error {
        keep_first(first, verdict, e);
    }
}

/// What a task that left its slot means for the run: a timeout or cancellation the driver asked for
/// outranks whatever the task returned on its way out.
#[inline]
fn outcome_of<F: TaskFns>(
    ended: Ended<TaskResult<F>>,
    fns: &mut F,
) -> (TaskOutcome, Option<PoolError<F::Error>>) {
    match ended.output {
        _ if ended.timed_out => (TaskOutcome::TimedOut, None),
        _ if ended.cancelling => (TaskOutcome::Cancelled, None),
        Ok(Ok(o)) => (
            match fns.task_ended(o) {
                Outcome::Succeeded => TaskOutcome::Succeeded,
                Outcome::Throttled { retry_after } => TaskOutcome::Throttled { retry_after },
                Outcome::Failed => TaskOutcome::Unsuccessful,
            },
            None,
        ),
        Ok(Err(e)) => (TaskOutcome::Failed, Some(PoolError::Task(e))),
        Err(p) => (TaskOutcome::Failed, Some(PoolError::Panicked(p))),
    }
}
