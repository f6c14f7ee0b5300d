//! loom models of the state a run shares across threads: the [`Handle`]'s pause / resume / notify / setters /
//! abort and a task's waker, racing the driver's poll and its wake slot.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p pool-core --test loom --release` (what `cargo xtask ci`
//! does, in its own target directory). Under `cfg(loom)` the driver's atomics and `AtomicWaker` are loom's
//! (`src/sync.rs`), so loom explores every interleaving of them, bounded by a preemption bound of 4 (the three
//! models take about 16 s in release). A lost wakeup shows as a loom deadlock (the driver parked with nobody
//! left to wake it), a torn counter as a failed assertion.
//!
//! Two loom limits shape these models. loom 0.7 lets a plain store slip inside a concurrent `swap`, which the
//! memory model forbids; the flags the driver consumes with `swap` are therefore raised with a `swap` under
//! loom (`sync::raise`). And the run's shared blocks are counted by `alloc`'s `Arc`, whose hand-over loom does
//! not see, so a model whose other thread touches them last joins it before the driver drops the run.
//!
//! Time is frozen (the clock never moves and the timer never fires), so every wakeup in these models comes
//! from a waker: exactly the paths a lost wakeup would break.
#![cfg(loom)]

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom::future::{AtomicWaker, block_on};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use pool_core::{
    Clock, ConcurrencySettings, Handle, InPlace, Instant, Pool, PoolConfig, Run, Runtime,
    SharedBudget, Timer, task_fns,
};

/// A clock that stands still and a timer that never fires.
struct Frozen;

impl Clock for Frozen {
    fn now(&self) -> Instant {
        Instant::from_secs(1)
    }
}

struct NeverTimer;

impl Timer for NeverTimer {
    fn reset(self: Pin<&mut Self>, _at: Instant) {}
    fn poll_elapsed(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Runtime for Frozen {
    type Timer = NeverTimer;
    fn timer(&self, _at: Instant) -> NeverTimer {
        NeverTimer
    }
}

/// A one-shot latch another thread opens: what a task waits on (its I/O, say).
struct Latch {
    open: AtomicBool,
    waker: AtomicWaker,
}

impl Latch {
    fn new() -> Self {
        Latch {
            open: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }
    fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.waker.wake();
    }
    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

struct Wait(Arc<Latch>);

impl Future for Wait {
    type Output = Result<(), ()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.0.is_open() {
            return Poll::Ready(Ok(()));
        }
        self.0.waker.register_by_ref(cx.waker());
        if self.0.is_open() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

fn pool(min: usize, desired: usize, max: usize) -> Pool {
    let mut c = PoolConfig::default();
    c.concurrency = ConcurrencySettings::default()
        .with_min(min)
        .with_desired(desired)
        .with_max(max);
    Pool::new(c).unwrap()
}

fn bounded() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(4);
    b
}

/// Runs `f` on a loom thread with a stack deep enough for the driver's poll (loom's coroutines default to a
/// small one).
fn deep<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> loom::thread::JoinHandle<T> {
    loom::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(f)
        .unwrap()
}

/// A task waits for another thread, which meanwhile pauses, changes desired concurrency and resumes: the run
/// sees the task end (its waker) and the controls (the handle's wake), and ends with consistent counters.
#[test]
fn task_wakeup_and_handle_controls_are_never_lost() {
    bounded().check(|| {
        deep(|| {
            let mut pool = pool(1, 1, 2);
            let handle = Handle::new(&pool);
            let latch = Arc::new(Latch::new());
            let (l2, h2) = (latch.clone(), handle.clone());
            let other = loom::thread::spawn(move || {
                h2.pause();
                h2.set_desired_concurrency(2).unwrap();
                h2.resume();
                l2.open();
            });
            let driver = deep(move || {
                let started = Cell::new(0u32);
                let mut fns = task_fns(
                    || {
                        started.set(started.get() + 1);
                        Wait(latch.clone())
                    },
                    || {
                        let ready = started.get() < 1;
                        async move { Ok(ready) }
                    },
                    // The one task was taken (asked only with nothing running, so it also ended). Not "the
                    // latch is open": the latch may open before the task starts, while the pool is paused.
                    || {
                        let done = started.get() == 1;
                        async move { Ok(done) }
                    },
                );
                let rt = Frozen;
                let mut run = Run::new(&mut pool, &handle, &mut fns, &rt, InPlace, (), ()).unwrap();
                let report = block_on(&mut run).unwrap();
                // The run's wake slots and shared block are reference-counted with `alloc`'s `Arc`, whose
                // hand-over loom cannot see: the other thread's last touch (its wake through the latch) must be
                // joined before the driver frees them, or loom reports the free as racing that touch.
                other.join().unwrap();
                drop(run);
                assert_eq!((report.started, report.succeeded), (1, 1));
                assert_eq!(handle.current_concurrency(), 0);
                assert!(!handle.is_running());
                assert_eq!(pool.current_concurrency(), 0);
            });
            driver.join().unwrap();
        })
        .join()
        .unwrap()
    });
}

/// Work arrives from another thread, which then notifies: the driver, idle with nothing ready, must see it.
#[test]
fn notify_after_new_work_is_never_lost() {
    bounded().check(|| {
        deep(|| {
            let mut pool = pool(1, 1, 1);
            let handle = Handle::new(&pool);
            let queued = Arc::new(AtomicBool::new(false));
            let done = Arc::new(Latch::new());
            let (q2, h2) = (queued.clone(), handle.clone());
            let other = loom::thread::spawn(move || {
                q2.store(true, Ordering::Release);
                h2.notify();
            });
            let driver = deep(move || {
                let taken = Cell::new(false);
                let mut fns = task_fns(
                    || {
                        taken.set(true);
                        done.open();
                        async { Ok::<(), ()>(()) }
                    },
                    || {
                        let ready = !taken.get() && queued.load(Ordering::Acquire);
                        async move { Ok(ready) }
                    },
                    || {
                        let finished = taken.get();
                        async move { Ok(finished) }
                    },
                );
                let rt = Frozen;
                let run = Run::new(&mut pool, &handle, &mut fns, &rt, InPlace, (), ()).unwrap();
                let report = block_on(run).unwrap();
                assert_eq!(report.succeeded, 1);
                assert!(done.is_open());
            });
            other.join().unwrap();
            driver.join().unwrap();
        })
        .join()
        .unwrap()
    });
}

/// `abort` from another thread while a task hangs: the driver wakes, cancels the task and ends; `abort`
/// returns only after the run has ended; nothing is left running.
#[test]
fn abort_from_another_thread_ends_the_run() {
    bounded().check(|| {
        deep(|| {
            let mut pool = pool(1, 1, 1);
            let handle = Handle::new(&pool);
            let never = Arc::new(Latch::new());
            let h2 = handle.clone();
            let to_other = Arc::new(AtomicBool::new(false));
            let running = to_other.clone();
            let driver = deep(move || {
                let started = Cell::new(0u32);
                let mut fns = task_fns(
                    || {
                        started.set(started.get() + 1);
                        Wait(never.clone())
                    },
                    || {
                        let ready = started.get() < 1;
                        async move { Ok(ready) }
                    },
                    || async { Ok(false) },
                );
                let rt = Frozen;
                let run = Run::new(&mut pool, &handle, &mut fns, &rt, InPlace, (), ()).unwrap();
                running.store(true, Ordering::Release);
                let report = block_on(run).unwrap();
                assert!(report.aborted);
                assert_eq!(report.started, report.cancelled);
                assert_eq!(handle.current_concurrency(), 0);
            });
            // Abort once the run exists (before that, `abort` rightly says the pool is not running).
            while !to_other.load(Ordering::Acquire) {
                loom::thread::yield_now();
            }
            block_on(h2.abort()).unwrap();
            assert!(!h2.is_running());
            assert_eq!(h2.current_concurrency(), 0);
            driver.join().unwrap();
        })
        .join()
        .unwrap()
    });
}

/// A pool waits for a permit of a spent shared budget (issue 14) while the other member gives one back from
/// another thread: the release sees the waiter or the waiter sees the release, so the run wakes, starts its
/// task and ends, and the budget is never over-admitted.
#[test]
fn a_permit_given_back_on_another_thread_wakes_the_pool_waiting_for_it() {
    bounded().check(|| {
        deep(|| {
            let budget = SharedBudget::new(2);
            let (first, second) = (budget.member(1), budget.member(1));
            // The first member ran alone and holds the whole budget; the second joins, which halves the
            // first's share, but the first still holds both permits.
            let other = pool(1, 2, 2);
            let h_first = Handle::new(&other);
            first.join(&h_first, 2);
            first.try_acquire().unwrap();
            first.try_acquire().unwrap();
            let giver = loom::thread::spawn(move || {
                first.release();
                first
            });
            let b2 = budget.clone();
            let driver = deep(move || {
                let mut pool = pool(1, 1, 1);
                let handle = Handle::new(&pool);
                let taken = Cell::new(false);
                let mut fns = task_fns(
                    || {
                        taken.set(true);
                        assert!(b2.in_use() <= 2);
                        async { Ok::<(), ()>(()) }
                    },
                    || {
                        let ready = !taken.get();
                        async move { Ok(ready) }
                    },
                    || {
                        let finished = taken.get();
                        async move { Ok(finished) }
                    },
                );
                let rt = Frozen;
                let run = Run::new(&mut pool, &handle, &mut fns, &rt, InPlace, (), ())
                    .unwrap()
                    .with_budget(&second);
                let report = block_on(run).unwrap();
                assert_eq!(report.succeeded, 1);
                second
            });
            let first = giver.join().unwrap();
            let second = driver.join().unwrap();
            assert_eq!((first.held(), second.held(), budget.in_use()), (1, 0, 1));
        })
        .join()
        .unwrap()
    });
}

/// Workers for the loom models: each worker on a loom thread of its own, whose handle the model joins.
#[derive(Clone, Default)]
struct LoomSpawn(std::sync::Arc<std::sync::Mutex<Vec<loom::thread::JoinHandle<()>>>>);

/// A join handle that is never polled (a worker's handle is only kept).
struct Detached<T>(std::marker::PhantomData<T>);

impl<T> Future for Detached<T> {
    type Output = Result<T, pool_core::TaskPanic>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl<T> Unpin for Detached<T> {}

impl pool_core::Spawn for LoomSpawn {
    type Handle<T: Send + 'static> = Detached<T>;
    fn spawn<F>(&self, task: F) -> Detached<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let thread = deep(move || {
            let _ = block_on(task);
        });
        self.0.lock().unwrap().push(thread);
        Detached(std::marker::PhantomData)
    }
    fn cancel<T: Send + 'static>(&self, _handle: &mut Detached<T>) {}
}

/// A job: ready at once with its number, or waiting on a latch that nobody opens.
enum Job {
    Now(u32),
    Stuck(Arc<Latch>),
}

impl Future for Job {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match &*self {
            Job::Now(n) => Poll::Ready(*n),
            Job::Stuck(latch) => Wait(latch.clone()).poll_unpin(cx).map(|_| 0),
        }
    }
}

trait PollUnpin: Future + Unpin + Sized {
    fn poll_unpin(mut self, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self).poll(cx)
    }
}
impl<F: Future + Unpin> PollUnpin for F {}

/// Retires the worker behind `running` and joins its thread, so the model ends with nothing running.
fn retire(
    w: &pool_core::Workers<LoomSpawn>,
    mut running: Pin<&mut pool_core::WorkerTask<Job, Detached<()>>>,
) {
    use pool_core::Launch;
    block_on(std::future::poll_fn(|cx| {
        w.poll_retire(running.as_mut(), cx)
    }));
    for t in w.spawner().0.lock().unwrap().drain(..) {
        t.join().unwrap();
    }
}

/// A worker hands each job's output back to its slot, a second job on the same worker included; and a
/// cancel ends a job that would never end, whose slot then gets the cancellation's placeholder. No wake is
/// lost on either side (a lost one shows as a loom deadlock).
#[test]
fn a_worker_hands_each_job_s_output_back_and_a_cancel_ends_the_job() {
    use pool_core::Launch;
    bounded().check(|| {
        let w = pool_core::Workers::new(LoomSpawn::default());
        let mut running = Box::pin(w.launch(Job::Now(1)));
        assert_eq!(block_on(running.as_mut()).unwrap(), 1);
        assert!(w.relaunch(running.as_mut(), Job::Now(2)).is_ok());
        assert_eq!(block_on(running.as_mut()).unwrap(), 2);
        retire(&w, running.as_mut());
    });
    bounded().check(|| {
        let w = pool_core::Workers::new(LoomSpawn::default());
        let latch = Arc::new(Latch::new());
        let mut running = Box::pin(w.launch(Job::Stuck(latch.clone())));
        assert!(!w.cancel(running.as_mut()), "the slot waits for the worker");
        let out = block_on(running.as_mut());
        assert_eq!(out.unwrap_err().message, "cancelled");
        assert!(
            w.relaunch(running.as_mut(), Job::Now(3)).is_ok(),
            "the worker takes the next job"
        );
        assert_eq!(block_on(running.as_mut()).unwrap(), 3);
        retire(&w, running.as_mut());
    });
}
