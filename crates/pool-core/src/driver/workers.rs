//! [`Workers`]: tasks run on long-lived worker tasks of an executor, each reused from task to task, so that
//! on a multi-thread runtime tasks run on every thread and a task costs neither a spawn nor an allocation.
//!
//! Each task slot of the run gets one worker the first time the slot is used; the slot keeps the worker's
//! handle ([`WorkerTask`]) when its task ends ([`Launch::reuses`]), and its next task goes to the same worker
//! ([`Launch::relaunch`]). A worker and its handle share a [`Cell`]: two one-place lock-free queues (the job
//! in, its output out), two wake slots (the worker's, the driver's) and two flags (cancel, closed). The core's
//! gate still decides every start: a worker runs only the job its slot hands it.
//!
//! - A job is pushed, then the worker woken; the worker registers its waker, then looks for a job. A result is
//!   pushed, then the driver woken; the handle registers the driver's waker, then looks for a result. So no
//!   wake is lost (the loom model `a_worker_hands_each_job_s_output_back_and_a_cancel_ends_the_job`).
//! - A cancel (a timeout, an abort) sets the flag and wakes the worker, which drops the job and hands back a
//!   placeholder output; the driver, which keeps polling a task it cancelled, then frees the slot. The flag is
//!   cleared by the next relaunch, which comes only after that output.
//! - A panic is caught in the worker and handed back as the task's [`TaskPanic`].
//! - Dropping the handle (the run ended, or was dropped) closes the cell: the worker drops what it runs and
//!   ends.

use alloc::string::String;
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use concurrent_queue::ConcurrentQueue;

use super::TaskPanic;
use super::launch::CatchPanic;
use crate::seams::{Launch, Spawn};
use crate::sync::{AtomicBool, AtomicWaker, Ordering};

/// Runs tasks on long-lived workers spawned with `S`, one per task slot, reused from task to task.
#[derive(Clone, Copy, Debug, Default)]
pub struct Workers<S>(pub S);

/// What a worker and its slot share.
struct Cell<F: Future> {
    job: ConcurrentQueue<F>,
    output: ConcurrentQueue<Result<F::Output, TaskPanic>>,
    cancel: AtomicBool,
    closed: AtomicBool,
    /// The worker future was dropped: nothing of it is left on the executor.
    exited: AtomicBool,
    worker: AtomicWaker,
    driver: AtomicWaker,
}

impl<F: Future> Cell<F> {
    fn new() -> Self {
        Cell {
            job: ConcurrentQueue::bounded(1),
            output: ConcurrentQueue::bounded(1),
            cancel: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            worker: AtomicWaker::new(),
            driver: AtomicWaker::new(),
        }
    }

    /// Hands `out` to the slot and wakes the driver.
    fn finish(&self, out: Result<F::Output, TaskPanic>) {
        // The queue has room: the slot hands the next job only after taking this output.
        let _ = self.output.push(out);
        self.driver.wake();
    }
}

pin_project_lite::pin_project! {
    /// A worker: takes its slot's jobs one after another and polls each to its end.
    pub struct Worker<F: Future> {
        cell: Arc<Cell<F>>,
        #[pin]
        job: Option<CatchPanic<F>>,
    }

    impl<F: Future> PinnedDrop for Worker<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            this.job.set(None);
            this.cell.exited.store(true, Ordering::Release);
            this.cell.driver.wake();
        }
    }
}

impl<F: Future> core::fmt::Debug for Worker<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("busy", &self.job.is_some())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Worker<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let cell = &**this.cell;
        cell.worker.register(cx.waker());
        loop {
            if cell.closed.load(Ordering::Acquire) {
                this.job.set(None);
                return Poll::Ready(());
            }
            let Some(job) = this.job.as_mut().as_pin_mut() else {
                match cell.job.pop() {
                    Ok(f) => this.job.set(Some(CatchPanic::new(f))),
                    Err(_) => return Poll::Pending,
                }
                continue;
            };
            if cell.cancel.load(Ordering::Acquire) {
                this.job.set(None);
                cell.finish(Err(TaskPanic {
                    message: String::from("cancelled"),
                }));
                continue;
            }
            match job.poll(cx) {
                Poll::Ready(out) => {
                    this.job.set(None);
                    cell.finish(out);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A task on a worker, as its slot holds it: resolves to the task's output; dropping it ends the worker.
pub struct WorkerTask<F: Future, H> {
    cell: Arc<Cell<F>>,
    /// The worker's join handle: kept so a runtime whose handles cancel on drop ends the worker with it.
    worker: Option<H>,
}

impl<F: Future, H> core::fmt::Debug for WorkerTask<F, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerTask").finish_non_exhaustive()
    }
}

impl<F: Future, H> Future for WorkerTask<F, H> {
    type Output = Result<F::Output, TaskPanic>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let cell = &self.cell;
        cell.driver.register(cx.waker());
        match cell.output.pop() {
            Ok(out) => Poll::Ready(out),
            Err(_) => Poll::Pending,
        }
    }
}

impl<F: Future, H> Unpin for WorkerTask<F, H> {}

impl<F: Future, H> WorkerTask<F, H> {
    /// Closes the cell and lets go of the handle: where dropping it cancels the worker (smol, async-std), the
    /// executor drops the worker; where it detaches (tokio), the closed cell and the wake end the worker.
    fn close(&mut self) {
        drop(self.worker.take());
        self.cell.closed.store(true, Ordering::Release);
        self.cell.worker.wake();
    }

    /// Closes the worker and says whether it is gone, waking `cx` when it goes.
    pub(crate) fn poll_retire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.cell.driver.register(cx.waker());
        if self.worker.is_some() {
            self.close();
        }
        if self.cell.exited.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<F: Future, H> Drop for WorkerTask<F, H> {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.close();
        }
    }
}

impl<F: Future, H> WorkerTask<F, H> {
    /// Spawns a worker with `spawner` and hands it `task`.
    pub(crate) fn spawn<S>(spawner: &S, task: F) -> Self
    where
        S: Spawn<Handle<()> = H>,
        F: Send + 'static,
        F::Output: Send + 'static,
    {
        let cell = Arc::new(Cell::new());
        // A new cell's job queue is empty.
        let _ = cell.job.push(task);
        let worker = spawner.spawn(Worker {
            cell: cell.clone(),
            job: None,
        });
        WorkerTask {
            cell,
            worker: Some(worker),
        }
    }

    /// Asks the worker to drop its job; the handle resolves once it did.
    #[inline]
    pub(crate) fn cancel(&self) {
        self.cell.cancel.store(true, Ordering::Release);
        self.cell.worker.wake();
    }

    /// Hands the worker its next `task`, once the last one's output was taken.
    #[inline]
    pub(crate) fn relaunch(&self, task: F) -> Result<(), F> {
        let cell = &self.cell;
        cell.cancel.store(false, Ordering::Release);
        cell.job
            .push(task)
            .map_err(concurrent_queue::PushError::into_inner)?;
        cell.worker.wake();
        Ok(())
    }
}

impl<S: Spawn, F> Launch<F> for Workers<S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = WorkerTask<F, S::Handle<()>>;

    fn launch(&self, task: F) -> Self::Running {
        WorkerTask::spawn(&self.0, task)
    }

    #[inline]
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool {
        running.cancel();
        false
    }

    #[inline]
    fn reuses(&self) -> bool {
        true
    }

    #[inline]
    fn relaunch(&self, running: Pin<&mut Self::Running>, task: F) -> Result<(), F> {
        running.relaunch(task)
    }

    fn poll_retire(&self, running: Pin<&mut Self::Running>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::into_inner(running).poll_retire(cx)
    }
}
