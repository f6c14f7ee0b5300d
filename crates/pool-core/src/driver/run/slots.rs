//! Task slots: starting a task in a reused slot, reaping the slots whose wakers fired, timeouts and
//! cancellation. A slot is allocated once and reused with `Pin::set`, so a task start allocates nothing.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::Run;
use crate::driver::PoolError;
use crate::driver::launch::call_caught;
use crate::driver::wake::{SlotSignal, WakeSet};
use crate::pool::TaskOutcome;
use crate::scale::ScalingPolicy;
use crate::seams::{EventSink, Launch, Runtime, Sensors, TaskFns};
use crate::sync::{AtomicBool, Ordering};
use crate::time::Instant;

pub(super) struct Slot<T> {
    pub(super) task: Pin<Box<Option<T>>>,
    pub(super) signal: Arc<SlotSignal>,
    pub(super) waker: Waker,
    pub(super) generation: u64,
    pub(super) cancelling: bool,
    pub(super) timed_out: bool,
}

impl<P, F, Rt, L, S, O> Run<'_, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
    S: Sensors,
    O: EventSink,
{
    /// Cancels every running task and drops pending task-function calls.
    pub(super) fn cancel_all(&mut self, now: Instant) {
        self.cancelled_all = true;
        self.ready_check.set(None);
        self.finished_check.set(None);
        for idx in 0..self.slots.len() {
            let slot = &mut self.slots[idx];
            let Some(task) = slot.task.as_mut().as_pin_mut() else {
                continue;
            };
            slot.cancelling = true;
            if self.launcher.cancel(task) {
                slot.task.set(None);
                self.free.push_back(idx);
                self.pool.handle_task_finished(now, TaskOutcome::Cancelled);
            }
        }
    }

    pub(super) fn expire_timeouts(&mut self, now: Instant) {
        while let Some(&(at, idx, generation)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            let slot = &mut self.slots[idx];
            if slot.generation != generation || slot.cancelling {
                continue;
            }
            let Some(task) = slot.task.as_mut().as_pin_mut() else {
                continue;
            };
            slot.timed_out = true;
            slot.cancelling = true;
            if self.launcher.cancel(task) {
                slot.task.set(None);
                self.free.push_back(idx);
                self.finish_task(now, TaskOutcome::TimedOut, None);
            }
        }
    }

    pub(super) fn finish_task(
        &mut self,
        now: Instant,
        outcome: TaskOutcome,
        error: Option<PoolError<F::Error>>,
    ) {
        let verdict = self.pool.handle_task_finished(now, outcome);
        let error = match (outcome, error) {
            (_, Some(e)) => Some(e),
            (TaskOutcome::TimedOut, None) => self.pool.task_timeout().map(PoolError::TimedOut),
            _ => None,
        };
        if let Some(e) = error {
            self.record_error(verdict, e);
        }
    }

    /// Polls the slots whose wakers fired. Returns how many tasks finished.
    pub(super) fn reap(&mut self, now: Instant) -> usize {
        // A plain load first: most iterations find nothing woken, and a swap is a locked write.
        if !self.handle.shared.slot_woken.load(Ordering::Relaxed)
            || !self.handle.shared.slot_woken.swap(false, Ordering::AcqRel)
        {
            return 0;
        }
        let mut finished = 0;
        let wake = self.wake.clone();
        for (w, word) in wake.words.iter().enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let idx = w * WakeSet::BITS + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if idx < self.slots.len() && self.poll_slot(idx, now) {
                    finished += 1;
                }
            }
        }
        if wake.overflow.swap(false, Ordering::AcqRel) {
            for idx in wake.capacity()..self.slots.len() {
                if self.slots[idx].signal.woken.swap(false, Ordering::AcqRel)
                    && self.poll_slot(idx, now)
                {
                    finished += 1;
                }
            }
        }
        finished
    }

    /// Polls one slot's task; on completion frees the slot and reports the outcome. Returns whether it ended.
    fn poll_slot(&mut self, idx: usize, now: Instant) -> bool {
        {
            let slot = &mut self.slots[idx];
            let Some(task) = slot.task.as_mut().as_pin_mut() else {
                return false;
            };
            let Poll::Ready(res) = task.poll(&mut Context::from_waker(&slot.waker)) else {
                return false;
            };
            slot.task.set(None);
            let (cancelling, timed_out) = (slot.cancelling, slot.timed_out);
            self.free.push_back(idx);
            let (outcome, error) = match res {
                _ if timed_out => (TaskOutcome::TimedOut, None),
                _ if cancelling => (TaskOutcome::Cancelled, None),
                Ok(Ok(())) => (TaskOutcome::Succeeded, None),
                Ok(Err(e)) => (TaskOutcome::Failed, Some(PoolError::Task(e))),
                Err(p) => (TaskOutcome::Failed, Some(PoolError::Panicked(p))),
            };
            self.finish_task(now, outcome, error);
        }
        true
    }

    pub(super) fn launch(&mut self, now: Instant) {
        let task = match call_caught(|| self.fns.run_task()) {
            Ok(task) => self.launcher.launch(task),
            Err(p) => {
                // The task counted as started; a panic while creating it is that task failing.
                self.finish_task(now, TaskOutcome::Failed, Some(PoolError::Panicked(p)));
                return;
            }
        };
        // Slots are reused oldest-freed first, so tasks that end together are reaped in start order.
        let idx = match self.free.pop_front() {
            Some(idx) => idx,
            None => {
                let signal = Arc::new(SlotSignal {
                    index: self.slots.len(),
                    woken: AtomicBool::new(false),
                    set: self.wake.clone(),
                });
                let waker = Waker::from(signal.clone());
                self.slots.push(Slot {
                    task: Box::pin(None),
                    signal,
                    waker,
                    generation: 0,
                    cancelling: false,
                    timed_out: false,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[idx];
        slot.task.set(Some(task));
        slot.generation += 1;
        slot.cancelling = false;
        slot.timed_out = false;
        if let Some(timeout) = self.pool.task_timeout() {
            self.deadlines
                .push_back((now + timeout, idx, slot.generation));
        }
        // The first poll happens at once, so a task that completes on its first poll is reaped without a
        // second trip through the driver's loop.
        self.poll_slot(idx, now);
    }
}
