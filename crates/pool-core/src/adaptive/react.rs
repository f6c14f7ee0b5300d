//! The adaptive policy's reactions after the ramp: cuts on fresh overload and the throughput hill-climb.

use crate::scale::{Scale, ScaleInput};

use super::{AdaptivePolicy, Phase, Probe, ceil_mul, clamp, floor_mul, why};

impl AdaptivePolicy {
    pub(super) fn on_overload(
        &mut self,
        i: &ScaleInput<'_>,
        now_s: f64,
        memory: bool,
        client: bool,
        severe: bool,
    ) -> Scale {
        let s = self.settings;
        if now_s < self.state.cooldown_until_s {
            self.new_epoch(now_s);
            return self.scale(i.desired, why::WAIT_CUT);
        }
        // The level that caused it: what ran over the last ticks (the start gate may already have let
        // `current` drain below it), never above desired.
        let recent = self.state.ring[..3]
            .iter()
            .map(|t| t.current)
            .max()
            .unwrap_or(0);
        let level = recent.min(i.desired).max(1);
        let st = &mut self.state;
        // The signals lag a cut by a tick or two (in-flight tasks, the probes' periods): wait at least that.
        st.cooldown_until_s = now_s + clamp(st.latency_s, MIN_COOLDOWN_S, 60.0);
        if memory {
            st.memory_ceiling = Some((level, now_s));
        }
        let failed_probe = st.phase == Phase::Climb && st.base < level && st.base >= i.min;
        let (new, reason) = if failed_probe && !memory {
            // A probe above the known-good level brought overload: go back to it, probe smaller steps, and
            // wait longer before the next probe.
            st.ceiling = Some(level);
            st.step = (st.step * 0.5).max(0.0);
            st.backoff = (st.backoff.saturating_mul(2)).clamp(s.hold_epochs, MAX_BACKOFF);
            // The good level may itself be past the best one: probe below it before holding there.
            let base = st.base;
            let down = base.saturating_sub(ceil_mul(base, s.probe_step).max(1));
            if down >= i.min && down < base {
                st.probe = Probe::Down(down);
                (down, why::BACK_AND_DOWN)
            } else {
                st.probe = Probe::Hold(st.backoff);
                (base, why::BACK_TO_GOOD)
            }
        } else {
            let factor = if memory || severe {
                s.memory_cut_factor
            } else {
                s.cut_factor
            };
            // Leaving the ramp, the signals lag the growth by a tick or two: cut from what ran then.
            let from = if st.phase == Phase::Ramp && st.ring[2].current > 0 {
                st.ring[2].current.min(level)
            } else {
                level
            };
            let new = floor_mul(from, factor).max(i.min);
            st.ceiling = Some(level);
            st.base = new;
            st.step = s.probe_step;
            st.backoff = s.hold_epochs;
            st.probe = Probe::Base;
            if !memory && !client {
                st.line_load = i.cpu_load.filter(|l| *l >= LOADED);
            }
            st.line_level = None;
            let reason = if memory {
                why::CUT_MEMORY
            } else if client {
                why::CUT_CLIENT
            } else {
                why::CUT_LOCAL
            };
            (new, reason)
        };
        st.phase = Phase::Climb;
        self.new_epoch(now_s);
        self.scale(new, reason)
    }

    pub(super) fn climb(
        &mut self,
        i: &ScaleInput<'_>,
        now_s: f64,
        memory_cap: Option<usize>,
    ) -> Scale {
        let s = self.settings;
        let Some(rate) = self.epoch_rate(now_s, i.succeeded_total) else {
            return self.scale(i.desired, why::MEASURING);
        };
        let st = &mut self.state;
        let base = st.base.clamp(i.min, i.max);
        let (next, reason) = match st.probe {
            Probe::Base => {
                st.base_rate = rate;
                self.next_up(base, i, memory_cap)
            }
            Probe::Up(level) => {
                let gain = level as f64 / base.max(1) as f64 - 1.0;
                let required = (s.gain_share * gain).min(s.max_required_gain);
                if rate >= st.base_rate * (1.0 + required) {
                    let above_ceiling = st.ceiling.is_some_and(|c| level > c);
                    st.base = level;
                    st.base_rate = rate;
                    st.backoff = s.hold_epochs;
                    if above_ceiling {
                        // More than the old ceiling runs without overload and pays: capacity grew.
                        st.ceiling = None;
                        st.phase = Phase::Ramp;
                        st.step = s.probe_step;
                        st.probe = Probe::Base;
                        return self.scale(level, why::CAPACITY_GREW);
                    }
                    st.step = (st.step * 2.0).min(MAX_STEP);
                    let (next, _) = self.next_up(level, i, memory_cap);
                    (next, why::ACCEPT_UP)
                } else {
                    // Too far or no gain: the next probe up is smaller.
                    st.step *= 0.5;
                    let down = base.saturating_sub(ceil_mul(base, s.probe_step).max(1));
                    let below_line = st.line_level.is_some_and(|l| base <= l);
                    if down >= i.min && down < base && !below_line {
                        st.probe = Probe::Down(down);
                        (down, why::PROBE_DOWN)
                    } else {
                        st.probe = Probe::Hold(st.backoff);
                        (base, why::HOLD)
                    }
                }
            }
            Probe::Down(level) => {
                if rate >= st.base_rate * (1.0 + DOWN_MARGIN) {
                    // Less concurrency, more throughput: past the knee. Keep going down.
                    st.base = level;
                    st.base_rate = rate;
                    st.ceiling = Some(st.ceiling.map_or(base, |c| c.min(base)));
                    let down = level.saturating_sub(ceil_mul(level, s.probe_step).max(1));
                    if down >= i.min && down < level {
                        st.probe = Probe::Down(down);
                        (down, why::ACCEPT_DOWN)
                    } else {
                        st.probe = Probe::Hold(st.backoff);
                        (level, why::ACCEPT_DOWN)
                    }
                } else {
                    st.backoff = (st.backoff.saturating_mul(2)).clamp(s.hold_epochs, MAX_BACKOFF);
                    st.probe = Probe::Hold(st.backoff);
                    (base, why::HOLD)
                }
            }
            Probe::Hold(0) => {
                st.probe = Probe::Base;
                (base, why::HOLD)
            }
            Probe::Hold(n) => {
                st.probe = Probe::Hold(n - 1);
                (base, why::HOLD)
            }
        };
        self.new_epoch(now_s);
        self.scale(next, reason)
    }

    /// The next level above `base` (bisecting towards a known ceiling), and sets the probe to measure it.
    pub(super) fn next_up(
        &mut self,
        base: usize,
        i: &ScaleInput<'_>,
        memory_cap: Option<usize>,
    ) -> (usize, &'static str) {
        let s = self.settings;
        let st = &mut self.state;
        let mut up = base + ceil_mul(base, st.step).max(1);
        if let Some(c) = st.ceiling {
            if base + 1 < c && up >= c {
                up = base + (c - base) / 2;
            } else if base + 1 >= c {
                // At the ceiling: probe past it by the first step only, not a doubled one.
                up = up.min(base + ceil_mul(base, s.probe_step).max(1));
            }
        }
        if let Some(cap) = memory_cap {
            up = up.min(cap);
        }
        if let Some(cap) = self.load_cap(i, None, i.memory_load) {
            up = up.min(cap.max(base));
        }
        let st = &mut self.state;
        let up = up.min(i.max);
        if up <= base {
            st.probe = Probe::Hold(st.backoff.max(s.hold_epochs));
            return (base, why::HOLD);
        }
        st.probe = Probe::Up(up);
        (up, why::PROBE_UP)
    }
}

/// The shortest wait between two cuts, seconds.
pub(super) const MIN_COOLDOWN_S: f64 = 2.0;
/// A CPU load at least this high (of its line) means CPU bounds the pool.
pub(super) const LOADED: f64 = 0.9;
/// CPU load falling below this share of the load that bounded the pool, while the pool stays busy, means
/// capacity grew.
pub(super) const CAPACITY_GREW_LOAD: f64 = 0.6;

/// The longest hold, in epochs, between probes that keep failing.
pub(super) const MAX_BACKOFF: u32 = 32;
/// The largest probe step, as a share of the base.
pub(super) const MAX_STEP: f64 = 0.5;
/// A probe down is kept only if throughput rose by this share (it must beat noise, not just tie).
pub(super) const DOWN_MARGIN: f64 = 0.02;
