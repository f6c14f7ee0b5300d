//! What a run dropped before it ended (its caller was cancelled) leaves behind: nothing. Its tasks are asked to
//! stop and dropped with it, the machine counts them cancelled and ends the run, and the handle's waiters hear
//! the run is over, so the pool is free for the next run.

use super::{Driver, FnsPart, PoolPart, RuntimePart, Task};
use crate::pool::TaskOutcome;
use crate::seams::{Clock, Launch};
use crate::sync::Ordering;

impl<Pl, Fs, Rb, L, S, O> Drop for Driver<Pl, Fs, Rb, L, S, O>
where
    Pl: PoolPart,
    Fs: FnsPart,
    Rb: RuntimePart,
    L: Launch<Task<Fs>>,
{
    fn drop(&mut self) {
        // A run dropped before it ended (its caller was cancelled) still frees the pool for the next run:
        // in-place tasks are dropped with it, and the machine is reset.
        if !self.done {
            // Asked to stop but not dropped here: in-place tasks are dropped with the run, after the machine
            // and the handle say the run is over.
            let launcher = &self.launcher;
            self.slots.cancel_all(|task| {
                let _ = launcher.cancel(task);
                false
            });
            let _ = self.pool.part().abort();
            let now = self.rt.part_ref().now();
            while self.pool.part().current_concurrency() > 0 {
                self.permits.release(TaskOutcome::Cancelled);
                self.pool
                    .part()
                    .handle_task_finished(now, TaskOutcome::Cancelled);
            }
            let _ = self.pool.part().end_run(now);
            self.permits.leave();
            let sh = &self.handle.shared;
            sh.current.store(0, Ordering::Release);
            sh.running.store(0, Ordering::Release);
            sh.drained.notify(usize::MAX);
            sh.ended.notify(usize::MAX);
        }
    }
}
