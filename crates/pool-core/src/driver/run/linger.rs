//! [`Linger`]: before it sleeps, a driver whose tasks run on other threads and end often yields its thread a
//! few times, watching for the next end, so that a pipeline of short tasks does not pay a futex wake and a
//! context switch per round trip.
//!
//! The driver lingers only while tasks end *often*: at least one end per [`Linger::GAP`] on average over the
//! last [`Linger::WINDOW`] of the run. Then the next end is due within microseconds and lingering finds it
//! (on a 2-core machine, after about 30 yields for no-op tasks on workers), and a miss costs at most
//! [`Linger::TURNS`] yields. Slow tasks (I/O waits of milliseconds) never make a run hot, so such a pool
//! sleeps at once, as before, and an idle pool never lingers. A turn *yields* the thread rather than spins,
//! so that on a machine whose cores are busy with the pool's own tasks the lingering driver hands them its
//! core instead of taking it from them.

use core::time::Duration;

use crate::driver::patience::Patience;
use crate::sync::{AtomicBool, Ordering};
use crate::time::Instant;

/// Whether the run's tasks end often enough to linger for, measured over windows of the run.
#[derive(Debug)]
pub(super) struct Linger {
    since: Instant,
    ended: u64,
    hot: bool,
    patience: Patience,
}

impl Linger {
    /// The most yields of one linger.
    pub(super) const TURNS: u32 = 64;
    /// The longest mean time between task ends at which the driver lingers.
    pub(super) const GAP: Duration = Duration::from_micros(50);
    /// How long a stretch of the run the rate of ends is measured over.
    pub(super) const WINDOW: Duration = Duration::from_millis(1);

    pub(super) fn new(now: Instant) -> Self {
        Linger {
            since: now,
            ended: 0,
            hot: false,
            patience: Patience::default(),
        }
    }

    /// Counts `ended` tasks that ended by `now`, and closes the window when it is over; says whether the run
    /// turned hot or cold.
    #[inline]
    pub(super) fn note(&mut self, now: Instant, ended: usize) -> Option<bool> {
        self.ended += ended as u64;
        let span = now.saturating_duration_since(self.since);
        if span < Self::WINDOW {
            return None;
        }
        let gaps = span.as_nanos() / Self::GAP.as_nanos();
        let hot = u128::from(self.ended) >= gaps;
        self.since = now;
        self.ended = 0;
        (hot != self.hot).then(|| {
            self.hot = hot;
            hot
        })
    }

    /// When the run is hot and waiting has been paying ([`Patience`]), yields the thread until `woken` is
    /// raised, for at most [`Linger::TURNS`] turns; says whether it was.
    pub(super) fn wait(&mut self, woken: &AtomicBool) -> bool {
        self.hot
            && self
                .patience
                .wait(Self::TURNS, || woken.load(Ordering::Relaxed))
    }
}

impl<Pl, Fs, Rb, L, S, O> super::Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: super::PoolPart,
    Fs: super::FnsPart,
    Rb: super::RuntimePart,
    L: crate::seams::Launch<super::Task<Fs>>,
{
    /// Counts the tasks that ended by `now`, telling the launcher when the run turns hot or cold.
    #[inline]
    pub(super) fn note_ends(&mut self, now: Instant, ended: usize) {
        if let Some(hot) = self.linger.note(now, ended) {
            self.launcher.pace(hot);
        }
    }

    /// Lingers for a task to end, when tasks run on other threads, some are running and they end often; says
    /// whether one ended.
    pub(super) fn linger(&mut self) -> bool {
        self.launcher.runs_elsewhere()
            && self.pool.part().current_concurrency() > 0
            && self.linger.wait(&self.handle.shared.slot_woken)
    }
}
