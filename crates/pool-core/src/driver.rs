//! The run driver: one hand-polled future that drives a [`Pool`] over any runtime.
//!
//! [`Run`] owns nothing for longer than a run: it borrows the machine, the user's task functions, the
//! runtime and the sensors. Each poll it applies the [`Handle`]'s requests, runs due ticks, samples sensors,
//! reaps finished tasks, and starts new ones while the gate is open. It sleeps on exactly two things: its
//! one re-armable timer and its waker, which tasks and handles wake. It never polls on an interval of its
//! own.
//!
//! Tasks run either in place ([`InPlace`]: the driver polls the task futures itself, for single-threaded and
//! embedded executors and for the deterministic harness) or on a runtime's executor ([`Spawned`]). Either
//! way each task lives in a slot that is allocated once and reused, so starting and reaping a task
//! allocates nothing in the pool.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use crate::config::ConfigError;
use crate::pool::{Action, Event, Pool, RunError, RunReport, TaskOutcome, Verdict};
use crate::runtime::{Runtime, Sensors, TaskFns, Timer};
use crate::scale::ScalingPolicy;
#[cfg(feature = "std")]
use crate::status::SystemInfo;
use crate::sync::{AtomicBool, AtomicUsize, AtomicWaker, Notify, Ordering, raise};
use crate::time::Instant;

/// A task or task function panicked; the message is what `panic!` was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskPanic {
    /// The panic message, or a placeholder when the payload was not a string.
    pub message: String,
}

impl TaskPanic {
    /// Builds one from a panic payload.
    #[cfg(feature = "std")]
    pub fn from_payload(payload: &(dyn core::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            String::from(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            String::from("a panic with a non-string payload")
        };
        TaskPanic { message }
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a task panicked: {}", self.message)
    }
}

impl core::error::Error for TaskPanic {}

/// Why a run failed. The user's error type `E` comes out unchanged in [`PoolError::Task`].
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// `run_task`, `is_task_ready` or `is_finished` returned this error first.
    Task(E),
    /// A task or task function panicked.
    Panicked(TaskPanic),
    /// A task outlived its timeout and the timeout policy fails the pool.
    TimedOut(Duration),
    /// The pool is already running.
    AlreadyRunning,
}

impl<E: fmt::Display> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Task(e) => write!(f, "a task failed: {e}"),
            PoolError::Panicked(p) => p.fmt(f),
            PoolError::TimedOut(d) => write!(f, "a task timed out after {:.3} s", d.as_secs_f64()),
            PoolError::AlreadyRunning => f.write_str("the pool is already running"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for PoolError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PoolError::Task(e) => Some(e),
            _ => None,
        }
    }
}

/// How task futures run: in the driver or on an executor.
pub trait Launch<F: Future> {
    /// A started task, resolving to its output or its panic.
    type Running: Future<Output = Result<F::Output, TaskPanic>>;
    /// Starts `task`.
    fn launch(&self, task: F) -> Self::Running;
    /// Asks a running task to stop. Returns `true` when dropping `running` is all it takes (the driver then
    /// drops it at once); `false` when the driver must keep polling it until it resolves.
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool;
}

/// Runs task futures in place: the driver polls them. No spawner, no `Send` bound, no allocation per task.
#[derive(Clone, Copy, Debug, Default)]
pub struct InPlace;

pin_project_lite::pin_project! {
    /// A task polled in place, with panics caught (under `std`).
    #[derive(Debug)]
    pub struct CatchPanic<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, TaskPanic>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        #[cfg(feature = "std")]
        {
            // The future is dropped right after a panic and never polled again, so observing broken
            // invariants through it is impossible; that is what makes the assertion sound.
            match std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(p) => p.map(Ok),
                Err(payload) => Poll::Ready(Err(TaskPanic::from_payload(&*payload))),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            inner.poll(cx).map(Ok)
        }
    }
}

/// Calls `f`, turning a panic into a [`TaskPanic`] (under `std`; without it a panic aborts anyway).
fn call_caught<T>(f: impl FnOnce() -> T) -> Result<T, TaskPanic> {
    #[cfg(feature = "std")]
    {
        // The value `f` was building is discarded after a panic, so no broken state can be observed.
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(f))
            .map_err(|p| TaskPanic::from_payload(&*p))
    }
    #[cfg(not(feature = "std"))]
    {
        Ok(f())
    }
}

impl<F: Future> Launch<F> for InPlace {
    type Running = CatchPanic<F>;
    fn launch(&self, task: F) -> CatchPanic<F> {
        CatchPanic { inner: task }
    }
    fn cancel(&self, _running: Pin<&mut CatchPanic<F>>) -> bool {
        true
    }
}

/// A runtime's spawner, for [`Spawned`].
pub trait Spawn {
    /// A join handle that resolves to the task's output, or its panic.
    type Handle<T: Send + 'static>: Future<Output = Result<T, TaskPanic>> + Unpin;
    /// Spawns `task` on the executor.
    fn spawn<F>(&self, task: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// Requests cancellation; the handle then resolves once the task is gone.
    fn cancel<T: Send + 'static>(&self, handle: &mut Self::Handle<T>);
}

/// Runs tasks on an executor through its [`Spawn`] implementation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spawned<S>(pub S);

impl<S: Spawn, F> Launch<F> for Spawned<S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = S::Handle<F::Output>;
    fn launch(&self, task: F) -> Self::Running {
        self.0.spawn(task)
    }
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool {
        self.0.cancel(Pin::into_inner(running));
        false
    }
}

/// The state shared between a run and its [`Handle`]s. Only atomics and wait queues: no lock.
#[derive(Debug)]
struct Shared {
    waker: AtomicWaker,
    /// The active run's number, or 0 when none is active. Numbering runs lets an abort name the run it is
    /// meant for, so it can never be lost in a race with a run's start nor leak into the next run.
    running: AtomicUsize,
    /// Run numbers handed out so far.
    runs: AtomicUsize,
    paused: AtomicBool,
    /// The number of the run an abort was requested for (0: none).
    abort: AtomicUsize,
    slot_woken: AtomicBool,
    /// Set by every handle request (pause, resume, setters, abort), so the driver's per-iteration check is
    /// one load when nothing changed.
    dirty: AtomicBool,
    set_min: AtomicUsize,
    set_max: AtomicUsize,
    set_desired: AtomicUsize,
    current: AtomicUsize,
    desired: AtomicUsize,
    min: AtomicUsize,
    max: AtomicUsize,
    drained: Notify,
    ended: Notify,
    /// The latest current and historical verdicts, refreshed at every sensor sample (once a second by
    /// default), so handles can show them without touching the machine.
    #[cfg(feature = "std")]
    info: std::sync::Mutex<Option<(SystemInfo, SystemInfo)>>,
}

/// A cloneable, thread-safe handle to a pool: pause, resume, abort, notify, setters and counters, usable
/// from inside tasks and from other threads.
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// A handle for a pool built with these bounds.
    pub fn new<P: ScalingPolicy>(pool: &Pool<P>) -> Self {
        let shared = Shared {
            waker: AtomicWaker::new(),
            running: AtomicUsize::new(0),
            runs: AtomicUsize::new(0),
            paused: AtomicBool::new(pool.is_paused()),
            abort: AtomicUsize::new(0),
            slot_woken: AtomicBool::new(false),
            dirty: AtomicBool::new(true),
            set_min: AtomicUsize::new(0),
            set_max: AtomicUsize::new(0),
            set_desired: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
            desired: AtomicUsize::new(pool.desired_concurrency()),
            min: AtomicUsize::new(pool.min_concurrency()),
            max: AtomicUsize::new(pool.max_concurrency()),
            drained: Notify::new(),
            ended: Notify::new(),
            #[cfg(feature = "std")]
            info: std::sync::Mutex::new(None),
        };
        Handle {
            shared: Arc::new(shared),
        }
    }

    /// Tasks running now (0 outside a run).
    pub fn current_concurrency(&self) -> usize {
        self.shared.current.load(Ordering::Acquire)
    }
    /// Desired concurrency, as of the driver's last poll.
    pub fn desired_concurrency(&self) -> usize {
        self.shared.desired.load(Ordering::Acquire)
    }
    /// The floor, as of the driver's last poll.
    pub fn min_concurrency(&self) -> usize {
        self.shared.min.load(Ordering::Acquire)
    }
    /// The ceiling, as of the driver's last poll.
    pub fn max_concurrency(&self) -> usize {
        self.shared.max.load(Ordering::Acquire)
    }
    /// Whether a run is active.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire) != 0
    }
    /// Whether the pool is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::Acquire)
    }

    /// The verdicts over the current window (gating starts) as of the last sensor sample of the active or
    /// last run; `None` before the first run.
    #[cfg(feature = "std")]
    pub fn current_system_info(&self) -> Option<SystemInfo> {
        self.info().map(|i| i.0)
    }

    /// The verdicts over the whole history (driving autoscaling) as of the last sensor sample.
    #[cfg(feature = "std")]
    pub fn historical_system_info(&self) -> Option<SystemInfo> {
        self.info().map(|i| i.1)
    }

    #[cfg(feature = "std")]
    fn info(&self) -> Option<(SystemInfo, SystemInfo)> {
        // A panic while holding this lock cannot leave a half-written pair: the value is replaced whole.
        self.shared
            .info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Copies the machine's counters into the handle, for setters applied while no run is active.
    pub fn sync_from<P: ScalingPolicy>(&self, pool: &Pool<P>) {
        let sh = &self.shared;
        sh.desired
            .store(pool.desired_concurrency(), Ordering::Release);
        sh.min.store(pool.min_concurrency(), Ordering::Release);
        sh.max.store(pool.max_concurrency(), Ordering::Release);
    }

    /// Stops new starts; running tasks go on. Takes effect at the driver's next poll, which this triggers.
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Lets the pool start tasks again, at once.
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Wakes the driver so it asks `is_task_ready` again now, for example after new work was queued.
    pub fn notify(&self) {
        self.shared.waker.wake();
    }

    /// Sets desired concurrency; the driver clamps it into `[min, max]`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_desired_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::MinTooSmall);
        }
        self.request(&self.shared.set_desired, n);
        Ok(())
    }

    /// Sets the floor.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0; [`ConfigError::MinAboveMax`] above the ceiling in force.
    pub fn set_min_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::MinTooSmall);
        }
        let max = self.max_concurrency();
        if n > max {
            return Err(ConfigError::MinAboveMax { min: n, max });
        }
        self.request(&self.shared.set_min, n);
        Ok(())
    }

    /// Sets the ceiling; desired and min follow it down.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_max_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::MinTooSmall);
        }
        self.request(&self.shared.set_max, n);
        Ok(())
    }

    fn request(&self, slot: &AtomicUsize, n: usize) {
        slot.store(n, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Aborts the active run and waits until it has cancelled its tasks and ended. The run then returns
    /// `Ok` with `aborted` set in its report.
    ///
    /// # Errors
    ///
    /// [`RunError::NotRunning`] when no run is active.
    pub async fn abort(&self) -> Result<(), RunError> {
        // One load both checks that a run is active and names it.
        let run = self.shared.running.load(Ordering::Acquire);
        if run == 0 {
            return Err(RunError::NotRunning);
        }
        self.shared.abort.store(run, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
        // Wait for *that* run to end; a run started after it is not this abort's business.
        let ended = || self.shared.running.load(Ordering::Acquire) != run;
        loop {
            if ended() {
                return Ok(());
            }
            let listener = self.shared.ended.listen();
            if ended() {
                return Ok(());
            }
            listener.await;
        }
    }

    /// Waits until no task is running (at once if none is). With [`Handle::pause`] first, this is "pause and
    /// drain"; adapters add a timeout.
    pub async fn drained(&self) {
        loop {
            if self.current_concurrency() == 0 {
                return;
            }
            let listener = self.shared.drained.listen();
            if self.current_concurrency() == 0 {
                return;
            }
            listener.await;
        }
    }
}

/// Which slots' wakers fired, one bit per slot, so the driver visits only woken slots instead of scanning
/// them all. It is sized once per run for `max_concurrency`; slots added after a setter raised the maximum
/// fall back to their own flag and the `overflow` mark.
#[derive(Debug)]
struct WakeSet {
    words: Box<[AtomicUsize]>,
    overflow: AtomicBool,
    shared: Arc<Shared>,
}

impl WakeSet {
    const BITS: usize = usize::BITS as usize;

    fn new(capacity: usize, shared: Arc<Shared>) -> Self {
        let words = (0..capacity.max(1).div_ceil(Self::BITS))
            .map(|_| AtomicUsize::new(0))
            .collect();
        WakeSet {
            words,
            overflow: AtomicBool::new(false),
            shared,
        }
    }

    fn capacity(&self) -> usize {
        self.words.len() * Self::BITS
    }
}

/// Wakes the driver for one slot: marks the slot, then wakes the driver's task.
#[derive(Debug)]
struct SlotSignal {
    index: usize,
    woken: AtomicBool,
    set: Arc<WakeSet>,
}

impl Wake for SlotSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let set = &self.set;
        match set.words.get(self.index / WakeSet::BITS) {
            Some(word) => {
                word.fetch_or(1 << (self.index % WakeSet::BITS), Ordering::AcqRel);
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

struct Slot<T> {
    task: Pin<Box<Option<T>>>,
    signal: Arc<SlotSignal>,
    waker: Waker,
    generation: u64,
    cancelling: bool,
    timed_out: bool,
}

/// Sends events somewhere: a logger, a metrics exporter, a test's trace.
pub trait EventSink {
    /// Called once per event, in order.
    fn event(&mut self, event: &Event);
}

/// Drops events.
impl EventSink for () {
    fn event(&mut self, _event: &Event) {}
}

impl<S: EventSink + ?Sized> EventSink for &mut S {
    fn event(&mut self, event: &Event) {
        (**self).event(event)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn event(&mut self, event: &Event) {
        (**self).event(event)
    }
}

/// An [`EventSink`] from a closure.
#[derive(Clone, Copy, Debug, Default)]
pub struct FnSink<F>(pub F);

impl<F: FnMut(&Event)> EventSink for FnSink<F> {
    fn event(&mut self, event: &Event) {
        (self.0)(event)
    }
}

/// The most start attempts and reaps in one poll before the driver yields to its executor.
const BUDGET: u32 = 256;

/// The most task slots (and wake bits) a run reserves before its first task, whatever the ceiling.
const PREALLOCATED_SLOTS: usize = 4096;

/// The most tasks started back to back in one step of the driver's loop.
const START_BATCH: u32 = 32;

/// What one step of the start path did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// A task started; another may follow at once.
    Launched,
    /// Something else changed (an answer, an error, a finish check); the loop should go round.
    Changed,
    /// Nothing to do until a wake.
    Idle,
}

/// How many loop iterations of one poll share one clock reading.
const CLOCK_EVERY: u32 = 16;

/// One run of a pool: a future resolving to the run's report, or its first error.
///
/// Build it with [`Run::new`].
pub struct Run<'a, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
{
    pool: &'a mut Pool<P>,
    handle: Handle,
    fns: &'a mut F,
    rt: &'a Rt,
    launcher: L,
    sensors: S,
    sink: O,
    timer: Pin<Box<Rt::Timer>>,
    armed: Instant,
    slots: Vec<Slot<L::Running>>,
    wake: Arc<WakeSet>,
    free: VecDeque<usize>,
    deadlines: VecDeque<(Instant, usize, u64)>,
    ready_check: Pin<Box<Option<CatchPanic<F::Ready>>>>,
    finished_check: Pin<Box<Option<CatchPanic<F::Finished>>>>,
    asked_ready: bool,
    asked_finished: bool,
    cancelled_all: bool,
    number: usize,
    error: Option<PoolError<F::Error>>,
    done: bool,
}

impl<P, F, Rt, L, S, O> fmt::Debug for Run<'_, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("current", &self.pool.current_concurrency())
            .field("desired", &self.pool.desired_concurrency())
            .field("slots", &self.slots.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a, P, F, Rt, L, S, O> Run<'a, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
    S: Sensors,
    O: EventSink,
{
    /// Starts a run of `pool` at `rt.now()`.
    ///
    /// # Errors
    ///
    /// [`PoolError::AlreadyRunning`] when `handle` belongs to a pool that is already running, or `pool` is.
    pub fn new(
        pool: &'a mut Pool<P>,
        handle: &Handle,
        fns: &'a mut F,
        rt: &'a Rt,
        launcher: L,
        sensors: S,
        sink: O,
    ) -> Result<Self, PoolError<F::Error>> {
        let shared = &handle.shared;
        // Run numbers start at 1 (0 means "none") and skip 0 if they ever wrap.
        let number = shared
            .runs
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1)
            .max(1);
        if shared
            .running
            .compare_exchange(0, number, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(PoolError::AlreadyRunning);
        }
        let now = rt.now();
        if pool.start_run(now).is_err() {
            shared.running.store(0, Ordering::Release);
            return Err(PoolError::AlreadyRunning);
        }
        // Slots and wake bits are reserved up front for the ceiling, but no further than `PREALLOCATED_SLOTS`:
        // a valid ceiling may be `usize::MAX`. Slots past it are pushed when first needed and woken through
        // the wake set's overflow mark.
        let cap = pool.max_concurrency().min(PREALLOCATED_SLOTS);
        let mut run = Run {
            timer: Box::pin(rt.timer(now)),
            armed: now,
            pool,
            handle: handle.clone(),
            fns,
            rt,
            launcher,
            sensors,
            sink,
            slots: Vec::with_capacity(cap),
            wake: Arc::new(WakeSet::new(cap, handle.shared.clone())),
            free: VecDeque::with_capacity(cap),
            deadlines: VecDeque::with_capacity(cap),
            ready_check: Box::pin(None),
            finished_check: Box::pin(None),
            asked_ready: false,
            asked_finished: false,
            cancelled_all: false,
            number,
            error: None,
            done: false,
        };
        // A read-modify-write, not a store: a store could land after a handle's concurrent request in the
        // flag's modification order without synchronising with it, so `apply_control` would read this run's own
        // `true`, see a stale `paused` or setter, and clear the only mark of the request (a pause or resume
        // lost for the whole run; found by the loom model `task_wakeup_and_handle_controls_are_never_lost`).
        run.handle.shared.dirty.fetch_or(true, Ordering::AcqRel);
        run.apply_control(now);
        run.publish();
        Ok(run)
    }

    fn apply_control(&mut self, now: Instant) {
        let sh = &self.handle.shared;
        if !sh.dirty.load(Ordering::Relaxed) || !sh.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let paused = sh.paused.load(Ordering::Acquire);
        if paused != self.pool.is_paused() {
            if paused {
                self.pool.pause();
            } else {
                self.pool.resume();
            }
        }
        // Setter errors were reported to the caller by the handle already; a request that raced with
        // another setter into an invalid combination is dropped.
        let max = sh.set_max.swap(0, Ordering::AcqRel);
        if max != 0 {
            let _ = self.pool.set_max_concurrency(now, max);
        }
        let min = sh.set_min.swap(0, Ordering::AcqRel);
        if min != 0 {
            let _ = self.pool.set_min_concurrency(now, min);
        }
        let desired = sh.set_desired.swap(0, Ordering::AcqRel);
        if desired != 0 {
            let _ = self.pool.set_desired_concurrency(now, desired);
        }
        if sh.abort.load(Ordering::Acquire) == self.number && !self.pool.is_aborted() {
            let _ = self.pool.abort();
        }
    }

    fn publish(&self) {
        // Only the driver writes these, so a load-compare-store skips the shared-cache-line write when nothing
        // changed, which is most iterations.
        let sh = &self.handle.shared;
        let current = self.pool.current_concurrency();
        if sh.current.load(Ordering::Relaxed) != current {
            sh.current.store(current, Ordering::Release);
            if current == 0 {
                sh.drained.notify(usize::MAX);
            }
        }
        for (cell, value) in [
            (&sh.desired, self.pool.desired_concurrency()),
            (&sh.min, self.pool.min_concurrency()),
            (&sh.max, self.pool.max_concurrency()),
        ] {
            if cell.load(Ordering::Relaxed) != value {
                cell.store(value, Ordering::Release);
            }
        }
    }

    fn publish_info(&self, now: Instant) {
        #[cfg(feature = "std")]
        {
            let pair = (self.pool.current_info(now), self.pool.historical_info(now));
            *self
                .handle
                .shared
                .info
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(pair);
        }
        #[cfg(not(feature = "std"))]
        let _ = now;
    }

    fn flush_events(&mut self) {
        while let Some(e) = self.pool.poll_event() {
            self.sink.event(&e);
        }
    }

    fn record_error(&mut self, verdict: Verdict, error: PoolError<F::Error>) {
        if verdict == Verdict::FirstError && self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Cancels every running task and drops pending task-function calls.
    fn cancel_all(&mut self, now: Instant) {
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

    fn expire_timeouts(&mut self, now: Instant) {
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

    fn finish_task(
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
    fn reap(&mut self, now: Instant) -> usize {
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

    fn launch(&mut self, now: Instant) {
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

    /// Advances the start path by one step. Returns whether anything changed.
    /// Runs the start path: up to [`START_BATCH`] starts in a row while readiness answers at once, so a
    /// stream of short tasks pays the loop's bookkeeping (ticks, reaping, events, counters) once per batch
    /// rather than once per task. Returns whether anything changed.
    fn step_start(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        for _ in 0..START_BATCH {
            match self.start_once(cx, now) {
                Step::Launched => progress = true,
                Step::Changed => return true,
                Step::Idle => return progress,
            }
        }
        progress
    }

    /// One step of the start path.
    fn start_once(&mut self, cx: &mut Context<'_>, now: Instant) -> Step {
        if let Some(check) = self.finished_check.as_mut().as_pin_mut() {
            let Poll::Ready(res) = check.poll(cx) else {
                return Step::Idle;
            };
            self.finished_check.set(None);
            match res {
                Ok(Ok(true)) => self.pool.handle_finished(now),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => self.task_fn_failed(now, PoolError::Task(e)),
                Err(p) => self.task_fn_failed(now, PoolError::Panicked(p)),
            }
            return Step::Changed;
        }
        if self.ready_check.is_none() {
            if self.asked_ready {
                return Step::Idle;
            }
            match self.pool.poll_start(now) {
                Ok(()) => match call_caught(|| self.fns.is_task_ready()) {
                    Ok(check) => self.ready_check.set(Some(CatchPanic { inner: check })),
                    Err(p) => {
                        self.task_fn_failed(now, PoolError::Panicked(p));
                        return Step::Changed;
                    }
                },
                // A paused or rate-limited pool with nothing running may still be finished: asking keeps the
                // pause and the rate cap from stalling the end of a run (Crawlee for Python asks while paused).
                Err(crate::Refusal::Paused | crate::Refusal::RateLimited { .. }) => {
                    return if self.maybe_check_finished() {
                        Step::Changed
                    } else {
                        Step::Idle
                    };
                }
                Err(_) => return Step::Idle,
            }
        }
        // The readiness answer is polled in the same step it is asked, so a ready answer starts its task
        // without another trip through the driver's loop.
        if let Some(check) = self.ready_check.as_mut().as_pin_mut() {
            let Poll::Ready(res) = check.poll(cx) else {
                return Step::Idle;
            };
            self.ready_check.set(None);
            match res {
                Ok(Ok(true)) => {
                    if self.pool.handle_task_started(now).is_ok() {
                        self.launch(now);
                        return Step::Launched;
                    }
                }
                Ok(Ok(false)) => {
                    self.asked_ready = true;
                    self.pool.handle_no_task_ready(now);
                    self.maybe_check_finished();
                }
                Ok(Err(e)) => self.task_fn_failed(now, PoolError::Task(e)),
                Err(p) => self.task_fn_failed(now, PoolError::Panicked(p)),
            }
            return Step::Changed;
        }
        Step::Idle
    }

    fn maybe_check_finished(&mut self) -> bool {
        if self.asked_finished || !self.pool.should_check_finished() {
            return false;
        }
        self.asked_finished = true;
        match call_caught(|| self.fns.is_finished()) {
            Ok(check) => self.finished_check.set(Some(CatchPanic { inner: check })),
            Err(p) => {
                let now = self.rt.now();
                self.task_fn_failed(now, PoolError::Panicked(p));
            }
        }
        true
    }

    /// `is_task_ready` or `is_finished` failed or panicked: the run drains and returns the first error.
    fn task_fn_failed(&mut self, now: Instant, error: PoolError<F::Error>) {
        let verdict = self.pool.handle_error(now);
        self.record_error(verdict, error);
    }

    fn end(&mut self, now: Instant) -> Poll<Result<RunReport, PoolError<F::Error>>> {
        self.done = true;
        self.ready_check.set(None);
        self.finished_check.set(None);
        let report = self.pool.end_run(now);
        self.flush_events();
        self.publish();
        let sh = &self.handle.shared;
        sh.running.store(0, Ordering::Release);
        sh.drained.notify(usize::MAX);
        sh.ended.notify(usize::MAX);
        Poll::Ready(match (self.error.take(), report) {
            (Some(e), _) => Err(e),
            (None, Ok(r)) => Ok(r),
            // `end` runs only once the machine says the run is done, so this cannot happen; report it as the
            // closest thing rather than panicking.
            (None, Err(_)) => Err(PoolError::AlreadyRunning),
        })
    }
}

// The driver never pins its fields in place: the task slots, checks and timer are pinned in their own boxes.
// So moving a `Run` never moves a pinned value, and it may be `Unpin` whatever its parameters are.
impl<P, F, Rt, L, S, O> Unpin for Run<'_, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
{
}

impl<P, F, Rt, L, S, O> Future for Run<'_, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
    S: Sensors,
    O: EventSink,
{
    type Output = Result<RunReport, PoolError<F::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (pinned state lives in boxes), so the driver itself can move.
        let this = Pin::into_inner(self);
        if this.done {
            return Poll::Pending;
        }
        this.handle.shared.waker.register(cx.waker());
        // Each wake is a new chance: readiness and finish are asked again once per wake, never in a spin.
        this.asked_ready = false;
        this.asked_finished = false;
        let mut budget = BUDGET;
        let mut now = this.rt.now();
        loop {
            // A clock read costs as much as a short task's whole trip through the pool, so the clock is read
            // once per poll and again every few iterations; the iterations of one poll span microseconds.
            if (BUDGET - budget) % CLOCK_EVERY == CLOCK_EVERY - 1 {
                now = this.rt.now();
            }
            this.apply_control(now);
            if this.pool.poll_timeout().is_some_and(|t| now >= t) {
                this.pool.handle_timeout(now);
            }
            while let Some(action) = this.pool.poll_action() {
                match action {
                    Action::SampleSensors => {
                        this.sensors.sample(now, this.pool);
                        this.publish_info(now);
                    }
                }
            }
            if this.pool.is_aborted() && !this.cancelled_all {
                this.cancel_all(now);
            }
            this.expire_timeouts(now);
            let reaped = this.reap(now);
            if this.pool.is_draining() && this.pool.current_concurrency() == 0 {
                return this.end(now);
            }
            let started = this.step_start(cx, now);
            this.flush_events();
            this.publish();
            if reaped == 0 && !started {
                break;
            }
            budget -= 1;
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let next_task_deadline = this.deadlines.front().map_or(Instant::FAR_FUTURE, |d| d.0);
        let deadline = this
            .pool
            .poll_timeout()
            .unwrap_or(Instant::FAR_FUTURE)
            .min(next_task_deadline);
        if deadline != this.armed {
            this.timer.as_mut().reset(deadline);
            this.armed = deadline;
        }
        if this.timer.as_mut().poll_elapsed(cx).is_ready() && this.rt.now() >= deadline {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<P, F, Rt, L, S, O> Drop for Run<'_, P, F, Rt, L, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    Rt: Runtime,
    L: Launch<F::Task>,
{
    fn drop(&mut self) {
        // A run dropped before it ended (its caller was cancelled) still frees the pool for the next run:
        // in-place tasks are dropped with it, and the machine is reset.
        if !self.done {
            for slot in &mut self.slots {
                if let Some(task) = slot.task.as_mut().as_pin_mut() {
                    let _ = self.launcher.cancel(task);
                }
            }
            let _ = self.pool.abort();
            let now = self.rt.now();
            while self.pool.current_concurrency() > 0 {
                self.pool.handle_task_finished(now, TaskOutcome::Cancelled);
            }
            let _ = self.pool.end_run(now);
            let sh = &self.handle.shared;
            sh.current.store(0, Ordering::Release);
            sh.running.store(0, Ordering::Release);
            sh.drained.notify(usize::MAX);
            sh.ended.notify(usize::MAX);
        }
    }
}
