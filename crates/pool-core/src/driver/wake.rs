//! The woken-slot set: one bit per task slot, set by the slot's waker, so the driver polls only the tasks
//! that asked to be polled.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::task::Wake;

use super::control::Shared;
use crate::sync::{AtomicBool, AtomicUsize, Ordering, raise};

/// One bit per task slot, set by the slot's waker, so the driver polls the slots that were woken instead of
/// them all. It is sized once per run for `max_concurrency`; slots added after a setter raised the maximum
/// fall back to their own flag and the `overflow` mark.
#[derive(Debug)]
pub(super) struct WakeSet {
    pub(super) words: Box<[AtomicUsize]>,
    pub(super) overflow: AtomicBool,
    pub(super) shared: Arc<Shared>,
}

impl WakeSet {
    pub(super) const BITS: usize = usize::BITS as usize;

    pub(super) fn new(capacity: usize, shared: Arc<Shared>) -> Self {
        let words = (0..capacity.max(1).div_ceil(Self::BITS))
            .map(|_| AtomicUsize::new(0))
            .collect();
        WakeSet {
            words,
            overflow: AtomicBool::new(false),
            shared,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.words.len() * Self::BITS
    }
}

/// Wakes the driver for one slot: marks the slot, then wakes the driver's task.
#[derive(Debug)]
pub(super) struct SlotSignal {
    pub(super) index: usize,
    pub(super) woken: AtomicBool,
    pub(super) set: Arc<WakeSet>,
}

impl Wake for SlotSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let set = &self.set;
        match set.words.get(self.index / WakeSet::BITS) {
            Some(word) => {
                // A word that held a mark already was raised and woken for by whoever marked it first, and
                // the driver empties a whole word in one swap: a burst of wakes costs one wake.
                if word.fetch_or(1 << (self.index % WakeSet::BITS), Ordering::AcqRel) != 0 {
                    return;
                }
            }
            None => {
                raise(&self.woken);
                raise(&set.overflow);
            }
        }
        raise(&set.shared.slot_woken);
        set.shared.waker.wake();
    }
}
