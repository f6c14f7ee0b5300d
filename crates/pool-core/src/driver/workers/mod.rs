//! [`Workers`]: tasks run on a few long-lived worker tasks of an executor, each polling the tasks of many
//! slots, so that on a multi-thread runtime tasks run on every thread and a task costs neither a spawn nor an
//! allocation, and a burst of starts wakes each worker once.
//!
//! A run gets one worker (a *lane*) per core, spawned when the first slots are used; slot `k` goes to lane
//! `k % lanes`. The slot keeps its [`WorkerTask`] when its task ends ([`Launch::reuses`]) and hands its next
//! task to the same lane ([`Launch::relaunch`]). The core's gate still decides every start: a lane runs only
//! the jobs its slots hand it, one at a time per slot.
//!
//! - A job is pushed, then its seat marked; the lane registers its waker, then takes the marks. An output is
//!   pushed, then the slot's waker woken; that waker is kept from the handle's first poll, which only then
//!   marks the first job, and the handle looks for an output after it. So no wake is lost (the loom model
//!   `a_worker_hands_each_job_s_output_back_and_a_cancel_ends_the_job`).
//! - A cancel (a timeout, an abort) sets the flag and marks the seat; the lane drops the job and hands back a
//!   placeholder output, and the driver, which keeps polling a task it cancelled, then frees the slot. The
//!   flag is cleared by the next relaunch, which comes only after that output.
//! - A panic is caught in the lane and handed back as the task's [`TaskPanic`].
//! - At the run's end the driver retires each kept handle ([`Launch::poll_retire`]): the launcher seals its
//!   lanes (no slot joins them any more) and closes the slot's cell; a lane whose cells all closed ends, and
//!   only then do its handles say they are gone, so no worker outlives the run. Dropping a handle (a run
//!   dropped halfway) closes its cell the same way.

mod lane;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Mutex;

pub use lane::Worker;
use lane::{Cell, Inbox};

use super::TaskPanic;
use crate::seams::{Launch, Spawn};
use crate::sync::{AtomicBool, Ordering};

/// Runs tasks on long-lived workers spawned with `S`, one per core, each serving many task slots.
pub struct Workers<S> {
    spawner: S,
    width: usize,
    /// One [`Lanes`] per task type this launcher ran: touched when a slot is first used, never per task.
    lanes: Mutex<Vec<Box<dyn Any + Send>>>,
    /// Whether the run is hot, as the driver last said ([`Launch::pace`]); every lane reads it.
    pace: Arc<AtomicBool>,
}

impl<S> Workers<S> {
    /// Workers spawned with `spawner`, one per core the process may use.
    pub fn new(spawner: S) -> Self {
        let width = std::thread::available_parallelism().map_or(1, core::num::NonZero::get);
        Self::with_width(spawner, width)
    }

    /// Workers spawned with `spawner`, at most `width` of them (at least one).
    pub fn with_width(spawner: S, width: usize) -> Self {
        Workers {
            spawner,
            width: width.max(1),
            lanes: Mutex::new(Vec::new()),
            pace: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The spawner the workers are spawned with.
    pub fn spawner(&self) -> &S {
        &self.spawner
    }

    /// How many workers a run spawns at most.
    pub fn width(&self) -> usize {
        self.width
    }
}

/// A copy with the same spawner and width and no workers of its own yet.
impl<S: Clone> Clone for Workers<S> {
    fn clone(&self) -> Self {
        Self::with_width(self.spawner.clone(), self.width)
    }
}

impl<S: core::fmt::Debug> core::fmt::Debug for Workers<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Workers")
            .field("spawner", &self.spawner)
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

/// The lanes of one task type: each lane's inbox and how many slots it serves.
struct Lanes<F: Future> {
    open: Vec<(Arc<Inbox<F>>, usize)>,
    next: usize,
}

impl<S> Workers<S> {
    /// Runs `f` on the lanes for task type `F`, made on first use.
    fn with_lanes<F, R>(&self, f: impl FnOnce(&mut Lanes<F>) -> R) -> R
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut all = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let at = match all.iter().position(|l| l.is::<Lanes<F>>()) {
            Some(at) => at,
            None => {
                all.push(Box::new(Lanes::<F> {
                    open: Vec::new(),
                    next: 0,
                }));
                all.len() - 1
            }
        };
        match all[at].downcast_mut::<Lanes<F>>() {
            Some(lanes) => f(lanes),
            None => unreachable!("the lanes at `at` are of this type"),
        }
    }
}

/// A task on a worker, as its slot holds it: resolves to the task's output; dropping it frees the slot's seat.
pub struct WorkerTask<F: Future, H> {
    cell: Arc<Cell<F>>,
    closed: bool,
    /// The lane's join handle, held by the lane's first slot and dropped only after the lane ended (or with
    /// the run), so a runtime whose handles cancel on drop (smol, async-std) keeps the lane while it serves.
    _lane: Option<H>,
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
        self.cell.poll_output(cx)
    }
}

impl<F: Future, H> Unpin for WorkerTask<F, H> {}

impl<F: Future, H> WorkerTask<F, H> {
    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.cell.close();
        }
    }

    /// Asks the worker to drop the job; the handle resolves once it did.
    #[inline]
    pub(crate) fn cancel(&self) {
        self.cell.cancel();
    }

    /// Hands the worker the slot's next `task`, once the last one's output was taken.
    #[inline]
    pub(crate) fn relaunch(&self, task: F) -> Result<(), F> {
        if self.closed {
            return Err(task);
        }
        self.cell.relaunch(task)
    }
}

impl<F: Future, H> Drop for WorkerTask<F, H> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<S: Spawn> Workers<S> {
    /// Seats `task` on the next lane, spawning the lane on its first use.
    pub(crate) fn start<F>(&self, task: F) -> WorkerTask<F, S::Handle<()>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let width = self.width;
        let (cell, lane) = self.with_lanes(|lanes: &mut Lanes<F>| {
            let k = lanes.next % width;
            lanes.next += 1;
            let mut lane = None;
            // A lane its executor dropped (a runtime shutting down) is replaced rather than joined.
            if k >= lanes.open.len() || lanes.open[k].0.signal.is_dead() {
                let inbox = Arc::new(Inbox::new(self.pace.clone()));
                lane = Some(inbox.clone());
                if k >= lanes.open.len() {
                    lanes.open.push((inbox, 0));
                } else {
                    lanes.open[k] = (inbox, 0);
                }
            }
            // Lanes are made in order, so lane `k` exists now.
            let (inbox, seats) = &mut lanes.open[k];
            let cell = Arc::new(Cell::new(*seats, inbox.signal.clone(), task));
            *seats += 1;
            inbox.join(cell.clone());
            (cell, lane)
        });
        // Spawned outside the lock: a spawner that polls at once (a test's executor) finds the cell joined.
        let lane = lane.map(|inbox| self.spawner.spawn(Worker::new(inbox)));
        WorkerTask {
            cell,
            closed: false,
            _lane: lane,
        }
    }

    /// Seals every lane of task type `F`: later starts get new lanes, and a sealed lane ends once its cells
    /// closed.
    fn seal<F>(&self)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.with_lanes(|lanes: &mut Lanes<F>| {
            for (inbox, _) in lanes.open.drain(..) {
                inbox.signal.seal();
            }
            lanes.next = 0;
        });
    }
}

/// Dropping the lanes (the launcher went, a run dropped halfway included) seals them, so each ends once its
/// slots' handles are gone too.
impl<F: Future> Drop for Lanes<F> {
    fn drop(&mut self) {
        for (inbox, _) in &self.open {
            inbox.signal.seal();
        }
    }
}

impl<S, F> Launch<F> for Workers<S>
where
    S: Spawn,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = WorkerTask<F, S::Handle<()>>;

    fn launch(&self, task: F) -> Self::Running {
        self.start(task)
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
    fn runs_elsewhere(&self) -> bool {
        true
    }

    fn pace(&self, hot: bool) {
        self.pace.store(hot, Ordering::Relaxed);
    }

    #[inline]
    fn relaunch(&self, running: Pin<&mut Self::Running>, task: F) -> Result<(), F> {
        running.relaunch(task)
    }

    fn poll_retire(&self, running: Pin<&mut Self::Running>, cx: &mut Context<'_>) -> Poll<()> {
        let running = Pin::into_inner(running);
        if !running.closed {
            // Sealing first: a lane that sees its last cell close then knows no other is coming.
            self.seal::<F>();
            running.close();
        }
        running.cell.poll_exited(cx)
    }
}
