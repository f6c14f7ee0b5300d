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
            Box::pin(async move {
                let _alive = alive;
                YieldN(yields).await;
                match kind {
                    Kind::Ok => Ok(()),
                    Kind::Err => Err(format!("task {i}")),
                    Kind::Panic => panic!("task {i} panicked"),
                }
            }) as Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
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
