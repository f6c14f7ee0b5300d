//! The main demo: a pool autoscaling in virtual time, with a CPU that saturates when too many tasks run.
//!
//! Each task "uses" 8 % of the CPU while it runs, so the scripted CPU sensor reports overload past about
//! 12 tasks. The pool starts at 1, grows by Crawlee's 5 % steps (one tick per virtual second here), meets
//! the overload, and settles. Every scaling decision is printed with the signals behind it.

use core::time::Duration;
use std::cell::Cell;
use std::rc::Rc;

use pool_core::testing::{ScriptedSensors, Sim, Trace};
use pool_core::{ConcurrencySettings, Handle, InPlace, Pool, PoolConfig, Run, task_fns};

const TASKS: u32 = 3_000;

fn main() {
    let sim = Sim::new();
    let mut config = PoolConfig::default();
    config.concurrency = ConcurrencySettings::default()
        .with_min(1)
        .with_desired(1)
        .with_max(40);
    config.scaling.autoscale_interval = Duration::from_secs(1);
    config.scaling.status_log_interval = Some(Duration::from_secs(30));
    let mut pool = Pool::new(config).expect("the demo's settings are valid");
    let handle = Handle::new(&pool);

    let running = Rc::new(Cell::new(0u32));
    let cpu_running = running.clone();
    let sensors = ScriptedSensors::new().cpu(move |_| Some(f64::from(cpu_running.get()) * 0.08));

    let (started, done) = (Cell::new(0u32), Cell::new(0u32));
    let mut fns = task_fns(
        || {
            started.set(started.get() + 1);
            running.set(running.get() + 1);
            let sleep = sim.sleep(Duration::from_millis(500));
            let running = running.clone();
            let done = &done;
            async move {
                sleep.await;
                running.set(running.get() - 1);
                done.set(done.get() + 1);
                Ok::<(), std::convert::Infallible>(())
            }
        },
        || {
            let ready = started.get() < TASKS;
            async move { Ok(ready) }
        },
        || {
            let finished = done.get() == TASKS;
            async move { Ok(finished) }
        },
    );

    let trace = Trace::new();
    let run = Run::new(
        &mut pool,
        &handle,
        &mut fns,
        sim.runtime(),
        InPlace,
        sensors,
        trace.clone(),
    )
    .expect("a fresh pool is not running");
    let report = match sim.block_on(run) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("the run failed: {e}"),
        Err(stalled) => panic!("{stalled}"),
    };

    let mut last = None;
    for line in trace.decisions() {
        // Held decisions repeat the same numbers every tick; print only the moves and the first hold.
        let key = line
            .split_once(" (")
            .map(|(head, _)| head.split_once(' ').map(|x| x.1.to_owned()));
        if key != last {
            println!("{line}");
            last = key;
        }
    }
    println!(
        "done: {} tasks in {:.1} virtual s, peak concurrency {}, final desired {}",
        report.succeeded,
        report.duration.as_secs_f64(),
        report.peak_concurrency,
        report.final_desired_concurrency
    );
}
