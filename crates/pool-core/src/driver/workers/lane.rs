//! A lane: one long-lived worker future that polls the tasks of many slots, and the [`Cell`] each slot
//! shares with it.
//!
//! A slot's cell holds two one-place lock-free queues (the job in, its output out), three flags (cancel,
//! closed, exited) and the slot's waker, set at the handle's first poll and woken by reference. The lane owns the job futures themselves, one seat per cell,
//! each polled with a waker that marks its seat in the lane's [`Signal`] bitset and wakes the lane, so the
//! lane polls only the seats that asked. A slot tells its lane about a new job, a cancel or a close through
//! the same mark.
//!
//! A mark wakes the lane only when it turns its bitset word from empty to non-empty: whoever did that woke the
//! lane, and the lane empties the whole word in one swap, so the later marks of a burst cost one
//! read-modify-write and no wake.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use std::sync::OnceLock;

use concurrent_queue::ConcurrentQueue;

use crate::driver::TaskPanic;
use crate::driver::launch::{CatchPanic, call_caught};
use crate::driver::patience::Patience;
use crate::sync::{AtomicBool, AtomicUsize, AtomicWaker, Ordering, fence, raise};

/// Seats one lane tracks in its bitset; a seat past them carries its own flag and the overflow mark. The loom
/// models use one word, so that a lane's poll stays within loom's bound on branches.
const SEATS: usize = if cfg!(loom) { 64 } else { 1024 };
const BITS: usize = usize::BITS as usize;
/// The most yields of a lane that waits for its next job while the run is hot: a few microseconds, so the
/// executor's other tasks on the lane's thread wait no longer than that.
const LINGER: u32 = 8;

/// A lane's wake marks: one bit per seat, the overflow mark, and the lane task's waker.
pub(super) struct Signal {
    words: [AtomicUsize; SEATS / BITS],
    overflow: AtomicBool,
    /// The lane may end once no slot can join it any more and each of its cells closed.
    sealed: AtomicBool,
    /// The lane was dropped (it ended, or its executor dropped it): a slot that would join it needs another.
    dead: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    fn new() -> Self {
        Signal {
            words: core::array::from_fn(|_| AtomicUsize::new(0)),
            overflow: AtomicBool::new(false),
            sealed: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Marks seat `index` (whose own flag is `own`) and wakes the lane, unless an earlier mark of the same
    /// word is still pending and so already woke it.
    #[inline]
    fn mark(&self, index: usize, own: &AtomicBool) {
        match self.words.get(index / BITS) {
            Some(word) => {
                if word.fetch_or(1 << (index % BITS), Ordering::AcqRel) != 0 {
                    return;
                }
            }
            None => {
                raise(own);
                raise(&self.overflow);
            }
        }
        self.waker.wake();
    }

    /// Whether the lane was dropped.
    pub(super) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Says no slot joins the lane any more, and wakes it so it can end once its cells closed.
    pub(super) fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// What a slot and its lane share.
pub(super) struct Cell<F: Future> {
    /// The seat's number in its lane.
    index: usize,
    lane: Arc<Signal>,
    job: ConcurrentQueue<F>,
    output: ConcurrentQueue<Result<F::Output, TaskPanic>>,
    cancel: AtomicBool,
    closed: AtomicBool,
    /// The lane was dropped: nothing of it is left on the executor.
    exited: AtomicBool,
    /// The seat's mark when it is past the lane's bitset.
    woken: AtomicBool,
    /// The slot's waker, set by the handle's first poll and woken by reference from then on: a waker that is
    /// taken on each wake (an `AtomicWaker`) would cost a clone and a drop of it per task, across cores.
    driver: OnceLock<Waker>,
    /// Any other waker the handle was polled with (never, under the pool's own driver).
    other: AtomicWaker,
}

impl<F: Future> Cell<F> {
    /// A cell for seat `index` of `lane`, holding its first `job`.
    pub(super) fn new(index: usize, lane: Arc<Signal>, job: F) -> Self {
        let cell = Cell {
            index,
            lane,
            job: ConcurrentQueue::bounded(1),
            output: ConcurrentQueue::bounded(1),
            cancel: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            driver: OnceLock::new(),
            other: AtomicWaker::new(),
        };
        // A new cell's job queue is empty. The lane hears of the job only at the handle's first poll, once the
        // driver's waker is in place.
        let _ = cell.job.push(job);
        cell
    }

    /// Tells the lane the seat has something for it.
    #[inline]
    pub(super) fn notify(&self) {
        self.lane.mark(self.index, &self.woken);
    }

    /// Hands the driver `out` and wakes it.
    #[inline]
    fn finish(&self, out: Result<F::Output, TaskPanic>) {
        // The queue has room: the slot hands the next job only after taking this output.
        let _ = self.output.push(out);
        self.wake_driver();
    }

    #[inline]
    fn wake_driver(&self) {
        if let Some(w) = self.driver.get() {
            w.wake_by_ref();
        }
        self.other.wake();
    }

    /// The driver's side: the output, if the lane handed one (registering `cx` to hear of it otherwise). A
    /// lane that is gone hands back a placeholder, so a slot never waits on a worker that will not answer.
    #[inline]
    pub(super) fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, TaskPanic>> {
        self.register(cx);
        if let Ok(out) = self.output.pop() {
            return Poll::Ready(out);
        }
        if self.exited.load(Ordering::Acquire) {
            // The lane may have handed the output just before it went.
            return Poll::Ready(self.output.pop().unwrap_or_else(|_| {
                Err(TaskPanic {
                    message: String::from("the worker ended before its task"),
                })
            }));
        }
        Poll::Pending
    }

    /// Makes sure the lane wakes `cx`'s waker: the one set at the first poll, or else through `other`.
    #[inline]
    fn register(&self, cx: &mut Context<'_>) {
        if !self.waker(cx).will_wake(cx.waker()) {
            self.other.register(cx.waker());
        }
    }

    /// The waker the lane wakes, set from `cx` at the first poll, which then tells the lane about the first
    /// job.
    #[inline]
    fn waker(&self, cx: &mut Context<'_>) -> &Waker {
        if let Some(w) = self.driver.get() {
            return w;
        }
        let w = self.driver.get_or_init(|| cx.waker().clone());
        // Against `exit`: either the lane's drop sees the waker, or this handle sees `exited`.
        fence(Ordering::SeqCst);
        self.notify();
        w
    }

    /// Hands the lane the next `job`, clearing the last one's cancel.
    #[inline]
    pub(super) fn relaunch(&self, job: F) -> Result<(), F> {
        if self.exited.load(Ordering::Acquire) {
            // The lane is gone: the driver launches the job afresh, on a live lane.
            return Err(job);
        }
        self.cancel.store(false, Ordering::Release);
        self.job
            .push(job)
            .map_err(concurrent_queue::PushError::into_inner)?;
        self.notify();
        Ok(())
    }

    /// Asks the lane to drop the running job and hand back a placeholder.
    #[inline]
    pub(super) fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
        self.notify();
    }

    /// Tells the lane the slot is gone: it drops what it runs for the slot.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify();
    }

    /// Whether the lane is gone, registering `cx` to hear of it otherwise.
    pub(super) fn poll_exited(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.register(cx);
        if self.exited.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn exit(&self) {
        self.exited.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        self.wake_driver();
    }
}

impl<F> Wake for Cell<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn wake(self: Arc<Self>) {
        self.notify();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}

/// Where the launcher leaves a lane its new cells, and the lane's marks.
pub(super) struct Inbox<F: Future> {
    pub(super) signal: Arc<Signal>,
    joined: ConcurrentQueue<Arc<Cell<F>>>,
    /// Whether the run is hot ([`Launch::pace`](crate::Launch::pace)), shared by the launcher's lanes.
    pace: Arc<AtomicBool>,
}

impl<F: Future> Inbox<F> {
    pub(super) fn new(pace: Arc<AtomicBool>) -> Self {
        Inbox {
            signal: Arc::new(Signal::new()),
            joined: ConcurrentQueue::unbounded(),
            pace,
        }
    }

    /// Seats `cell` on the lane; its handle's first poll tells the lane about its first job. A lane that
    /// went meanwhile closed the queue: the cell then hears at once that its lane is gone.
    pub(super) fn join(&self, cell: Arc<Cell<F>>) {
        if let Err(e) = self.joined.push(cell) {
            e.into_inner().exit();
        }
    }
}

/// One slot's seat on a lane: the cell, the job's waker, and the job itself.
struct Seat<F: Future> {
    cell: Arc<Cell<F>>,
    waker: Waker,
    job: Pin<Box<Option<CatchPanic<F>>>>,
    closed: bool,
}

/// A worker: one long-lived task of the executor that polls its slots' jobs, each to its end, one after the
/// other for each slot.
pub struct Worker<F: Future> {
    inbox: Arc<Inbox<F>>,
    seats: Vec<Option<Seat<F>>>,
    open: usize,
    patience: Patience,
}

impl<F: Future> Unpin for Worker<F> {}

impl<F: Future> core::fmt::Debug for Worker<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl<F> Worker<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub(super) fn new(inbox: Arc<Inbox<F>>) -> Self {
        Worker {
            inbox,
            seats: Vec::new(),
            open: 0,
            patience: Patience::default(),
        }
    }

    /// Seats the cells that joined since the last poll.
    fn adopt(&mut self) {
        while let Ok(cell) = self.inbox.joined.pop() {
            let index = cell.index;
            if self.seats.len() <= index {
                self.seats.resize_with(index + 1, || None);
            }
            self.seats[index] = Some(Seat {
                waker: Waker::from(cell.clone()),
                cell,
                job: Box::pin(None),
                closed: false,
            });
            self.open += 1;
        }
    }

    /// Serves seat `index`: closes it, takes its next job, drops a cancelled one, or polls the one it runs.
    fn serve(&mut self, index: usize) {
        let Some(Some(seat)) = self.seats.get_mut(index) else {
            return;
        };
        if seat.closed {
            return;
        }
        let cell = &*seat.cell;
        if cell.closed.load(Ordering::Acquire) {
            let _ = drop_job(&mut seat.job);
            seat.closed = true;
            self.open -= 1;
            return;
        }
        if seat.job.is_none() {
            match cell.job.pop() {
                Ok(f) => seat.job.set(Some(CatchPanic::new(f))),
                Err(_) => return,
            }
        }
        if cell.cancel.load(Ordering::Acquire) {
            // A job whose drop panics hands back that panic instead of the placeholder.
            let dropped = drop_job(&mut seat.job).err();
            cell.finish(Err(dropped.unwrap_or_else(|| TaskPanic {
                message: String::from("cancelled"),
            })));
            return;
        }
        let Some(job) = seat.job.as_mut().as_pin_mut() else {
            return;
        };
        if let Poll::Ready(out) = job.poll(&mut Context::from_waker(&seat.waker)) {
            // A panic in the finished job's drop fails the task, as one in its poll would.
            let out = drop_job(&mut seat.job).and(out);
            cell.finish(out);
        }
    }
}

/// Drops a seat's job, catching a panic in its `Drop`, so that one task's bad drop fails that task and not
/// the lane with every other task on it.
fn drop_job<F: Future>(job: &mut Pin<Box<Option<CatchPanic<F>>>>) -> Result<(), TaskPanic> {
    call_caught(|| job.set(None))
}

impl<F> Future for Worker<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let signal = this.inbox.signal.clone();
        signal.waker.register(cx.waker());
        // Sealed before the marks are read: a lane that sees the seal sees every cell that joined before it.
        let sealed = signal.sealed.load(Ordering::Acquire);
        // Marks first, then new cells: a cell's mark comes after its join, so a mark read here has its cell.
        let mut woken = [0usize; SEATS / BITS];
        for (w, word) in signal.words.iter().enumerate() {
            // A plain load first: most words are empty, and a swap is a locked write.
            if word.load(Ordering::Relaxed) != 0 {
                woken[w] = word.swap(0, Ordering::AcqRel);
            }
        }
        let overflow = signal.overflow.swap(false, Ordering::AcqRel);
        this.adopt();
        // Each seat is served once a poll: a job that wakes itself is served on the next poll, so the lane
        // yields to the executor between rounds.
        for (w, mut bits) in woken.into_iter().enumerate() {
            while bits != 0 {
                this.serve(w * BITS + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        if overflow {
            for index in SEATS..this.seats.len() {
                let marked = this.seats[index]
                    .as_ref()
                    .is_some_and(|s| s.cell.woken.swap(false, Ordering::AcqRel));
                if marked {
                    this.serve(index);
                }
            }
        }
        if sealed && this.open == 0 {
            return Poll::Ready(());
        }
        // While the run is hot, the slots' next jobs come within microseconds: the lane yields its thread a
        // few times before it lets it park, so the driver's next mark finds the lane awake (a wake of a
        // running task costs no futex). A mark ends the wait; its wake has the executor poll the lane again.
        if this.inbox.pace.load(Ordering::Relaxed) {
            this.patience.wait(LINGER, || {
                signal.words.iter().any(|w| w.load(Ordering::Relaxed) != 0)
            });
        }
        Poll::Pending
    }
}

impl<F: Future> Drop for Worker<F> {
    fn drop(&mut self) {
        // Jobs go first, then each cell hears the lane is gone: a slot that sees `exited` sees no job of its
        // own left on the executor.
        // Dead and closed first: a slot that would join now gets a new lane, or hears at once this one is gone.
        self.inbox.signal.dead.store(true, Ordering::Release);
        self.inbox.joined.close();
        for seat in self.seats.iter_mut().flatten() {
            let _ = drop_job(&mut seat.job);
        }
        for seat in self.seats.iter().flatten() {
            seat.cell.exit();
        }
        while let Ok(cell) = self.inbox.joined.pop() {
            cell.exit();
        }
    }
}
