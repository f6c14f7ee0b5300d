//! The synchronisation primitives the driver shares across threads, behind one facade.
//!
//! Normally these are `core`'s atomics, `atomic-waker`'s wake slot and `event-listener`'s wait queue. Under
//! `RUSTFLAGS="--cfg loom"` the atomics and the wake slot come from [`loom`](https://docs.rs/loom), so the
//! loom models in `tests/loom.rs` explore every interleaving of the handle's requests, the tasks' wakers and
//! the driver's poll.
//!
//! `event-listener`'s queue (behind [`Handle::drained`](crate::Handle::drained) and
//! [`Handle::abort`](crate::Handle::abort)) is built on loom by its own `loom` feature under `--cfg loom`.

#[cfg(all(feature = "std", not(loom)))]
pub(crate) use core::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(all(feature = "std", loom))]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use atomic_waker::AtomicWaker;

#[cfg(all(feature = "std", loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

pub(crate) use event_listener::Event as Notify;

/// loom's wake slot with `atomic-waker`'s signature (`register` borrows the waker).
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(loom)]
impl AtomicWaker {
    pub(crate) fn new() -> Self {
        AtomicWaker(loom::future::AtomicWaker::new())
    }
    pub(crate) fn register(&self, waker: &core::task::Waker) {
        self.0.register_by_ref(waker);
    }
    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

/// Raises a flag that the driver consumes with `swap(false)`: a task's `slot_woken` and a handle's `dirty`.
///
/// A read-modify-write, not a store, so that every raise continues the release sequences of the ones before
/// it: the driver's `swap` then synchronises with each raiser since its last `swap`, not only the last one,
/// and sees the marks each made before raising. That matters since a mark into a `WakeSet` word that already
/// held one raises nothing (`wake.rs`): a mark whose raise was overtaken by another's must still be seen.
/// (It also sidesteps loom 0.7, which lets a plain store slip between the read and the write of a concurrent
/// `swap`, loom issues [#254](https://github.com/tokio-rs/loom/issues/254) and
/// [#389](https://github.com/tokio-rs/loom/issues/389).) Raises are rare: one per word a burst marks.
#[inline]
pub(crate) fn raise(flag: &AtomicBool) {
    flag.swap(true, Ordering::Release);
}
