//! What each tick teaches the adaptive policy: the task latency (timed by the driver, or inferred by Little's
//! law) and the ramp's two knee checks.

use super::state::{RING, Tick};
use super::{AdaptivePolicy, KNEE_MIN_COMPLETIONS, LATENCY_KNEE_SHARE};
use crate::scale::ScaleInput;

impl AdaptivePolicy {
    /// Records the tick in the ring and updates the latency estimate.
    pub(super) fn observe(&mut self, i: &ScaleInput<'_>, now_s: f64) {
        let st = &mut self.state;
        let tick = Tick {
            at_s: now_s,
            finished: i.succeeded_total,
            current: i.current,
        };
        st.ring.rotate_right(1);
        st.ring[0] = tick;
        st.ticks += 1;
        // The driver's timing of the tasks that succeeded since the last tick is the latency itself, known
        // from the first completions; Little's law over the ring (mean concurrency × time / completions)
        // infers it, over several ticks, when the tasks are not timed.
        if let Some(took) = i.succeeded_latency {
            let w = took.as_secs_f64();
            st.latency_before_s = st.latency_s;
            // The first timing replaces what Little's law guessed before any task had ended.
            st.latency_s = if st.timed {
                0.7 * st.latency_s + 0.3 * w
            } else {
                w
            };
            st.timed = true;
            return;
        }
        let n = st.ticks.min(RING);
        if n >= 3 {
            let old = st.ring[n - 1];
            let done = tick.finished.saturating_sub(old.finished);
            let span = tick.at_s - old.at_s;
            if done >= 5 && span > 0.0 {
                let mean_current =
                    st.ring[..n].iter().map(|t| t.current as f64).sum::<f64>() / n as f64;
                let w = mean_current * span / done as f64;
                st.latency_s = if st.timed {
                    // Timed tasks say what they take; a tick without a success says nothing new.
                    st.latency_s
                } else if st.latency_s > 0.0 {
                    0.7 * st.latency_s + 0.3 * w
                } else {
                    w
                };
            } else if done == 0 {
                // No completion yet: tasks take at least as long as the run so far.
                st.latency_s = st.latency_s.max(now_s - st.start_s);
            }
        }
    }

    /// The ramp's knee from Little's law on the last tick alone: with tasks timed at `L`, the tasks running at
    /// the previous tick complete at `current / L` a second. Far fewer successes than that means the tasks
    /// the last step added (and those that replaced the finished ones) take far longer than `L`: latency rose
    /// faster than concurrency, so throughput fell. It answers one tick after the step, before the slower
    /// tasks end, where the ring's check needs several; the level before the step is the knee.
    pub(super) fn latency_knee(&self) -> Option<usize> {
        let st = &self.state;
        if !st.timed || st.ticks < 3 {
            return None;
        }
        let (now, before) = (st.ring[0], st.ring[1]);
        let dt = now.at_s - before.at_s;
        let latency = st.latency_before_s;
        // Only where a task started at the previous tick has had time to end by this one.
        if latency <= 0.0 || dt <= 0.0 || latency > dt {
            return None;
        }
        let expected = before.current as f64 * dt / latency;
        let done = now.finished.saturating_sub(before.finished) as f64;
        (expected >= KNEE_MIN_COMPLETIONS && done < LATENCY_KNEE_SHARE * expected)
            .then_some(before.current)
    }

    /// The ramp's knee check: over the ring, did throughput follow concurrency?
    pub(super) fn knee(&self) -> Option<usize> {
        let st = &self.state;
        if st.ticks < RING {
            return None;
        }
        let r = &st.ring;
        let rate = |a: Tick, b: Tick| {
            let span = a.at_s - b.at_s;
            (span > 0.0).then(|| a.finished.saturating_sub(b.finished) as f64 / span)
        };
        let recent = rate(r[0], r[2])?;
        let older = rate(r[RING - 3], r[RING - 1])?;
        let older_count = r[RING - 3].finished.saturating_sub(r[RING - 1].finished);
        let (c_now, c_old) = (r[0].current as f64, r[RING - 3].current as f64);
        if older_count < 20 || c_old <= 0.0 || c_now < 1.2 * c_old {
            return None;
        }
        let efficiency = (recent / older) / (c_now / c_old);
        (efficiency < self.settings.knee_efficiency).then_some(r[RING - 3].current)
    }
}
