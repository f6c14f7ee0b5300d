//! Scaling policies: from load verdicts and counters to a new desired concurrency, with a reason.
//!
//! The machine calls its policy once per autoscale tick and clamps the answer to `[min, max]`. The
//! [`CrawleePolicy`] is Crawlee's controller, exact; other policies plug in through [`ScalingPolicy`]
//! without touching the machine or the driver.

use core::fmt;
use core::time::Duration;

use crate::config::ScalingSettings;
use crate::status::{SignalSet, SystemInfo};
use crate::time::Instant;

/// What a policy sees at an autoscale tick.
#[derive(Clone, Copy, Debug)]
pub struct ScaleInput<'a> {
    /// The tick's time.
    pub now: Instant,
    /// Tasks running now.
    pub current: usize,
    /// Desired concurrency before the tick.
    pub desired: usize,
    /// The floor.
    pub min: usize,
    /// The ceiling.
    pub max: usize,
    /// Verdicts over the whole history (30 s by default).
    pub historical: &'a SystemInfo,
    /// Tasks finished (in any way) since the run started.
    pub finished_total: u64,
    /// Tasks that succeeded since the run started: the goodput a throughput-seeking policy differences (a
    /// throttled or failed task that ends at once is not throughput).
    pub succeeded_total: u64,
    /// Throttles since the run started: tasks that ended throttled and throttles reported through a handle.
    pub throttled_total: u64,
    /// The fewest tasks running (the throttled one included) when a throttle arrived since the last tick:
    /// where the service started pushing back.
    pub throttle_level: Option<usize>,
    /// The mean latency of the tasks that succeeded since the previous tick, when the driver timed them
    /// ([`Pool::handle_task_finished_since`](crate::Pool::handle_task_finished_since)); `None` when none
    /// did. Tasks still running are not in it, so under a latency that rises it lags by about one latency.
    pub succeeded_latency: Option<Duration>,
    /// The latest CPU reading over its overload line (`used_ratio / max_used_cpu_ratio`: 1.0 is the line),
    /// if one arrived this run.
    pub cpu_load: Option<f64>,
    /// The latest memory reading over its overload line (`used / (budget × max_used_memory_ratio)`), if one
    /// arrived this run.
    pub memory_load: Option<f64>,
    /// Tasks running when the latest CPU or memory reading arrived (0 before one has): what a reading taken
    /// some time before the tick reflects, so a policy projects it from the right count.
    pub load_running: usize,
    /// The scaling settings.
    pub settings: &'a ScalingSettings,
}

/// Why desired concurrency moved or held at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScaleReason {
    /// The system was idle and the pool busy enough: scaled up.
    Idle,
    /// These signals were overloaded over the history: scaled down.
    Overloaded(SignalSet),
    /// Idle, but desired is already at max.
    AtMax,
    /// Overloaded, but desired is already at min.
    AtMin(SignalSet),
    /// Idle, but too few tasks ran to show that more would help (`current < required`).
    Underused {
        /// Tasks running.
        current: usize,
        /// Tasks that must run before a scale-up: `floor(desired × desired_concurrency_ratio)`.
        required: usize,
    },
    /// Desired was changed by a setter between ticks (recorded by the machine, not a policy).
    Setter,
    /// A policy-specific reason.
    Policy(&'static str),
}

impl fmt::Display for ScaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleReason::Idle => f.write_str("idle"),
            ScaleReason::Overloaded(s) => write!(f, "overloaded: {s}"),
            ScaleReason::AtMax => f.write_str("idle, at max"),
            ScaleReason::AtMin(s) => write!(f, "overloaded: {s}, at min"),
            ScaleReason::Underused { current, required } => {
                write!(
                    f,
                    "idle, underused: {current} running < {required} required"
                )
            }
            ScaleReason::Setter => f.write_str("set by the user"),
            ScaleReason::Policy(why) => f.write_str(why),
        }
    }
}

/// A policy's answer: the new desired concurrency (clamped by the machine) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// The new desired concurrency.
    pub desired: usize,
    /// Why.
    pub reason: ScaleReason,
}

/// Decides desired concurrency at each autoscale tick.
///
/// Implementations MUST be deterministic given their inputs and own state (the harness replays them), and
/// MUST NOT read clocks; `input.now` is the time.
pub trait ScalingPolicy {
    /// Called once per autoscale tick, the first as the run starts.
    fn decide(&mut self, input: &ScaleInput<'_>) -> Scale;

    /// Called when a run starts, so per-run state can be reset. The default does nothing.
    fn reset(&mut self, _now: Instant) {}

    /// How soon after a tick a throttle may bring the next one forward, so the policy answers it within a
    /// task latency rather than at its regular cadence; `None` (the default, Crawlee's behaviour) waits for
    /// the regular tick.
    fn throttle_reaction(&self) -> Option<Duration> {
        None
    }

    /// How soon the policy wants its next tick, if sooner than the regular interval (a ramp paced by task
    /// latency, say); `None` (the default, Crawlee's behaviour) keeps the interval. Asked after each tick.
    fn next_tick(&self) -> Option<Duration> {
        None
    }

    /// The autoscale interval the policy is tuned for, which the builder uses unless the user set one
    /// (`Builder::autoscale_interval`, or scaling settings whose interval is not Crawlee's default 10 s).
    /// `None` (the default) keeps the configured interval.
    fn preferred_interval(&self) -> Option<Duration> {
        None
    }

    /// How often the machine's periodic work (sensor samples, the event-loop and client probes, the tick)
    /// runs while the pool is idle: nothing running, and nothing ready or paused. `None` (the default,
    /// Crawlee's behaviour) keeps every job at its own interval. The first start after an idle spell brings
    /// every slowed job back to its own interval at once, and a sample is taken then.
    fn idle_interval(&self) -> Option<Duration> {
        None
    }

    /// The start gate asks this when the current window is overloaded on `overloaded` (never empty) and
    /// `current >= min`: may one more task start (if the other gates allow it, `current < desired` among
    /// them)?
    ///
    /// The default is Crawlee's rule, `current < min`, so no start above `min` is admitted while overloaded.
    /// A policy that answers overload through `desired` itself (like
    /// [`AdaptivePolicy`](crate::adaptive::AdaptivePolicy)) may admit more; it should never do so under
    /// memory overload, which ends in an OOM.
    fn admit_under_overload(
        &self,
        overloaded: SignalSet,
        current: usize,
        min: usize,
        desired: usize,
    ) -> bool {
        let _ = (overloaded, desired);
        current < min
    }
}

/// Forwards every method of [`ScalingPolicy`] to the policy a pointer holds, so a borrowed or boxed policy is a
/// policy; written once so that a method added to the trait cannot be forgotten in one of them.
macro_rules! forward_policy {
    ($(#[$attr:meta])* $ptr:ty) => {
        $(#[$attr])*
        impl<P: ScalingPolicy + ?Sized> ScalingPolicy for $ptr {
            fn decide(&mut self, input: &ScaleInput<'_>) -> Scale {
                (**self).decide(input)
            }
            fn reset(&mut self, now: Instant) {
                (**self).reset(now)
            }
            fn throttle_reaction(&self) -> Option<Duration> {
                (**self).throttle_reaction()
            }
            fn next_tick(&self) -> Option<Duration> {
                (**self).next_tick()
            }
            fn idle_interval(&self) -> Option<Duration> {
                (**self).idle_interval()
            }
            fn preferred_interval(&self) -> Option<Duration> {
                (**self).preferred_interval()
            }
            fn admit_under_overload(
                &self,
                overloaded: SignalSet,
                current: usize,
                min: usize,
                desired: usize,
            ) -> bool {
                (**self).admit_under_overload(overloaded, current, min, desired)
            }
        }
    };
}

forward_policy!(&mut P);
forward_policy!(
    /// A boxed policy, so the policy can be chosen at run time (by configuration) rather than by type.
    #[cfg(feature = "alloc")]
    alloc::boxed::Box<P>
);

/// Crawlee's controller, exactly (crawlee-python 1.11.0 `_autoscale`, crawlee JS 3.18 `_autoscale`).
///
/// Scale up by `ceil(desired × scale_up_step_ratio)` when the history is idle, `desired < max` and
/// `current >= floor(desired × desired_concurrency_ratio)`; scale down by `ceil(desired ×
/// scale_down_step_ratio)` when the history is overloaded and `desired > min`.
///
/// # Examples
///
/// ```
/// use pool_core::{scale::{CrawleePolicy, ScaleInput, ScalingPolicy}, Instant, ScalingSettings, Pool, PoolConfig};
///
/// let pool = Pool::new(PoolConfig::default()).unwrap();
/// let idle = pool.historical_info(Instant::ZERO);
/// let settings = ScalingSettings::default();
/// let input = ScaleInput {
///     now: Instant::ZERO, current: 45, desired: 50, min: 1, max: 200,
///     historical: &idle, finished_total: 0, succeeded_total: 0, throttled_total: 0, throttle_level: None,
///     succeeded_latency: None, cpu_load: None, memory_load: None, load_running: 0, settings: &settings,
/// };
/// assert_eq!(CrawleePolicy.decide(&input).desired, 53); // 50 + ceil(2.5)
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrawleePolicy;

impl ScalingPolicy for CrawleePolicy {
    fn decide(&mut self, i: &ScaleInput<'_>) -> Scale {
        let s = i.settings;
        let overloaded = i.historical.overloaded();
        if overloaded.is_empty() {
            let required = floor_mul(i.desired, s.desired_concurrency_ratio);
            if i.desired >= i.max {
                Scale {
                    desired: i.desired,
                    reason: ScaleReason::AtMax,
                }
            } else if i.current < required {
                Scale {
                    desired: i.desired,
                    reason: ScaleReason::Underused {
                        current: i.current,
                        required,
                    },
                }
            } else {
                let step = ceil_mul(i.desired, s.scale_up_step_ratio);
                Scale {
                    desired: i.max.min(i.desired.saturating_add(step)),
                    reason: ScaleReason::Idle,
                }
            }
        } else if i.desired > i.min {
            let step = ceil_mul(i.desired, s.scale_down_step_ratio);
            Scale {
                desired: i.min.max(i.desired.saturating_sub(step)),
                reason: ScaleReason::Overloaded(overloaded),
            }
        } else {
            Scale {
                desired: i.desired,
                reason: ScaleReason::AtMin(overloaded),
            }
        }
    }
}

/// `floor(n × ratio)` for a ratio in (0, 1]. Floats are exact enough here: `n` is a concurrency, far below
/// 2^52.
pub(crate) fn floor_mul(n: usize, ratio: f64) -> usize {
    let x = n as f64 * ratio;
    let t = x as usize;
    // `as` truncates toward zero, which is floor for the non-negative values seen here.
    t.min(n)
}

/// `ceil(n × ratio)`, at least 1 for any positive ratio and positive `n`.
pub(crate) fn ceil_mul(n: usize, ratio: f64) -> usize {
    let x = n as f64 * ratio;
    let t = x as usize;
    if (t as f64) < x { t + 1 } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_helpers_match_crawlee() {
        assert_eq!(floor_mul(10, 0.9), 9);
        assert_eq!(floor_mul(1, 0.9), 0);
        assert_eq!(floor_mul(2, 1.0), 2);
        assert_eq!(ceil_mul(50, 0.05), 3);
        assert_eq!(ceil_mul(53, 0.05), 3);
        assert_eq!(ceil_mul(1, 0.05), 1);
        assert_eq!(ceil_mul(20, 0.05), 1);
        assert_eq!(ceil_mul(21, 0.05), 2);
    }
}
