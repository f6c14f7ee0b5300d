//! [`Backoff`]: how the machine remembers throttles and spaces starts after them.
//!
//! A retry-after holds every start until it has passed, whatever else happens: the service said when it will
//! answer again. Without one, each start during a streak of throttles waits for the previous start plus the
//! streak's backoff (`backoff_base` doubling per throttle up to `backoff_max`, with jitter), so a pool above
//! a service's limit sends at most a few requests per second into it instead of a retry storm. The first
//! success ends the streak and the spacing with it.

use core::time::Duration;

use crate::config::ThrottleSettings;
use crate::time::Instant;

/// The throttle streak and the instants starts wait for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    /// Throttles since the last success.
    streak: u32,
    /// No start before this: the latest retry-after.
    retry_until: Instant,
    /// No start before this: the spacing of the current streak.
    spaced_until: Instant,
    rng: u64,
}

impl Backoff {
    pub(super) fn new(settings: &ThrottleSettings) -> Self {
        Backoff {
            streak: 0,
            retry_until: Instant::ZERO,
            spaced_until: Instant::ZERO,
            rng: settings.seed,
        }
    }

    /// The instant the next start waits for (in the past when it need not wait).
    pub(super) fn until(&self) -> Instant {
        self.retry_until.max(self.spaced_until)
    }

    /// A throttle at `now`. Returns the instant the next start waits for.
    pub(super) fn throttled(
        &mut self,
        now: Instant,
        retry_after: Option<Duration>,
        settings: &ThrottleSettings,
    ) -> Instant {
        self.streak = self.streak.saturating_add(1);
        match retry_after {
            Some(wait) => self.retry_until = self.retry_until.max(now + wait),
            None => self.spaced_until = self.spaced_until.max(now + self.wait(settings)),
        }
        self.until()
    }

    /// A task started at `now`: during a streak, the next one waits a backoff more.
    pub(super) fn started(&mut self, now: Instant, settings: &ThrottleSettings) {
        if self.streak > 0 {
            self.spaced_until = now + self.wait(settings);
        }
    }

    /// A task succeeded: the streak and its spacing end; a retry-after still holds.
    pub(super) fn succeeded(&mut self) {
        self.streak = 0;
        self.spaced_until = Instant::ZERO;
    }

    /// The current streak's wait: `base × 2^(streak − 1)` capped at `max`, drawn from its upper half.
    fn wait(&mut self, s: &ThrottleSettings) -> Duration {
        // Past 31 doublings any base is past any sensible cap; the shift must stay inside a u32.
        let doublings = self.streak.saturating_sub(1).min(31);
        let nominal = s
            .backoff_base
            .saturating_mul(1 << doublings)
            .min(s.backoff_max);
        let half = nominal / 2;
        let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.next_random() % span.saturating_add(1))
    }

    /// splitmix64: small, fast, and good enough to spread retries.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_retry_after_holds_starts_until_it_passes_even_after_a_success() {
        let s = ThrottleSettings::default();
        let mut b = Backoff::new(&s);
        assert_eq!(b.throttled(T0, Some(ms(1500)), &s), T0 + ms(1500));
        b.succeeded();
        assert_eq!(b.until(), T0 + ms(1500));
    }

    #[test]
    fn backoff_doubles_per_throttle_within_jitter_and_stops_at_the_cap() {
        let s = ThrottleSettings {
            backoff_base: ms(100),
            backoff_max: ms(400),
            seed: 7,
        };
        let mut b = Backoff::new(&s);
        for (streak, nominal) in [(1, 100), (2, 200), (3, 400), (4, 400), (20, 400)] {
            while b.streak < streak - 1 {
                b.streak += 1;
            }
            b.spaced_until = Instant::ZERO;
            let wait = b.throttled(T0, None, &s).saturating_duration_since(T0);
            assert!(
                wait >= ms(nominal) / 2 && wait <= ms(nominal),
                "streak {streak}: {wait:?} outside [{}, {nominal}] ms",
                nominal / 2
            );
        }
    }

    #[test]
    fn starts_during_a_streak_are_spaced_and_a_success_ends_the_spacing() {
        let s = ThrottleSettings::default();
        let mut b = Backoff::new(&s);
        b.throttled(T0, None, &s);
        let at = T0 + ms(100);
        b.started(at, &s);
        assert!(
            b.until() > at,
            "a start during a streak pushes the next one out"
        );
        b.succeeded();
        assert_eq!(b.until(), Instant::ZERO);
        b.started(at, &s);
        assert_eq!(b.until(), Instant::ZERO, "no spacing without a streak");
    }
}
