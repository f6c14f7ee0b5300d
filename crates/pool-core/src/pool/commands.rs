//! The user's requests: start and end a run, pause, resume, abort, and the concurrency setters.

use crate::config::ConfigError;
use crate::scale::{ScaleReason, ScalingPolicy};
use crate::status::{SignalError, SignalId};
use crate::time::Instant;

use super::{Deadlines, Event, Pool, Refusal, RunError, RunReport, RunState, ScaleDecision};

impl<P: ScalingPolicy> Pool<P> {
    /// Registers a custom load signal, fed through [`Pool::handle_signal`].
    ///
    /// # Errors
    ///
    /// [`SignalError`] for a full table, a duplicate name (the built-ins are `cpu`, `memory`, `event_loop`
    /// and `client`) or a threshold outside [0, 1].
    pub fn add_signal(
        &mut self,
        name: &'static str,
        overload_threshold: f64,
    ) -> Result<SignalId, SignalError> {
        self.changes = self.changes.wrapping_add(1);
        self.signals.add_custom(name, overload_threshold)
    }

    /// Number of custom signals registered.
    pub fn custom_signal_count(&self) -> usize {
        self.signals.custom_count()
    }

    /// Starts a run at `now`: counters reset, and the autoscale tick, status record, probes and sensor
    /// reading are all due at once (Crawlee's immediate first tick). Desired concurrency and snapshot
    /// histories carry over from the previous run, as in Crawlee for Python.
    ///
    /// # Errors
    ///
    /// [`RunError::AlreadyRunning`] if a run is active.
    pub fn start_run(&mut self, now: Instant) -> Result<(), RunError> {
        self.changes = self.changes.wrapping_add(1);
        if self.state != RunState::Idle {
            return Err(RunError::AlreadyRunning);
        }
        self.last_now = now;
        self.state = RunState::Running;
        self.current = 0;
        self.report = RunReport::default();
        self.run_started = now;
        self.next_start = now;
        self.backoff = super::throttle::Backoff::new(&self.config.throttle);
        self.throttle_level = None;
        self.latency = (0, 0);
        self.last_throttle_tick = None;
        self.idle_slowed = false;
        self.last_refusal = None;
        self.last_reported = None;
        self.overload_cache = None;
        self.loads = (None, None);
        self.load_running = 0;
        self.client_errors_seen = self.client_errors_total;
        self.deadlines = Deadlines {
            autoscale: now,
            status: if self.config.scaling.status_log_interval.is_some() {
                now
            } else {
                Instant::FAR_FUTURE
            },
            event_loop: now,
            client: now,
            sample: now,
        };
        self.policy.reset(now);
        self.handle_timeout(now);
        Ok(())
    }

    /// Ends the run and returns its report. Call it once [`Pool::is_done`], or at any time while idle-draining
    /// with nothing in flight.
    ///
    /// # Errors
    ///
    /// [`RunError::NotRunning`] with no active run; [`RunError::TasksInFlight`] while tasks still run.
    pub fn end_run(&mut self, now: Instant) -> Result<RunReport, RunError> {
        self.changes = self.changes.wrapping_add(1);
        if self.state == RunState::Idle {
            return Err(RunError::NotRunning);
        }
        if self.current > 0 {
            return Err(RunError::TasksInFlight(self.current));
        }
        self.report.duration = now.saturating_duration_since(self.run_started);
        self.state = RunState::Idle;
        self.deadlines = Deadlines::NEVER;
        self.sample_due = false;
        Ok(self.report())
    }

    /// Stops new starts until [`Pool::resume`]. Running tasks go on; the autoscaler keeps ticking, and
    /// `is_finished` is still asked, so a paused pool can still finish.
    pub fn pause(&mut self) {
        self.changes = self.changes.wrapping_add(1);
        self.paused = true;
    }

    /// Lets the pool start tasks again.
    pub fn resume(&mut self) {
        self.changes = self.changes.wrapping_add(1);
        self.paused = false;
    }

    /// Aborts the active run: no new starts; the driver cancels in-flight tasks and reports each as
    /// [`TaskOutcome::Cancelled`](super::TaskOutcome::Cancelled); the run then ends normally with `aborted` set in its report.
    ///
    /// # Errors
    ///
    /// [`RunError::NotRunning`] with no active run.
    pub fn abort(&mut self) -> Result<(), RunError> {
        self.changes = self.changes.wrapping_add(1);
        match self.state {
            RunState::Idle => Err(RunError::NotRunning),
            RunState::Draining(Refusal::Aborted) => Ok(()),
            _ => {
                self.state = RunState::Draining(Refusal::Aborted);
                self.report.aborted = true;
                Ok(())
            }
        }
    }

    /// Sets desired concurrency, clamped into `[min, max]` (as Crawlee for JavaScript v4 does).
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_desired_concurrency(&mut self, now: Instant, n: usize) -> Result<(), ConfigError> {
        self.changes = self.changes.wrapping_add(1);
        if n < 1 {
            return Err(ConfigError::MinTooSmall);
        }
        self.apply_desired(now, n.clamp(self.min, self.max));
        Ok(())
    }

    /// Sets the floor; desired is raised to it if below.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0; [`ConfigError::MinAboveMax`] above the current maximum (the
    /// ceiling is the safety bound, so it is never raised implicitly).
    pub fn set_min_concurrency(&mut self, now: Instant, n: usize) -> Result<(), ConfigError> {
        self.changes = self.changes.wrapping_add(1);
        if n < 1 {
            return Err(ConfigError::MinTooSmall);
        }
        if n > self.max {
            return Err(ConfigError::MinAboveMax {
                min: n,
                max: self.max,
            });
        }
        self.min = n;
        self.apply_desired(now, self.desired.max(n));
        Ok(())
    }

    /// Sets the ceiling; desired (and min, if needed) are lowered to it: the maximum wins, as in Crawlee for
    /// JavaScript v4.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_max_concurrency(&mut self, now: Instant, n: usize) -> Result<(), ConfigError> {
        self.changes = self.changes.wrapping_add(1);
        if n < 1 {
            return Err(ConfigError::MinTooSmall);
        }
        self.max = n;
        self.min = self.min.min(n);
        self.apply_desired(now, self.desired.min(n));
        Ok(())
    }

    fn apply_desired(&mut self, now: Instant, new: usize) {
        let old = self.desired;
        if old != new {
            self.desired = new;
            let info = self.historical_info(now);
            self.push_event(Event::Scaled(ScaleDecision {
                at: now,
                old,
                new,
                current: self.current,
                reason: ScaleReason::Setter,
                info,
            }));
        }
    }
}
