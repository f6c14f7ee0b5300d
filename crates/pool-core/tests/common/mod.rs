//! Helpers shared by the driver test suites (`conformance_pool.rs`, `faults.rs`): time units, pool settings,
//! counters, the task functions most tests are made of ([`sleeping`], [`answers`], the standard "queue of `n`
//! tasks" workload) and [`Case`]: the simulation, pool, handle, sensors and sink one test runs with, and the
//! `Run::new` call that starts each of its runs.

// Each test binary compiles this module on its own and uses only part of it, so an item one suite does not use
// is dead code there; allowed for the whole module rather than item by item.
#![allow(dead_code)]

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::zip;
use pool_core::testing::{Sim, Sleep, TestRuntime, Trace};
use pool_core::{
    ConcurrencySettings, CrawleePolicy, EventSink, Handle, InPlace, Instant, Launch, Pool,
    PoolConfig, PoolError, Run, RunReport, Sensors, TaskFns, task_fns,
};

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn at_ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

pub(crate) fn config(min: usize, desired: usize, max: usize) -> PoolConfig {
    let mut c = PoolConfig::default();
    c.concurrency = ConcurrencySettings::default()
        .with_min(min)
        .with_desired(desired)
        .with_max(max);
    c
}

/// Sleeps until virtual instant `t` (returns at once if it has passed).
pub(crate) async fn until(sim: &Sim, t: Instant) {
    sim.sleep(t.saturating_duration_since(sim.now())).await;
}

/// The user error type used throughout: it must come out of the run unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Boom(pub(crate) &'static str);

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Tasks running now, as the tasks themselves count them, and the most seen at once.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    pub(crate) running: Cell<usize>,
    pub(crate) peak: Cell<usize>,
}

impl Gauge {
    pub(crate) fn enter(&self) {
        let n = self.running.get() + 1;
        self.running.set(n);
        self.peak.set(self.peak.get().max(n));
    }
    pub(crate) fn exit(&self) {
        self.running.set(self.running.get() - 1);
    }
}

/// Adds one to `c` and returns the new count.
pub(crate) fn bump(c: &Cell<u32>) -> u32 {
    let n = c.get() + 1;
    c.set(n);
    n
}

/// A `run_task` function whose tasks call `on_start` as they are created, sleep `d`, then call `on_end` and
/// succeed (with the suites' error type, [`Boom`]); what the two return (a count from [`bump`], say) is
/// dropped.
pub(crate) fn sleeping<'a, A, B, G: Fn() -> B + Copy + Unpin + 'a>(
    sim: &'a Sim,
    d: Duration,
    mut on_start: impl FnMut() -> A + 'a,
    on_end: G,
) -> impl FnMut() -> SleepThen<G> + 'a {
    move || {
        on_start();
        SleepThen {
            sleep: sim.sleep(d),
            on_end,
        }
    }
}

/// The task of [`sleeping`]: an `async { sleep.await; on_end(); Ok(()) }` with a type that can be named,
/// which a closure returned from a function needs.
pub(crate) struct SleepThen<G> {
    sleep: Sleep,
    on_end: G,
}

impl<B, G: Fn() -> B + Unpin> Future for SleepThen<G> {
    type Output = Result<(), Boom>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        (self.on_end)();
        Poll::Ready(Ok(()))
    }
}

/// An `is_task_ready` or `is_finished` function that answers `answer()` at once, asked as it is called.
pub(crate) fn answers<'a, E>(
    mut answer: impl FnMut() -> bool + 'a,
) -> impl FnMut() -> Ready<Result<bool, E>> + 'a {
    move || ready(Ok(answer()))
}

/// Counts drops, to see that cancelled task futures are really dropped.
#[derive(Debug)]
pub(crate) struct DropCount<'a>(pub(crate) &'a Cell<u32>);

impl Drop for DropCount<'_> {
    fn drop(&mut self) {
        bump(self.0);
    }
}

/// Tasks started and tasks done, as the tasks of [`queue_tasks`] count them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) started: Cell<u32>,
    pub(crate) done: Cell<u32>,
}

/// The standard workload: `n` tasks of `d` each; a task is ready while fewer than `n` have started, and the
/// run is finished once `n` are done.
pub(crate) fn queue_tasks<'a>(
    sim: &'a Sim,
    c: &'a Counters,
    n: u32,
    d: Duration,
) -> impl TaskFns<Error = Boom> + 'a {
    queue_tasks_with(sim, c, n, n, d, |_| ())
}

/// [`queue_tasks`] with a ready limit (`ready_below` starts) apart from the finish line (`finished_at` done),
/// and a `hook` called with the task's number (from 1) as it starts; what the hook returns is held by the task
/// future until its sleep ends (a [`DropCount`], say), then dropped before the task counts itself done.
pub(crate) fn queue_tasks_with<'a, G: 'a>(
    sim: &'a Sim,
    c: &'a Counters,
    ready_below: u32,
    finished_at: u32,
    d: Duration,
    mut hook: impl FnMut(u32) -> G + 'a,
) -> impl TaskFns<Error = Boom> + 'a {
    task_fns(
        move || {
            let n = bump(&c.started);
            let held = hook(n);
            let s = sim.sleep(d);
            async move {
                s.await;
                drop(held);
                bump(&c.done);
                Ok::<(), Boom>(())
            }
        },
        answers(move || c.started.get() < ready_below),
        answers(move || c.done.get() >= finished_at),
    )
}

/// One driver test's setup: a simulation, a pool built from a configuration, its handle, and the sensors and
/// event sink every run of the case starts with.
///
/// Task functions borrow the simulation (and often the handle), so they cannot live in the case itself: a
/// test builds them from `&case.sim` and hands them to [`Case::run`] or [`Case::run_with`]. The pool sits in
/// a `RefCell` so a run can take it mutably while the task functions hold shared borrows of the case.
pub(crate) struct Case<S = (), O = ()> {
    pub(crate) sim: Sim,
    pub(crate) handle: Handle,
    pool: RefCell<Pool>,
    sensors: RefCell<S>,
    pub(crate) sink: O,
}

impl Case {
    /// A fresh simulation and a pool built from `config` (which must be valid), with no sensors and no sink.
    pub(crate) fn new(config: PoolConfig) -> Self {
        Case::with_pool(Pool::new(config).unwrap())
    }

    /// [`Case::new`] for a pool the test has set up itself (custom signals, say).
    pub(crate) fn with_pool(pool: Pool) -> Self {
        Case {
            sim: Sim::new(),
            handle: Handle::new(&pool),
            pool: RefCell::new(pool),
            sensors: RefCell::new(()),
            sink: (),
        }
    }
}

impl<S: Sensors, O: EventSink + Clone> Case<S, O> {
    /// The same case with these sensors; they are lent to each run, so their state outlives one.
    pub(crate) fn sensors<T: Sensors>(self, sensors: T) -> Case<T, O> {
        Case {
            sim: self.sim,
            handle: self.handle,
            pool: self.pool,
            sensors: RefCell::new(sensors),
            sink: self.sink,
        }
    }

    /// The same case with a simulation that may spend `limit` of virtual time in one `block_on`.
    pub(crate) fn limit(self, limit: Duration) -> Self {
        Case {
            sim: self.sim.with_limit(limit),
            ..self
        }
    }

    /// The same case recording every event of every run in [`Case::trace`].
    pub(crate) fn traced(self) -> Case<S, Trace> {
        Case {
            sim: self.sim,
            handle: self.handle,
            pool: self.pool,
            sensors: self.sensors,
            sink: Trace::new(),
        }
    }

    /// The pool, between runs (a run holds it mutably while it lasts).
    pub(crate) fn pool(&self) -> Ref<'_, Pool> {
        self.pool.borrow()
    }

    /// The pool, to change between runs.
    pub(crate) fn pool_mut(&self) -> RefMut<'_, Pool> {
        self.pool.borrow_mut()
    }

    /// Starts a run of `fns` with the case's pool, handle, sensors and sink, its tasks launched by
    /// `launcher`, and hands it to `go` (which awaits it, drops it early, or inspects the handle first); a
    /// refused start is a test failure.
    pub(crate) fn launch<F, L, T>(
        &self,
        fns: &mut F,
        launcher: L,
        go: impl FnOnce(Run<'_, CrawleePolicy, F, TestRuntime, L, &mut S, O>) -> T,
    ) -> T
    where
        F: TaskFns,
        L: Launch<F::Task>,
    {
        let mut pool = self.pool.borrow_mut();
        let mut sensors = self.sensors.borrow_mut();
        let run = Run::new(
            &mut pool,
            &self.handle,
            fns,
            self.sim.runtime(),
            launcher,
            &mut *sensors,
            self.sink.clone(),
        );
        // A refused start has no report to show, so the test fails here rather than at its assertions.
        let Ok(run) = run else {
            panic!("Run::new refused the case's run");
        };
        go(run)
    }

    /// [`Case::launch`] with the tasks polled in place by the driver.
    pub(crate) fn with_run<F, T>(
        &self,
        fns: &mut F,
        go: impl FnOnce(Run<'_, CrawleePolicy, F, TestRuntime, InPlace, &mut S, O>) -> T,
    ) -> T
    where
        F: TaskFns,
        InPlace: Launch<F::Task>,
    {
        self.launch(fns, InPlace, go)
    }

    /// Runs `fns` in place to the end: `sim.block_on(run)`, with a stall a test failure.
    pub(crate) fn run<F>(&self, fns: &mut F) -> Result<RunReport, PoolError<F::Error>>
    where
        F: TaskFns,
        InPlace: Launch<F::Task>,
    {
        self.with_run(fns, |run| self.sim.block_on(run).unwrap())
    }

    /// [`Case::run`] alongside `ctl` (a controller driving the handle, say); returns both outputs once both
    /// have ended.
    pub(crate) fn run_with<F, C>(
        &self,
        fns: &mut F,
        ctl: C,
    ) -> (Result<RunReport, PoolError<F::Error>>, C::Output)
    where
        F: TaskFns,
        InPlace: Launch<F::Task>,
        C: Future,
    {
        self.with_run(fns, |run| self.sim.block_on(zip(run, ctl)).unwrap())
    }
}

impl<S> Case<S, Trace> {
    /// Every event of every run so far.
    pub(crate) fn trace(&self) -> &Trace {
        &self.sink
    }
}
