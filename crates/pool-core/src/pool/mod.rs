//! [`Pool`], the sans-IO autoscaling state machine.
//!
//! The machine owns the counters, flags, snapshot histories and the scaling policy. It never reads a clock,
//! performs IO or runs a task: a driver (the crate's own [`crate::driver`], or a user's loop) feeds it time
//! and outcomes and acts on what it asks for.
//!
//! # Method kinds and call order
//!
//! - **Getters** (`current_concurrency`, `desired_concurrency`, `current_info`, ...) never change state.
//! - **Inputs** (`handle_*`) report what happened: a deadline passed, a sensor read, a task finished.
//! - **Commands** (`start_run`, `pause`, `resume`, `abort`, `set_*`) are the user's requests.
//! - **Outputs** (`poll_*`) drain what the machine wants: the next deadline, an action, an event.
//!
//! Mutate, then drain: after any input or command, a driver calls [`Pool::poll_action`] and
//! [`Pool::poll_event`] until they return `None`, then re-arms its timer to [`Pool::poll_timeout`].
//!
//! A start goes through the gate twice: [`Pool::poll_start`] before asking the user's `is_task_ready`
//! (so readiness is asked only when there is capacity) and [`Pool::handle_task_started`] after a `true`
//! answer, since the answer may have taken time in which the pool was paused, aborted or scaled down.
//!
//! A driver that knows when each task started reports its end with [`Pool::handle_task_finished_since`], which
//! times the successes for the policy; [`Pool::handle_task_finished`] reports it untimed.
//!
//! The machine is spread over five files by job: this one holds the state, the constructors, the getters, the
//! outputs and the helpers every input shares; `commands.rs` the user's requests; `inputs.rs` the reports of
//! time, sensors and tasks (and the start gate); `output.rs` the types the machine hands out; `throttle.rs`
//! the backoff after throttles.

mod commands;
mod inputs;
mod output;
mod throttle;

use core::time::Duration;

use crate::config::{ConfigError, PoolConfig};
use crate::scale::{CrawleePolicy, ScalingPolicy};
use crate::snapshot::History;
use crate::status::{ReadingError, SignalId, SignalSet, Signals, SystemInfo};
use crate::time::Instant;

pub use output::{
    Action, BudgetRefusal, Event, Refusal, RunError, RunReport, ScaleDecision, StatusRecord,
    TaskOutcome, Verdict,
};

/// How many undrained events the machine keeps; past that the oldest are dropped and counted.
pub const EVENT_CAPACITY: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunState {
    Idle,
    Running,
    Draining(Refusal),
}

#[derive(Clone, Copy, Debug)]
struct Deadlines {
    autoscale: Instant,
    status: Instant,
    event_loop: Instant,
    client: Instant,
    sample: Instant,
}

impl Deadlines {
    const NEVER: Deadlines = Deadlines {
        autoscale: Instant::FAR_FUTURE,
        status: Instant::FAR_FUTURE,
        event_loop: Instant::FAR_FUTURE,
        client: Instant::FAR_FUTURE,
        sample: Instant::FAR_FUTURE,
    };
}

/// The autoscaled pool's state machine. See the [module docs](self) for the call order.
///
/// # Invariants
///
/// - `min <= desired <= max` at all times, whatever the setters and policy ask for.
/// - `current` counts tasks between `handle_task_started` and `handle_task_finished`.
/// - No start is admitted while not running, aborted, failed, finished, paused, at desired, rate-limited, or
///   overloaded with `current >= min` unless the policy's
///   [`ScalingPolicy::admit_under_overload`] allows it (Crawlee's never does).
///
/// # Examples
///
/// ```
/// use pool_core::{ConcurrencySettings, Instant, Pool, PoolConfig, Refusal, TaskOutcome};
///
/// let mut config = PoolConfig::default();
/// config.concurrency = ConcurrencySettings::fixed(2);
/// let mut pool = Pool::new(config).unwrap();
/// let now = Instant::ZERO;
/// pool.start_run(now).unwrap();
/// for _ in 0..2 {
///     pool.poll_start(now).unwrap();
///     pool.handle_task_started(now).unwrap();
/// }
/// assert_eq!(pool.poll_start(now), Err(Refusal::AtDesired { current: 2, desired: 2 }));
/// pool.handle_task_finished(now, TaskOutcome::Succeeded);
/// assert_eq!(pool.current_concurrency(), 1);
/// ```
#[derive(Debug)]
pub struct Pool<P: ScalingPolicy = CrawleePolicy> {
    config: PoolConfig,
    policy: P,
    signals: Signals,
    min: usize,
    max: usize,
    desired: usize,
    current: usize,
    paused: bool,
    state: RunState,
    report: RunReport,
    run_started: Instant,
    deadlines: Deadlines,
    next_start: Instant,
    /// Throttles seen and the waits they impose on starts.
    backoff: throttle::Backoff,
    /// The fewest tasks running at a throttle since the last tick, for the policy.
    throttle_level: Option<usize>,
    /// When the last autoscale tick ran.
    last_autoscale: Instant,
    /// The summed latency (ns) and count of the tasks that succeeded since the last tick, as the driver timed
    /// them, for the policy.
    latency: (u64, u32),
    /// When a throttle last brought a tick forward.
    last_throttle_tick: Option<Instant>,
    /// Whether periodic jobs were re-armed at the policy's idle interval (see `ScalingPolicy::idle_interval`).
    idle_slowed: bool,
    sample_due: bool,
    client_errors_total: u64,
    client_errors_seen: u64,
    last_memory_warning: Option<Instant>,
    last_refusal: Option<Refusal>,
    last_reported: Option<Refusal>,
    /// Counts every input and command, so `handle_task_started` can tell that nothing happened since
    /// `poll_start` admitted.
    changes: u64,
    /// The `changes` count and instant of the last admission.
    admitted: Option<(u64, Instant)>,
    overload_cache: Option<(Instant, SignalSet)>,
    /// The latest CPU and memory readings over their overload lines, for the policy.
    loads: (Option<f64>, Option<f64>),
    /// Tasks running when the latest of those readings arrived.
    load_running: usize,
    events: heapless::Deque<Event, EVENT_CAPACITY>,
    events_dropped: u64,
    last_now: Instant,
}

impl Pool<CrawleePolicy> {
    /// A machine with Crawlee's scaling policy.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as a [`ConfigError`].
    pub fn new(config: PoolConfig) -> Result<Self, ConfigError> {
        Pool::with_policy(config, CrawleePolicy)
    }
}

impl<P: ScalingPolicy> Pool<P> {
    /// A machine with a custom scaling policy.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as a [`ConfigError`].
    pub fn with_policy(config: PoolConfig, policy: P) -> Result<Self, ConfigError> {
        config.validate()?;
        let c = config.concurrency;
        Ok(Pool {
            signals: Signals::new(config.status, config.snapshot),
            config,
            policy,
            min: c.min_concurrency,
            max: c.max_concurrency,
            desired: c.desired_concurrency,
            current: 0,
            paused: false,
            state: RunState::Idle,
            report: RunReport::default(),
            run_started: Instant::ZERO,
            deadlines: Deadlines::NEVER,
            next_start: Instant::ZERO,
            backoff: throttle::Backoff::new(&config.throttle),
            throttle_level: None,
            last_autoscale: Instant::ZERO,
            latency: (0, 0),
            last_throttle_tick: None,
            idle_slowed: false,
            sample_due: false,
            client_errors_total: 0,
            client_errors_seen: 0,
            last_memory_warning: None,
            last_refusal: None,
            last_reported: None,
            changes: 0,
            admitted: None,
            overload_cache: None,
            loads: (None, None),
            load_running: 0,
            events: heapless::Deque::new(),
            events_dropped: 0,
            last_now: Instant::ZERO,
        })
    }

    // ----- Getters -----

    /// Tasks running now.
    pub fn current_concurrency(&self) -> usize {
        self.current
    }
    /// The desired concurrency; the autoscaler moves it within `[min, max]`. It is kept between runs.
    pub fn desired_concurrency(&self) -> usize {
        self.desired
    }
    /// The floor.
    pub fn min_concurrency(&self) -> usize {
        self.min
    }
    /// The ceiling.
    pub fn max_concurrency(&self) -> usize {
        self.max
    }
    /// Whether the pool is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }
    /// Whether a run is active (including draining).
    pub fn is_running(&self) -> bool {
        self.state != RunState::Idle
    }
    /// Whether the active run is draining: no new starts, waiting for in-flight tasks.
    pub fn is_draining(&self) -> bool {
        matches!(self.state, RunState::Draining(_))
    }
    /// Whether the active run can end now: it is draining and nothing runs.
    pub fn is_done(&self) -> bool {
        self.is_draining() && self.current == 0
    }
    /// Whether the run was aborted.
    pub fn is_aborted(&self) -> bool {
        self.state == RunState::Draining(Refusal::Aborted)
    }
    /// Whether `is_finished` should be asked now: the run is active, nothing runs, and (as the caller knows)
    /// no task was ready. This is the seed's contract: never while tasks run.
    pub fn should_check_finished(&self) -> bool {
        self.state == RunState::Running && self.current == 0
    }
    /// The reason of the most recent refusal, if the last start attempt was refused.
    pub fn last_refusal(&self) -> Option<Refusal> {
        self.last_refusal
    }
    /// The settings the machine was built with (concurrency bounds as first given).
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }
    /// Counts for the active or last run.
    pub fn report(&self) -> RunReport {
        let mut r = self.report;
        r.final_desired_concurrency = self.desired;
        r
    }
    /// The active or last run's tasks that succeeded, ended throttled, and failed, without copying the whole
    /// report.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.report.succeeded,
            self.report.throttled,
            self.report.failed,
        )
    }
    /// Events dropped because nobody drained them in time.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }
    /// Verdicts over the current window (5 s by default) ending at `now`; this gates starts.
    pub fn current_info(&self, now: Instant) -> SystemInfo {
        self.signals.info(now, self.config.status.current_window)
    }
    /// Verdicts over the whole history (30 s by default) ending at `now`; this drives autoscaling.
    pub fn historical_info(&self, now: Instant) -> SystemInfo {
        self.signals.info(now, self.config.status.history)
    }
    /// One signal's snapshot history.
    pub fn history(&self, id: SignalId) -> Option<&History> {
        self.signals.history(id)
    }
    /// The scaling policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    // ----- Outputs -----

    /// The next instant at which [`Pool::handle_timeout`] has work, or at which a refused start may pass; `None`
    /// when idle.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == RunState::Idle {
            return None;
        }
        let d = &self.deadlines;
        let mut t = d
            .autoscale
            .min(d.status)
            .min(d.event_loop)
            .min(d.client)
            .min(d.sample);
        match self.last_refusal {
            Some(Refusal::RateLimited { until } | Refusal::Throttled { until }) => t = t.min(until),
            Some(Refusal::Overloaded(_)) => {
                if let Some((until, _)) = self.overload_cache {
                    t = t.min(until);
                }
            }
            _ => {}
        }
        Some(t)
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        if core::mem::take(&mut self.sample_due) {
            Some(Action::SampleSensors)
        } else {
            None
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The configured task timeout.
    pub fn task_timeout(&self) -> Option<Duration> {
        self.config.task_timeout
    }

    // ----- Internals -----

    fn observe(&mut self, now: Instant) {
        self.changes = self.changes.wrapping_add(1);
        // Clocks are monotonic by contract; a driver that breaks it gets a debug panic, never a release one.
        debug_assert!(
            now >= self.last_now,
            "time went backwards: {now} < {}",
            self.last_now
        );
        self.last_now = self.last_now.max(now);
    }

    fn record(&mut self, id: SignalId, at: Instant, overloaded: bool, now: Instant) {
        // Built-in ids are always present, so this cannot fail.
        let _ = self.signals.record(id, at, overloaded, now);
        self.overload_cache = None;
    }

    fn reject(&mut self, now: Instant, error: ReadingError) -> ReadingError {
        self.push_event(Event::ReadingRejected { at: now, error });
        error
    }

    fn refuse(&mut self, now: Instant, refusal: Refusal) {
        // Events report a change of reason against the last one *reported*, not the last refusal, which an
        // admitted start clears: otherwise a pool running at desired would report "at desired" once per start.
        let changed = match (self.last_reported, refusal) {
            // The rate-limit deadline moves with every start; only the kind of reason matters for the event.
            (Some(Refusal::RateLimited { .. }), Refusal::RateLimited { .. }) => false,
            (Some(Refusal::AtDesired { .. }), Refusal::AtDesired { .. }) => false,
            (last, r) => last != Some(r),
        };
        self.last_refusal = Some(refusal);
        if changed {
            self.last_reported = Some(refusal);
            self.push_event(Event::Refused { at: now, refusal });
        }
    }

    fn push_event(&mut self, event: Event) {
        if self.events.is_full() {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        let _ = self.events.push_back(event);
    }
}
