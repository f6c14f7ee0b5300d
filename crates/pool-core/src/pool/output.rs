//! What the machine hands out: refusals, decisions, status records, events, actions, task outcomes, and the
//! run's report and errors.

use core::fmt;
use core::time::Duration;

use crate::scale::ScaleReason;
use crate::status::{ReadingError, SignalSet, SystemInfo};
use crate::time::Instant;

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
    /// The service behind the tasks throttled one; starts wait for its retry-after, or for the backoff of
    /// the current streak of throttles, until `until`.
    Throttled {
        /// When the next start is allowed.
        until: Instant,
    },
    /// A budget shared with other pools has no permit for this pool now: the budget is spent, or this pool
    /// holds its whole share of it.
    Budget {
        /// Permits this pool holds.
        held: usize,
        /// Its share of the budget.
        share: usize,
    },
    /// A budget shared with other pools has a start-rate cap, and it has no start left now.
    BudgetRate,
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
            Refusal::Throttled { until } => {
                write!(f, "throttled downstream; waiting until {until}")
            }
            Refusal::BudgetRate => {
                f.write_str("the shared budget's start-rate cap has no start left")
            }
            Refusal::Budget { held, share } => write!(
                f,
                "no permit in the shared budget ({held} held of a share of {share})"
            ),
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

/// Something the machine reports. Drain with [`Pool::poll_event`](super::Pool::poll_event).
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
    /// A task ended throttled, or a throttle was reported through a handle: starts wait until `until`.
    Throttled {
        /// When.
        at: Instant,
        /// The wait the service asked for, if it said.
        retry_after: Option<Duration>,
        /// When the next start is allowed.
        until: Instant,
    },
    /// A task reported [`Outcome::Failed`](crate::Outcome::Failed); the run goes on.
    TaskFailed {
        /// When.
        at: Instant,
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
#[non_exhaustive]
pub enum TaskOutcome {
    /// It returned `Ok(())` or `Ok(Outcome::Succeeded)`.
    Succeeded,
    /// It returned `Ok(Outcome::Throttled { .. })`: the service behind it pushed back.
    Throttled {
        /// The wait the service asked for, if it said.
        retry_after: Option<Duration>,
    },
    /// It returned `Ok(Outcome::Failed)`: it failed, and the run goes on.
    Unsuccessful,
    /// It returned an error or panicked: the first one ends the run.
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

/// Counts for one run, returned by [`Pool::end_run`](super::Pool::end_run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Tasks started.
    pub started: u64,
    /// Tasks that succeeded (returned `Ok(())` or `Ok(Outcome::Succeeded)`).
    pub succeeded: u64,
    /// Tasks that ended throttled (`Ok(Outcome::Throttled { .. })`).
    pub throttled: u64,
    /// Throttles reported through a handle ([`Handle::report_throttle`](crate::Handle::report_throttle)),
    /// which are signals, not task ends.
    pub throttles_reported: u64,
    /// Tasks that failed: returned an error or panicked (the first of these ends the run), or reported
    /// `Ok(Outcome::Failed)`.
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
        self.succeeded + self.throttled + self.failed + self.timed_out + self.cancelled
    }
}

/// Why a member got no permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetRefusal {
    /// The member holds its share, or the budget is spent.
    Spent {
        /// Permits the member holds.
        held: usize,
        /// Its share.
        share: usize,
    },
    /// The budget's start-rate cap has no start left.
    Rate,
}
