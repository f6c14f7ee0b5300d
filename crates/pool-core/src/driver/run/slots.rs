//! [`Slots`]: where running tasks live. A slot is allocated once and reused with `Pin::set`, so starting a
//! task allocates nothing; its waker marks it in the run's [`WakeSet`], so the driver polls only the slots
//! that asked to be polled. Slots know nothing of the machine: they hand each task that ended back to the
//! run, which reports it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::driver::control::Shared;
use crate::driver::wake::{SlotSignal, WakeSet};
use crate::seams::Launch;
use crate::sync::{AtomicBool, Ordering};
use crate::time::Instant;

/// The run's task slots, their wake marks, the free list and the timeout queue.
pub(super) struct Slots<T> {
    slots: Vec<Slot<T>>,
    /// Keep a resolved task's launcher value for the slot's next task (a worker's handle).
    reuse: bool,
    wake: Arc<WakeSet>,
    /// Freed slots, oldest first: reusing them in that order reaps tasks that end together in start order.
    free: VecDeque<usize>,
    /// `(deadline, slot, generation)` in start order; the generation tells a reused slot's new task apart.
    deadlines: VecDeque<(Instant, usize, u64)>,
}

struct Slot<T> {
    task: Pin<Box<Option<T>>>,
    /// A task runs in the slot (with `reuse`, `task` may also hold the last one's resolved value).
    live: bool,
    signal: Arc<SlotSignal>,
    waker: Waker,
    generation: u64,
    started: Instant,
    cancelling: bool,
    timed_out: bool,
}

/// A task that left its slot: what it returned, when it started, and whether the driver had asked it to stop.
pub(super) struct Ended<O> {
    pub(super) output: O,
    pub(super) started: Instant,
    pub(super) cancelling: bool,
    pub(super) timed_out: bool,
}

impl<T: Future> Slots<T> {
    /// Slots and wake bits reserved for `capacity` tasks; more are added when needed. With `reuse`, a
    /// resolved task's value stays in its slot for [`Launch::relaunch`].
    pub(super) fn new(capacity: usize, shared: Arc<Shared>, reuse: bool) -> Self {
        Slots {
            slots: Vec::with_capacity(capacity),
            reuse,
            wake: Arc::new(WakeSet::new(capacity, shared)),
            free: VecDeque::with_capacity(capacity),
            deadlines: VecDeque::with_capacity(capacity),
        }
    }

    /// How many slots exist, running or free.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The earliest task timeout still queued (it may belong to a task that already ended).
    #[inline]
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|d| d.0)
    }

    /// Launches `task` with `launcher` in a slot (again in the value the slot's last task left, when the
    /// launcher reuses them), started at `now`, to be cancelled at `deadline`, and polls it at once, so a task
    /// that completes on its first poll needs no second trip through the driver's loop.
    #[inline(always)]
    pub(super) fn start<F, L>(
        &mut self,
        launcher: &L,
        task: F,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Option<Ended<T::Output>>
    where
        F: Future,
        L: Launch<F, Running = T>,
    {
        let idx = match self.free.pop_front() {
            Some(idx) => idx,
            None => self.push(),
        };
        let slot = &mut self.slots[idx];
        let task = match slot.task.as_mut().as_pin_mut() {
            Some(kept) => launcher.relaunch(kept, task).err(),
            None => Some(task),
        };
        if let Some(task) = task {
            slot.task.set(Some(launcher.launch(task)));
        }
        slot.live = true;
        slot.generation += 1;
        slot.started = now;
        slot.cancelling = false;
        slot.timed_out = false;
        if let Some(at) = deadline {
            self.deadlines.push_back((at, idx, slot.generation));
        }
        poll(&mut self.slots, &mut self.free, idx, self.reuse)
    }

    /// Retires the values kept from resolved tasks ([`Launch::poll_retire`]); `true` once every one is gone.
    /// A value still retiring wakes the driver through its slot's waker when it is done.
    pub(super) fn retire<F, L>(&mut self, launcher: &L) -> bool
    where
        F: Future,
        L: Launch<F, Running = T>,
    {
        let mut all = true;
        for slot in self.slots.iter_mut().filter(|s| !s.live) {
            let Some(kept) = slot.task.as_mut().as_pin_mut() else {
                continue;
            };
            match launcher.poll_retire(kept, &mut Context::from_waker(&slot.waker)) {
                Poll::Ready(()) => slot.task.set(None),
                Poll::Pending => all = false,
            }
        }
        all
    }

    fn push(&mut self) -> usize {
        let signal = Arc::new(SlotSignal {
            index: self.slots.len(),
            woken: AtomicBool::new(false),
            set: self.wake.clone(),
        });
        let waker = Waker::from(signal.clone());
        self.slots.push(Slot {
            task: Box::pin(None),
            live: false,
            signal,
            waker,
            generation: 0,
            started: Instant::ZERO,
            cancelling: false,
            timed_out: false,
        });
        self.slots.len() - 1
    }

    /// Polls the slots whose wakers fired, handing each task that ended to `on_end`. Returns how many ended.
    #[inline]
    pub(super) fn reap(&mut self, mut on_end: impl FnMut(Ended<T::Output>)) -> usize {
        let Slots {
            slots,
            wake,
            free,
            reuse,
            ..
        } = self;
        // A plain load first: most iterations find nothing woken, and a swap is a locked write.
        let woken = &wake.shared.slot_woken;
        if !woken.load(Ordering::Relaxed) || !woken.swap(false, Ordering::AcqRel) {
            return 0;
        }
        let mut ended = 0;
        for (w, word) in wake.words.iter().enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let idx = w * WakeSet::BITS + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(e) = poll(slots, free, idx, *reuse) {
                    on_end(e);
                    ended += 1;
                }
            }
        }
        // Slots past the wake set's words (added after a setter raised the ceiling) carry their own flag.
        if wake.overflow.swap(false, Ordering::AcqRel) {
            for idx in wake.capacity()..slots.len() {
                if slots[idx].signal.woken.swap(false, Ordering::AcqRel)
                    && let Some(e) = poll(slots, free, idx, *reuse)
                {
                    on_end(e);
                    ended += 1;
                }
            }
        }
        ended
    }

    /// Asks every running task to stop through `cancel`. Tasks `cancel` says may simply be dropped are dropped
    /// and their slots freed; the others end through [`Slots::reap`]. Returns how many were dropped.
    pub(super) fn cancel_all(&mut self, mut cancel: impl FnMut(Pin<&mut T>) -> bool) -> usize {
        let mut dropped = 0;
        for (idx, slot) in self.slots.iter_mut().enumerate() {
            if !slot.live {
                continue;
            }
            let Some(task) = slot.task.as_mut().as_pin_mut() else {
                continue;
            };
            slot.cancelling = true;
            if cancel(task) {
                drop_task(slot, idx, &mut self.free);
                dropped += 1;
            }
        }
        dropped
    }

    /// Cancels, as [`Slots::cancel_all`] does, the tasks whose timeout passed by `now`. Returns how many were
    /// dropped at once: each is a timed-out task the run reports now.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        mut cancel: impl FnMut(Pin<&mut T>) -> bool,
    ) -> usize {
        let mut dropped = 0;
        while let Some(&(at, idx, generation)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            let slot = &mut self.slots[idx];
            if slot.generation != generation || slot.cancelling || !slot.live {
                continue;
            }
            let Some(task) = slot.task.as_mut().as_pin_mut() else {
                continue;
            };
            slot.timed_out = true;
            slot.cancelling = true;
            if cancel(task) {
                drop_task(slot, idx, &mut self.free);
                dropped += 1;
            }
        }
        dropped
    }
}

/// Drops slot `idx`'s task, which its launcher said may simply be dropped, and frees the slot.
#[inline]
fn drop_task<T>(slot: &mut Slot<T>, idx: usize, free: &mut VecDeque<usize>) {
    slot.task.set(None);
    slot.live = false;
    free.push_back(idx);
}

/// Polls slot `idx`; when its task ends, frees the slot (keeping the resolved value with `reuse`) and says
/// how the task ended.
#[inline]
fn poll<T: Future>(
    slots: &mut [Slot<T>],
    free: &mut VecDeque<usize>,
    idx: usize,
    reuse: bool,
) -> Option<Ended<T::Output>> {
    let slot = slots.get_mut(idx)?;
    if !slot.live {
        return None;
    }
    let task = slot.task.as_mut().as_pin_mut()?;
    let Poll::Ready(output) = task.poll(&mut Context::from_waker(&slot.waker)) else {
        return None;
    };
    if reuse {
        slot.live = false;
        free.push_back(idx);
    } else {
        drop_task(slot, idx, free);
    }
    Some(Ended {
        output,
        started: slot.started,
        cancelling: slot.cancelling,
        timed_out: slot.timed_out,
    })
}
