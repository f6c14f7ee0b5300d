//! The synchronisation primitives the driver shares across threads, behind one facade.
//!
//! Normally these are `core`'s atomics, `atomic-waker`'s wake slot and `event-listener`'s wait queue. Under
//! `RUSTFLAGS="--cfg loom"` the atomics and the wake slot come from [`loom`](https://docs.rs/loom), so the
//! loom models in `tests/loom.rs` explore every interleaving of the handle's requests, the tasks' wakers and
//! the driver's poll.
//!
//! `event-listener` has no loom build. Its queue (behind [`Handle::drained`](crate::Handle::drained) and
//! [`Handle::abort`](crate::Handle::abort)) stays the real one under loom: it contains no loom yield point,
//! so each `listen` and `notify` is one indivisible step of the model, and its own internal orderings are
//! outside the model. The check-then-listen-then-check protocol the driver relies on is inside it, because
//! the flags checked around the listener (`running`, `current`) are loom atomics.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use atomic_waker::AtomicWaker;

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
