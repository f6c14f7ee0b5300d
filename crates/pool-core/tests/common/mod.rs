//! Helpers shared by the driver test suites (`conformance_pool.rs`, `faults.rs`): time units, pool settings,
//! counters, the standard "queue of `n` tasks" workload and the in-place `Run::new` call.

// Each test binary compiles this module on its own and uses only part of it, so an item one suite does not use
// is dead code there; allowed for the whole module rather than item by item.
#![allow(dead_code)]

use std::cell::Cell;
use std::time::Duration;

use pool_core::testing::{Sim, TestRuntime};
use pool_core::{
    ConcurrencySettings, EventSink, Handle, InPlace, Instant, Launch, Pool, PoolConfig, Run,
    ScalingPolicy, Sensors, Spawned, TaskFns, task_fns,
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
        move || {
            let ready = c.started.get() < ready_below;
            async move { Ok(ready) }
        },
        move || {
            let finished = c.done.get() >= finished_at;
            async move { Ok(finished) }
        },
    )
}

/// Starts an in-place run of `pool` on the simulation's runtime: `Run::new(..).unwrap()`.
pub(crate) fn start_run<'a, P, F, S, O>(
    pool: &'a mut Pool<P>,
    handle: &Handle,
    fns: &'a mut F,
    sim: &'a Sim,
    sensors: S,
    sink: O,
) -> Run<'a, P, F, TestRuntime, InPlace, S, O>
where
    P: ScalingPolicy,
    F: TaskFns,
    F::Error: std::fmt::Debug,
    InPlace: Launch<F::Task>,
    S: Sensors,
    O: EventSink,
{
    Run::new(pool, handle, fns, sim.runtime(), InPlace, sensors, sink).unwrap()
}

/// Starts a run of `pool` whose tasks are spawned on the simulation's executor, with no sensors and no event
/// sink: `Run::new(.., Spawned(sim), (), ()).unwrap()`.
pub(crate) fn start_spawned<'a, P, F>(
    pool: &'a mut Pool<P>,
    handle: &Handle,
    fns: &'a mut F,
    sim: &'a Sim,
) -> Run<'a, P, F, TestRuntime, Spawned<&'a Sim>, (), ()>
where
    P: ScalingPolicy,
    F: TaskFns,
    F::Error: std::fmt::Debug,
    Spawned<&'a Sim>: Launch<F::Task>,
{
    Run::new(pool, handle, fns, sim.runtime(), Spawned(sim), (), ()).unwrap()
}
