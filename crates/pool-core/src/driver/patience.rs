//! [`Patience`]: whether waiting a few microseconds for the other side (the driver for a task's end, a lane
//! for its next job) has been paying off, and [`relax`], one turn of such a wait.
//!
//! A wait that keeps missing is benched: on a current-thread runtime the lanes run on the driver's own
//! thread, so a driver that waits for them only delays them, and a lane that waits for the driver only
//! delays the driver. After [`Patience::BENCH_AFTER`] misses in a row the waiter waits only on every
//! [`Patience::PROBE_EVERY`]th chance, and a hit puts it back at once. On a multi-thread runtime the waits
//! hit about eight times in nine (no-op tasks on workers, 2 cores), and sixteen misses in a row are
//! rare enough there that a benched wait is soon back.

/// A wait's record of misses.
#[derive(Debug, Default)]
pub(crate) struct Patience {
    misses: u32,
    skipped: u32,
}

impl Patience {
    /// Misses in a row after which the wait is benched.
    pub(crate) const BENCH_AFTER: u32 = 16;
    /// A benched wait still waits on one chance in this many, to see whether waiting pays again.
    pub(crate) const PROBE_EVERY: u32 = 64;

    /// Waits, unless the wait is benched, up to `turns` turns of [`relax`] for `done`; says whether it came.
    #[inline]
    pub(crate) fn wait(&mut self, turns: u32, mut done: impl FnMut() -> bool) -> bool {
        if !self.try_now() {
            return false;
        }
        let hit = (0..turns).any(|_| {
            relax();
            done()
        });
        self.record(hit);
        hit
    }

    /// Whether to wait at this chance.
    #[inline]
    fn try_now(&mut self) -> bool {
        if self.misses < Self::BENCH_AFTER {
            return true;
        }
        self.skipped += 1;
        if self.skipped < Self::PROBE_EVERY {
            return false;
        }
        self.skipped = 0;
        true
    }

    /// Records how a wait ended.
    #[inline]
    fn record(&mut self, hit: bool) {
        self.misses = if hit {
            0
        } else {
            self.misses.saturating_add(1)
        };
    }
}

/// One turn of a wait that expects its condition within microseconds: the thread yields to the OS where there
/// is one (handing the core to a thread that has work, the pool's own tasks included), and spins once where
/// there is none.
#[inline]
fn relax() {
    #[cfg(all(feature = "std", not(loom)))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(any(feature = "std", loom)))]
    core::hint::spin_loop();
}

#[cfg(test)]
mod tests {
    use super::Patience;

    #[test]
    fn a_wait_that_keeps_missing_is_benched_probed_and_restored_by_a_hit() {
        let mut p = Patience::default();
        for _ in 0..Patience::BENCH_AFTER {
            assert!(p.try_now());
            p.record(false);
        }
        let tries = (0..Patience::PROBE_EVERY * 2)
            .filter(|_| p.try_now())
            .count();
        assert_eq!(
            tries,
            2,
            "a benched wait probes once per {}",
            Patience::PROBE_EVERY
        );
        p.record(true);
        assert!(p.try_now() && p.try_now(), "a hit ends the bench");
    }
}
