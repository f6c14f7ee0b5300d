//! Settings and their validation: every bad value becomes a typed [`ConfigError`], never a panic.
//!
//! Defaults follow Crawlee for Python 1.11.0; the knobs Crawlee for JavaScript exposes (scaling ratios and
//! intervals) are configurable here too.

use core::fmt;
use core::time::Duration;

use crate::snapshot::HISTORY_CAPACITY;

mod setters;

pub(crate) use setters::with_setters;

/// Concurrency bounds and the start-rate cap.
///
/// Defaults: min 1, max 100, desired 10, no rate cap (Crawlee for Python's `ConcurrencySettings`).
///
/// # Examples
///
/// ```
/// use pool_core::{ConcurrencySettings, ConfigError};
///
/// // `with_max` brings desired (10 by default) and min down with it, as `set_max_concurrency` does.
/// let capped = ConcurrencySettings::default().with_max(4);
/// assert_eq!((capped.desired_concurrency, capped.validate()), (4, Ok(())));
///
/// // A later call that contradicts it is an error, as is a field set to say desired > max (Crawlee for
/// // Python's `ConcurrencySettings(max_concurrency=4)` raises too: its desired stays 10).
/// let err = capped.with_desired(10).validate().unwrap_err();
/// assert_eq!(err, ConfigError::DesiredAboveMax);
/// assert_eq!(err.to_string(), "desired_concurrency cannot be greater than max_concurrency");
/// let mut max_only = ConcurrencySettings::default();
/// max_only.max_concurrency = 4;
/// assert_eq!(max_only.validate(), Err(ConfigError::DesiredAboveMax));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConcurrencySettings {
    /// The floor for desired concurrency; under overload the pool still runs this many tasks.
    pub min_concurrency: usize,
    /// The ceiling for desired concurrency.
    pub max_concurrency: usize,
    /// The starting desired concurrency.
    pub desired_concurrency: usize,
    /// At most this many task starts per minute, spaced evenly (`60 s / n` apart); `None` means no cap.
    pub max_tasks_per_minute: Option<u32>,
}

impl Default for ConcurrencySettings {
    fn default() -> Self {
        ConcurrencySettings {
            min_concurrency: 1,
            max_concurrency: 100,
            desired_concurrency: 10,
            max_tasks_per_minute: None,
        }
    }
}

impl ConcurrencySettings {
    /// Exactly these bounds, no rate cap, checked only when the pool is built: Crawlee's keyword
    /// constructor, `ConcurrencySettings(min_concurrency=.., desired_concurrency=.., max_concurrency=..)`.
    /// [`with_max`](Self::with_max) and the other setters keep the bounds consistent instead.
    pub const fn new(min: usize, desired: usize, max: usize) -> Self {
        ConcurrencySettings {
            min_concurrency: min,
            desired_concurrency: desired,
            max_concurrency: max,
            max_tasks_per_minute: None,
        }
    }

    /// Sets `min_concurrency`.
    #[must_use]
    pub fn with_min(mut self, n: usize) -> Self {
        self.min_concurrency = n;
        self
    }
    /// Sets `max_concurrency`; `desired_concurrency` and `min_concurrency` follow it down where they are
    /// above it, as [`Pool::set_max_concurrency`](crate::Pool::set_max_concurrency) moves them on a pool.
    /// So `ConcurrencySettings::default().with_max(4)` is valid (desired 4), and a later `with_desired` or
    /// `with_min` above 4 is the error it says.
    #[must_use]
    pub fn with_max(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self.desired_concurrency = self.desired_concurrency.min(n);
        self.min_concurrency = self.min_concurrency.min(n);
        self
    }
    /// Sets `desired_concurrency`.
    #[must_use]
    pub fn with_desired(mut self, n: usize) -> Self {
        self.desired_concurrency = n;
        self
    }
    /// Sets `max_tasks_per_minute`.
    #[must_use]
    pub fn with_max_tasks_per_minute(mut self, n: Option<u32>) -> Self {
        self.max_tasks_per_minute = n;
        self
    }
    /// Settings with min = desired = max = `n`: a fixed concurrency.
    pub fn fixed(n: usize) -> Self {
        ConcurrencySettings {
            min_concurrency: n,
            max_concurrency: n,
            desired_concurrency: n,
            max_tasks_per_minute: None,
        }
    }

    /// Checks the rules in Crawlee's order; the first broken one is returned.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`], [`ConfigError::MaxBelowMin`], [`ConfigError::DesiredBelowMin`],
    /// [`ConfigError::DesiredAboveMax`] or [`ConfigError::MaxTasksPerMinuteNotPositive`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_concurrency < 1 {
            return Err(ConfigError::MinTooSmall);
        }
        if self.max_concurrency < self.min_concurrency {
            return Err(ConfigError::MaxBelowMin);
        }
        if self.desired_concurrency < self.min_concurrency {
            return Err(ConfigError::DesiredBelowMin);
        }
        if self.desired_concurrency > self.max_concurrency {
            return Err(ConfigError::DesiredAboveMax);
        }
        if self.max_tasks_per_minute == Some(0) {
            return Err(ConfigError::MaxTasksPerMinuteNotPositive);
        }
        Ok(())
    }
}

/// How and how often desired concurrency moves.
///
/// Defaults: a tick every 10 s, scale up only when at least 90 % of desired is running, steps of 5 %, a status
/// record every 60 s.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScalingSettings {
    /// Period of the autoscale tick. The first tick happens as the run starts.
    pub autoscale_interval: Duration,
    /// Scale up only if `current >= floor(desired × ratio)`; in (0, 1].
    pub desired_concurrency_ratio: f64,
    /// Scale-up step is `ceil(desired × ratio)`, so at least 1; in (0, 1].
    pub scale_up_step_ratio: f64,
    /// Scale-down step is `ceil(desired × ratio)`, so at least 1; in (0, 1].
    pub scale_down_step_ratio: f64,
    /// Period of the status record; `None` disables it. The first record is made as the run starts.
    pub status_log_interval: Option<Duration>,
}

impl Default for ScalingSettings {
    fn default() -> Self {
        ScalingSettings {
            autoscale_interval: Duration::from_secs(10),
            desired_concurrency_ratio: 0.9,
            scale_up_step_ratio: 0.05,
            scale_down_step_ratio: 0.05,
            status_log_interval: Some(Duration::from_secs(60)),
        }
    }
}

/// The windows over which load is judged, and the share of overloaded time each signal may have.
///
/// Defaults: current window 5 s (gates each start), history 30 s (drives autoscaling), thresholds cpu 0.4,
/// memory 0.2, event loop 0.6, client 0.3.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct StatusSettings {
    /// The window, ending now, that decides whether a task may start.
    pub current_window: Duration,
    /// How long snapshots are kept; the autoscaler judges this whole window.
    pub history: Duration,
    /// CPU is overloaded when more than this share of the window was overloaded; in [0, 1].
    pub cpu_overload_threshold: f64,
    /// The memory share threshold; in [0, 1].
    pub memory_overload_threshold: f64,
    /// The event-loop (scheduler lag) share threshold; in [0, 1].
    pub event_loop_overload_threshold: f64,
    /// The client (rate-limit errors) share threshold; in [0, 1].
    pub client_overload_threshold: f64,
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            current_window: Duration::from_secs(5),
            history: Duration::from_secs(30),
            cpu_overload_threshold: 0.4,
            memory_overload_threshold: 0.2,
            event_loop_overload_threshold: 0.6,
            client_overload_threshold: 0.3,
        }
    }
}

/// How the memory budget is set: a fixed size, or a share of the memory available to the process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MemoryBudget {
    /// A fixed number of bytes.
    Fixed(u64),
    /// A share in (0, 1] of the total memory each reading reports, so a resized container is followed.
    Ratio(f64),
}

/// When a single snapshot counts as overloaded, and how often the machine takes them.
///
/// Defaults: cpu over 0.95; memory over 0.9 of the budget (a quarter of available memory), or system-wide
/// memory over 0.97; event-loop delay over 50 ms at a 500 ms probe; more than 1 new client error per 1 s
/// probe; sensors read every second.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct SnapshotSettings {
    /// A CPU reading above this ratio is overloaded; in (0, 1].
    pub max_used_cpu_ratio: f64,
    /// A memory reading above this share of the budget is overloaded; in (0, 1].
    pub max_used_memory_ratio: f64,
    /// The memory budget.
    pub memory_budget: MemoryBudget,
    /// System-wide memory use above this share is overloaded whatever the budget says; in (0, 1].
    pub system_wide_memory_ratio: f64,
    /// An event-loop probe later than this is overloaded.
    pub max_event_loop_delay: Duration,
    /// Period of the event-loop probe.
    pub event_loop_probe_interval: Duration,
    /// A client probe that saw more than this many new errors is overloaded.
    pub max_client_errors: u32,
    /// Period of the client probe.
    pub client_probe_interval: Duration,
    /// Period of the CPU, memory and custom-signal readings.
    pub sensor_interval: Duration,
    /// The least time between two critical-memory events.
    pub memory_warning_cooldown: Duration,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            max_used_cpu_ratio: 0.95,
            max_used_memory_ratio: 0.9,
            memory_budget: MemoryBudget::Ratio(0.25),
            system_wide_memory_ratio: 0.97,
            max_event_loop_delay: Duration::from_millis(50),
            event_loop_probe_interval: Duration::from_millis(500),
            max_client_errors: 1,
            client_probe_interval: Duration::from_secs(1),
            sensor_interval: Duration::from_secs(1),
            memory_warning_cooldown: Duration::from_secs(10),
        }
    }
}

/// What happens to a task that outlives its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeoutPolicy {
    /// The task is cancelled and counted as timed out; the run goes on (Crawlee for Python).
    #[default]
    Report,
    /// The task is cancelled and the run fails as if the task had returned an error (Crawlee for JavaScript).
    FailPool,
}

/// How starts wait after the service behind the tasks throttled one ([`Outcome::Throttled`](crate::Outcome)).
///
/// A throttle with a retry-after holds every new start until it has passed. One without spaces starts: the
/// next may begin after `backoff_base`, doubling with each throttle in a row up to `backoff_max`, each wait
/// drawn between half and all of its nominal length (deterministically, from `seed`) so that many clients
/// do not retry in step. A success ends the streak.
///
/// Defaults: 100 ms, doubling to 10 s at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleSettings {
    /// The wait after the first throttle of a streak.
    pub backoff_base: Duration,
    /// The longest wait, however long the streak.
    pub backoff_max: Duration,
    /// Seeds the jitter, so runs are reproducible.
    pub seed: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            seed: 0x5eed,
        }
    }
}

/// Everything the machine needs, validated as a whole by [`PoolConfig::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Concurrency bounds and the rate cap.
    pub concurrency: ConcurrencySettings,
    /// Autoscaling cadence and steps.
    pub scaling: ScalingSettings,
    /// Load windows and thresholds.
    pub status: StatusSettings,
    /// Snapshot rules and probe cadence.
    pub snapshot: SnapshotSettings,
    /// A per-task timeout; `None` (the default) means none.
    pub task_timeout: Option<Duration>,
    /// What a timeout does.
    pub timeout_policy: TimeoutPolicy,
    /// How starts wait after a throttled task.
    pub throttle: ThrottleSettings,
}

impl PoolConfig {
    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found: concurrency rules first, then ratios, then durations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.concurrency.validate()?;
        let s = &self.scaling;
        nonzero("autoscale_interval", s.autoscale_interval)?;
        ratio(
            "desired_concurrency_ratio",
            s.desired_concurrency_ratio,
            Range::OpenClosed,
        )?;
        ratio(
            "scale_up_step_ratio",
            s.scale_up_step_ratio,
            Range::OpenClosed,
        )?;
        ratio(
            "scale_down_step_ratio",
            s.scale_down_step_ratio,
            Range::OpenClosed,
        )?;
        if let Some(d) = s.status_log_interval {
            nonzero("status_log_interval", d)?;
        }
        let st = &self.status;
        nonzero("current_window", st.current_window)?;
        nonzero("history", st.history)?;
        if st.current_window > st.history {
            return Err(ConfigError::WindowLongerThanHistory);
        }
        ratio(
            "cpu_overload_threshold",
            st.cpu_overload_threshold,
            Range::Closed,
        )?;
        ratio(
            "memory_overload_threshold",
            st.memory_overload_threshold,
            Range::Closed,
        )?;
        ratio(
            "event_loop_overload_threshold",
            st.event_loop_overload_threshold,
            Range::Closed,
        )?;
        ratio(
            "client_overload_threshold",
            st.client_overload_threshold,
            Range::Closed,
        )?;
        nonzero("backoff_base", self.throttle.backoff_base)?;
        if self.throttle.backoff_max < self.throttle.backoff_base {
            return Err(ConfigError::BackoffMaxBelowBase);
        }
        let sn = &self.snapshot;
        ratio(
            "max_used_cpu_ratio",
            sn.max_used_cpu_ratio,
            Range::OpenClosed,
        )?;
        ratio(
            "max_used_memory_ratio",
            sn.max_used_memory_ratio,
            Range::OpenClosed,
        )?;
        ratio(
            "system_wide_memory_ratio",
            sn.system_wide_memory_ratio,
            Range::OpenClosed,
        )?;
        match sn.memory_budget {
            MemoryBudget::Fixed(0) => return Err(ConfigError::ZeroMemoryBudget),
            MemoryBudget::Fixed(_) => {}
            MemoryBudget::Ratio(r) => ratio("memory_budget ratio", r, Range::OpenClosed)?,
        }
        for (name, period) in [
            ("event_loop_probe_interval", sn.event_loop_probe_interval),
            ("client_probe_interval", sn.client_probe_interval),
            ("sensor_interval", sn.sensor_interval),
        ] {
            nonzero(name, period)?;
            fits_history(name, period, st.history)?;
        }
        if let Some(d) = self.task_timeout {
            nonzero("task_timeout", d)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Range {
    /// 0 < x <= 1.
    OpenClosed,
    /// 0 <= x <= 1.
    Closed,
}

fn ratio(name: &'static str, value: f64, range: Range) -> Result<(), ConfigError> {
    let ok = match range {
        Range::OpenClosed => value > 0.0 && value <= 1.0,
        Range::Closed => (0.0..=1.0).contains(&value),
    };
    // NaN fails both comparisons, so it lands here too.
    if ok {
        Ok(())
    } else {
        Err(ConfigError::RatioOutOfRange {
            name,
            value,
            zero_allowed: matches!(range, Range::Closed),
        })
    }
}

fn nonzero(name: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        Err(ConfigError::ZeroDuration { name })
    } else {
        Ok(())
    }
}

fn fits_history(
    name: &'static str,
    period: Duration,
    history: Duration,
) -> Result<(), ConfigError> {
    // A history holds every snapshot of the window plus one on each boundary.
    let needed = history.as_nanos() / period.as_nanos() + 2;
    if needed > HISTORY_CAPACITY as u128 {
        Err(ConfigError::HistoryTooLong {
            name,
            needed: u64::try_from(needed).unwrap_or(u64::MAX),
            capacity: HISTORY_CAPACITY,
        })
    } else {
        Ok(())
    }
}

/// An invalid setting. `Display` gives a sentence a user can act on.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `min_concurrency` was 0.
    MinTooSmall,
    /// `max_concurrency < min_concurrency`.
    MaxBelowMin,
    /// `desired_concurrency < min_concurrency`.
    DesiredBelowMin,
    /// `desired_concurrency > max_concurrency`.
    DesiredAboveMax,
    /// `max_tasks_per_minute` was `Some(0)`.
    MaxTasksPerMinuteNotPositive,
    /// A runtime setter asked for a minimum above the current maximum.
    MinAboveMax {
        /// The requested minimum.
        min: usize,
        /// The maximum in force.
        max: usize,
    },
    /// A ratio was NaN, infinite or outside its range.
    RatioOutOfRange {
        /// The setting's name.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Whether 0 is allowed (the range is [0, 1] rather than (0, 1]).
        zero_allowed: bool,
    },
    /// A period or window was zero.
    ZeroDuration {
        /// The setting's name.
        name: &'static str,
    },
    /// The current window was longer than the history.
    WindowLongerThanHistory,
    /// A fixed memory budget of zero bytes.
    ZeroMemoryBudget,
    /// `backoff_max` was shorter than `backoff_base`.
    BackoffMaxBelowBase,
    /// A probe period so short that one history window holds more snapshots than fit.
    HistoryTooLong {
        /// The period's name.
        name: &'static str,
        /// Snapshots one history needs.
        needed: u64,
        /// Snapshots a history can hold.
        capacity: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MinTooSmall => f.write_str("min_concurrency must be 1 or larger"),
            ConfigError::MaxBelowMin => {
                f.write_str("max_concurrency cannot be less than min_concurrency")
            }
            ConfigError::DesiredBelowMin => {
                f.write_str("desired_concurrency cannot be less than min_concurrency")
            }
            ConfigError::DesiredAboveMax => {
                f.write_str("desired_concurrency cannot be greater than max_concurrency")
            }
            ConfigError::MaxTasksPerMinuteNotPositive => {
                f.write_str("max_tasks_per_minute must be positive")
            }
            ConfigError::MinAboveMax { min, max } => write!(
                f,
                "min_concurrency {min} cannot be greater than max_concurrency {max}; raise max_concurrency first"
            ),
            ConfigError::RatioOutOfRange {
                name,
                value,
                zero_allowed,
            } => {
                let range = if *zero_allowed {
                    "between 0 and 1"
                } else {
                    "greater than 0 and at most 1"
                };
                write!(f, "{name} must be {range}, got {value}")
            }
            ConfigError::ZeroDuration { name } => write!(f, "{name} must be longer than zero"),
            ConfigError::WindowLongerThanHistory => {
                f.write_str("the current window cannot be longer than the snapshot history")
            }
            ConfigError::ZeroMemoryBudget => {
                f.write_str("a fixed memory budget must be larger than 0 bytes")
            }
            ConfigError::BackoffMaxBelowBase => {
                f.write_str("backoff_max cannot be shorter than backoff_base")
            }
            ConfigError::HistoryTooLong {
                name,
                needed,
                capacity,
            } => write!(
                f,
                "{name} is too short for the snapshot history: one history would need {needed} snapshots, \
                 but holds at most {capacity}; lengthen {name} or shorten the history"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}
