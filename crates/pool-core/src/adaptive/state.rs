//! What the adaptive policy remembers between ticks: its phase, the current probe, the throughput epoch,
//! the ceiling and the recent ticks the knee check reads.

use crate::status::{MAX_CUSTOM_SIGNALS, SystemInfo};

/// How many past ticks the ramp's knee check looks at.
pub(super) const RING: usize = 6;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Tick {
    pub(super) at_s: f64,
    pub(super) finished: u64,
    pub(super) current: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Ramp,
    Climb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// Measuring the base level.
    Base,
    /// Measuring a level above the base.
    Up(usize),
    /// Measuring a level below the base.
    Down(usize),
    /// Holding at the base for this many more epochs.
    Hold(u32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Epoch {
    pub(super) started_s: f64,
    pub(super) settle_until_s: f64,
    /// `(time, finished_total)` once settled.
    pub(super) settled: Option<(f64, u64)>,
    pub(super) jitter: f64,
}

/// Which signals rose since the previous tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Ratios {
    pub(super) cpu: f64,
    pub(super) memory: f64,
    pub(super) event_loop: f64,
    pub(super) client: f64,
    pub(super) custom: [f64; MAX_CUSTOM_SIGNALS],
}

impl Ratios {
    pub(super) fn of(info: &SystemInfo) -> Self {
        let mut custom = [0.0; MAX_CUSTOM_SIGNALS];
        for (slot, c) in custom.iter_mut().zip(info.custom.iter()) {
            *slot = c.info.actual_ratio;
        }
        Ratios {
            cpu: info.cpu.actual_ratio,
            memory: info.memory.actual_ratio,
            event_loop: info.event_loop.actual_ratio,
            client: info.client.actual_ratio,
            custom,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct State {
    pub(super) started: bool,
    pub(super) start_s: f64,
    pub(super) phase: Phase,
    pub(super) prev: Ratios,
    /// Local (CPU, event loop, custom) overload rose on the previous tick.
    pub(super) local_rose_before: bool,
    pub(super) ring: [Tick; RING],
    pub(super) ticks: usize,
    /// Estimated task latency (Little's law), seconds; 0 until known.
    pub(super) latency_s: f64,
    /// Whether the driver times tasks (`ScaleInput::succeeded_latency` has arrived this run).
    pub(super) timed: bool,
    /// `latency_s` before the latest timed update, seconds: what the last tick's tasks were expected to take.
    pub(super) latency_before_s: f64,
    /// When the ramp last grew, seconds.
    pub(super) last_ramp_s: Option<f64>,
    pub(super) cooldown_until_s: f64,
    pub(super) ceiling: Option<usize>,
    pub(super) memory_ceiling: Option<(usize, f64)>,
    /// The most tasks the service behind them took without throttling, and when that was last learned or
    /// probed (seconds).
    pub(super) throttle_ceiling: Option<(usize, f64)>,
    /// `throttled_total` at the previous tick, to tell a fresh throttle.
    pub(super) seen_throttled: u64,
    pub(super) base: usize,
    pub(super) base_rate: f64,
    /// The CPU load when CPU last bounded the pool (the ramp met its line, or a local overload cut).
    pub(super) line_load: Option<f64>,
    /// The level at which the ramp met the CPU line, below saturation by construction: probing below it
    /// cannot pay, so the climb does not.
    pub(super) line_level: Option<usize>,
    pub(super) probe: Probe,
    pub(super) step: f64,
    pub(super) backoff: u32,
    pub(super) epoch: Epoch,
    pub(super) rng: u64,
}

impl State {
    pub(super) fn new(seed: u64, probe_step: f64) -> Self {
        State {
            started: false,
            start_s: 0.0,
            phase: Phase::Ramp,
            prev: Ratios::default(),
            local_rose_before: false,
            ring: [Tick::default(); RING],
            ticks: 0,
            latency_s: 0.0,
            timed: false,
            latency_before_s: 0.0,
            last_ramp_s: None,
            cooldown_until_s: 0.0,
            ceiling: None,
            memory_ceiling: None,
            throttle_ceiling: None,
            seen_throttled: 0,
            base: 0,
            base_rate: 0.0,
            line_load: None,
            line_level: None,
            probe: Probe::Base,
            step: probe_step,
            backoff: 0,
            epoch: Epoch {
                started_s: 0.0,
                settle_until_s: 0.0,
                settled: None,
                jitter: 1.0,
            },
            rng: seed | 1,
        }
    }
}
