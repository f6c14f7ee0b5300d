//! [`AdaptivePolicy`]: a goodput-seeking scaling policy that fuses resource signals with throughput.
//!
//! Crawlee's controller moves desired concurrency by 5 % per tick with no throughput objective: it is slow to
//! ramp, slow to back off, and keeps climbing past the point where throughput falls. This policy keeps the
//! same inputs (the historical [`SystemInfo`](crate::SystemInfo) and the finished-task counter) and decides differently:
//!
//! - **Ramp.** From the start, grow desired geometrically (`ramp_factor` per tick) while no signal shows fresh
//!   overload and the pool is busy (`current >= desired × demand_ratio`). The ramp ends at the first
//!   overload, or at a *knee*: concurrency rose but completions per second did not follow (Little's law:
//!   throughput = concurrency / latency, so a flat throughput under rising concurrency means latency rose).
//!   Each step is also capped by a projection from the latest CPU and memory loads (`ScaleInput::cpu_load`,
//!   `memory_load`: the reading over its overload line), so the ramp ends just under the line.
//! - **Cut.** Fresh overload cuts desired multiplicatively from what is actually running (`cut_factor`;
//!   `memory_cut_factor` for memory, which ends in an OOM), at most once per estimated task latency, never
//!   below `min`. The level at which overload appeared becomes the *ceiling*.
//! - **Climb.** After the ramp, hill-climb on measured throughput in epochs (settle for one task latency,
//!   then count completions): probe one step up; keep it only if completions per second rose by at least half
//!   of the proportional gain; otherwise probe one step down and keep that only if throughput did not fall;
//!   otherwise hold for a few epochs. Below a known ceiling the pool returns straight to `ceiling ×
//!   ceiling_margin`; a probe above the ceiling that raises throughput without overload means capacity grew,
//!   and the ramp resumes. Probing above a memory ceiling waits until it has aged (`memory_ceiling_ttl`).
//! - **Throttles.** A task that ends throttled (or a throttle a handle reports) brings the tick forward, within
//!   one task latency (at least 100 ms) of the last one ([`ScalingPolicy::throttle_reaction`]). The fewest tasks
//!   running at a throttle, less one, becomes the *throttle ceiling*: desired drops to it at once and never
//!   rises above it; desired holds there unless the host's own signals (memory, CPU, lag) cut, and after 10 s
//!   without a throttle the ceiling is probed one task higher. Throughput is
//!   goodput: only successful tasks count (`ScaleInput::succeeded_total`).
//! - **Demand.** Nothing grows while the pool cannot fill its desired concurrency (no tasks ready).
//! - **Gate.** Through [`ScalingPolicy::admit_under_overload`], the start gate keeps admitting up to desired
//!   under CPU, event-loop, client or custom overload (the policy's throughput judgement decides instead of a
//!   collapse to `min`), and refuses above `min` under memory overload, which ends in an OOM.
//!
//! During the climb a rising CPU share no longer cuts by itself: on a CPU-bound workload the best level sits
//! at full CPU, and throughput decides.
//!
//! "Fresh overload" is read from the historical verdicts the machine hands every policy: a signal's
//! overloaded share of the history *rising* since the previous tick means new overloaded snapshots arrived.
//! Memory and client (429) signals count at once; CPU, event loop and custom signals need two rising ticks in
//! a row (or Crawlee's own verdict) so that one noisy reading does not cut.
//!
//! The policy is tuned for a 1 s autoscale interval (see `docs/algorithm.md`); its steps are per tick, so it
//! also works, more slowly, at Crawlee's default of 10 s. It is deterministic: probe jitter comes from a
//! seeded generator, and `reset` restores the initial state.
//!
//! # Examples
//!
//! ```
//! use pool_core::adaptive::AdaptivePolicy;
//! use pool_core::{ConcurrencySettings, Pool, PoolConfig};
//! use core::time::Duration;
//!
//! let mut config = PoolConfig::default();
//! config.scaling.autoscale_interval = Duration::from_secs(1);
//! let pool = Pool::with_policy(config, AdaptivePolicy::default()).unwrap();
//! # let _ = pool;
//! ```

//!
//! The policy's parts: `settings.rs` (the knobs), `state.rs` (what it remembers between ticks),
//! `observe.rs` (what a tick teaches: the latency and the two knee checks), this file (the decision and the
//! ramp), `react.rs` (cuts on overload and the throughput climb).

mod observe;
mod react;
mod settings;
mod state;
#[cfg(test)]
mod tests;

use core::time::Duration;

use crate::scale::{Scale, ScaleInput, ScaleReason, ScalingPolicy};
use crate::status::{LoadRatioInfo, SignalId, SignalSet};
use crate::time::Instant;

use react::{CAPACITY_GREW_LOAD, LOADED};
pub use settings::AdaptiveSettings;
use state::{Epoch, Phase, Probe, Ratios, State};

/// A goodput-seeking policy: fast geometric ramp, multiplicative cuts on fresh overload, and throughput
/// hill-climbing. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptivePolicy {
    settings: AdaptiveSettings,
    state: State,
}

impl Default for AdaptivePolicy {
    fn default() -> Self {
        AdaptivePolicy::new(AdaptiveSettings::default())
    }
}

/// Why the adaptive policy decided what it did; each maps to a [`ScaleReason::Policy`] text.
/// The shortest tick of the ramp.
const RAMP_TICK: Duration = Duration::from_millis(250);
/// Tasks shorter than this pace the ramp by their latency.
const FAST_RAMP_BELOW: Duration = Duration::from_millis(400);
/// How long the first ramp ticks come every 250 ms while no task has been timed, seconds.
const FIRST_SECOND: f64 = 1.0;
/// Growth per tick of a ramp paced by a short task latency.
const PACED_RAMP_FACTOR: f64 = 1.5;
/// The latency knee fires when a tick counts fewer than this share of the successes Little's law expects.
const LATENCY_KNEE_SHARE: f64 = 0.7;
/// The fewest expected successes a latency-knee check judges on: fewer are noise.
const KNEE_MIN_COMPLETIONS: f64 = 20.0;
/// The autoscale interval the policy is tuned for.
const PREFERRED_INTERVAL: Duration = Duration::from_secs(1);
/// How often an idle pool samples, probes and ticks.
const IDLE_INTERVAL: Duration = Duration::from_secs(5);
/// The soonest a throttle may bring a tick forward.
const THROTTLE_REACTION: Duration = Duration::from_millis(100);
/// A throttle ceiling is probed one task higher after this many quiet seconds.
const THROTTLE_PROBE_S: f64 = 10.0;

mod why {
    pub(super) const RAMP: &str = "adaptive: ramp (no fresh overload, pool busy)";
    pub(super) const RAMP_AT_MEMORY_CEILING: &str = "adaptive: ramp held below the memory ceiling";
    pub(super) const KNEE: &str = "adaptive: knee (throughput stopped following concurrency), back to the last efficient level";
    pub(super) const LATENCY_KNEE: &str = "adaptive: knee (fewer successes than Little's law expects at the timed latency: the last step slowed every task), back to the level before it";
    pub(super) const CUT_MEMORY: &str = "adaptive: cut (memory overload rising)";
    pub(super) const CUT_CLIENT: &str = "adaptive: cut (client 429s rising)";
    pub(super) const CUT_LOCAL: &str = "adaptive: cut (cpu/event-loop overload rising)";
    pub(super) const WAIT_CUT: &str =
        "adaptive: overload, waiting one task latency for the last cut";
    pub(super) const NO_DEMAND: &str = "adaptive: hold (pool not busy: no demand for more)";
    pub(super) const MEASURING_LATENCY: &str =
        "adaptive: hold (measuring the task latency that paces the ramp)";
    pub(super) const MEASURING: &str = "adaptive: hold (measuring throughput)";
    pub(super) const PROBE_UP: &str = "adaptive: probe up";
    pub(super) const BACK_TO_GOOD: &str =
        "adaptive: probe brought overload; back to the last good level, smaller steps, longer hold";
    pub(super) const ACCEPT_UP: &str = "adaptive: probe up kept (throughput rose)";
    pub(super) const CAPACITY_GREW: &str =
        "adaptive: probe past the ceiling raised throughput; ramp resumes";
    pub(super) const PROBE_DOWN: &str = "adaptive: probe up rejected (throughput flat); probe down";
    pub(super) const ACCEPT_DOWN: &str = "adaptive: probe down kept (throughput did not fall)";
    pub(super) const HOLD: &str = "adaptive: hold at the best level";
    pub(super) const AT_MAX: &str = "adaptive: at max";
    pub(super) const BACK_AND_DOWN: &str = "adaptive: probe brought overload; probe below the last good level, smaller steps, longer hold";
    pub(super) const CAPACITY_GREW_LOAD: &str =
        "adaptive: cpu load fell well below the line that bounded the pool; ramp resumes";
    pub(super) const AT_LINE: &str =
        "adaptive: ramp reached a cpu/memory line; climbing on throughput from here";
    pub(super) const THROTTLED: &str =
        "adaptive: throttled downstream; desired drops to the most tasks the service took";
    pub(super) const AT_THROTTLE_CEILING: &str =
        "adaptive: held at the level the service last throttled above";
}

impl AdaptivePolicy {
    /// A policy with these settings.
    pub fn new(settings: AdaptiveSettings) -> Self {
        AdaptivePolicy {
            state: State::new(settings.seed, settings.probe_step),
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &AdaptiveSettings {
        &self.settings
    }

    /// The level at which overload last appeared, if any.
    pub fn ceiling(&self) -> Option<usize> {
        self.state.ceiling
    }

    /// The estimated task latency (Little's law: concurrency / completions per second), once known.
    pub fn latency_estimate(&self) -> Option<Duration> {
        (self.state.latency_s > 0.0).then(|| Duration::from_secs_f64(self.state.latency_s))
    }

    fn jitter(&mut self) -> f64 {
        // xorshift64: deterministic, tiny, good enough to de-synchronise probes.
        let mut x = self.state.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.rng = x;
        0.8 + 0.4 * ((x >> 11) as f64 / (1u64 << 53) as f64)
    }

    fn new_epoch(&mut self, now_s: f64) {
        let settle = clamp(self.state.latency_s, 1.0, 120.0);
        let jitter = self.jitter();
        self.state.epoch = Epoch {
            started_s: now_s,
            settle_until_s: now_s + settle,
            settled: None,
            jitter,
        };
    }

    /// Throughput measured by the epoch, if it is complete at `now_s`.
    fn epoch_rate(&mut self, now_s: f64, finished: u64) -> Option<f64> {
        let s = &self.settings;
        let e = &mut self.state.epoch;
        if now_s < e.settle_until_s {
            return None;
        }
        let Some((t0, f0)) = e.settled else {
            e.settled = Some((now_s, finished));
            return None;
        };
        let elapsed = now_s - t0;
        let count = finished.saturating_sub(f0);
        let latency = self.state.latency_s;
        let min = s.min_epoch.as_secs_f64().max(latency) * e.jitter;
        let max = s.max_epoch.as_secs_f64().max(2.0 * latency) * e.jitter;
        if (elapsed >= min && count >= s.epoch_completions) || elapsed >= max {
            Some(count as f64 / elapsed.max(1e-9))
        } else {
            None
        }
    }

    /// The highest level at which the given loads, projected in proportion to the running tasks (as if
    /// nothing else used the resource, which overestimates), stay at their targets' share of their lines.
    fn load_cap(&self, i: &ScaleInput<'_>, cpu: Option<f64>, memory: Option<f64>) -> Option<usize> {
        let s = &self.settings;
        // The machine says how many tasks ran when the reading arrived; a reading reflects those, not the tasks
        // the last tick added since. One taken with none running says nothing about what a task uses.
        let running = i.load_running;
        if running == 0 {
            return None;
        }
        [(cpu, s.load_target), (memory, s.memory_load_target)]
            .into_iter()
            .filter_map(|(l, target)| {
                l.filter(|l| *l > 0.0)
                    .map(|l| floor_mul(running, target / l))
            })
            .min()
    }

    fn scale(&mut self, desired: usize, reason: &'static str) -> Scale {
        Scale {
            desired,
            reason: ScaleReason::Policy(reason),
        }
    }
}

fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// `ceil(n × f)` for small non-negative values.
fn ceil_mul(n: usize, f: f64) -> usize {
    let x = n as f64 * f;
    let t = x as usize;
    if (t as f64) < x { t + 1 } else { t }
}

/// `floor(n × f)` for small non-negative values.
fn floor_mul(n: usize, f: f64) -> usize {
    (n as f64 * f) as usize
}

fn rose(now: f64, before: f64) -> bool {
    now > before + 1e-9
}

fn full(info: &LoadRatioInfo) -> bool {
    info.actual_ratio >= 0.999
}

impl ScalingPolicy for AdaptivePolicy {
    fn reset(&mut self, _now: Instant) {
        self.state = State::new(self.settings.seed, self.settings.probe_step);
    }

    /// Under CPU, event-loop, client or custom overload the policy answers through `desired` (it cuts at
    /// the next tick), so the gate keeps admitting up to `desired` instead of draining the pool to `min`.
    /// Under memory overload nothing above `min` starts, as in Crawlee: the next start could be the OOM.
    fn admit_under_overload(
        &self,
        overloaded: SignalSet,
        current: usize,
        min: usize,
        _desired: usize,
    ) -> bool {
        current < min || !overloaded.contains(SignalId::Memory)
    }

    fn decide(&mut self, i: &ScaleInput<'_>) -> Scale {
        // Below a known throttle ceiling the climb works as if the ceiling were the pool's max, so it never
        // probes into throttles, nor reads a probe the ceiling held back as a flat one.
        let bounded = ScaleInput {
            max: self
                .state
                .throttle_ceiling
                .map_or(i.max, |(c, _)| i.max.min(c.max(i.min))),
            ..*i
        };
        let inner = self.decide_unthrottled(&bounded);
        self.bound_by_throttles(i, inner)
    }

    fn next_tick(&self) -> Option<Duration> {
        // The ramp grows per task latency, as TCP's slow start grows per round trip: each step is judged
        // once the tasks it started have had time to end, and no sooner than every 250 ms.
        // Only short tasks pace it: with tasks near the 1 s tick, the regular tick is already per latency.
        let st = &self.state;
        if st.phase != Phase::Ramp {
            return None;
        }
        if !st.timed {
            // Until the first timed success, tick every 250 ms through the run's first second, so short tasks
            // pace the ramp from their first completions; those ticks do not grow it (see `ramp_gate`).
            return (st.started && st.ring[0].at_s - st.start_s < FIRST_SECOND)
                .then_some(RAMP_TICK);
        }
        let latency = self.latency_estimate()?;
        (latency < FAST_RAMP_BELOW).then(|| latency.max(RAMP_TICK))
    }

    /// The policy's steps are per tick and were tuned at 1 s (`docs/algorithm.md`).
    fn preferred_interval(&self) -> Option<Duration> {
        Some(PREFERRED_INTERVAL)
    }

    /// An idle pool has nothing to decide and nothing to measure for: every periodic job runs every 5 s.
    fn idle_interval(&self) -> Option<Duration> {
        Some(IDLE_INTERVAL)
    }

    fn throttle_reaction(&self) -> Option<Duration> {
        // Within one task latency of a throttle, and no sooner than 100 ms after the last tick.
        Some(
            self.latency_estimate()
                .unwrap_or(THROTTLE_REACTION)
                .max(THROTTLE_REACTION),
        )
    }
}

impl AdaptivePolicy {
    /// The service behind the tasks throttled: the level it throttled at becomes a ceiling, and desired drops
    /// just below it at once. Between throttles desired stays at or below the ceiling, which a quiet spell
    /// lets creep up by one task, so a service whose limit rose is found again.
    fn bound_by_throttles(&mut self, i: &ScaleInput<'_>, s: Scale) -> Scale {
        let now_s = i.now.as_nanos() as f64 / 1e9;
        let st = &mut self.state;
        let fresh = i.throttled_total > st.seen_throttled;
        st.seen_throttled = i.throttled_total;
        // Once throttles are answered here, the client signal's own cut (a share of what runs) would only cut
        // below the level the service takes: the ceiling decides instead.
        let client_cut = s.reason == ScaleReason::Policy(why::CUT_CLIENT);
        if fresh {
            let level = i.throttle_level.unwrap_or(i.current + 1);
            // A known ceiling moves down by one task per throttled tick at most: a probe that drew a throttle
            // goes back where it came from, and one late or low reading cannot collapse the pool.
            let ceiling = match st.throttle_ceiling {
                Some((known, _)) => level.saturating_sub(1).max(known.saturating_sub(1)),
                None => level.saturating_sub(1),
            }
            .max(i.min);
            st.throttle_ceiling = Some((ceiling, now_s));
            let desired = if client_cut { i.desired } else { s.desired };
            return self.scale(desired.min(ceiling), why::THROTTLED);
        }
        let Some((mut ceiling, since)) = st.throttle_ceiling else {
            return s;
        };
        if now_s - since >= THROTTLE_PROBE_S {
            ceiling += 1;
            st.throttle_ceiling = Some((ceiling, now_s));
        }
        // The service's limit is known: hold at it. Only the host's own signals (memory, CPU, lag) cut below;
        // the climb's probes around it would only trade goodput for noise.
        let host_cut = [why::CUT_MEMORY, why::CUT_LOCAL, why::WAIT_CUT]
            .iter()
            .any(|w| s.reason == ScaleReason::Policy(w));
        if host_cut && !client_cut {
            return s;
        }
        self.scale(ceiling.max(i.min), why::AT_THROTTLE_CEILING)
    }

    fn decide_unthrottled(&mut self, i: &ScaleInput<'_>) -> Scale {
        let now_s = i.now.as_nanos() as f64 / 1e9;
        if !self.state.started {
            self.state.started = true;
            self.state.start_s = now_s;
        }
        self.observe(i, now_s);
        let s = self.settings;
        let h = i.historical;

        // Fresh overload: a signal's overloaded share of the history rose since the last tick (or is total).
        let now_r = Ratios::of(h);
        let prev = self.state.prev;
        self.state.prev = now_r;
        let memory =
            rose(now_r.memory, prev.memory) || (full(&h.memory) && h.memory.is_overloaded());
        let client =
            rose(now_r.client, prev.client) || (full(&h.client) && h.client.is_overloaded());
        // In the climb, CPU is judged by throughput (the best level often sits at full CPU), not by its line.
        let ramping = self.state.phase == Phase::Ramp;
        let cpu_rose = ramping && rose(now_r.cpu, prev.cpu);
        let mut local_rose = cpu_rose || rose(now_r.event_loop, prev.event_loop);
        for (a, b) in now_r.custom.iter().zip(prev.custom.iter()) {
            local_rose |= rose(*a, *b);
        }
        let local_verdict = (ramping && h.cpu.is_overloaded())
            || h.event_loop.is_overloaded()
            || h.custom.iter().any(|c| c.info.is_overloaded());
        // One rising tick is enough while probing above the known-good level (the probe is the suspect);
        // otherwise a local signal must rise twice in a row or be overloaded by Crawlee's own verdict, so a
        // single noisy reading does not cut.
        let probing = self.state.phase == Phase::Climb && matches!(self.state.probe, Probe::Up(_));
        let local = local_rose && (probing || self.state.local_rose_before || local_verdict);
        self.state.local_rose_before = local_rose;

        if memory || client || local {
            // CPU and scheduler lag rising together means demand is well past capacity: cut deeper.
            let severe = rose(now_r.cpu, prev.cpu) && rose(now_r.event_loop, prev.event_loop);
            return self.on_overload(i, now_s, memory, client, severe);
        }

        // Demand: grow only if the pool fills what it has.
        let busy = i.current >= floor_mul(i.desired, s.demand_ratio);
        if !busy {
            self.new_epoch(now_s);
            return self.scale(i.desired, why::NO_DEMAND);
        }
        let memory_cap = match self.state.memory_ceiling {
            Some((level, at)) if now_s - at < s.memory_ceiling_ttl.as_secs_f64() => {
                Some(level.saturating_sub(1).max(i.min))
            }
            _ => None,
        };

        match self.state.phase {
            Phase::Ramp => {
                let knee = match self.latency_knee() {
                    Some(level) => Some((level, why::LATENCY_KNEE)),
                    None => self.knee().map(|level| (level, why::KNEE)),
                };
                if let Some((level, reason)) = knee {
                    let st = &mut self.state;
                    st.phase = Phase::Climb;
                    st.base = level.max(i.min);
                    st.probe = Probe::Base;
                    st.step = s.probe_step;
                    let base = st.base;
                    self.new_epoch(now_s);
                    return self.scale(base, reason);
                }
                if i.desired >= i.max {
                    return self.scale(i.max, why::AT_MAX);
                }
                // Before the tasks are timed, the ramp grows once a second, as it would on regular ticks.
                if !self.state.timed
                    && self
                        .state
                        .last_ramp_s
                        .is_some_and(|at| now_s - at < FIRST_SECOND - 0.01)
                {
                    return self.scale(i.desired, why::MEASURING_LATENCY);
                }
                self.state.last_ramp_s = Some(now_s);
                // Paced by a short task latency, each step is judged within a few hundred milliseconds, so
                // the ramp may grow as slow start does, by half per latency.
                let factor = if self.state.timed && self.next_tick().is_some() {
                    s.ramp_factor.max(PACED_RAMP_FACTOR)
                } else {
                    s.ramp_factor
                };
                let mut next = ceil_mul(i.desired, factor).max(i.desired + 1);
                let mut reason = why::RAMP;
                let cap = self.load_cap(i, i.cpu_load, i.memory_load);
                if let Some(cap) = cap
                    && cap <= i.desired
                {
                    // At a resource line: the ramp ends, and the climb judges by throughput from here.
                    let st = &mut self.state;
                    st.phase = Phase::Climb;
                    st.line_load = i.cpu_load.filter(|l| *l >= LOADED);
                    st.base = cap.clamp(i.min, i.max);
                    st.line_level = st.line_load.map(|_| st.base);
                    st.probe = Probe::Base;
                    st.step = s.probe_step;
                    let base = st.base;
                    self.new_epoch(now_s);
                    return self.scale(base, why::AT_LINE);
                }
                if let Some(cap) = cap {
                    next = next.min(cap);
                }
                if let Some(cap) = memory_cap
                    && next > cap
                {
                    next = cap.max(i.desired);
                    reason = why::RAMP_AT_MEMORY_CEILING;
                }
                self.scale(next.min(i.max), reason)
            }
            Phase::Climb => {
                if let (Some(was), Some(now)) = (self.state.line_load, i.cpu_load)
                    && now < CAPACITY_GREW_LOAD * was
                {
                    // The pool is as busy as before, but CPU use fell well below the line that bounded
                    // it: capacity grew. Ramp again from here.
                    let st = &mut self.state;
                    st.line_load = None;
                    st.ceiling = None;
                    st.phase = Phase::Ramp;
                    st.step = s.probe_step;
                    st.probe = Probe::Base;
                    return self.scale(i.desired, why::CAPACITY_GREW_LOAD);
                }
                self.climb(i, now_s, memory_cap)
            }
        }
    }
}
