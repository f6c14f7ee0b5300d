//! Time-sorted, fixed-capacity snapshot histories and the time-weighted overload ratio.
//!
//! A snapshot is only "when" and "was it overloaded"; the rule that decides the flag lives with the signal
//! (see [`crate::status`]). Storage is a `heapless` vector, so memory stays bounded however long the pool
//! runs and no snapshot allocates.

use core::time::Duration;

use crate::time::Instant;

/// How many snapshots one history holds. [`crate::PoolConfig::validate`] rejects probe periods that would
/// need more within one history window.
pub const HISTORY_CAPACITY: usize = 128;

/// One observation of a load signal.
///
/// Packed into one `u64`: the time in nanoseconds shifted left by one, the overload flag in the low bit. That
/// keeps a history at 1 KiB and makes a sorted insert a plain integer comparison. Times beyond 2^63 ns
/// (292 years) saturate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Snapshot(u64);

impl Snapshot {
    /// A snapshot taken at `at`.
    pub fn new(at: Instant, overloaded: bool) -> Self {
        let nanos = at.as_nanos().min(u64::MAX >> 1);
        Snapshot((nanos << 1) | u64::from(overloaded))
    }
    /// When it was taken.
    pub fn at(self) -> Instant {
        Instant::from_nanos(self.0 >> 1)
    }
    /// Whether the signal was overloaded then.
    pub fn is_overloaded(self) -> bool {
        self.0 & 1 == 1
    }
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}{}",
            self.at(),
            if self.is_overloaded() { "!" } else { "" }
        )
    }
}

/// A time-sorted history of one signal's snapshots.
///
/// # Invariants
///
/// Snapshots are sorted by time; equal times keep their arrival order (a new one goes after existing ones).
#[derive(Clone, Debug, Default)]
pub struct History {
    items: heapless::Vec<Snapshot, HISTORY_CAPACITY>,
}

impl History {
    /// An empty history.
    pub const fn new() -> Self {
        History {
            items: heapless::Vec::new(),
        }
    }

    /// Inserts `snap` in time order, then drops snapshots older than `keep` before `max(now, newest)`.
    ///
    /// Readings may arrive out of order; they are placed where they belong. If the history is full, the oldest
    /// snapshot makes room, unless the new one is older still, in which case it is dropped.
    pub fn insert(&mut self, snap: Snapshot, now: Instant, keep: Duration) {
        let at = snap.at();
        let idx = self.items.partition_point(|s| s.at() <= at);
        if self.items.is_full() {
            if idx == 0 {
                return;
            }
            self.items.remove(0);
            let _ = self.items.insert(idx - 1, snap);
        } else {
            let _ = self.items.insert(idx, snap);
        }
        self.prune(now, keep);
    }

    /// Drops snapshots more than `keep` older than `max(now, newest)`; the boundary is kept (inclusive).
    pub fn prune(&mut self, now: Instant, keep: Duration) {
        let newest = self.items.last().map_or(now, |s| s.at().max(now));
        let cutoff = newest.saturating_sub(keep);
        let stale = self.items.partition_point(|s| s.at() < cutoff);
        if stale > 0 {
            // `heapless::Vec` has no `drain`; a rotate keeps this O(n) without allocating.
            self.items.rotate_left(stale);
            self.items.truncate(self.items.len() - stale);
        }
    }

    /// All snapshots, oldest first.
    pub fn as_slice(&self) -> &[Snapshot] {
        &self.items
    }

    /// Snapshots no older than `window` before `now` (inclusive) and not after `now`.
    pub fn window(&self, now: Instant, window: Duration) -> &[Snapshot] {
        let from = now.saturating_sub(window);
        let start = self.items.partition_point(|s| s.at() < from);
        let end = self.items.partition_point(|s| s.at() <= now);
        &self.items[start..end.max(start)]
    }

    /// The newest snapshot's time.
    pub fn newest(&self) -> Option<Instant> {
        self.items.last().map(|s| s.at())
    }

    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets every snapshot.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// The share of a sample's time spent overloaded, rounded to 3 decimals (ties to even).
///
/// Crawlee for Python's rule: an empty sample gives 0; a single snapshot gives 1 if it is overloaded, else 0;
/// otherwise each interval between consecutive snapshots is credited to the *later* snapshot, and the
/// result is overloaded time over total time, or 0 when all timestamps are equal.
///
/// # Examples
///
/// ```
/// use pool_core::{Instant, snapshot::{overload_ratio, Snapshot}};
///
/// let s = |t, o| Snapshot::new(Instant::from_secs(t), o);
/// // The first flag never counts; 2 of 3 seconds were overloaded.
/// assert_eq!(overload_ratio(&[s(0, true), s(1, true), s(2, false), s(3, true)]), 0.667);
/// assert_eq!(overload_ratio(&[s(5, true)]), 1.0);
/// assert_eq!(overload_ratio(&[]), 0.0);
/// ```
pub fn overload_ratio(sample: &[Snapshot]) -> f64 {
    match sample {
        [] => 0.0,
        [only] => f64::from(u8::from(only.is_overloaded())),
        _ => {
            let (mut over, mut total) = (0u128, 0u128);
            for pair in sample.windows(2) {
                let dt = u128::from(pair[1].at().as_nanos() - pair[0].at().as_nanos());
                total += dt;
                if pair[1].is_overloaded() {
                    over += dt;
                }
            }
            round_ratio_3(over, total)
        }
    }
}

/// `num / den` rounded to 3 decimals with ties to even, computed exactly in integers (no `std` float
/// rounding needed); 0 when `den` is 0.
pub(crate) fn round_ratio_3(num: u128, den: u128) -> f64 {
    if den == 0 {
        return 0.0;
    }
    let scaled = num * 1000;
    let (q, r) = (scaled / den, scaled % den);
    let q = match (2 * r).cmp(&den) {
        core::cmp::Ordering::Greater => q + 1,
        core::cmp::Ordering::Equal => q + (q & 1),
        core::cmp::Ordering::Less => q,
    };
    // `q` is at most 1000, so the conversion is exact.
    q as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64, o: bool) -> Snapshot {
        Snapshot::new(Instant::from_millis(ms), o)
    }

    #[test]
    fn out_of_order_inserts_stay_sorted() {
        let mut h = History::new();
        for (i, t) in [30u64, 0, 50, 10, 60, 20, 40].into_iter().enumerate() {
            h.insert(
                s(t, i % 2 == 0),
                Instant::from_millis(60),
                Duration::from_secs(30),
            );
        }
        let times: heapless::Vec<u64, 8> = h
            .as_slice()
            .iter()
            .map(|x| x.at().as_nanos() / 1_000_000)
            .collect();
        assert_eq!(times.as_slice(), &[0, 10, 20, 30, 40, 50, 60]);
    }

    #[test]
    fn equal_timestamps_keep_arrival_order() {
        let mut h = History::new();
        h.insert(s(5, true), Instant::from_millis(5), Duration::from_secs(30));
        h.insert(
            s(5, false),
            Instant::from_millis(5),
            Duration::from_secs(30),
        );
        assert!(h.as_slice()[0].is_overloaded());
        assert!(!h.as_slice()[1].is_overloaded());
    }

    #[test]
    fn pruning_keeps_the_inclusive_boundary() {
        let mut h = History::new();
        let now = Instant::from_secs(7200);
        for t in [0u64, 3600, 5400, 7200] {
            h.insert(
                Snapshot::new(Instant::from_secs(t), false),
                now,
                Duration::from_secs(3600),
            );
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.as_slice()[0].at(), Instant::from_secs(3600));
    }

    #[test]
    fn a_full_history_drops_its_oldest() {
        let mut h = History::new();
        let keep = Duration::from_secs(1_000_000);
        for t in 0..HISTORY_CAPACITY as u64 + 10 {
            h.insert(s(t, false), Instant::from_millis(t), keep);
        }
        assert_eq!(h.len(), HISTORY_CAPACITY);
        assert_eq!(h.as_slice()[0].at(), Instant::from_millis(10));
        // Older than everything in a full history: dropped.
        h.insert(s(0, true), Instant::from_millis(200), keep);
        assert_eq!(h.as_slice()[0].at(), Instant::from_millis(10));
    }

    #[test]
    fn window_is_anchored_at_now_and_inclusive() {
        let mut h = History::new();
        for t in [0u64, 1000, 2000, 3000] {
            h.insert(
                s(t, false),
                Instant::from_millis(t),
                Duration::from_secs(30),
            );
        }
        assert_eq!(
            h.window(Instant::from_millis(3000), Duration::from_secs(2))
                .len(),
            3
        );
        assert_eq!(
            h.window(Instant::from_millis(9000), Duration::from_secs(5))
                .len(),
            0
        );
    }

    #[test]
    fn equal_timestamps_give_zero() {
        assert_eq!(overload_ratio(&[s(1, true), s(1, true), s(1, true)]), 0.0);
    }

    #[test]
    fn rounding_is_half_even_and_exact() {
        assert_eq!(round_ratio_3(1, 3), 0.333);
        assert_eq!(round_ratio_3(2, 3), 0.667);
        assert_eq!(round_ratio_3(1, 2000), 0.0); // 0.0005 ties to even 0.000
        assert_eq!(round_ratio_3(3, 2000), 0.002); // 0.0015 ties to even 0.002
        assert_eq!(round_ratio_3(49, 99), 0.495);
    }
}
