//! Driver-level conformance: Crawlee's `AutoscaledPool` test cases (Python 1.11, JS v3.18 and v4) ported to
//! [`pool_core::Run`] and run in virtual time.
//!
//! Each test is named after the case it ports (`py_*`, `js_*`); the rest pin down this crate's own contract.
//! Where the references disagree, a `//` comment in the test says which one it follows and why. Virtual time is
//! exact, so timings are asserted to the nanosecond.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

mod common;

use common::{
    Boom, Case, Counters, DropCount, Gauge, answers, at_ms, bump, config, ms, queue_tasks,
    queue_tasks_with, secs, sleeping, until,
};
use futures_lite::future::{poll_once, zip};
use pool_core::testing::{ScriptedSensors, Sim};
use pool_core::{
    ConcurrencySettings, ConfigError, Event, Handle, InPlace, Instant, Pool, PoolConfig, PoolError,
    Refusal, Run, RunError, RunReport, ScaleReason, SignalId, Spawned, TaskFns, TaskPanic,
    TimeoutPolicy, task_fns,
};

// ----- Crawlee for Python: test_autoscaled_pool.py and its additions -----

#[test]
fn py_runs_concurrently() {
    // Python polls `is_finished` on every loop iteration, so its always-ready source still ends; we follow the
    // seed contract (`is_finished` only once nothing is ready), so the source here holds 20 tasks.
    let case = Case::new(config(10, 10, 10));
    let sim = &case.sim;
    let (started, done, gauge) = (&Cell::new(0u32), &Cell::new(0u32), &Gauge::default());
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(100),
            move || {
                bump(started);
                gauge.enter();
            },
            move || {
                gauge.exit();
                bump(done);
            },
        ),
        answers(move || started.get() < 20),
        answers(move || done.get() >= 10),
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!(gauge.peak.get(), 10);
    assert_eq!(report.peak_concurrency, 10);
    assert!(done.get() >= 10);
    assert_eq!((report.started, report.succeeded), (20, 20));
    assert_eq!(sim.elapsed(), ms(200));
}

#[test]
fn py_abort_works() {
    // Python: abort cancels in-flight tasks and `run()` returns normally (JS resolves too but leaves tasks running).
    let case = Case::new(config(10, 10, 10));
    let (sim, handle) = (&case.sim, &case.handle);
    let (completed, dropped, finished_calls) =
        (&Cell::new(0u32), &Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            let guard = DropCount(dropped);
            let s = sim.sleep(secs(60));
            async move {
                let _guard = guard;
                s.await;
                bump(completed);
                Ok::<(), Boom>(())
            }
        },
        || async { Ok(true) },
        move || {
            bump(finished_calls);
            async { Ok(false) }
        },
    );
    let ctl = async {
        sim.sleep(ms(100)).await;
        assert_eq!(handle.current_concurrency(), 10);
        assert!(handle.is_running());
        handle.abort().await.unwrap();
        assert_eq!(handle.current_concurrency(), 0);
        assert!(!handle.is_running());
        sim.now()
    };
    let (res, aborted_at) = case.run_with(&mut fns, ctl);
    let report = res.unwrap();
    assert!(report.aborted);
    assert_eq!(report.started, 10);
    assert_eq!(report.cancelled, 10);
    assert_eq!(report.succeeded, 0);
    assert_eq!(completed.get(), 0);
    assert_eq!(dropped.get(), 10, "cancelled task futures are dropped");
    assert_eq!(
        aborted_at,
        at_ms(100),
        "abort() returns once the run has ended"
    );
    assert_eq!(sim.elapsed(), ms(100), "far below the tasks' 60 s");
    assert_eq!(
        sim.clock().next_deadline(),
        None,
        "no timer outlives the run"
    );
    assert_eq!(case.pool().current_concurrency(), 0);
    assert!(!case.pool().is_running());
}

#[test]
fn py_propagates_exceptions() {
    let case = Case::new(config(10, 10, 10));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, done) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            bump(started);
            let s = sim.sleep(ms(100));
            async move {
                s.await;
                if bump(done) > 5 {
                    Err(Boom("Scheduled crash"))
                } else {
                    Ok(())
                }
            }
        },
        || async { Ok(true) },
        answers(move || done.get() >= 20),
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("Scheduled crash"))));
    assert!(done.get() < 20);
    // The first batch of 10 ends at 100 ms; tasks 6..10 fail; nothing more starts.
    assert_eq!((started.get(), done.get()), (10, 10));
    assert_eq!(sim.elapsed(), ms(100));
    let r = case.pool().report();
    assert_eq!((r.succeeded, r.failed), (5, 5));
    assert!(!handle.is_running());
}

#[test]
fn py_propagates_exceptions_after_finished() {
    // Python asks `is_finished` while the task runs and it says yes; we follow the seed contract (never asked
    // while a task runs), so the point kept is: the in-flight task's error surfaces although `is_finished`
    // would already answer true.
    let case = Case::new(config(1, 1, 1));
    let sim = &case.sim;
    let (started, finished_calls) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            bump(started);
            let s = sim.sleep(secs(1));
            async move {
                s.await;
                Err::<(), _>(Boom("Scheduled crash"))
            }
        },
        answers(move || started.get() == 0),
        move || {
            bump(finished_calls);
            let finished = started.get() > 0;
            async move { Ok(finished) }
        },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("Scheduled crash"))));
    assert_eq!(finished_calls.get(), 0);
    assert_eq!(sim.elapsed(), secs(1));
}

#[test]
fn py_propagates_timeout_error_from_task_function() {
    #[derive(Debug, PartialEq)]
    enum FetchError {
        Timeout(String),
    }
    let case = Case::new(config(1, 1, 1));
    let sim = &case.sim;
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            bump(started);
            async {
                Err::<(), _>(FetchError::Timeout(
                    "Fetching a session from the pool timed out after 10 seconds".into(),
                ))
            }
        },
        answers(move || started.get() == 0),
        answers(move || started.get() > 0),
    );
    match case.run(&mut fns) {
        Err(PoolError::Task(FetchError::Timeout(msg))) => {
            assert!(
                msg.contains("Fetching a session from the pool timed out"),
                "{msg}"
            );
        }
        other => panic!("expected the user's own timeout error, got {other:?}"),
    }
    let r = case.pool().report();
    assert_eq!(
        (r.failed, r.timed_out),
        (1, 0),
        "a user timeout error is a failure, not a pool timeout"
    );
    assert_eq!(sim.elapsed(), Duration::ZERO);
}

#[test]
fn py_autoscales() {
    let mut cfg = config(1, 1, 4);
    cfg.scaling.autoscale_interval = ms(100);
    let sensors =
        ScriptedSensors::new().cpu(|t| Some(if t >= Instant::from_secs(3) { 1.0 } else { 0.1 }));
    let case = Case::new(cfg).sensors(sensors).traced();
    let (sim, handle, trace) = (&case.sim, &case.handle, case.trace());
    // Idle until 3 s, then the CPU is pinned.
    let done = &Cell::new(0u32);
    let mut fns = task_fns(
        sleeping(sim, ms(100), || {}, move || bump(done)),
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let ctl = async {
        until(sim, at_ms(150)).await;
        assert!(handle.desired_concurrency() > 1);
        until(sim, at_ms(250)).await;
        assert_eq!(handle.desired_concurrency(), 4);
        until(sim, at_ms(2950)).await;
        assert!(done.get() > 10, "done {}", done.get());
        assert_eq!(handle.desired_concurrency(), 4);
        until(sim, Instant::from_secs(6)).await;
        assert_eq!(handle.desired_concurrency(), 1);
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert!(res.unwrap().aborted);
    let history = trace.desired_history();
    assert_eq!(&history[..3], &[2, 3, 4], "{history:?}");
    let downs: Vec<_> = trace
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Scaled(d) if d.new < d.old => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(
        downs.iter().map(|d| (d.old, d.new)).collect::<Vec<_>>(),
        [(4, 3), (3, 2), (2, 1)]
    );
    for d in &downs {
        assert!(d.at >= Instant::from_secs(3), "{d}");
        match d.reason {
            ScaleReason::Overloaded(set) => assert!(set.contains(SignalId::Cpu), "{d}"),
            other => panic!("scale-down for {other:?}"),
        }
    }
}

#[test]
fn py_autoscales_uses_desired_concurrency_ratio() {
    let mut cfg = config(2, 2, 4);
    cfg.scaling.autoscale_interval = ms(100);
    cfg.scaling.desired_concurrency_ratio = 1.0;
    let case = Case::new(cfg).traced();
    let (sim, handle, trace) = (&case.sim, &case.handle, case.trace());
    let readies = &Cell::new(0u32);
    let mut fns = task_fns(
        sleeping(sim, secs(10), || {}, || {}),
        answers(move || bump(readies) == 1),
        || async { Ok(false) },
    );
    let ctl = async {
        for _ in 0..5 {
            sim.sleep(ms(100)).await;
            assert_eq!(handle.desired_concurrency(), 2);
            assert_eq!(handle.current_concurrency(), 1);
        }
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert_eq!(res.unwrap().started, 1);
    let decisions: Vec<_> = trace
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Scaled(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(decisions.len() >= 6, "a tick at 0 and every 100 ms");
    for d in &decisions {
        assert_eq!(d.new, 2, "{d}");
        assert!(
            matches!(d.reason, ScaleReason::Underused { required: 2, .. }),
            "{d}"
        );
    }
}

#[test]
fn py_max_tasks_per_minute_works() {
    // Python spaces starts 60/N s apart; JS v3 counts starts in a sliding minute. We follow Python (the seed
    // contract): with 120/min, starts are exactly 500 ms apart.
    let mut cfg = config(1, 1, 1);
    cfg.concurrency.max_tasks_per_minute = Some(120);
    let case = Case::new(cfg);
    let (sim, handle) = (&case.sim, &case.handle);
    let (done, starts) = (&Cell::new(0u32), &RefCell::new(Vec::new()));
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(100),
            move || starts.borrow_mut().push(sim.now()),
            move || bump(done),
        ),
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let ctl = async {
        until(sim, at_ms(499)).await;
        assert_eq!(done.get(), 1);
        assert_eq!(starts.borrow().len(), 1);
        until(sim, at_ms(1600)).await;
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert!(res.unwrap().aborted);
    assert_eq!(
        *starts.borrow(),
        [at_ms(0), at_ms(500), at_ms(1000), at_ms(1500)]
    );
}

#[test]
fn py_allows_multiple_run_calls() {
    let case = Case::new(config(4, 4, 4));
    let (sim, handle) = (&case.sim, &case.handle);
    let (done, completed) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        sleeping(sim, ms(100), move || bump(done), move || bump(completed)),
        answers(move || done.get() < 4),
        answers(move || done.get() >= 4),
    );
    for round in 1..=2u64 {
        done.set(0);
        completed.set(0);
        let report = case.run(&mut fns).unwrap();
        assert_eq!(done.get(), 4);
        assert_eq!(completed.get(), 4);
        assert_eq!((report.started, report.succeeded), (4, 4));
        assert_eq!(report.duration, ms(100));
        assert_eq!(sim.elapsed(), ms(100 * round));
        assert!(!handle.is_running());
        assert_eq!(handle.current_concurrency(), 0);
    }
}

#[test]
fn py_keeps_min_concurrency_when_overloaded() {
    let sensors = ScriptedSensors::new().cpu(|_| Some(1.0));
    let case = Case::new(config(3, 8, 8)).sensors(sensors).traced();
    let (sim, handle, trace) = (&case.sim, &case.handle, case.trace());
    let (gauge, started) = (&Gauge::default(), &Cell::new(0u32));
    let mut fns = task_fns(
        sleeping(
            sim,
            secs(1),
            move || {
                bump(started);
                gauge.enter();
            },
            move || gauge.exit(),
        ),
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let ctl = async {
        for s in 1..=20 {
            until(sim, Instant::from_millis(s * 1000 - 500)).await;
            assert_eq!(gauge.running.get(), 3, "at {}", sim.now());
        }
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    let report = res.unwrap();
    assert_eq!(gauge.peak.get(), 3);
    assert_eq!(report.peak_concurrency, 3);
    assert!(
        started.get() >= 60,
        "the pool never froze: {}",
        started.get()
    );
    assert!(trace.events().iter().any(|e| matches!(
        e,
        Event::Refused {
            refusal: Refusal::Overloaded(set),
            ..
        } if set.contains(SignalId::Cpu)
    )));
}

#[test]
fn py_is_task_ready_error_propagates_after_in_flight_tasks() {
    let case = Case::new(config(1, 2, 2));
    let sim = &case.sim;
    let (readies, completed_at) = (&Cell::new(0u32), &Cell::new(None));
    let mut fns = task_fns(
        sleeping(
            sim,
            secs(1),
            || {},
            move || completed_at.set(Some(sim.now())),
        ),
        move || {
            let n = bump(readies);
            async move {
                if n == 1 {
                    Ok(true)
                } else {
                    Err(Boom("ready boom"))
                }
            }
        },
        || async { Ok(false) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("ready boom"))));
    assert_eq!(
        completed_at.get(),
        Some(Instant::from_secs(1)),
        "the in-flight task ran to completion"
    );
    assert_eq!(
        sim.elapsed(),
        secs(1),
        "the error waits for the in-flight task"
    );
    assert_eq!(readies.get(), 2, "nothing is asked after the error");
    assert_eq!(case.pool().report().succeeded, 1);
}

#[test]
fn py_is_finished_error_propagates() {
    let case = Case::new(config(1, 1, 1));
    let (sim, handle) = (&case.sim, &case.handle);
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        sleeping(sim, ms(100), move || bump(started), || {}),
        answers(move || started.get() < 1),
        || async { Err(Boom("finished boom")) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("finished boom"))));
    assert_eq!(sim.elapsed(), ms(100));
    assert!(!handle.is_running());
}

#[test]
fn py_worker_error_wins_over_later_scheduler_error() {
    // Python 1.11 (#2229 case c): the worker's error propagates; the orchestrator's later one is only logged.
    let case = Case::new(config(1, 3, 3));
    let sim = &case.sim;
    let (started, readies) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            let s = sim.sleep(if n == 1 { ms(100) } else { secs(1) });
            async move {
                s.await;
                if n == 1 {
                    Err(Boom("worker boom"))
                } else {
                    Ok(())
                }
            }
        },
        move || {
            let n = bump(readies);
            // The third readiness check is slow and fails after the worker has failed.
            let s = sim.sleep(if n == 3 { ms(200) } else { Duration::ZERO });
            async move {
                s.await;
                if n == 3 {
                    Err(Boom("scheduler boom"))
                } else {
                    Ok(true)
                }
            }
        },
        || async { Ok(false) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("worker boom"))));
    assert_eq!(started.get(), 2);
    assert_eq!(readies.get(), 3);
    assert_eq!(sim.elapsed(), secs(1), "the second task was awaited");
}

#[test]
fn py_desired_is_kept_between_runs() {
    let mut cfg = config(1, 1, 10);
    cfg.scaling.autoscale_interval = ms(100);
    let case = Case::new(cfg).traced();
    let (sim, handle, trace) = (&case.sim, &case.handle, case.trace());
    let c = &Counters::default();
    let (started, done) = (&c.started, &c.done);
    let mut fns = queue_tasks(sim, c, 30, ms(100));
    assert_eq!(handle.current_concurrency(), 0);
    let first = case.run(&mut fns).unwrap();
    let kept = case.pool().desired_concurrency();
    assert!(kept > 1, "the first run scaled up");
    assert_eq!(first.final_desired_concurrency, kept);
    assert_eq!(handle.desired_concurrency(), kept);
    assert_eq!(handle.current_concurrency(), 0);

    started.set(0);
    done.set(0);
    // The trace records both runs; the second run's events start after the first run's.
    let first_run_events = trace.events().len();
    case.run(&mut fns).unwrap();
    let first_tick = trace
        .events()
        .into_iter()
        .skip(first_run_events)
        .find_map(|e| match e {
            Event::Scaled(d) => Some(d),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_tick.old, kept, "{first_tick}");
}

#[test]
fn py_pause_lets_running_tasks_finish_and_can_still_finish() {
    // Python keeps polling `is_finished` while paused, so a paused pool can finish; we keep that (asked once
    // nothing runs), unlike JS v3 whose paused pool never finishes.
    let case = Case::new(config(3, 3, 3));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, done, finished_at) = (
        &Cell::new(0u32),
        &Cell::new(0u32),
        &RefCell::new(Vec::new()),
    );
    let mut fns = task_fns(
        sleeping(sim, secs(1), move || bump(started), move || bump(done)),
        answers(move || started.get() < 10),
        move || {
            finished_at.borrow_mut().push(sim.now());
            let finished = done.get() >= 3;
            async move { Ok(finished) }
        },
    );
    let ctl = async {
        sim.sleep(ms(500)).await;
        handle.pause();
        assert!(handle.is_paused());
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    let report = res.unwrap();
    assert_eq!((report.started, report.succeeded), (3, 3));
    assert!(!report.aborted);
    assert_eq!(sim.elapsed(), secs(1));
    assert_eq!(*finished_at.borrow(), [Instant::from_secs(1)]);
    assert!(case.pool().is_paused(), "pause outlives the run");
}

// ----- Crawlee for JavaScript: autoscaled_pool.test.ts (v3.18.1) and v4 additions -----

/// A FIFO of items, taken synchronously when a task is created (as the JS tests `shift()` them).
type Queue = RefCell<VecDeque<u32>>;

fn queue(n: u32) -> Queue {
    RefCell::new((0..n).collect())
}

/// Tasks that each take the next item of `items` as they start, call `on_start(item)`, sleep `d`, then call
/// `on_end(item)`; a task is ready while items are left, and the run is finished once none is.
fn item_tasks<'a>(
    sim: &'a Sim,
    items: &'a Queue,
    d: Duration,
    mut on_start: impl FnMut(u32) + 'a,
    on_end: impl Fn(u32) + Copy + 'a,
) -> impl TaskFns<Error = Boom> + 'a {
    task_fns(
        move || {
            let item = items.borrow_mut().pop_front().unwrap();
            on_start(item);
            let s = sim.sleep(d);
            async move {
                s.await;
                on_end(item);
                Ok::<(), Boom>(())
            }
        },
        answers(move || !items.borrow().is_empty()),
        answers(move || items.borrow().is_empty()),
    )
}

#[test]
fn js_should_work_with_concurrency_1() {
    let case = Case::new(ConcurrencySettings::fixed(1).into_config());
    let sim = &case.sim;
    let (items, results) = (&queue(10), &RefCell::new(Vec::new()));
    let mut fns = item_tasks(
        sim,
        items,
        ms(5),
        |_| {},
        |item| results.borrow_mut().push(item),
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!(*results.borrow(), (0..10).collect::<Vec<_>>());
    assert_eq!(report.peak_concurrency, 1);
    assert_eq!(sim.elapsed(), ms(50));
}

#[test]
fn js_should_work_with_concurrency_10() {
    let case = Case::new(ConcurrencySettings::fixed(10).into_config());
    let sim = &case.sim;
    let (items, taken, results) = (
        &queue(100),
        &RefCell::new(Vec::new()),
        &RefCell::new(Vec::new()),
    );
    let mut fns = item_tasks(
        sim,
        items,
        ms(5),
        |item| taken.borrow_mut().push(item),
        |item| results.borrow_mut().push(item),
    );
    let report = case.run(&mut fns).unwrap();
    // JS gets completion order [0..99] from its FIFO timers; tasks ending at the same instant have no defined
    // order here, so the items must be taken in order and each 5 ms batch must end together.
    assert_eq!(*taken.borrow(), (0..100).collect::<Vec<_>>());
    let results = results.borrow();
    assert_eq!(results.len(), 100);
    for (k, batch) in results.chunks(10).enumerate() {
        let mut b = batch.to_vec();
        b.sort_unstable();
        let k = k as u32;
        assert_eq!(b, (10 * k..10 * k + 10).collect::<Vec<_>>());
    }
    assert_eq!(report.peak_concurrency, 10);
    assert_eq!(sim.elapsed(), ms(50));
}

/// `PoolConfig` from concurrency settings alone.
trait IntoConfig {
    fn into_config(self) -> PoolConfig;
}

impl IntoConfig for ConcurrencySettings {
    fn into_config(self) -> PoolConfig {
        let mut c = PoolConfig::default();
        c.concurrency = self;
        c
    }
}

#[test]
fn js_enables_setting_concurrency() {
    let case = Case::new(config(3, 9, 13));
    let (sim, handle) = (&case.sim, &case.handle);
    assert_eq!(
        (
            case.pool().min_concurrency(),
            case.pool().max_concurrency(),
            case.pool().desired_concurrency()
        ),
        (3, 13, 9)
    );
    assert_eq!(
        (
            handle.min_concurrency(),
            handle.max_concurrency(),
            handle.desired_concurrency()
        ),
        (3, 13, 9)
    );
    let (items, results, gauge) = (&queue(100), &RefCell::new(Vec::new()), &Gauge::default());
    let mut fns = item_tasks(
        sim,
        items,
        ms(5),
        |_| gauge.enter(),
        |item| {
            gauge.exit();
            results.borrow_mut().push(item);
        },
    );
    let ctl = async {
        handle.set_min_concurrency(4).unwrap();
        handle.set_max_concurrency(14).unwrap();
        handle.set_desired_concurrency(7).unwrap();
        sim.sleep(ms(1)).await;
        assert_eq!(
            (
                handle.min_concurrency(),
                handle.max_concurrency(),
                handle.desired_concurrency()
            ),
            (4, 14, 7)
        );
        assert_eq!(gauge.running.get(), 9, "the first batch is not cancelled");
        // Once the first batch has ended (5 ms), at most 7 run at once.
        until(sim, at_ms(6)).await;
        gauge.peak.set(gauge.running.get());
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    let report = res.unwrap();
    let mut results = results.borrow().clone();
    results.sort_unstable();
    assert_eq!(results, (0..100).collect::<Vec<_>>());
    assert_eq!(report.peak_concurrency, 9, "the first batch started at 9");
    assert_eq!(gauge.peak.get(), 7, "the new desired concurrency holds");
    assert_eq!(report.final_desired_concurrency, 7);
    assert_eq!(
        (case.pool().min_concurrency(), case.pool().max_concurrency()),
        (4, 14),
        "setters outlive the run"
    );
}

#[test]
fn js_works_at_min_concurrency_when_currently_overloaded() {
    let sensors = ScriptedSensors::new().cpu(|_| Some(1.0));
    let case = Case::new(config(1, 10, 10)).sensors(sensors);
    let sim = &case.sim;
    let (limit, started, done, gauge) = (
        &Cell::new(5u32),
        &Cell::new(0u32),
        &Cell::new(0u32),
        &Gauge::default(),
    );
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(10),
            move || {
                bump(started);
                gauge.enter();
            },
            move || {
                gauge.exit();
                bump(done);
            },
        ),
        answers(move || started.get() < limit.get()),
        answers(move || done.get() >= limit.get()),
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!(gauge.peak.get(), 1);
    assert_eq!((report.peak_concurrency, report.succeeded), (1, 5));
    assert_eq!(sim.elapsed(), ms(50));

    // The same pool, run again with a higher floor.
    case.pool_mut().set_min_concurrency(sim.now(), 5).unwrap();
    limit.set(50);
    started.set(0);
    done.set(0);
    gauge.peak.set(0);
    let report = case.run(&mut fns).unwrap();
    assert_eq!(gauge.peak.get(), 5);
    assert_eq!((report.peak_concurrency, report.succeeded), (5, 50));
    assert_eq!(report.duration, ms(100));
}

#[test]
fn js_should_throw_when_some_of_the_promises_throws() {
    let case = Case::new(config(5, 5, 5));
    let sim = &case.sim;
    let counter = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            let n = bump(counter);
            let s = sim.sleep(ms(1));
            async move {
                s.await;
                if n > 20 {
                    Err(Boom("some-promise-error"))
                } else {
                    Ok(())
                }
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("some-promise-error"))));
    assert_eq!(counter.get(), 25, "five batches of five");
    assert_eq!(sim.elapsed(), ms(5));
}

#[test]
fn js_when_run_task_function_throws() {
    let case = Case::new(config(1, 1, 1));
    let sim = &case.sim;
    let mut fns = task_fns(
        move || {
            let s = sim.sleep(ms(3));
            async move {
                s.await;
                Err::<(), _>(Boom("some-runtask-error"))
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("some-runtask-error"))));
    assert_eq!(sim.elapsed(), ms(3));
}

#[test]
fn js_when_is_finished_function_throws() {
    let case = Case::new(config(1, 1, 1));
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            bump(started);
            async { Ok(()) }
        },
        answers(move || started.get() == 0),
        || async { Err(Boom("some-finished-error")) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("some-finished-error"))));
    assert_eq!(started.get(), 1);
}

#[test]
fn js_when_is_task_ready_function_throws() {
    let case = Case::new(config(1, 1, 1));
    let sim = &case.sim;
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        sleeping(sim, ms(1), move || bump(started), || {}),
        move || {
            let fail = started.get() > 1;
            async move {
                if fail {
                    Err(Boom("some-ready-error"))
                } else {
                    Ok(true)
                }
            }
        },
        || async { Ok(false) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("some-ready-error"))));
    assert_eq!(started.get(), 2);
    assert_eq!(sim.elapsed(), ms(2));
}

#[test]
fn js_v4_slot_is_returned_after_failure_and_timeout() {
    // JS v3 leaked the slot of a failed or timed-out task; we follow v4 (and Python): the slot is always freed.
    let case = Case::new(config(2, 2, 2));
    let (sim, handle) = (&case.sim, &case.handle);
    let (phase, started) = (&Cell::new(0u8), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            bump(started);
            let fail = phase.get() == 0;
            let s = sim.sleep(ms(10));
            async move {
                s.await;
                if fail {
                    Err(Boom("task failed"))
                } else {
                    Ok(())
                }
            }
        },
        move || {
            let ready = match phase.get() {
                0 => started.get() < 1,
                _ => started.get() < 4,
            };
            async move { Ok(ready) }
        },
        || async { Ok(true) },
    );
    assert_eq!(
        case.run(&mut fns),
        Err(PoolError::Task(Boom("task failed")))
    );
    assert_eq!(case.pool().current_concurrency(), 0);
    assert_eq!(handle.current_concurrency(), 0);
    assert_eq!(case.pool().report().failed, 1);
    // Full capacity is there again: two start at once.
    phase.set(1);
    started.set(0);
    let report = case.run(&mut fns).unwrap();
    assert_eq!(report.peak_concurrency, 2);
    assert_eq!(report.succeeded, 4);
    assert_eq!(report.duration, ms(20));

    // A timed-out task frees its slot at its deadline.
    let mut cfg = config(1, 1, 1);
    cfg.task_timeout = Some(ms(50));
    cfg.timeout_policy = TimeoutPolicy::Report;
    let case = Case::new(cfg).traced();
    let (sim, trace) = (&case.sim, case.trace());
    let (started, dropped, starts) = (
        &Cell::new(0u32),
        &Cell::new(0u32),
        &RefCell::new(Vec::new()),
    );
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            starts.borrow_mut().push(sim.now());
            let guard = DropCount(dropped);
            let s = sim.sleep(if n == 1 { secs(1) } else { ms(10) });
            async move {
                let _guard = guard;
                s.await;
                Ok::<(), Boom>(())
            }
        },
        answers(move || started.get() < 3),
        || async { Ok(true) },
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.timed_out, report.succeeded), (1, 2));
    assert_eq!(*starts.borrow(), [at_ms(0), at_ms(50), at_ms(60)]);
    assert_eq!(dropped.get(), 3);
    assert_eq!(sim.elapsed(), ms(70));
    assert!(trace.events().iter().any(|e| matches!(
        e,
        Event::TaskTimedOut { at, timeout } if *at == at_ms(50) && *timeout == ms(50)
    )));
}

#[test]
fn js_should_not_handle_tasks_added_after_is_finished_returned_true() {
    let case = Case::new(config(3, 3, 3));
    let sim = &case.sim;
    let (items, handled, readies_after) = (&queue(11), &Cell::new(0u32), &Cell::new(None::<u32>));
    let readies = &Cell::new(0u32);
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(1),
            move || items.borrow_mut().pop_front().unwrap(),
            move || bump(handled),
        ),
        move || {
            bump(readies);
            let ready = !items.borrow().is_empty();
            async move { Ok(ready) }
        },
        move || {
            let finished = items.borrow().is_empty();
            if finished {
                // More work arrives right after the pool was told it is finished.
                items.borrow_mut().extend(100..105);
                readies_after.set(Some(readies.get()));
            }
            async move { Ok(finished) }
        },
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!(handled.get(), 11);
    assert_eq!(report.started, 11);
    assert_eq!(items.borrow().len(), 5, "the late items were left alone");
    assert_eq!(
        readies_after.get(),
        Some(readies.get()),
        "is_task_ready was not asked after is_finished said true"
    );
}

#[test]
fn js_should_break_and_resume_when_the_task_queue_is_empty_for_a_while() {
    // JS polls `_maybeRunTask` on an interval; we wake on events, so the refill is announced with `notify()`.
    let mut cfg = config(1, 1, 1);
    // Slow probes, so only `notify` can explain a prompt resume.
    cfg.snapshot.event_loop_probe_interval = secs(5);
    cfg.snapshot.client_probe_interval = secs(5);
    cfg.snapshot.sensor_interval = secs(5);
    let case = Case::new(cfg);
    let (sim, handle) = (&case.sim, &case.handle);
    let (items, finished_at) = (&queue(10), &RefCell::new(Vec::new()));
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(1),
            move || items.borrow_mut().pop_front().unwrap(),
            move || finished_at.borrow_mut().push(sim.now()),
        ),
        answers(move || !items.borrow().is_empty()),
        answers(move || finished_at.borrow().len() >= 20),
    );
    let ctl = async {
        sim.sleep(ms(20)).await;
        items.borrow_mut().extend(10..20);
        handle.notify();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert_eq!(res.unwrap().succeeded, 20);
    let f = finished_at.borrow();
    assert_eq!(f.len(), 20);
    assert_eq!(f[9], at_ms(10));
    assert_eq!(f[10], at_ms(21), "resumed at once on notify");
    assert!(f[10] - f[9] > ms(9));
    assert_eq!(sim.elapsed(), ms(30));
}

#[test]
fn js_should_abort() {
    let case = Case::new(config(2, 2, 2));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, finished_calls, abort_returned) =
        (&Cell::new(0u32), &Cell::new(0u32), &Cell::new(false));
    let h = handle;
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            let h = h.clone();
            let s = sim.sleep(secs(10));
            async move {
                if n == 1 {
                    // The task aborts its own pool; it is cancelled before abort() can return.
                    let _ = h.abort().await;
                    abort_returned.set(true);
                } else {
                    s.await;
                }
                Ok::<(), Boom>(())
            }
        },
        || async { Ok(true) },
        move || {
            bump(finished_calls);
            async { Ok(false) }
        },
    );
    let report = case.run(&mut fns).unwrap();
    assert!(report.aborted);
    assert!(report.started >= 1);
    assert_eq!(
        report.cancelled, report.started,
        "every task, the aborting one too, was cancelled"
    );
    assert_eq!(finished_calls.get(), 0, "is_finished is never called");
    assert!(!abort_returned.get());
    assert_eq!(sim.elapsed(), Duration::ZERO);
}

#[test]
fn js_should_only_finish_after_tasks_complete() {
    let case = Case::new(PoolConfig::default());
    let sim = &case.sim;
    let (started, completed) = (&Cell::new(false), &Cell::new(false));
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(100),
            move || started.set(true),
            move || completed.set(true),
        ),
        answers(move || !started.get()),
        answers(move || started.get()),
    );
    case.run(&mut fns).unwrap();
    assert!(completed.get());
    assert_eq!(sim.elapsed(), ms(100));
}

#[test]
fn js_should_pause_and_resume() {
    // JS v3 resumes at the next 500 ms interval tick; we follow the contract that resume restarts at once.
    let case = Case::new(config(10, 10, 10));
    let (sim, handle) = (&case.sim, &case.handle);
    let (items, results, starts, run_done) = (
        &queue(50),
        &RefCell::new(Vec::new()),
        &RefCell::new(Vec::new()),
        &Cell::new(false),
    );
    let mut fns = task_fns(
        move || {
            let item = items.borrow_mut().pop_front().unwrap();
            starts.borrow_mut().push((item, sim.now()));
            if item == 19 {
                handle.pause();
            }
            let s = sim.sleep(ms(10));
            async move {
                s.await;
                results.borrow_mut().push(item);
                Ok::<(), Boom>(())
            }
        },
        answers(move || !items.borrow().is_empty()),
        answers(move || results.borrow().len() == 50),
    );
    let ctl = async {
        while !handle.is_paused() {
            sim.sleep(ms(1)).await;
        }
        handle.drained().await;
        assert_eq!(sim.now(), at_ms(20));
        assert_eq!(starts.borrow().len(), 20);
        let mut r = results.borrow().clone();
        r.sort_unstable();
        assert_eq!(r, (0..20).collect::<Vec<_>>());
        assert!(!run_done.get());
        sim.sleep(ms(100)).await;
        assert_eq!(starts.borrow().len(), 20, "nothing starts while paused");
        assert!(!run_done.get());
        handle.resume();
    };
    let (res, ()) = case.with_run(&mut fns, |run| {
        let run = async {
            let r = run.await;
            run_done.set(true);
            r
        };
        sim.block_on(zip(run, ctl)).unwrap()
    });
    let report = res.unwrap();
    assert_eq!(report.succeeded, 50);
    let starts = starts.borrow();
    assert_eq!(
        starts.iter().map(|s| s.0).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    assert_eq!(starts[20].1, at_ms(120), "resume restarts at once");
    let mut r = results.borrow().clone();
    r.sort_unstable();
    assert_eq!(r, (0..50).collect::<Vec<_>>());
    assert_eq!(sim.elapsed(), ms(150));
}

#[test]
fn js_should_timeout_after_task_timeout() {
    // JS fails the pool on a task timeout; that is `TimeoutPolicy::FailPool` (Python's default reports it).
    let mut cfg = config(1, 1, 1);
    cfg.task_timeout = Some(ms(100));
    cfg.timeout_policy = TimeoutPolicy::FailPool;
    let case = Case::new(cfg);
    let sim = &case.sim;
    let (completed, dropped) = (&Cell::new(false), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            let guard = DropCount(dropped);
            let s = sim.sleep(secs(1));
            async move {
                let _guard = guard;
                s.await;
                completed.set(true);
                Ok::<(), Boom>(())
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let err = case.run(&mut fns).unwrap_err();
    assert_eq!(err, PoolError::TimedOut(ms(100)));
    assert_eq!(err.to_string(), "a task timed out after 0.100 s");
    assert!(!completed.get());
    assert_eq!(dropped.get(), 1, "the timed-out task was cancelled");
    assert_eq!(sim.elapsed(), ms(100));
    assert_eq!(case.pool().report().timed_out, 1);
}

#[test]
fn js_should_not_timeout_if_task_timeout_is_not_set() {
    let case = Case::new(config(1, 1, 1));
    assert_eq!(case.pool().task_timeout(), None);
    let sim = &case.sim;
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        sleeping(sim, secs(1), move || bump(started), || {}),
        answers(move || started.get() == 0),
        || async { Ok(true) },
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.succeeded, report.timed_out), (1, 0));
    assert_eq!(sim.elapsed(), secs(1));
}

#[test]
fn js_custom_load_signal_scales_down() {
    let mut cfg = config(1, 10, 10);
    cfg.scaling.autoscale_interval = ms(100);
    let mut pool = Pool::new(cfg).unwrap();
    let proxy = pool.add_signal("proxyHealth", 0.3).unwrap();
    let nav = pool.add_signal("navTimeout", 0.2).unwrap();
    let sensors = ScriptedSensors::new()
        .signal(proxy, |_| Some(true))
        .signal(nav, |_| Some(true));
    let case = Case::with_pool(pool).sensors(sensors).traced();
    let (sim, trace) = (&case.sim, case.trace());
    let c = &Counters::default();
    let mut fns = queue_tasks(sim, c, 50, ms(100));
    let report = case.run(&mut fns).unwrap();
    assert_eq!(report.succeeded, 50);
    assert_eq!(report.final_desired_concurrency, 1);
    assert_eq!(case.pool().desired_concurrency(), 1);
    assert_eq!(
        report.peak_concurrency, 1,
        "the current window gates starts"
    );
    let info = case.pool().current_info(sim.now());
    assert_eq!(info.custom.len(), 2);
    assert_eq!(info.custom[0].name, "proxyHealth");
    assert!(info.custom[0].info.is_overloaded());
    assert_eq!(info.custom[1].name, "navTimeout");
    assert!(info.custom[1].info.is_overloaded());
    assert!(trace.events().iter().any(|e| matches!(
        e,
        Event::Scaled(d) if matches!(d.reason, ScaleReason::Overloaded(s) if s.contains(proxy))
    )));
}

#[test]
fn js_should_work_with_logging_interval_null() {
    let mut cfg = config(1, 1, 100);
    cfg.scaling.status_log_interval = None;
    let case = Case::new(cfg).traced();
    let trace = case.trace();
    let mut fns = task_fns(
        || async { Ok::<(), Boom>(()) },
        || async { Ok(false) },
        || async { Ok(true) },
    );
    case.run(&mut fns).unwrap();
    assert_eq!(trace.desired_history(), [2], "one autoscale tick");
    assert!(
        !trace.events().iter().any(|e| matches!(e, Event::Status(_))),
        "no status record"
    );
}

#[test]
fn js_v4_runtime_tuning_through_the_handle() {
    /// Applies `first` before the run (so it shapes the first starts), then `then` at 1 ms; returns the
    /// handle's (min, max, desired, current) at 2 ms. Tasks run for 10 s, so `current` counts admitted starts.
    fn tune(
        cfg: PoolConfig,
        first: impl FnOnce(&Handle),
        then: impl FnOnce(&Handle),
    ) -> (usize, usize, usize, usize) {
        let case = Case::new(cfg);
        let (sim, handle) = (&case.sim, &case.handle);
        let mut fns = task_fns(
            sleeping(sim, secs(10), || {}, || {}),
            || async { Ok(true) },
            || async { Ok(false) },
        );
        first(handle);
        let ctl = async {
            sim.sleep(ms(1)).await;
            then(handle);
            sim.sleep(ms(1)).await;
            let out = (
                handle.min_concurrency(),
                handle.max_concurrency(),
                handle.desired_concurrency(),
                handle.current_concurrency(),
            );
            handle.abort().await.unwrap();
            out
        };
        let (res, out) = case.run_with(&mut fns, ctl);
        res.unwrap();
        out
    }
    // max 100, desired 50, then max 10: desired follows; 10 start and the 11th does not.
    let out = tune(
        config(1, 50, 100),
        |h| h.set_max_concurrency(10).unwrap(),
        |_| {},
    );
    assert_eq!(out, (1, 10, 10, 10));
    // desired 5, then min 20: desired is raised to it.
    let out = tune(
        config(1, 5, 100),
        |h| h.set_min_concurrency(20).unwrap(),
        |_| {},
    );
    assert_eq!(out, (20, 100, 20, 20));
    // min 5, max 50: desired 500 clamps to 50, then 1 clamps to 5.
    let out = tune(
        config(5, 10, 50),
        |h| h.set_desired_concurrency(500).unwrap(),
        |h| h.set_desired_concurrency(1).unwrap(),
    );
    assert_eq!(out, (5, 50, 5, 50));
    // min 10, desired 50, then max 4: the maximum wins over min and desired.
    let out = tune(
        config(10, 50, 100),
        |h| h.set_max_concurrency(4).unwrap(),
        |_| {},
    );
    assert_eq!(out, (4, 4, 4, 4));
}

#[test]
fn js_v4_budget_max_tasks_per_minute_counts_starts_not_concurrency() {
    // JS v4 books 2 starts at once within a sliding minute; we follow Python's even spacing (the seed contract),
    // so the second start waits 30 s although tasks end quickly and 5 slots are free.
    let mut cfg = config(5, 5, 5);
    cfg.concurrency.max_tasks_per_minute = Some(2);
    let case = Case::new(cfg);
    let (sim, handle) = (&case.sim, &case.handle);
    let starts = &RefCell::new(Vec::new());
    let mut fns = task_fns(
        sleeping(
            sim,
            ms(10),
            move || starts.borrow_mut().push(sim.now()),
            || {},
        ),
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let ctl = async {
        until(sim, Instant::from_secs(59)).await;
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert_eq!(res.unwrap().peak_concurrency, 1);
    assert_eq!(*starts.borrow(), [Instant::ZERO, Instant::from_secs(30)]);
}

#[test]
fn js_v4_budget_unlimited_admits_1000_at_once() {
    let case = Case::new(ConcurrencySettings::fixed(1000).into_config());
    let sim = &case.sim;
    let c = &Counters::default();
    let mut fns = queue_tasks(sim, c, 1000, secs(1));
    let report = case.run(&mut fns).unwrap();
    assert_eq!(report.peak_concurrency, 1000);
    assert_eq!(report.succeeded, 1000);
    assert_eq!(sim.elapsed(), secs(1));
}

// ----- This crate's own contract -----

#[test]
fn panicking_task_becomes_pool_error_with_message() {
    let case = Case::new(config(1, 1, 1));
    let (mode, started) = (&Cell::new(0u8), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            bump(started);
            let m = mode.get();
            async move {
                match m {
                    0 => panic!("kaboom {}", 7),
                    1 => panic!("static kaboom"),
                    2 => std::panic::panic_any(42u32),
                    _ => {}
                }
                Ok::<(), Boom>(())
            }
        },
        answers(move || started.get() == 0),
        || async { Ok(true) },
    );
    let expected = [
        "kaboom 7",
        "static kaboom",
        "a panic with a non-string payload",
    ];
    for (m, message) in expected.into_iter().enumerate() {
        mode.set(m as u8);
        started.set(0);
        let err = case.run(&mut fns).unwrap_err();
        assert_eq!(
            err,
            PoolError::Panicked(TaskPanic {
                message: message.into()
            })
        );
        assert_eq!(
            case.pool().current_concurrency(),
            0,
            "a panicked task frees its slot"
        );
        assert_eq!(case.pool().report().failed, 1);
    }
}

/// Runs a 1/1/1 pool whose user functions panic where `panic_in` says ("run_task" in the closure that
/// creates the task, "is_task_ready" or "is_finished" in their futures), catching any unwind out of the run.
fn run_with_panicking_function(
    panic_in: &'static str,
) -> std::thread::Result<Result<RunReport, PoolError<Boom>>> {
    let case = Case::new(config(1, 1, 1));
    let handle = &case.handle;
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            bump(started);
            if panic_in == "run_task" {
                panic!("run_task panicked");
            }
            async { Ok::<(), Boom>(()) }
        },
        move || {
            let ready = started.get() == 0;
            async move {
                if panic_in == "is_task_ready" {
                    panic!("is_task_ready panicked");
                }
                Ok(ready)
            }
        },
        move || async move {
            if panic_in == "is_finished" {
                panic!("is_finished panicked");
            }
            Ok(true)
        },
    );
    let out = catch_unwind(AssertUnwindSafe(|| case.run(&mut fns)));
    // Whatever happened, the pool and the handle are free again.
    assert!(!case.pool().is_running());
    assert_eq!(case.pool().current_concurrency(), 0);
    assert!(!handle.is_running());
    out
}

fn assert_panic_becomes_pool_error(panic_in: &'static str) {
    let res = run_with_panicking_function(panic_in)
        .unwrap_or_else(|_| panic!("a panic in {panic_in} unwound out of the run"));
    assert_eq!(
        res,
        Err(PoolError::Panicked(TaskPanic {
            message: format!("{panic_in} panicked")
        }))
    );
}

#[test]
fn panicking_is_task_ready_becomes_pool_error() {
    // `PoolError::Panicked` and `TaskPanic` are documented as "a task or task function panicked": a panic in
    // `is_task_ready` must come out of the run as that error, as a task's does, not unwind through the caller.
    assert_panic_becomes_pool_error("is_task_ready");
}

#[test]
fn panicking_is_finished_becomes_pool_error() {
    // Same contract as `panicking_is_task_ready_becomes_pool_error`, for `is_finished`.
    assert_panic_becomes_pool_error("is_finished");
}

#[test]
fn panic_while_creating_a_task_becomes_pool_error() {
    // Same contract, for the synchronous part of `run_task` (the closure that builds the task future).
    assert_panic_becomes_pool_error("run_task");
}

#[test]
fn second_concurrent_run_is_refused() {
    let case = Case::new(config(1, 1, 1));
    let (sim, handle) = (&case.sim, &case.handle);
    let mut other = Pool::new(config(1, 1, 1)).unwrap();
    let (c, other_calls) = (&Counters::default(), &Cell::new(0u32));
    let (started, done) = (&c.started, &c.done);
    let mut fns = queue_tasks(sim, c, 1, ms(100));
    let mut other_fns = task_fns(
        move || {
            bump(other_calls);
            async { Ok::<(), Boom>(()) }
        },
        move || {
            bump(other_calls);
            async { Ok(true) }
        },
        move || {
            bump(other_calls);
            async { Ok(true) }
        },
    );
    let report = case.with_run(&mut fns, |run| {
        assert!(handle.is_running());
        assert!(matches!(
            Run::new(
                &mut other,
                handle,
                &mut other_fns,
                sim.runtime(),
                InPlace,
                (),
                ()
            ),
            Err(PoolError::AlreadyRunning)
        ));
        assert!(!other.is_running(), "the refused run touched nothing");
        assert_eq!(other_calls.get(), 0);
        assert!(handle.is_running(), "the first run is undisturbed");
        sim.block_on(run).unwrap().unwrap()
    });
    assert_eq!(report.succeeded, 1);
    // Once the first run has ended, the handle can run again.
    started.set(0);
    done.set(0);
    assert_eq!(case.run(&mut fns).unwrap().succeeded, 1);
}

#[test]
fn is_finished_is_never_called_while_tasks_run() {
    // Python asks `is_finished` on every loop iteration, tasks running or not; we follow the seed contract:
    // only when no task is ready and none is running.
    let case = Case::new(config(1, 4, 4));
    let (sim, handle) = (&case.sim, &case.handle);
    let (items, gauge, refills, calls, handled) = (
        &queue(6),
        &Gauge::default(),
        &Cell::new(0u32),
        &RefCell::new(Vec::new()),
        &Cell::new(0u32),
    );
    let mut fns = task_fns(
        move || {
            let item = items.borrow_mut().pop_front().unwrap();
            gauge.enter();
            let s = sim.sleep(ms(50 + u64::from(item % 5) * 50));
            async move {
                s.await;
                gauge.exit();
                bump(handled);
                Ok::<(), Boom>(())
            }
        },
        answers(move || !items.borrow().is_empty()),
        move || {
            calls.borrow_mut().push((sim.now(), gauge.running.get()));
            let finished = refills.get() >= 5 && items.borrow().is_empty();
            async move { Ok(finished) }
        },
    );
    let ctl = async {
        for round in 1..=5u32 {
            sim.sleep(ms(300)).await;
            items.borrow_mut().extend(round * 10..round * 10 + 6);
            bump(refills);
            handle.notify();
        }
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert_eq!(res.unwrap().succeeded, 36);
    assert_eq!(handled.get(), 36);
    let calls = calls.borrow();
    assert!(!calls.is_empty());
    for (at, running) in calls.iter() {
        assert_eq!(
            *running, 0,
            "is_finished asked at {at} with {running} tasks running"
        );
    }
}

#[test]
fn run_wakes_on_events_not_on_an_interval() {
    /// Runs an idle pool (nothing ever ready) for 60 s; returns how often `is_task_ready` was asked.
    fn idle_ready_calls(probe: Duration) -> u64 {
        let mut cfg = PoolConfig::default();
        cfg.snapshot.event_loop_probe_interval = probe;
        cfg.snapshot.client_probe_interval = probe;
        cfg.snapshot.sensor_interval = probe;
        let case = Case::new(cfg);
        let sim = &case.sim;
        let (calls, same_instant) = (&Cell::new(0u64), &Cell::new((Instant::ZERO, 0u32)));
        let mut fns = task_fns(
            || async { Ok::<(), Boom>(()) },
            move || {
                calls.set(calls.get() + 1);
                let (last, n) = same_instant.get();
                let n = if last == sim.now() { n + 1 } else { 1 };
                // A spinning driver would never let virtual time move: fail instead of hanging.
                assert!(n <= 4, "is_task_ready asked {n} times at {last}");
                same_instant.set((sim.now(), n));
                async { Ok(false) }
            },
            answers(move || sim.now() >= Instant::from_secs(60)),
        );
        let report = case.run(&mut fns).unwrap();
        assert_eq!(report.started, 0);
        assert_eq!(sim.elapsed(), secs(60));
        calls.get()
    }
    // Wakes come only from the machine's own deadlines (probes, sensors, autoscale, status), all on the probe
    // grid here, so at most one readiness check per grid instant in [0, 60] s.
    let fast = idle_ready_calls(ms(500));
    assert!(
        (1..=121).contains(&fast),
        "{fast} checks with a 500 ms probe"
    );
    let slow = idle_ready_calls(secs(5));
    assert!((1..=13).contains(&slow), "{slow} checks with a 5 s probe");
    assert!(slow < fast);
}

#[test]
fn notify_wakes_an_idle_pool_at_once_and_the_next_tick_picks_up_work_otherwise() {
    fn first_start(notify: bool) -> Instant {
        let mut cfg = config(1, 1, 1);
        cfg.snapshot.event_loop_probe_interval = secs(5);
        cfg.snapshot.client_probe_interval = secs(5);
        cfg.snapshot.sensor_interval = secs(5);
        let case = Case::new(cfg);
        let (sim, handle) = (&case.sim, &case.handle);
        let (items, starts, done) = (
            &RefCell::new(VecDeque::<u32>::new()),
            &RefCell::new(Vec::new()),
            &Cell::new(0u32),
        );
        let mut fns = task_fns(
            sleeping(
                sim,
                ms(100),
                move || {
                    items.borrow_mut().pop_front().unwrap();
                    starts.borrow_mut().push(sim.now());
                },
                move || bump(done),
            ),
            answers(move || !items.borrow().is_empty()),
            answers(move || done.get() >= 1),
        );
        let ctl = async {
            until(sim, at_ms(1234)).await;
            items.borrow_mut().push_back(1);
            if notify {
                handle.notify();
            }
        };
        let (res, ()) = case.run_with(&mut fns, ctl);
        assert_eq!(res.unwrap().succeeded, 1);
        let s = starts.borrow();
        assert_eq!(s.len(), 1);
        s[0]
    }
    assert_eq!(first_start(true), at_ms(1234));
    let late = first_start(false);
    assert!(
        late > at_ms(1234) && late <= Instant::from_secs(5),
        "picked up at {late}"
    );
}

#[test]
fn handle_drained_resolves_when_tasks_finish() {
    let case = Case::new(config(3, 3, 3));
    let (sim, handle) = (&case.sim, &case.handle);
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            let s = sim.sleep(ms(100 * u64::from(n)));
            async move {
                s.await;
                Ok::<(), Boom>(())
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    // With no run, nothing is running: drained at once.
    assert!(sim.block_on(poll_once(handle.drained())).unwrap().is_some());
    let ctl = async {
        sim.sleep(ms(50)).await;
        assert_eq!(handle.current_concurrency(), 3);
        handle.pause();
        handle.drained().await;
        assert_eq!(sim.now(), at_ms(300), "the longest task ended at 300 ms");
        assert_eq!(handle.current_concurrency(), 0);
        assert!(
            handle.is_running(),
            "a paused, drained pool is still running"
        );
        assert!(poll_once(handle.drained()).await.is_some());
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    let report = res.unwrap();
    assert_eq!(
        (report.started, report.succeeded, report.cancelled),
        (3, 3, 0)
    );
}

#[test]
fn abort_without_run_is_an_error() {
    let case = Case::new(config(1, 1, 1));
    let (sim, handle) = (&case.sim, &case.handle);
    assert_eq!(
        sim.block_on(handle.abort()).unwrap(),
        Err(RunError::NotRunning)
    );
    let mut fns = task_fns(
        || async { Ok::<(), Boom>(()) },
        || async { Ok(false) },
        || async { Ok(true) },
    );
    case.run(&mut fns).unwrap();
    assert_eq!(
        sim.block_on(handle.abort()).unwrap(),
        Err(RunError::NotRunning),
        "nor after a run has ended"
    );
}

#[test]
fn dropping_a_run_frees_the_pool_for_the_next() {
    let case = Case::new(config(2, 2, 2));
    let (sim, handle) = (&case.sim, &case.handle);
    let (c, dropped) = (&Counters::default(), &Cell::new(0u32));
    let done = &c.done;
    let mut fns = queue_tasks_with(sim, c, 4, 2, secs(1), |_| DropCount(dropped));
    // The caller gives up after 200 ms: the run future is dropped with two tasks in flight.
    case.with_run(&mut fns, |run| {
        assert!(sim.run_for(ms(200), run).unwrap().is_none());
    });
    assert_eq!(dropped.get(), 2, "in-place tasks are dropped with the run");
    assert_eq!(done.get(), 0);
    assert!(!case.pool().is_running());
    assert_eq!(case.pool().current_concurrency(), 0);
    assert!(!handle.is_running());
    assert_eq!(handle.current_concurrency(), 0);
    assert_eq!(sim.clock().next_deadline(), None, "no timer is left armed");
    assert_eq!(
        sim.block_on(handle.abort()).unwrap(),
        Err(RunError::NotRunning)
    );

    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.started, report.succeeded), (2, 2));
    assert!(!report.aborted);
    assert_eq!(report.duration, secs(1));
}

/// One scripted scenario: autoscaling under a CPU that is busy between 3 s and 6 s, with uneven tasks.
fn scripted_scenario() -> (Vec<String>, Vec<Event>, RunReport, Duration, Vec<Instant>) {
    let mut cfg = config(1, 2, 8);
    cfg.scaling.autoscale_interval = ms(500);
    let sensors = ScriptedSensors::new().cpu(|t| {
        let busy = (Instant::from_secs(3)..Instant::from_secs(6)).contains(&t);
        Some(if busy { 1.0 } else { 0.2 })
    });
    let case = Case::new(cfg).sensors(sensors).traced();
    let (sim, trace) = (&case.sim, case.trace());
    let (started, done, starts) = (
        &Cell::new(0u32),
        &Cell::new(0u32),
        &RefCell::new(Vec::new()),
    );
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            starts.borrow_mut().push(sim.now());
            let s = sim.sleep(ms(50 + u64::from(n * 37 % 200)));
            async move {
                s.await;
                bump(done);
                Ok::<(), Boom>(())
            }
        },
        answers(move || started.get() < 400),
        answers(move || done.get() >= 400),
    );
    let report = case.run(&mut fns).unwrap();
    (
        trace.decisions(),
        trace.events(),
        report,
        sim.elapsed(),
        starts.borrow().clone(),
    )
}

#[test]
fn simulation_is_deterministic() {
    let a = scripted_scenario();
    let b = scripted_scenario();
    assert_eq!(a.0, b.0, "decision traces differ");
    assert_eq!(a.1, b.1, "event streams differ");
    assert_eq!(a.2, b.2);
    assert_eq!(a.3, b.3);
    assert_eq!(a.4, b.4);
    // The scenario exercises both directions, so the comparison means something.
    let history: Vec<usize> =
        a.1.iter()
            .filter_map(|e| match e {
                Event::Scaled(d) => Some(d.new),
                _ => None,
            })
            .collect();
    assert!(history.windows(2).any(|w| w[1] > w[0]), "{history:?}");
    assert!(history.windows(2).any(|w| w[1] < w[0]), "{history:?}");
    assert_eq!(a.2.succeeded, 400);
}

#[test]
fn first_autoscale_tick_and_status_record_happen_at_run_start() {
    let case = Case::new(config(1, 1, 4)).traced();
    let (sim, trace) = (&case.sim, case.trace());
    let mut fns = task_fns(
        || async { Ok::<(), Boom>(()) },
        || async { Ok(false) },
        || async { Ok(true) },
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!(report.started, 0);
    assert_eq!(sim.elapsed(), Duration::ZERO);
    let events = trace.events();
    let tick = events
        .iter()
        .find_map(|e| match e {
            Event::Scaled(d) => Some(d),
            _ => None,
        })
        .expect("a tick at run start");
    assert_eq!(tick.at, Instant::ZERO);
    assert_eq!((tick.old, tick.new, tick.current), (1, 2, 0));
    assert_eq!(tick.reason, ScaleReason::Idle);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Status(s) if s.at == Instant::ZERO && s.current_concurrency == 0
    )));
    assert_eq!(case.pool().desired_concurrency(), 2);
}

#[test]
fn first_error_wins_and_in_flight_tasks_are_awaited() {
    // Python 1.11: in-flight tasks are awaited, not cancelled, and later errors are dropped (JS leaves them
    // running unobserved).
    let case = Case::new(config(3, 3, 3));
    let sim = &case.sim;
    let (started, completed) = (&Cell::new(0u32), &Cell::new(false));
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            let s = sim.sleep(match n {
                1 => ms(10),
                2 => ms(500),
                _ => secs(1),
            });
            async move {
                s.await;
                match n {
                    1 => Err(Boom("first")),
                    2 => Err(Boom("second")),
                    _ => {
                        completed.set(true);
                        Ok(())
                    }
                }
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let res = case.run(&mut fns);
    assert_eq!(res, Err(PoolError::Task(Boom("first"))));
    assert!(completed.get(), "the in-flight task ran to the end");
    assert_eq!(started.get(), 3, "nothing started after the first error");
    assert_eq!(sim.elapsed(), secs(1));
    let r = case.pool().report();
    assert_eq!((r.failed, r.succeeded, r.cancelled), (2, 1, 0));
}

#[test]
fn abort_after_first_error_cancels_but_keeps_the_error() {
    // Python races here (InvalidStateError); we keep "first error wins" while abort still cancels at once.
    let case = Case::new(config(2, 2, 2));
    let (sim, handle) = (&case.sim, &case.handle);
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            let s = sim.sleep(if n == 1 { ms(10) } else { secs(10) });
            async move {
                s.await;
                if n == 1 { Err(Boom("first")) } else { Ok(()) }
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let ctl = async {
        sim.sleep(ms(100)).await;
        handle.abort().await.unwrap();
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    assert_eq!(res, Err(PoolError::Task(Boom("first"))));
    assert_eq!(sim.elapsed(), ms(100));
    let r = case.pool().report();
    assert_eq!((r.failed, r.cancelled), (1, 1));
}

#[test]
fn rate_limited_pool_with_nothing_running_can_finish() {
    // Python sleeps through the spacing before asking again; we ask `is_finished` while rate-limited with
    // nothing running, so the run ends at once instead of a minute later.
    let mut cfg = config(1, 1, 1);
    cfg.concurrency.max_tasks_per_minute = Some(1);
    let case = Case::new(cfg);
    let sim = &case.sim;
    let (done, readies) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        sleeping(sim, ms(100), || {}, move || bump(done)),
        move || {
            bump(readies);
            async { Ok(true) }
        },
        answers(move || done.get() >= 1),
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.started, report.succeeded), (1, 1));
    assert_eq!(readies.get(), 1);
    assert_eq!(sim.elapsed(), ms(100));
}

#[test]
fn task_timeout_report_policy_cancels_and_continues() {
    // Python reports a timed-out task and goes on (`TimeoutPolicy::Report`, the default); JS fails the pool.
    let mut cfg = config(2, 2, 2);
    cfg.task_timeout = Some(ms(250));
    assert_eq!(cfg.timeout_policy, TimeoutPolicy::Report);
    let case = Case::new(cfg);
    let sim = &case.sim;
    let (started, dropped) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = task_fns(
        move || {
            let n = bump(started);
            let guard = DropCount(dropped);
            // Odd tasks take 1 s and time out; even ones take 100 ms.
            let s = sim.sleep(if n % 2 == 1 { secs(1) } else { ms(100) });
            async move {
                let _guard = guard;
                s.await;
                Ok::<(), Boom>(())
            }
        },
        answers(move || started.get() < 4),
        || async { Ok(true) },
    );
    let report = case.run(&mut fns).unwrap();
    // t=0: #1 (times out at 250), #2 (ends 100). t=100: #3 (times out at 350). t=250: #4 (ends 350).
    assert_eq!(
        (report.timed_out, report.succeeded, report.failed),
        (2, 2, 0)
    );
    assert_eq!(dropped.get(), 4);
    assert_eq!(sim.elapsed(), ms(350));
}

#[test]
fn scaling_down_never_cancels_running_tasks() {
    let case = Case::new(config(1, 4, 4));
    let (sim, handle) = (&case.sim, &case.handle);
    let (items, starts, gauge) = (&queue(8), &RefCell::new(Vec::new()), &Gauge::default());
    let mut fns = item_tasks(
        sim,
        items,
        secs(1),
        |_| {
            starts.borrow_mut().push(sim.now());
            gauge.enter();
        },
        |_| gauge.exit(),
    );
    let ctl = async {
        sim.sleep(ms(100)).await;
        handle.set_desired_concurrency(1).unwrap();
        sim.sleep(ms(1)).await;
        assert_eq!(handle.desired_concurrency(), 1);
        assert_eq!(handle.current_concurrency(), 4, "nothing was cancelled");
    };
    let (res, ()) = case.run_with(&mut fns, ctl);
    let report = res.unwrap();
    assert_eq!((report.succeeded, report.cancelled), (8, 0));
    let s: Vec<u64> = starts
        .borrow()
        .iter()
        .map(|t| (*t - Instant::ZERO).as_secs())
        .collect();
    assert_eq!(s, [0, 0, 0, 0, 1, 2, 3, 4]);
    assert_eq!(sim.elapsed(), secs(5));
}

#[test]
fn handle_setters_validate_like_the_machine() {
    let pool = Pool::new(config(1, 10, 100)).unwrap();
    let handle = Handle::new(&pool);
    assert_eq!(
        handle.set_desired_concurrency(0),
        Err(ConfigError::MinTooSmall)
    );
    assert_eq!(handle.set_min_concurrency(0), Err(ConfigError::MinTooSmall));
    assert_eq!(handle.set_max_concurrency(0), Err(ConfigError::MinTooSmall));
    assert_eq!(
        handle.set_min_concurrency(101),
        Err(ConfigError::MinAboveMax { min: 101, max: 100 })
    );
}

// ----- Spawned mode -----

/// Tasks spawned on an executor (here the simulation's) instead of polled in place: same counts, same
/// virtual timing, and an abort cancels them on the executor.
#[test]
fn spawned_tasks_run_on_the_executor_and_abort_cancels_them() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let case = Case::new(config(10, 10, 10));
    let (sim, handle) = (&case.sim, &case.handle);
    let started = Cell::new(0u32);
    let done = Arc::new(AtomicU32::new(0));
    let task_done = done.clone();
    let mut fns = task_fns(
        || {
            bump(&started);
            let s = sim.sleep(ms(100));
            let done = task_done.clone();
            async move {
                s.await;
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Boom>(())
            }
        },
        answers(|| started.get() < 20),
        answers(|| done.load(Ordering::SeqCst) == 20),
    );
    let report = case.launch(&mut fns, Spawned(sim), |run| {
        sim.block_on(run).unwrap().unwrap()
    });
    assert_eq!(report.succeeded, 20);
    assert_eq!(report.peak_concurrency, 10);
    assert_eq!(sim.elapsed(), ms(200));

    // Second run: tasks that never end, aborted after 50 ms; each is cancelled on the executor.
    let mut fns = task_fns(
        || {
            let s = sim.sleep(secs(3600));
            async move {
                s.await;
                Ok::<(), Boom>(())
            }
        },
        || async { Ok(true) },
        || async { Ok(false) },
    );
    let start = sim.now();
    let (out, aborted) = case.launch(&mut fns, Spawned(sim), |run| {
        sim.block_on(zip(run, async {
            sim.sleep(ms(50)).await;
            handle.abort().await
        }))
        .unwrap()
    });
    assert_eq!(aborted, Ok(()));
    let report = out.unwrap();
    assert!(report.aborted);
    assert_eq!(report.cancelled, 10);
    assert_eq!(sim.now() - start, ms(50));
    assert_eq!(handle.current_concurrency(), 0);
}
