//! Fault injection: one test per fault, each named after it, run by the driver in virtual time
//! ([`pool_core::testing::Sim`]).
//!
//! Faults already pinned elsewhere are not repeated here (docs/reliability.md lists them): abort before any
//! run (`abort_without_run_is_an_error`), a task that panics on its first poll with its message
//! (`panicking_task_becomes_pool_error_with_message`), `is_task_ready` and `is_finished` that error
//! (`js_when_is_task_ready_function_throws`, `js_when_is_finished_function_throws`) or panic
//! (`panicking_is_task_ready_becomes_pool_error`, `panicking_is_finished_becomes_pool_error`), an in-place run
//! dropped mid-run (`dropping_a_run_frees_the_pool_for_the_next`), all in `conformance_pool.rs`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

mod common;

use common::{Boom, Case, Counters, DropCount, answers, bump, config, ms, queue_tasks, secs};
use futures_lite::future::{poll_fn, zip};
use pool_core::testing::{ScriptedSensors, Trace};
use pool_core::{
    CpuReading, Event, Instant, MemoryReading, Pool, PoolError, ReadingError, RunError,
    ScalingPolicy, Sensors, Spawned, TaskPanic, task_fns,
};

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Wraps a future and counts its polls, to tell a driver that waits from one that spins. Past `cap` polls it
/// panics, so a driver spinning at a standing virtual instant fails the test instead of hanging it.
fn counted<'a, F>(polls: &'a Cell<u32>, cap: u32, fut: F) -> impl Future<Output = F::Output> + 'a
where
    F: Future + Unpin + 'a,
{
    let mut fut = fut;
    poll_fn(move |cx| {
        assert!(bump(polls) <= cap, "the driver spins: over {cap} polls");
        Pin::new(&mut fut).poll(cx)
    })
}

/// Task functions whose tasks hang for an hour: `n` of them, then none ready and never finished.
macro_rules! hanging_tasks {
    ($sim:expr, $started:expr, $dropped:expr, $n:expr) => {
        task_fns(
            move || {
                bump($started);
                let guard = DropCount($dropped);
                let s = $sim.sleep(secs(3600));
                async move {
                    let _guard = guard;
                    s.await;
                    Ok::<(), Boom>(())
                }
            },
            answers(move || $started.get() < $n),
            || async { Ok(false) },
        )
    };
}

// ----- Abort -----

#[test]
fn abort_twice_concurrently_both_return_ok_and_the_run_ends_once() {
    let case = Case::new(config(3, 3, 3));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, dropped) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = hanging_tasks!(sim, started, dropped, 3);
    let ctl = async {
        sim.sleep(ms(50)).await;
        zip(handle.abort(), handle.abort()).await
    };
    let (res, (first, second)) = case.run_with(&mut fns, ctl);
    assert_eq!((first, second), (Ok(()), Ok(())));
    let report = res.unwrap();
    assert!(report.aborted);
    assert_eq!((report.started, report.cancelled), (3, 3));
    assert_eq!(dropped.get(), 3, "every task future is dropped once");
    assert_eq!(sim.elapsed(), ms(50), "the abort ends the run at once");
    assert!(!handle.is_running());
    assert_eq!(
        sim.block_on(handle.abort()).unwrap(),
        Err(RunError::NotRunning),
        "a second abort after the run ended"
    );
    // The pool is not stuck in the aborted state: the next run starts and ends normally.
    let mut fns = task_fns(
        || async { Ok::<(), Boom>(()) },
        || async { Ok(false) },
        || async { Ok(true) },
    );
    let report = case.run(&mut fns).unwrap();
    assert!(!report.aborted);
}

#[test]
fn abort_twice_in_sequence_second_after_the_end_is_not_running() {
    let case = Case::new(config(2, 2, 2));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, dropped) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = hanging_tasks!(sim, started, dropped, 2);
    let ctl = async {
        sim.sleep(ms(10)).await;
        let first = handle.abort().await;
        let second = handle.abort().await;
        (first, second)
    };
    let (res, (first, second)) = case.run_with(&mut fns, ctl);
    assert_eq!(first, Ok(()));
    assert_eq!(second, Err(RunError::NotRunning));
    assert!(res.unwrap().aborted);
}

#[test]
fn abort_while_paused_cancels_the_running_tasks_and_ends_the_run() {
    let case = Case::new(config(2, 2, 2));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, dropped) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = hanging_tasks!(sim, started, dropped, 10);
    let ctl = async {
        sim.sleep(ms(10)).await;
        handle.pause();
        sim.sleep(ms(10)).await;
        assert!(handle.is_paused());
        assert_eq!(handle.current_concurrency(), 2);
        handle.abort().await
    };
    let (res, aborted) = case.run_with(&mut fns, ctl);
    assert_eq!(aborted, Ok(()));
    let report = res.unwrap();
    assert!(report.aborted);
    assert_eq!((report.started, report.cancelled), (2, 2));
    assert_eq!(dropped.get(), 2);
    assert_eq!(sim.elapsed(), ms(20));
    assert!(!handle.is_running());
    assert_eq!(handle.current_concurrency(), 0);
}

#[test]
fn abort_during_pause_and_drain_resolves_the_drain() {
    let case = Case::new(config(3, 3, 3));
    let (sim, handle) = (&case.sim, &case.handle);
    let (started, dropped) = (&Cell::new(0u32), &Cell::new(0u32));
    let mut fns = hanging_tasks!(sim, started, dropped, 10);
    let drained_at = &Cell::new(None);
    let ctl = async {
        sim.sleep(ms(10)).await;
        handle.pause();
        // Pause and drain: the tasks hang for an hour, so only the abort below can end the drain.
        let drain = async {
            handle.drained().await;
            drained_at.set(Some(sim.now()));
        };
        let abort = async {
            sim.sleep(ms(40)).await;
            handle.abort().await
        };
        zip(drain, abort).await.1
    };
    let (res, aborted) = case.run_with(&mut fns, ctl);
    assert_eq!(aborted, Ok(()));
    assert_eq!(drained_at.get(), Some(Instant::from_millis(50)));
    let report = res.unwrap();
    assert!(report.aborted);
    assert_eq!((report.started, report.cancelled), (3, 3));
    assert_eq!(handle.current_concurrency(), 0);
}

// ----- A run dropped mid-run, spawned mode -----

#[test]
fn dropping_a_spawned_run_mid_run_cancels_every_task_and_frees_the_pool() {
    let case = Case::new(config(4, 4, 4));
    let (sim, handle) = (&case.sim, &case.handle);
    let started = Cell::new(0u32);
    let (done, dropped) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    struct Guard(Arc<AtomicU32>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut fns = task_fns(
        || {
            bump(&started);
            let s = sim.sleep(secs(1));
            let (done, guard) = (done.clone(), Guard(dropped.clone()));
            async move {
                let _guard = guard;
                s.await;
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Boom>(())
            }
        },
        answers(|| started.get() < 8),
        answers(|| done.load(Ordering::SeqCst) >= 4),
    );
    // The caller gives up after 200 ms: the run is dropped with four tasks on the executor.
    case.launch(&mut fns, Spawned(sim), |run| {
        assert!(sim.run_for(ms(200), run).unwrap().is_none());
    });
    // Let the executor settle: a cancelled task must not come back.
    sim.run_for(secs(5), std::future::pending::<()>()).unwrap();
    assert_eq!(started.get(), 4);
    assert_eq!(dropped.load(Ordering::SeqCst), 4, "every task is cancelled");
    assert_eq!(done.load(Ordering::SeqCst), 0, "no cancelled task ran on");
    assert!(!handle.is_running());
    assert_eq!(handle.current_concurrency(), 0);
    assert!(!case.pool().is_running());
    assert_eq!(case.pool().current_concurrency(), 0);
    assert_eq!(
        sim.block_on(handle.abort()).unwrap(),
        Err(RunError::NotRunning)
    );

    let start = sim.now();
    let report = case.launch(&mut fns, Spawned(sim), |run| {
        sim.block_on(run).unwrap().unwrap()
    });
    assert_eq!((report.started, report.succeeded), (4, 4));
    assert_eq!(sim.now() - start, secs(1));
    assert_eq!(dropped.load(Ordering::SeqCst), 8);
}

// ----- Task panics -----

/// A task panics before its first await (on its first poll) or after it (on a later poll), while two
/// others are in flight: the run waits for them, returns the panic, and every slot is free.
#[test]
fn task_panics_before_and_after_its_first_await_free_its_slot() {
    for after_await in [false, true] {
        let case = Case::new(config(3, 3, 3));
        let (sim, handle) = (&case.sim, &case.handle);
        let (started, dropped, done) = (&Cell::new(0u32), &Cell::new(0u32), &Cell::new(0u32));
        let mut fns = task_fns(
            move || {
                let n = bump(started);
                let guard = DropCount(dropped);
                let s = sim.sleep(ms(10 * u64::from(n)));
                async move {
                    let _guard = guard;
                    if n == 2 && !after_await {
                        panic!("before its first await");
                    }
                    s.await;
                    if n == 2 {
                        panic!("after its first await");
                    }
                    bump(done);
                    Ok::<(), Boom>(())
                }
            },
            answers(move || started.get() < 3),
            || async { Ok(true) },
        );
        let err = case.run(&mut fns).unwrap_err();
        let message = if after_await {
            "after its first await"
        } else {
            "before its first await"
        };
        assert_eq!(
            err,
            PoolError::Panicked(TaskPanic {
                message: message.into()
            })
        );
        // Before its first await, the panic comes on the poll that starts task 2, so task 3 is never started;
        // after it, all three are running when task 2 panics at 20 ms and task 3 is awaited until 30 ms.
        let (n, end): (u32, u64) = if after_await { (3, 30) } else { (2, 10) };
        assert_eq!(started.get(), n, "no start after the first error");
        assert_eq!(done.get(), n - 1, "the tasks in flight are awaited");
        assert_eq!(dropped.get(), n, "the panicked future is dropped too");
        assert_eq!(sim.elapsed(), ms(end));
        let report = case.pool().report();
        assert_eq!(
            (report.started, report.succeeded, report.failed),
            (u64::from(n), u64::from(n) - 1, 1)
        );
        assert_eq!(case.pool().current_concurrency(), 0);
        assert!(!handle.is_running());
    }
}

// ----- Sensor faults -----

fn rejections(trace: &Trace) -> Vec<ReadingError> {
    trace
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ReadingRejected { error, .. } => Some(error),
            _ => None,
        })
        .collect()
}

#[test]
fn sensor_reports_nan_infinite_and_negative_cpu_and_zero_memory_total() {
    let bad = Rc::new(Cell::new(0u32));
    let (bad_cpu, bad_mem) = (bad.clone(), bad.clone());
    let cpu_script = [f64::NAN, f64::INFINITY, -0.5, f64::NEG_INFINITY, 0.3];
    let i = Cell::new(0usize);
    let sensors = ScriptedSensors::new()
        .cpu(move |_| {
            let r = cpu_script[i.get() % cpu_script.len()];
            i.set(i.get() + 1);
            if !(r.is_finite() && r >= 0.0) {
                bump(&bad_cpu);
            }
            Some(r)
        })
        .memory(move |_| {
            bump(&bad_mem);
            Some((1 << 30, 0, None))
        });
    // The default memory budget is a ratio of the reported total, so a total of 0 cannot be judged.
    let case = Case::new(config(2, 2, 2)).sensors(sensors).traced();
    let (sim, trace) = (&case.sim, case.trace());
    let c = &Counters::default();
    // 40 tasks of 100 ms two at a time: 2 s, so the sensors are sampled a few times.
    let mut fns = queue_tasks(sim, c, 40, ms(100));
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.started, report.succeeded), (40, 40));
    assert_eq!(
        sim.elapsed(),
        secs(2),
        "the pool ran at full speed throughout"
    );
    let rejected = rejections(trace);
    assert!(bad.get() >= 4, "the script was sampled: {}", bad.get());
    assert_eq!(
        rejected.len() as u32,
        bad.get(),
        "one event per bad reading"
    );
    assert!(rejected.contains(&ReadingError::ZeroMemoryTotal));
    assert!(
        rejected
            .iter()
            .any(|e| matches!(e, ReadingError::InvalidCpuRatio(r) if r.is_nan()))
    );
    assert!(rejected.contains(&ReadingError::InvalidCpuRatio(f64::INFINITY)));
    assert!(rejected.contains(&ReadingError::InvalidCpuRatio(-0.5)));
}

/// A sensor whose readings are stamped far in the past or the future (a clock of its own gone wrong).
struct OddTimes {
    samples: Rc<Cell<u32>>,
}

impl Sensors for OddTimes {
    fn sample<P: ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>) {
        let n = bump(&self.samples);
        let at = match n % 4 {
            0 => Instant::ZERO,
            1 => Instant::FAR_FUTURE,
            2 => now.saturating_add(YEAR),
            _ => now.saturating_sub(YEAR),
        };
        let cpu = CpuReading {
            at,
            used_ratio: 1.0,
        };
        let memory = MemoryReading {
            at,
            used_bytes: u64::MAX,
            total_bytes: u64::MAX,
            system_used_bytes: Some(u64::MAX),
        };
        assert_eq!(pool.handle_cpu(now, cpu), Ok(()));
        assert_eq!(pool.handle_memory(now, memory), Ok(()));
    }
}

#[test]
fn sensor_reports_readings_far_in_the_past_and_future() {
    let samples = Rc::new(Cell::new(0u32));
    let sensors = OddTimes {
        samples: samples.clone(),
    };
    let case = Case::new(config(1, 2, 4)).sensors(sensors).traced();
    let (sim, trace) = (&case.sim, case.trace());
    let c = &Counters::default();
    let mut fns = queue_tasks(sim, c, 60, ms(100));
    let polls = &Cell::new(0u32);
    let report = case.with_run(&mut fns, |run| {
        sim.block_on(counted(polls, 100, run)).unwrap().unwrap()
    });
    assert_eq!((report.started, report.succeeded), (60, 60));
    assert!(samples.get() >= 3, "sampled {} times", samples.get());
    assert!(
        rejections(trace).is_empty(),
        "odd timestamps are accepted, not errors"
    );
    // However the readings are judged, the pool keeps at least min running: at worst one task at a time.
    assert!(sim.elapsed() <= secs(6), "took {:?}", sim.elapsed());
    assert!(polls.get() < 100, "{} driver polls", polls.get());
}

// ----- Clock anomalies -----

/// A task that yields `n` times (waking itself each time) before it ends: the work of many polls with the
/// clock standing still.
struct Yields(u32);

impl Future for Yields {
    type Output = Result<(), Boom>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.0 == 0 {
            return Poll::Ready(Ok(()));
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn clock_stands_still_for_many_polls() {
    let case = Case::new(config(4, 4, 4));
    let sim = &case.sim;
    let started = &Cell::new(0u32);
    let mut fns = task_fns(
        move || {
            bump(started);
            Yields(5_000)
        },
        answers(move || started.get() < 8),
        || async { Ok(true) },
    );
    let polls = &Cell::new(0u32);
    let report = case.with_run(&mut fns, |run| {
        sim.block_on(counted(polls, 10_100, run)).unwrap().unwrap()
    });
    assert_eq!((report.started, report.succeeded), (8, 8));
    assert_eq!(sim.elapsed(), Duration::ZERO, "time never moved");
    // Two waves of four tasks that each wake themselves 5,000 times. A task that wakes itself is polled once
    // per driver poll (the driver then yields to its executor, which polls it again at once), so the driver
    // is polled once per round of wakes, about 10,000 times: each poll serves four task polls, none is idle.
    assert!(polls.get() <= 10_010, "{} driver polls", polls.get());
}

#[test]
fn clock_jumps_a_year_mid_run() {
    let sensors = ScriptedSensors::new().cpu(|_| Some(0.1));
    let case = Case::new(config(2, 2, 2))
        .limit(YEAR * 2)
        .sensors(sensors)
        .traced();
    let (sim, trace) = (&case.sim, case.trace());
    let c = &Counters::default();
    let mut fns = queue_tasks(sim, c, 10, ms(100));
    let polls = &Cell::new(0u32);
    let jump = async {
        sim.sleep(ms(150)).await;
        // The machine is suspended for a year (a laptop lid, a stopped container): time jumps at once.
        sim.clock().advance(YEAR);
    };
    let (res, ()) = case.with_run(&mut fns, |run| {
        sim.block_on(zip(counted(polls, 100, run), jump)).unwrap()
    });
    let report = res.unwrap();
    assert_eq!((report.started, report.succeeded), (10, 10));
    assert!(sim.elapsed() >= YEAR && sim.elapsed() < YEAR + secs(2));
    // A year of missed ticks and probes is not replayed one by one.
    assert!(polls.get() < 100, "{} driver polls", polls.get());
    assert!(
        trace.events().len() < 100,
        "{} events",
        trace.events().len()
    );
}

// ----- Extreme settings -----

/// A ceiling of `usize::MAX` is a valid setting: the run must not try to reserve a slot for each.
#[test]
fn settings_with_a_ceiling_of_usize_max_run() {
    let case = Case::new(config(1, 3, usize::MAX));
    let sim = &case.sim;
    let c = &Counters::default();
    let mut fns = queue_tasks(sim, c, 9, ms(100));
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.started, report.succeeded), (9, 9));
    assert_eq!(sim.elapsed(), ms(300));
}
