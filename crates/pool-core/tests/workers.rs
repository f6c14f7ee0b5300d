//! `Workers` (the default task mode) against `Spawned` in virtual time, on random workloads (issue 13): the
//! gate decides every start, so the workers never run more than the concurrency, every task runs exactly once
//! (or the run ends on the first failure, as spawned), and nothing a run started outlives it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use pool_core::testing::Sim;
use pool_core::{
    ConcurrencySettings, Handle, Launch, Pool, PoolConfig, PoolError, Run, RunReport, Spawned,
    Workers, task_fns,
};
use proptest::prelude::*;

/// What a task does: yield `yields` times, then succeed, fail or panic.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ok,
    Err,
    Panic,
    /// Succeeds, then panics when the finished future is dropped.
    PanicInDrop,
}

/// Tasks alive (made and not dropped) and the most at once.
#[derive(Default)]
struct Count {
    alive: AtomicUsize,
    peak: AtomicUsize,
    ran: AtomicUsize,
}

struct Alive(Arc<Count>);

impl Alive {
    fn new(c: &Arc<Count>) -> Self {
        let n = c.alive.fetch_add(1, Ordering::SeqCst) + 1;
        c.peak.fetch_max(n, Ordering::SeqCst);
        Alive(c.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Yields `left` times (waking itself), so tasks interleave on the executor.
struct YieldN(usize);

impl Future for YieldN {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A task future that panics when it is dropped, finished or not.
struct DropBomb<F>(Pin<Box<F>>, usize);

impl<F: Future> Future for DropBomb<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<F> Drop for DropBomb<F> {
    fn drop(&mut self) {
        panic!("task {} panicked in drop", self.1);
    }
}

type Outcome = (Result<RunReport, String>, usize, usize, usize);

/// Runs `tasks` at `concurrency` with `launcher`: the run's result, the peak of live tasks, how many ran, and
/// how many are alive after it.
fn run<L>(sim: &Sim, launcher: L, concurrency: usize, tasks: &[(usize, Kind)]) -> Outcome
where
    L: Launch<Pin<Box<dyn Future<Output = Result<(), String>> + Send>>>,
{
    let mut cfg = PoolConfig::default();
    cfg.concurrency = ConcurrencySettings::fixed(concurrency);
    let mut pool = Pool::new(cfg).unwrap();
    let handle = Handle::new(&pool);
    let count = Arc::new(Count::default());
    let next = std::cell::Cell::new(0usize);
    let (c, specs) = (count.clone(), tasks.to_vec());
    let n = tasks.len();
    let mut fns = task_fns(
        || {
            let i = next.get();
            next.set(i + 1);
            let (yields, kind) = specs[i];
            let alive = Alive::new(&c);
            c.ran.fetch_add(1, Ordering::SeqCst);
            let task = async move {
                let _alive = alive;
                YieldN(yields).await;
                match kind {
                    Kind::Ok | Kind::PanicInDrop => Ok(()),
                    Kind::Err => Err(format!("task {i}")),
                    Kind::Panic => panic!("task {i} panicked"),
                }
            };
            if matches!(kind, Kind::PanicInDrop) {
                Box::pin(DropBomb(Box::pin(task), i))
                    as Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
            } else {
                Box::pin(task)
            }
        },
        || {
            let r = next.get() < n;
            async move { Ok(r) }
        },
        || {
            let f = next.get() >= n;
            async move { Ok(f) }
        },
    );
    let res = {
        let run = Run::new(
            &mut pool,
            &handle,
            &mut fns,
            sim.runtime(),
            launcher,
            (),
            (),
        )
        .unwrap();
        sim.block_on(run).expect("the run ended")
    };
    let res = res.map_err(|e| match e {
        PoolError::Task(s) => s,
        PoolError::Panicked(p) => p.message,
        other => format!("{other:?}"),
    });
    let ran = count.ran.load(Ordering::SeqCst);
    (
        res,
        count.peak.load(Ordering::SeqCst),
        ran,
        count.alive.load(Ordering::SeqCst),
    )
}

fn tasks() -> impl Strategy<Value = Vec<(usize, Kind)>> {
    let kind = prop_oneof![20 => Just(Kind::Ok), 1 => Just(Kind::Err), 1 => Just(Kind::Panic)];
    proptest::collection::vec((0..6usize, kind), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// On random workloads the workers run exactly what spawned tasks run: never more at once than the
    /// concurrency, each task once, the same report or the same first failure, and nothing left alive.
    #[test]
    fn workers_never_over_admit_and_end_runs_as_spawned_tasks_do(
        concurrency in 1..8usize,
        tasks in tasks(),
    ) {
        let sim = &Sim::new();
        let (w_res, w_peak, w_ran, w_alive) = run(sim, Workers::new(sim), concurrency, &tasks);
        // Nothing of the run is left on the executor: no worker, no task.
        prop_assert!(sim.is_idle(), "a worker outlived its run");
        let (s_res, s_peak, s_ran, s_alive) = run(sim, Spawned(sim), concurrency, &tasks);
        prop_assert!(w_peak <= concurrency, "{w_peak} alive at concurrency {concurrency}");
        prop_assert_eq!(w_alive, 0, "a task outlived its run on a worker");
        prop_assert_eq!(s_alive, 0);
        prop_assert_eq!(w_ran, s_ran);
        prop_assert_eq!(w_peak, s_peak);
        match (&w_res, &s_res) {
            (Ok(w), Ok(s)) => {
                prop_assert_eq!(w.started, tasks.len() as u64);
                prop_assert_eq!((w.started, w.succeeded, w.failed), (s.started, s.succeeded, s.failed));
                prop_assert_eq!(w.peak_concurrency, s.peak_concurrency);
            }
            (Err(w), Err(s)) => prop_assert_eq!(w, s, "the same first failure"),
            _ => prop_assert!(false, "workers {:?} but spawned {:?}", w_res, s_res),
        }
    }
}

/// A spawner on the simulation that counts what it spawns.
struct Counting<'a> {
    sim: &'a Sim,
    spawned: std::cell::Cell<usize>,
}

impl pool_core::Spawn for &Counting<'_> {
    type Handle<T: Send + 'static> = pool_core::testing::SimJoin<T>;
    fn spawn<F>(&self, task: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawned.set(self.spawned.get() + 1);
        pool_core::Spawn::spawn(&self.sim, task)
    }
    fn cancel<T: Send + 'static>(&self, handle: &mut Self::Handle<T>) {
        pool_core::Spawn::cancel(&self.sim, handle);
    }
}

/// The workers are lanes, not one per slot: eight slots on two lanes spawn two worker tasks for the whole
/// run, however many tasks it runs, and both are gone when it returns.
#[test]
fn a_run_spawns_one_worker_per_lane_not_one_per_slot_or_task() {
    let sim = &Sim::new();
    let counting = Counting {
        sim,
        spawned: std::cell::Cell::new(0),
    };
    let tasks = vec![(3, Kind::Ok); 40];
    let (res, peak, ran, alive) = run(sim, Workers::with_width(&counting, 2), 8, &tasks);
    let report = res.expect("every task succeeds");
    assert_eq!((report.succeeded, ran, alive), (40, 40, 0));
    assert_eq!(peak, 8, "the eight slots ran at once on two lanes");
    assert_eq!(counting.spawned.get(), 2);
    assert!(sim.is_idle(), "a lane outlived its run");
}

/// A task whose finished future panics when dropped fails that task alone, with its own panic: the lane it
/// shares with the other slots goes on serving them, and every one of them ends.
#[test]
fn a_panic_in_a_finished_task_s_drop_fails_that_task_not_its_lane() {
    let sim = &Sim::new();
    let mut tasks = vec![(2, Kind::Ok); 12];
    tasks[3] = (0, Kind::PanicInDrop);
    let (res, _, ran, alive) = run(sim, Workers::with_width(sim, 1), 4, &tasks);
    assert_eq!(res.unwrap_err(), "task 3 panicked in drop");
    assert_eq!(alive, 0, "every started task was dropped");
    assert!(ran >= 4, "the tasks in flight with the bad one had started");
    assert!(sim.is_idle(), "the lane outlived its run");
}

/// A spawner on the simulation whose tasks a test can drop from under the run, as an executor that shuts
/// down drops its tasks.
struct Killable<'a> {
    sim: &'a Sim,
    kill: Arc<std::sync::atomic::AtomicBool>,
}

/// A spawned future that drops what it runs once `kill` is raised (checked each time it is polled).
struct Doomed<F: Future> {
    inner: Option<Pin<Box<F>>>,
    kill: Arc<std::sync::atomic::AtomicBool>,
}

impl<F: Future> Future for Doomed<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.kill.load(Ordering::SeqCst) {
            self.inner = None;
            return Poll::Ready(None);
        }
        match self.inner.as_mut() {
            Some(f) => f.as_mut().poll(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

/// A [`Doomed`] task's join handle: a killed task ends as a panic would.
struct DoomedJoin<T: Send + 'static>(pool_core::testing::SimJoin<Option<T>>);

impl<T: Send + 'static> Future for DoomedJoin<T> {
    type Output = Result<T, pool_core::TaskPanic>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.and_then(|o| {
                o.ok_or(pool_core::TaskPanic {
                    message: "killed".into(),
                })
            })
        })
    }
}

impl pool_core::Spawn for &Killable<'_> {
    type Handle<T: Send + 'static> = DoomedJoin<T>;
    fn spawn<F>(&self, task: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let doomed = Doomed {
            inner: Some(Box::pin(task)),
            kill: self.kill.clone(),
        };
        DoomedJoin(pool_core::Spawn::spawn(&self.sim, doomed))
    }
    fn cancel<T: Send + 'static>(&self, handle: &mut Self::Handle<T>) {
        pool_core::Spawn::cancel(&self.sim, &mut handle.0);
    }
}

/// An executor that drops a lane from under a run (a runtime shutting down) ends the tasks on it as failures
/// ("the worker ended before its task"), and the run still ends: no slot waits on a lane that is gone.
#[test]
fn a_lane_dropped_by_its_executor_fails_its_tasks_and_the_run_still_ends() {
    let sim = &Sim::new();
    let kill = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killable = Killable {
        sim,
        kill: kill.clone(),
    };
    // Tasks that keep yielding, so the lane is polled (and finds itself killed) while they run.
    let tasks = vec![(50, Kind::Ok); 8];
    let killer = kill.clone();
    let (res, _, _, alive) = {
        // The kill is raised once the run is under way: after the first poll of the lane.
        let _helper = sim.spawn(async move {
            YieldN(3).await;
            killer.store(true, Ordering::SeqCst);
        });
        run(sim, Workers::with_width(&killable, 1), 4, &tasks)
    };
    assert_eq!(res.unwrap_err(), "the worker ended before its task");
    assert_eq!(alive, 0);
    assert!(sim.is_idle());
}
