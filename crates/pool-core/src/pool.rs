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

use core::fmt;
use core::time::Duration;

use crate::config::{ConfigError, PoolConfig, TimeoutPolicy};
use crate::scale::{CrawleePolicy, Scale, ScaleInput, ScaleReason, ScalingPolicy};
use crate::snapshot::History;
use crate::status::{
    CpuReading, MemoryReading, ReadingError, SignalError, SignalId, SignalSet, Signals, SystemInfo,
};
use crate::time::Instant;

/// How many undrained events the machine keeps; past that the oldest are dropped and counted.
pub const EVENT_CAPACITY: usize = 16;

/// Why the pool did not start a task. Every refusal has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No run is active.
    NotRunning,
    /// The run was aborted.
    Aborted,
    /// A task or task function failed; the run is draining before it returns the error.
    Failed,
    /// `is_finished` said the work is done; the run is draining.
    Finished,
    /// The current window is overloaded on these signals, and at least `min_concurrency` tasks run.
    Overloaded(SignalSet),
    /// The pool is paused.
    Paused,
    /// `current >= desired`.
    AtDesired {
        /// Tasks running.
        current: usize,
        /// Desired concurrency.
        desired: usize,
    },
    /// The tasks-per-minute cap spaces starts; the next is allowed at `until`.
    RateLimited {
        /// When the next start is allowed.
        until: Instant,
    },
    /// `is_task_ready` answered `false`.
    NoTaskReady,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotRunning => f.write_str("not running"),
            Refusal::Aborted => f.write_str("aborted"),
            Refusal::Failed => f.write_str("a task failed; draining"),
            Refusal::Finished => f.write_str("finished; draining"),
            Refusal::Overloaded(s) => write!(f, "system overloaded: {s}"),
            Refusal::Paused => f.write_str("paused"),
            Refusal::AtDesired { current, desired } => {
                write!(
                    f,
                    "at desired concurrency ({current} running, {desired} desired)"
                )
            }
            Refusal::RateLimited { until } => write!(f, "rate-limited until {until}"),
            Refusal::NoTaskReady => f.write_str("no task ready"),
        }
    }
}

/// One autoscale tick's decision: the old and new desired concurrency, why, and the verdicts behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleDecision {
    /// When.
    pub at: Instant,
    /// Desired before.
    pub old: usize,
    /// Desired after.
    pub new: usize,
    /// Tasks running then.
    pub current: usize,
    /// Why.
    pub reason: ScaleReason,
    /// The historical verdicts the policy saw.
    pub info: SystemInfo,
}

/// `+10.000s desired 10->11 (idle: cpu 0.000 mem 0.000 event_loop 0.000 client 0.000)`.
impl fmt::Display for ScaleDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} desired {}->{} ({}: {})",
            self.at, self.old, self.new, self.reason, self.info
        )
    }
}

/// The periodic status record, with Crawlee's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRecord {
    /// When.
    pub at: Instant,
    /// Tasks running.
    pub current_concurrency: usize,
    /// Desired concurrency.
    pub desired_concurrency: usize,
    /// Historical verdicts (Crawlee logs these ratios).
    pub info: SystemInfo,
}

/// `current_concurrency = 0; desired_concurrency = 10; cpu = 0.0; mem = 0.0; event_loop = 0.0; client_info = 0.0`.
impl fmt::Display for StatusRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.info;
        write!(
            f,
            "current_concurrency = {}; desired_concurrency = {}; cpu = {}; mem = {}; event_loop = {}; client_info = {}",
            self.current_concurrency,
            self.desired_concurrency,
            i.cpu.actual_ratio,
            i.memory.actual_ratio,
            i.event_loop.actual_ratio,
            i.client.actual_ratio
        )?;
        for c in &i.custom {
            write!(f, "; {} = {}", c.name, c.info.actual_ratio)?;
        }
        Ok(())
    }
}

/// Something the machine reports. Drain with [`Pool::poll_event`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An autoscale tick ran (whether or not desired moved), or a setter changed desired.
    Scaled(ScaleDecision),
    /// The periodic status record.
    Status(StatusRecord),
    /// The reason the pool is not starting tasks changed to this one.
    Refused {
        /// When.
        at: Instant,
        /// Why.
        refusal: Refusal,
    },
    /// Memory use crossed the critical line (halfway from the overload line to the budget); at most once per
    /// cooldown.
    MemoryCritical {
        /// When.
        at: Instant,
        /// Bytes used.
        used_bytes: u64,
        /// The budget in force.
        budget_bytes: u64,
    },
    /// A task outlived its timeout and was cancelled.
    TaskTimedOut {
        /// When.
        at: Instant,
        /// The configured timeout.
        timeout: Duration,
    },
    /// A sensor reading was unusable and was dropped.
    ReadingRejected {
        /// When.
        at: Instant,
        /// Why.
        error: ReadingError,
    },
}

/// Work the machine asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Read the CPU, memory and custom sensors and report through `handle_cpu`, `handle_memory` and
    /// `handle_signal`.
    SampleSensors,
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// It returned `Ok`.
    Succeeded,
    /// It returned an error or panicked.
    Failed,
    /// It outlived the task timeout and was cancelled.
    TimedOut,
    /// It was cancelled by an abort.
    Cancelled,
}

/// What a finishing task means for the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing special.
    Continue,
    /// This is the run's first error: keep it, start nothing more, drain, then return it.
    FirstError,
    /// An error after the first one; Crawlee drops these.
    LaterError,
}

/// Why `start_run` or `abort` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// `start_run` while a run is active.
    AlreadyRunning,
    /// `abort` or `end_run` with no active run.
    NotRunning,
    /// `end_run` while tasks are still running.
    TasksInFlight(usize),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::AlreadyRunning => f.write_str("the pool is already running"),
            RunError::NotRunning => f.write_str("the pool is not running"),
            RunError::TasksInFlight(n) => {
                write!(f, "the run cannot end while {n} tasks are still running")
            }
        }
    }
}

impl core::error::Error for RunError {}

/// Counts for one run, returned by [`Pool::end_run`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Tasks started.
    pub started: u64,
    /// Tasks that returned `Ok`.
    pub succeeded: u64,
    /// Tasks that failed (error or panic).
    pub failed: u64,
    /// Tasks cancelled by their timeout.
    pub timed_out: u64,
    /// Tasks cancelled by an abort.
    pub cancelled: u64,
    /// The most tasks that ran at once.
    pub peak_concurrency: usize,
    /// Desired concurrency when the run ended.
    pub final_desired_concurrency: usize,
    /// From `start_run` to `end_run`.
    pub duration: Duration,
    /// Whether the run was aborted.
    pub aborted: bool,
}

impl RunReport {
    /// Tasks that ended in any way.
    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed + self.timed_out + self.cancelled
    }
}

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

    // ----- Commands -----

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
        self.last_refusal = None;
        self.last_reported = None;
        self.overload_cache = None;
        self.loads = (None, None);
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
    /// [`TaskOutcome::Cancelled`]; the run then ends normally with `aborted` set in its report.
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

    // ----- Inputs -----

    /// Runs whatever is due at `now`: sensor reading request, event-loop and client probes, the autoscale
    /// tick and the status record. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        if self.state == RunState::Idle {
            return;
        }
        let d = self.deadlines;
        if now >= d.sample {
            self.sample_due = true;
            self.deadlines.sample = now + self.config.snapshot.sensor_interval;
        }
        if now >= d.event_loop {
            // The probe measures how late the machine was woken for its own deadline: the scheduler lag that
            // the driver, and so every task, suffers. It works the same on every runtime.
            let delay = now.saturating_duration_since(d.event_loop);
            let over = self.signals.event_loop_overloaded(delay);
            self.record(SignalId::EventLoop, now, over, now);
            self.deadlines.event_loop = now + self.config.snapshot.event_loop_probe_interval;
        }
        if now >= d.client {
            let new = self.client_errors_total - self.client_errors_seen;
            self.client_errors_seen = self.client_errors_total;
            let over = self.signals.client_overloaded(new);
            self.record(SignalId::Client, now, over, now);
            self.deadlines.client = now + self.config.snapshot.client_probe_interval;
        }
        if now >= d.autoscale {
            self.autoscale(now);
            self.deadlines.autoscale = now + self.config.scaling.autoscale_interval;
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
            cpu_load: self.loads.0,
            memory_load: self.loads.1,
            settings: &self.config.scaling,
        };
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
        self.current += 1;
        self.report.started += 1;
        self.report.peak_concurrency = self.report.peak_concurrency.max(self.current);
        self.last_refusal = None;
        if let Some(n) = self.config.concurrency.max_tasks_per_minute {
            // Crawlee for Python spaces starts evenly rather than allowing bursts within a minute.
            self.next_start = now + Duration::from_secs(60) / n;
        }
        Ok(())
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
        self.observe(now);
        debug_assert!(self.current > 0, "a task finished that never started");
        self.current = self.current.saturating_sub(1);
        match outcome {
            TaskOutcome::Succeeded => {
                self.report.succeeded += 1;
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
            Some(Refusal::RateLimited { until }) => t = t.min(until),
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
