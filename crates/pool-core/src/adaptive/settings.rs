//! [`AdaptiveSettings`]: the adaptive policy's knobs and their defaults.

use core::time::Duration;

/// The knobs of [`AdaptivePolicy`](super::AdaptivePolicy). The defaults are the ones the simulator suite was run with.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct AdaptiveSettings {
    /// Growth per tick during the ramp; above 1.
    pub ramp_factor: f64,
    /// Cut on CPU, event-loop, client or custom overload; in (0, 1).
    pub cut_factor: f64,
    /// Cut on memory overload, and on CPU and event-loop overload rising together; in (0, 1).
    pub memory_cut_factor: f64,
    /// First probe step, as a share of the base level; doubles after each accepted probe (up to 0.5) and
    /// halves after a probe that brought overload.
    pub probe_step: f64,
    /// Grow only while `current >= floor(desired × demand_ratio)`; in (0, 1].
    pub demand_ratio: f64,
    /// The ramp stops at a knee: when throughput grew by less than this share of the concurrency's growth.
    pub knee_efficiency: f64,
    /// A probe up is kept if throughput rose by at least this share of the proportional gain...
    pub gain_share: f64,
    /// ... or by this share, whichever is smaller (one-task steps at small levels are coarse).
    pub max_required_gain: f64,
    /// The ramp never grows past the level at which the latest CPU reading, projected in proportion to
    /// the running tasks, would reach this share of its overload line.
    pub load_target: f64,
    /// The same for memory, lower: task memory varies, and the line is close to an OOM.
    pub memory_load_target: f64,
    /// The shortest measuring time of an epoch.
    pub min_epoch: Duration,
    /// Completions an epoch tries to count before it is judged (it also ends after `max_epoch`).
    pub epoch_completions: u64,
    /// The longest measuring time of an epoch, unless one task latency is longer.
    pub max_epoch: Duration,
    /// Epochs to hold at a level after probes on both sides failed; doubles (up to 16) while probes keep
    /// failing.
    pub hold_epochs: u32,
    /// A memory ceiling is not probed past until it is this old.
    pub memory_ceiling_ttl: Duration,
    /// Seed of the probe jitter (±20 % of an epoch), so pools that share a service do not probe in lockstep.
    pub seed: u64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        AdaptiveSettings {
            ramp_factor: 1.15,
            cut_factor: 0.9,
            memory_cut_factor: 0.75,
            probe_step: 0.1,
            demand_ratio: 0.9,
            knee_efficiency: 0.6,
            gain_share: 0.5,
            max_required_gain: 0.03,
            load_target: 0.97,
            memory_load_target: 0.95,
            min_epoch: Duration::from_secs(2),
            epoch_completions: 200,
            max_epoch: Duration::from_secs(6),
            hold_epochs: 4,
            memory_ceiling_ttl: Duration::from_secs(60),
            seed: 0x5EED,
        }
    }
}

crate::config::with_setters!(AdaptiveSettings {
    with_ramp_factor => ramp_factor: f64,
    with_cut_factor => cut_factor: f64,
    with_memory_cut_factor => memory_cut_factor: f64,
    with_probe_step => probe_step: f64,
    with_demand_ratio => demand_ratio: f64,
    with_knee_efficiency => knee_efficiency: f64,
    with_gain_share => gain_share: f64,
    with_max_required_gain => max_required_gain: f64,
    with_load_target => load_target: f64,
    with_memory_load_target => memory_load_target: f64,
    with_min_epoch => min_epoch: Duration,
    with_epoch_completions => epoch_completions: u64,
    with_max_epoch => max_epoch: Duration,
    with_hold_epochs => hold_epochs: u32,
    with_memory_ceiling_ttl => memory_ceiling_ttl: Duration,
    with_seed => seed: u64,
});
