//! [`Backoff`]: how the machine remembers throttles and spaces starts after them.
//!
//! A retry-after holds every start until it has passed, whatever else happens: the service said when it will
//! answer again. Without one, each start during a streak of throttles that would bring the running count back
//! to the level the service refused waits for the previous such start plus the streak's backoff (`backoff_base` doubling per throttle up to `backoff_max`, with jitter), so a pool above
//! a service's limit sends at most a few requests per second into it instead of a retry storm. Starts below
//! that level are not spaced: the service took that many, and holding them would only drain the pool (on a
//! real connection cap, holding every start emptied it between bursts of 40). The first
//! success of a task started since the streak began ends the streak and the spacing with it. A task started
//! before says nothing about the service now: while a pool sits above a connection cap, its older tasks
//! keep succeeding and every new one is refused. (A success the driver did not time ends the streak too.)

use core::time::Duration;

use crate::config::ThrottleSettings;
use crate::time::Instant;

/// The throttle streak and the instants starts wait for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    /// Throttles since the last success.
    streak: u32,
    /// When the streak began.
    streak_since: Instant,
    /// When the streak last grew.
    grew_at: Instant,
    /// No start before this: the latest retry-after.
    retry_until: Instant,
    /// No start that brings the running count to `level` or more before this: the spacing of the streak.
    spaced_until: Instant,
    /// The tasks running (the refused one included) at the throttle that last grew the streak.
    level: usize,
    rng: u64,
}

impl Backoff {
    pub(super) fn new(settings: &ThrottleSettings) -> Self {
        Backoff {
            streak: 0,
            streak_since: Instant::ZERO,
            grew_at: Instant::ZERO,
            level: 0,
            retry_until: Instant::ZERO,
            spaced_until: Instant::ZERO,
            rng: settings.seed,
        }
    }

    /// The instant the next start waits for, with `current` tasks running (in the past when it need not
    /// wait).
    pub(super) fn until(&self, current: usize) -> Instant {
        if current + 1 >= self.level {
            self.retry_until.max(self.spaced_until)
        } else {
            self.retry_until
        }
    }

    /// A throttle at `now` of a task that started at `started` (when known), with `level` tasks running, the
    /// refused one included. Returns the instant a start at that level waits for.
    ///
    /// Only a task started since the streak last grew makes it grow again: a burst of tasks started together
    /// and refused together is one throttle, not a dozen doublings (as TCP cuts once per round trip).
    pub(super) fn throttled(
        &mut self,
        now: Instant,
        started: Option<Instant>,
        level: usize,
        retry_after: Option<Duration>,
        settings: &ThrottleSettings,
    ) -> Instant {
        if self.streak == 0 {
            self.streak_since = now;
            self.level = level;
        }
        // The fewest running at a refusal of the streak is the level starts are spaced at: the later refusals
        // of a burst see the burst's earlier ones gone.
        self.level = self.level.min(level);
        if self.streak > 0 && started.is_some_and(|at| at < self.grew_at) {
            if let Some(wait) = retry_after {
                self.retry_until = self.retry_until.max(now + wait);
            }
            return self.retry_until.max(self.spaced_until);
        }
        self.grew_at = now;
        self.streak = self.streak.saturating_add(1);
        match retry_after {
            Some(wait) => self.retry_until = self.retry_until.max(now + wait),
            None => self.spaced_until = self.spaced_until.max(now + self.wait(settings)),
        }
        self.retry_until.max(self.spaced_until)
    }

    /// A task started at `now`, leaving `running` tasks running: during a streak, a start at or above the
    /// refused level pushes the next such one out by a backoff.
    pub(super) fn started(&mut self, now: Instant, running: usize, settings: &ThrottleSettings) {
        if self.streak > 0 && running >= self.level {
            self.spaced_until = now + self.wait(settings);
        }
    }

    /// A task that started at `started` (when known) succeeded: if it started since the streak began, the
    /// streak and its spacing end; a retry-after still holds.
    pub(super) fn succeeded(&mut self, started: Option<Instant>) {
        if started.is_none_or(|at| at >= self.streak_since) {
            self.streak = 0;
            self.spaced_until = Instant::ZERO;
        }
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
        assert_eq!(b.throttled(T0, None, 1, Some(ms(1500)), &s), T0 + ms(1500));
        b.succeeded(None);
        assert_eq!(b.until(0), T0 + ms(1500));
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
            let wait = b
                .throttled(T0, None, 1, None, &s)
                .saturating_duration_since(T0);
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
        b.throttled(T0, None, 1, None, &s);
        let at = T0 + ms(100);
        b.started(at, 1, &s);
        assert!(
            b.until(0) > at,
            "a start during a streak pushes the next one out"
        );
        b.succeeded(None);
        assert_eq!(b.until(0), Instant::ZERO);
        b.started(at, 1, &s);
        assert_eq!(b.until(0), Instant::ZERO, "no spacing without a streak");
    }

    #[test]
    fn a_burst_of_tasks_started_together_and_refused_together_grows_the_streak_once() {
        let s = ThrottleSettings::default();
        let mut b = Backoff::new(&s);
        let started = T0 + ms(10);
        let at = T0 + ms(20);
        let first = b.throttled(at, Some(started), 1, None, &s);
        for _ in 0..12 {
            assert_eq!(b.throttled(at, Some(started), 1, None, &s), first);
        }
        assert_eq!(b.streak, 1);
        // A task started under the backoff and refused again is news: the streak grows.
        b.throttled(at + ms(300), Some(at + ms(200)), 1, None, &s);
        assert_eq!(b.streak, 2);
    }

    #[test]
    fn only_a_success_started_since_the_streak_began_ends_it() {
        let s = ThrottleSettings::default();
        let mut b = Backoff::new(&s);
        let at = T0 + ms(500);
        b.throttled(at, Some(at), 1, None, &s);
        b.succeeded(Some(T0 + ms(100)));
        assert!(
            b.until(0) > at,
            "an older task's success says nothing of the service now"
        );
        b.succeeded(Some(at + ms(50)));
        assert_eq!(b.until(0), Instant::ZERO);
    }

    #[test]
    fn starts_below_the_level_the_service_refused_are_not_spaced() {
        let s = ThrottleSettings::default();
        let mut b = Backoff::new(&s);
        let at = T0 + ms(100);
        // 41 were running when the service refused one: 40 is what it took.
        let until = b.throttled(at, Some(at), 41, None, &s);
        assert!(until > at);
        assert_eq!(b.until(10), Instant::ZERO, "refilling to 11 is not spaced");
        assert_eq!(b.until(39), Instant::ZERO, "nor to 40");
        assert_eq!(b.until(40), until, "the 41st waits");
        b.started(at, 20, &s);
        assert_eq!(
            b.until(40),
            until,
            "a start below the level does not push it out"
        );
    }
}
