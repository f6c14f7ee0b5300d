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
/// A release store is all the real code needs (the consumer's `swap` is a read-modify-write, which always
/// reads the latest value in the modification order). loom 0.7 gets that rule wrong when the flag is written
/// by a plain store: it lets the store slip between the read and the write of a concurrent `swap`, so the
/// `swap` can return `false` even though the store happens-before it (loom issues
/// [#254](https://github.com/tokio-rs/loom/issues/254) and [#389](https://github.com/tokio-rs/loom/issues/389),
/// fix in PR #391, unreleased). The models then report a lost wakeup that the C++/Rust memory model forbids.
/// Under `--cfg loom` the flag is therefore raised with a `swap` of the same ordering, which loom orders
/// correctly; the real build keeps the cheaper store.
#[inline]
pub(crate) fn raise(flag: &AtomicBool) {
    #[cfg(not(loom))]
    flag.store(true, Ordering::Release);
    #[cfg(loom)]
    flag.swap(true, Ordering::Release);
}
