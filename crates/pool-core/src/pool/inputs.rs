//! The machine's inputs: a deadline passed, a sensor read, a task was ready, started or finished. The start
//! gate lives here because both `poll_start` and `handle_task_started` pass through it.

use core::time::Duration;

use crate::config::TimeoutPolicy;
use crate::scale::{Scale, ScaleInput, ScalingPolicy};
use crate::status::{CpuReading, MemoryReading, ReadingError, SignalId, SignalSet};
use crate::time::Instant;

use super::{Event, Pool, Refusal, RunState, ScaleDecision, StatusRecord, TaskOutcome, Verdict};

impl<P: ScalingPolicy> Pool<P> {
    /// Runs whatever is due at `now`: sensor reading request, event-loop and client probes, the autoscale
    /// tick and the status record. Calling it early or twice is harmless.
    ///
    /// A driver that can read its sensors first calls [`Pool::poll_sample`] before this, so that a tick due at
    /// the same instant decides on the readings of `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        if self.state == RunState::Idle {
            return;
        }
        let d = self.deadlines;
        if now >= d.sample {
            self.sample_due = true;
            self.deadlines.sample = now + self.periodic(self.config.snapshot.sensor_interval);
        }
        if now >= d.event_loop {
            // The probe measures how late the machine was woken for its own deadline: the scheduler lag that
            // the driver, and so every task, suffers. It works the same on every runtime.
            let delay = now.saturating_duration_since(d.event_loop);
            let over = self.signals.event_loop_overloaded(delay);
            self.record(SignalId::EventLoop, now, over, now);
            self.deadlines.event_loop =
                now + self.periodic(self.config.snapshot.event_loop_probe_interval);
        }
        if now >= d.client {
            let new = self.client_errors_total - self.client_errors_seen;
            self.client_errors_seen = self.client_errors_total;
            let over = self.signals.client_overloaded(new);
            self.record(SignalId::Client, now, over, now);
            self.deadlines.client = now + self.periodic(self.config.snapshot.client_probe_interval);
        }
        if now >= d.autoscale {
            self.autoscale(now);
            let interval = self.config.scaling.autoscale_interval;
            let next = self
                .policy
                .next_tick()
                .map_or(interval, |t| t.min(interval));
            self.deadlines.autoscale = now + self.periodic(next);
        }
        if now >= d.status {
            let info = self.historical_info(now);
            self.push_event(Event::Status(StatusRecord {
                at: now,
                current_concurrency: self.current,
                desired_concurrency: self.desired,
                info,
            }));
            if let Some(period) = self.config.scaling.status_log_interval {
                self.deadlines.status = now + period;
            }
        }
    }

    fn autoscale(&mut self, now: Instant) {
        let info = self.historical_info(now);
        let input = ScaleInput {
            now,
            current: self.current,
            desired: self.desired,
            min: self.min,
            max: self.max,
            historical: &info,
            finished_total: self.report.finished(),
            succeeded_total: self.report.succeeded,
            throttled_total: self.report.throttled + self.report.throttles_reported,
            throttle_level: self.throttle_level.take(),
            succeeded_latency: match core::mem::take(&mut self.latency) {
                (_, 0) => None,
                (sum, n) => Some(Duration::from_nanos(sum / u64::from(n))),
            },
            cpu_load: self.loads.0,
            memory_load: self.loads.1,
            load_running: self.load_running,
            settings: &self.config.scaling,
        };
        self.last_autoscale = now;
        let Scale { desired, reason } = self.policy.decide(&input);
        let old = self.desired;
        self.desired = desired.clamp(self.min, self.max);
        self.push_event(Event::Scaled(ScaleDecision {
            at: now,
            old,
            new: self.desired,
            current: self.current,
            reason,
            info,
        }));
    }

    /// Reports a CPU reading.
    ///
    /// # Errors
    ///
    /// [`ReadingError::InvalidCpuRatio`] for NaN, infinite or negative ratios; the reading is dropped and a
    /// [`Event::ReadingRejected`] is queued.
    pub fn handle_cpu(&mut self, now: Instant, reading: CpuReading) -> Result<(), ReadingError> {
        self.observe(now);
        match self.signals.cpu_overloaded(&reading) {
            Ok(over) => {
                self.loads.0 = Some(reading.used_ratio / self.config.snapshot.max_used_cpu_ratio);
                self.load_running = self.current;
                self.record(SignalId::Cpu, reading.at, over, now);
                Ok(())
            }
            Err(e) => Err(self.reject(now, e)),
        }
    }

    /// Reports a memory reading. Also queues [`Event::MemoryCritical`] when use crosses the critical line,
    /// at most once per `memory_warning_cooldown` of reading time.
    ///
    /// # Errors
    ///
    /// [`ReadingError::ZeroMemoryTotal`] when the budget is a ratio and the total is 0.
    pub fn handle_memory(
        &mut self,
        now: Instant,
        reading: MemoryReading,
    ) -> Result<(), ReadingError> {
        self.observe(now);
        let v = match self.signals.memory_verdict(&reading) {
            Ok(v) => v,
            Err(e) => return Err(self.reject(now, e)),
        };
        let line = v.budget as f64 * self.config.snapshot.max_used_memory_ratio;
        self.loads.1 = (line > 0.0).then(|| reading.used_bytes as f64 / line);
        self.load_running = self.current;
        self.record(SignalId::Memory, reading.at, v.overloaded, now);
        let cooldown = self.config.snapshot.memory_warning_cooldown;
        let quiet = self
            .last_memory_warning
            .is_none_or(|t| reading.at >= t + cooldown);
        if v.critical && quiet {
            self.last_memory_warning = Some(reading.at);
            self.push_event(Event::MemoryCritical {
                at: reading.at,
                used_bytes: reading.used_bytes,
                budget_bytes: v.budget,
            });
        }
        Ok(())
    }

    /// Reports a custom signal's snapshot (taken at `at`, overloaded or not).
    ///
    /// # Errors
    ///
    /// [`ReadingError::UnknownSignal`] for an unregistered id.
    pub fn handle_signal(
        &mut self,
        now: Instant,
        id: SignalId,
        at: Instant,
        overloaded: bool,
    ) -> Result<(), ReadingError> {
        self.observe(now);
        match id {
            SignalId::Custom(_) => self
                .signals
                .record(id, at, overloaded, now)
                .inspect(|()| self.overload_cache = None),
            _ => Err(ReadingError::UnknownSignal(u8::MAX)),
        }
        .map_err(|e| self.reject(now, e))
    }

    /// Counts rate-limit errors seen by downstream clients (HTTP 429 and the like). The client probe turns
    /// the count since its last run into a snapshot.
    pub fn handle_client_errors(&mut self, count: u64) {
        self.client_errors_total = self.client_errors_total.saturating_add(count);
    }

    /// The start gate, in Crawlee's order: run state, overload (only while `current >= min`), pause, desired,
    /// rate cap. `Ok` means: ask `is_task_ready`.
    ///
    /// # Errors
    ///
    /// The [`Refusal`]; a change of reason is also queued as [`Event::Refused`].
    pub fn poll_start(&mut self, now: Instant) -> Result<(), Refusal> {
        self.observe(now);
        let res = self.gate(now);
        match res {
            Err(r) => self.refuse(now, r),
            // An admitted start clears the refusal, so `poll_timeout` never waits on a stale deadline (a past
            // rate-limit instant would make a driver wake itself in a loop).
            Ok(()) => self.last_refusal = None,
        }
        if res.is_ok() {
            self.admitted = Some((self.changes, now));
        }
        res
    }

    fn gate(&mut self, now: Instant) -> Result<(), Refusal> {
        match self.state {
            RunState::Idle => return Err(Refusal::NotRunning),
            RunState::Draining(r) => return Err(r),
            RunState::Running => {}
        }
        if self.current >= self.min {
            let over = self.overloaded_now(now);
            if !over.is_empty()
                && !self
                    .policy
                    .admit_under_overload(over, self.current, self.min, self.desired)
            {
                return Err(Refusal::Overloaded(over));
            }
        }
        if self.paused {
            return Err(Refusal::Paused);
        }
        // A throttle binds below `min` too: the service, not the host, is what refuses the work.
        let throttled_until = self.backoff.until(self.current);
        if now < throttled_until {
            return Err(Refusal::Throttled {
                until: throttled_until,
            });
        }
        if self.current >= self.desired {
            return Err(Refusal::AtDesired {
                current: self.current,
                desired: self.desired,
            });
        }
        if now < self.next_start {
            return Err(Refusal::RateLimited {
                until: self.next_start,
            });
        }
        Ok(())
    }

    /// The current-window overload set, cached until a snapshot arrives or the window slides past one.
    fn overloaded_now(&mut self, now: Instant) -> SignalSet {
        if let Some((valid_until, set)) = self.overload_cache
            && now < valid_until
        {
            return set;
        }
        let set = self.signals.overloaded_now(now);
        self.overload_cache = Some((self.signals.current_verdict_expiry(now), set));
        set
    }

    /// Claims the sensor sample due at `now`, if one is: returns `true` when the driver should read its sensors
    /// now, before [`Pool::handle_timeout`], so that a probe or tick due at the same instant judges the readings
    /// (and the client errors a sensor drains) of `now` rather than of the sample before. `handle_timeout` then
    /// does not ask for this sample again. A driver that never calls it is served by
    /// [`Action::SampleSensors`](crate::Action::SampleSensors) instead, after the tick.
    pub fn poll_sample(&mut self, now: Instant) -> bool {
        if self.state == RunState::Idle || now < self.deadlines.sample {
            return false;
        }
        self.deadlines.sample = now + self.periodic(self.config.snapshot.sensor_interval);
        true
    }

    /// A periodic job's interval now: the policy's idle interval while the pool is idle (nothing running;
    /// nothing ready, or paused), when the policy has one and it is longer.
    fn periodic(&mut self, interval: Duration) -> Duration {
        let idle = self.current == 0
            && matches!(
                self.last_refusal,
                Some(Refusal::NoTaskReady | Refusal::Paused)
            );
        match self.policy.idle_interval() {
            Some(slow) if idle && slow > interval => {
                self.idle_slowed = true;
                slow
            }
            _ => interval,
        }
    }

    /// The first start after an idle spell: every job slowed by the idle interval is due again within its
    /// own interval, and the sensors are sampled now, so the gate and the next tick decide on a fresh reading.
    #[cold]
    fn leave_idle(&mut self, now: Instant) {
        self.idle_slowed = false;
        let s = self.config.snapshot;
        let d = &mut self.deadlines;
        d.sample = d.sample.min(now);
        d.event_loop = d.event_loop.min(now + s.event_loop_probe_interval);
        d.client = d.client.min(now + s.client_probe_interval);
        d.autoscale = d
            .autoscale
            .min(now + self.config.scaling.autoscale_interval);
    }

    /// `is_task_ready` said yes: the gate is checked again (the answer may have taken a while), and on
    /// success the task counts as running.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] if the gate closed meanwhile; the task must not start.
    pub fn handle_task_started(&mut self, now: Instant) -> Result<(), Refusal> {
        // When nothing reached the machine since `poll_start` admitted at this same instant, the gate's answer
        // cannot have changed, and the second check is skipped: it is half the cost of a short task's start.
        if self.admitted != Some((self.changes, now)) {
            self.poll_start(now)?;
        }
        self.admitted = None;
        if self.idle_slowed {
            self.leave_idle(now);
        }
        self.current += 1;
        self.report.started += 1;
        self.report.peak_concurrency = self.report.peak_concurrency.max(self.current);
        self.last_refusal = None;
        self.backoff
            .started(now, self.current, &self.config.throttle);
        if let Some(n) = self.config.concurrency.max_tasks_per_minute {
            // Crawlee for Python spaces starts evenly rather than allowing bursts within a minute.
            self.next_start = now + Duration::from_secs(60) / n;
        }
        Ok(())
    }

    /// A budget shared with other pools refused this pool a permit (the driver asks it after the gate here
    /// opened); reported as [`Refusal::Budget`].
    pub fn handle_budget_refused(&mut self, now: Instant, held: usize, share: usize) {
        self.observe(now);
        self.refuse(now, Refusal::Budget { held, share });
    }

    /// A budget shared with other pools had no start left under its start-rate cap; reported as
    /// [`Refusal::BudgetRate`].
    pub fn handle_budget_rate_refused(&mut self, now: Instant) {
        self.observe(now);
        self.refuse(now, Refusal::BudgetRate);
    }

    /// `is_task_ready` said no.
    pub fn handle_no_task_ready(&mut self, now: Instant) {
        self.observe(now);
        self.refuse(now, Refusal::NoTaskReady);
    }

    /// `is_finished` said yes: no new starts; the run ends once in-flight tasks finish.
    pub fn handle_finished(&mut self, now: Instant) {
        self.observe(now);
        if self.state == RunState::Running {
            self.state = RunState::Draining(Refusal::Finished);
        }
    }

    /// A task function (`is_task_ready`, `is_finished`) or the driver failed: the run drains and returns the
    /// error if it is the first.
    pub fn handle_error(&mut self, now: Instant) -> Verdict {
        self.observe(now);
        self.fail()
    }

    fn fail(&mut self) -> Verdict {
        match self.state {
            RunState::Running | RunState::Draining(Refusal::Finished) => {
                self.state = RunState::Draining(Refusal::Failed);
                Verdict::FirstError
            }
            _ => Verdict::LaterError,
        }
    }

    /// A task ended. Returns whether its error (if any) decides the run.
    pub fn handle_task_finished(&mut self, now: Instant, outcome: TaskOutcome) -> Verdict {
        self.finished(now, None, outcome)
    }

    #[inline]
    fn finished(
        &mut self,
        now: Instant,
        started: Option<Instant>,
        outcome: TaskOutcome,
    ) -> Verdict {
        self.observe(now);
        debug_assert!(self.current > 0, "a task finished that never started");
        self.current = self.current.saturating_sub(1);
        match outcome {
            TaskOutcome::Succeeded => {
                self.report.succeeded += 1;
                self.backoff.succeeded(started);
                Verdict::Continue
            }
            TaskOutcome::Throttled { retry_after } => {
                self.report.throttled += 1;
                // The task has left `current`; it was running when the service refused it.
                self.throttle(now, started, retry_after, self.current + 1);
                Verdict::Continue
            }
            TaskOutcome::Unsuccessful => {
                self.report.failed += 1;
                self.push_event(Event::TaskFailed { at: now });
                Verdict::Continue
            }
            TaskOutcome::Cancelled => {
                self.report.cancelled += 1;
                Verdict::Continue
            }
            TaskOutcome::Failed => {
                self.report.failed += 1;
                self.fail()
            }
            TaskOutcome::TimedOut => {
                self.report.timed_out += 1;
                if let Some(timeout) = self.config.task_timeout {
                    self.push_event(Event::TaskTimedOut { at: now, timeout });
                }
                match self.config.timeout_policy {
                    TimeoutPolicy::Report => Verdict::Continue,
                    TimeoutPolicy::FailPool => self.fail(),
                }
            }
        }
    }

    /// A task that started at `started` ended at `now`: the same as [`Pool::handle_task_finished`], and a
    /// success's latency enters the next tick's [`ScaleInput::succeeded_latency`](crate::ScaleInput), so a
    /// policy knows what a task takes from the first completions instead of inferring it over several ticks.
    /// The driver calls this one; it knows when each of its tasks started.
    #[inline]
    pub fn handle_task_finished_since(
        &mut self,
        now: Instant,
        started: Instant,
        outcome: TaskOutcome,
    ) -> Verdict {
        if outcome == TaskOutcome::Succeeded {
            let took = now.saturating_duration_since(started).as_nanos();
            let (sum, n) = self.latency;
            // Saturating: a count or sum that would overflow between two ticks stops growing; the mean stays
            // near right.
            if n < u32::MAX {
                self.latency = (
                    sum.saturating_add(took.min(u128::from(u64::MAX)) as u64),
                    n + 1,
                );
            }
        }
        self.finished(now, Some(started), outcome)
    }

    /// Code that cannot return an [`Outcome`](crate::Outcome) (a callback, a middleware) saw the service behind
    /// a task throttle it: the same signal and backoff as a task ending throttled, without a task ending.
    pub fn handle_throttle(&mut self, now: Instant, retry_after: Option<Duration>) {
        self.observe(now);
        self.report.throttles_reported += 1;
        // The reporting task is still running.
        self.throttle(now, None, retry_after, self.current);
    }

    /// A throttle counts as a client error at once, so the client signal sees it at its next probe, and
    /// starts wait for the retry-after or the streak's backoff.
    fn throttle(
        &mut self,
        now: Instant,
        started: Option<Instant>,
        retry_after: Option<Duration>,
        level: usize,
    ) {
        self.client_errors_total += 1;
        self.throttle_level = Some(self.throttle_level.map_or(level, |l| l.min(level)));
        // A policy that answers throttles at once gets its tick now, at most once per its reaction time.
        // The gap runs from the last tick a throttle brought forward, not from the last tick: a ramp step just
        // before the first throttle must not delay its cut.
        // The tick waits an eighth of the gap, so the rest of a burst of refusals (tasks started together are
        // refused together) has arrived: `throttle_level` is then what the service took, not the burst's top.
        if let Some(gap) = self.policy.throttle_reaction()
            && self.last_throttle_tick.is_none_or(|at| now >= at + gap)
        {
            let at = now + gap / 8;
            if self.deadlines.autoscale > at {
                self.deadlines.autoscale = at;
            }
            self.last_throttle_tick = Some(now);
        }
        let until = self
            .backoff
            .throttled(now, started, level, retry_after, &self.config.throttle);
        self.push_event(Event::Throttled {
            at: now,
            retry_after,
            until,
        });
    }
}
