//! The start path: ask `is_task_ready` while the gate is open, start what is ready, and ask `is_finished`
//! when nothing is ready and nothing runs.

use core::task::{Context, Poll};

use super::{Driver, Fns, FnsPart, PoolPart, RuntimePart, START_BATCH, Task, finish, outcome_of};
use crate::driver::launch::{CatchPanic, call_caught};
use crate::driver::{PoolError, TaskPanic};
use crate::pool::{BudgetRefusal, TaskOutcome};
use crate::seams::{Clock, EventSink, Launch, Sensors, TaskFns};
use crate::time::Instant;

/// What one step of the start path did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// A task started; another may follow at once.
    Launched,
    /// Something else changed (an answer, an error, a finish check); the loop should go round.
    Changed,
    /// Nothing to do until a wake.
    Idle,
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
    /// Runs the start path: up to [`START_BATCH`] starts in a row while readiness answers at once, so a
    /// stream of short tasks pays the loop's bookkeeping (ticks, reaping, events, counters) once per batch
    /// rather than once per task. Returns whether anything changed.
    #[inline]
    pub(super) fn step_start(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        for _ in 0..START_BATCH {
            // A request made by the task just started (a pause, a lower ceiling) binds the next start, not
            // the next batch; with no request pending this is one relaxed load.
            self.apply_control(now);
            match self.start_once(cx, now) {
                Step::Launched => progress = true,
                Step::Changed => return true,
                Step::Idle => return progress,
            }
        }
        progress
    }

    /// One step of the start path.
    #[inline]
    fn start_once(&mut self, cx: &mut Context<'_>, now: Instant) -> Step {
        if let Some(check) = self.finished_check.as_mut().as_pin_mut() {
            let Poll::Ready(res) = check.poll(cx) else {
                return Step::Idle;
            };
            self.finished_check.set(None);
            match res {
                Ok(Ok(true)) => self.pool.part().handle_finished(now),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => self.task_fn_failed(now, PoolError::Task(e)),
                Err(p) => self.task_fn_failed(now, PoolError::Panicked(p)),
            }
            return Step::Changed;
        }
        if self.ready_check.is_none() {
            // Without a permit, readiness is not asked: the budget wakes the run when one comes free, and
            // the run's own tasks free theirs as they end.
            if self.asked_ready || self.budget_blocked {
                return Step::Idle;
            }
            match self.pool.part().poll_start(now) {
                Ok(()) => match call_caught(|| self.fns.part().poll_task_ready(cx)) {
                    Ok(Some(Poll::Ready(answer))) => return self.ready_answered(now, Ok(answer)),
                    Ok(Some(Poll::Pending)) => {
                        // Asked once per wake: the source wakes the driver when it has an answer.
                        self.asked_ready = true;
                        return Step::Idle;
                    }
                    Ok(None) => match call_caught(|| self.fns.part().is_task_ready()) {
                        Ok(check) => self.ready_check.set(Some(CatchPanic::new(check))),
                        Err(p) => {
                            self.task_fn_failed(now, PoolError::Panicked(p));
                            return Step::Changed;
                        }
                    },
                    Err(p) => {
                        self.task_fn_failed(now, PoolError::Panicked(p));
                        return Step::Changed;
                    }
                },
                // A paused or rate-limited pool with nothing running may still be finished: asking keeps the
                // pause and the rate cap from stalling the end of a run (Crawlee for Python asks while paused).
                Err(crate::Refusal::Paused | crate::Refusal::RateLimited { .. }) => {
                    return if self.maybe_check_finished() {
                        Step::Changed
                    } else {
                        Step::Idle
                    };
                }
                Err(_) => return Step::Idle,
            }
        }
        // The readiness answer is polled in the same step it is asked, so a ready answer starts its task
        // without another trip through the driver's loop.
        if let Some(check) = self.ready_check.as_mut().as_pin_mut() {
            let Poll::Ready(res) = check.poll(cx) else {
                return Step::Idle;
            };
            self.ready_check.set(None);
            return self.ready_answered(now, res);
        }
        Step::Idle
    }

    /// Acts on a readiness answer: start the task, or note that none is ready, or fail the run.
    // Always inlined: it is the start path's body for both kinds of readiness, and left out of line it costs
    // the stream combinator a fifth more instructions per no-op task (callgrind,
    // `pool-bench noop stream_tokio_inplace 200000 100`).
    #[inline(always)]
    fn ready_answered(
        &mut self,
        now: Instant,
        answer: Result<Result<bool, <Fns<Fs> as TaskFns>::Error>, TaskPanic>,
    ) -> Step {
        match answer {
            Ok(Ok(true)) => {
                // A shared budget's permit is taken last, once the pool itself would start the task; without
                // one, the readiness answer stands and is asked again when a permit comes free.
                if let Err(refused) = self.permits.acquire() {
                    match refused {
                        BudgetRefusal::Spent { held, share } => {
                            self.pool.part().handle_budget_refused(now, held, share);
                        }
                        BudgetRefusal::Rate => self.pool.part().handle_budget_rate_refused(now),
                    }
                    self.budget_blocked = true;
                    return Step::Idle;
                }
                if self.pool.part().handle_task_started(now).is_ok() {
                    self.launch(now);
                    return Step::Launched;
                }
                self.permits.release(TaskOutcome::Cancelled);
            }
            Ok(Ok(false)) => {
                self.asked_ready = true;
                self.pool.part().handle_no_task_ready(now);
                self.maybe_check_finished();
            }
            Ok(Err(e)) => self.task_fn_failed(now, PoolError::Task(e)),
            Err(p) => self.task_fn_failed(now, PoolError::Panicked(p)),
        }
        Step::Changed
    }

    fn maybe_check_finished(&mut self) -> bool {
        if self.asked_finished || !self.pool.part().should_check_finished() {
            return false;
        }
        self.asked_finished = true;
        // The handle's counters are published once per loop; `is_finished` may read them (a user's "nothing
        // left running?" check), so they must say now what the machine knows: no task runs.
        self.publish();
        match call_caught(|| self.fns.part().is_finished()) {
            Ok(check) => self.finished_check.set(Some(CatchPanic::new(check))),
            Err(p) => {
                let now = self.rt.part_ref().now();
                self.task_fn_failed(now, PoolError::Panicked(p));
            }
        }
        true
    }

    /// Starts a task in a slot; a task that ends on its first poll is reported at once.
    #[inline(always)]
    fn launch(&mut self, now: Instant) {
        let task = match call_caught(|| self.fns.part().run_task()) {
            Ok(task) => task,
            Err(p) => {
                // The task counted as started; a panic while creating it is that task failing.
                self.finish_task(now, TaskOutcome::Failed, Some(PoolError::Panicked(p)));
                return;
            }
        };
        let deadline = self.pool.part().task_timeout().map(|timeout| now + timeout);
        if let Some(ended) = self.slots.start(&self.launcher, task, now, deadline) {
            let started = ended.started;
            let (outcome, error) = outcome_of(ended, self.fns.part());
            finish(
                self.pool.part(),
                &self.permits,
                &mut self.error,
                now,
                started,
                outcome,
                error,
            );
        }
    }

    /// `is_task_ready` or `is_finished` failed or panicked: the run drains and returns the first error.
    fn task_fn_failed(&mut self, now: Instant, error: PoolError<<Fns<Fs> as TaskFns>::Error>) {
        let verdict = self.pool.part().handle_error(now);
        self.record_error(verdict, error);
    }
}
