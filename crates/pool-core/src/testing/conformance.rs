//! The adapter conformance suite: the core's contract checked again on a real runtime.
//!
//! Each adapter's `tests/conformance.rs` calls [`crate::conformance_tests!`] with its runtime type and a way
//! to block on a future; the macro expands to one `#[test]` per case below. Durations are short and real, so
//! every timing assertion has generous tolerances; determinism is the virtual-time suites' job.
//!
//! The cases that bound how long a run may take on the wall clock ([`runs_concurrently`] and
//! [`abort_cancels_running_tasks`]) are left out of [`crate::conformance_tests!`]: a busy machine can slow any
//! run, so they belong with the end-to-end tests (`crates/e2e`, its own CI step), which expand
//! [`crate::wall_clock_conformance_tests!`] for every adapter.

use std::prelude::rust_2024::*;

use core::future::Future;
use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::autoscaled::{AutoscaledPool, sleep};
use crate::config::{ConcurrencySettings, TimeoutPolicy};
use crate::driver::PoolError;
use crate::seams::DefaultRuntime;
use crate::seams::Timer;
use crate::time::Instant;

/// What a runtime must be for the suite: an adapter runtime whose handles and timers cross threads.
pub trait Conformant: DefaultRuntime<Timer: Send> + Send + Sync + 'static {}

impl<Rt: DefaultRuntime<Timer: Send> + Send + Sync + 'static> Conformant for Rt {}

/// Counters shared by a case's task functions.
#[derive(Clone, Default)]
struct Counters {
    started: Arc<AtomicU32>,
    done: Arc<AtomicU32>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    finished_while_running: Arc<AtomicBool>,
}

impl Counters {
    fn task<Rt: Conformant>(
        &self,
        rt: &Rt,
        d: Duration,
        fail_at: Option<u32>,
    ) -> impl Future<Output = Result<(), String>> + Send + use<Rt> {
        let c = self.clone();
        let n = c.started.fetch_add(1, Ordering::SeqCst) + 1;
        let sleep = sleep(rt, d);
        async move {
            let now = c.running.fetch_add(1, Ordering::SeqCst) + 1;
            c.peak.fetch_max(now, Ordering::SeqCst);
            sleep.await;
            c.running.fetch_sub(1, Ordering::SeqCst);
            c.done.fetch_add(1, Ordering::SeqCst);
            if fail_at == Some(n) {
                Err(format!("task {n} failed"))
            } else {
                Ok(())
            }
        }
    }
}

macro_rules! fixed_pool {
    ($rt:ty, $c:expr, $conc:expr, $total:expr, $d:expr, $fail:expr) => {{
        let (a, b, f) = ($c.clone(), $c.clone(), $c.clone());
        let rt = <$rt as DefaultRuntime>::create();
        AutoscaledPool::<$rt, (), ()>::builder()
            .concurrency_settings(ConcurrencySettings::fixed($conc))
            .run_task(move || a.task(&rt, $d, $fail))
            .is_task_ready(move || {
                let r = b.started.load(Ordering::SeqCst) < $total;
                async move { Ok(r) }
            })
            .is_finished(move || {
                if f.running.load(Ordering::SeqCst) > 0 {
                    f.finished_while_running.store(true, Ordering::SeqCst);
                }
                let done = f.done.load(Ordering::SeqCst) >= $total;
                async move { Ok(done) }
            })
    }};
}

/// 100 tasks of 10 ms at concurrency 10: all succeed, exactly 10 run at once, `is_finished` is never asked
/// while a task runs, and the run takes about 100 ms (at least 95 ms, and under 10 s even on a busy machine).
pub async fn runs_concurrently<Rt: Conformant>() {
    let c = Counters::default();
    let pool = fixed_pool!(Rt, c, 10, 100, Duration::from_millis(10), None)
        .build()
        .unwrap();
    let report = pool.run().await.unwrap();
    assert_eq!(report.succeeded, 100);
    assert_eq!(c.peak.load(Ordering::SeqCst), 10);
    assert_eq!(report.peak_concurrency, 10);
    assert!(
        !c.finished_while_running.load(Ordering::SeqCst),
        "is_finished was asked while tasks ran"
    );
    assert!(
        report.duration >= Duration::from_millis(95),
        "too fast: {:?}",
        report.duration
    );
    assert!(
        report.duration < Duration::from_secs(10),
        "too slow: {:?}",
        report.duration
    );
}

/// The first error wins; tasks in flight are awaited, not cancelled; nothing starts after it.
pub async fn first_error_wins_and_in_flight_tasks_are_awaited<Rt: Conformant>() {
    let c = Counters::default();
    let pool = fixed_pool!(Rt, c, 5, 1000, Duration::from_millis(20), Some(7))
        .build()
        .unwrap();
    let err = pool.run().await.unwrap_err();
    assert_eq!(err, PoolError::Task("task 7 failed".to_string()));
    assert_eq!(
        c.running.load(Ordering::SeqCst),
        0,
        "in-flight tasks were not awaited"
    );
    assert_eq!(
        c.done.load(Ordering::SeqCst),
        c.started.load(Ordering::SeqCst)
    );
    assert!(c.started.load(Ordering::SeqCst) < 20);
    assert_eq!(pool.current_concurrency(), 0);
}

/// A panicking task becomes [`PoolError::Panicked`] with its message, and its slot is freed.
pub async fn a_panic_becomes_an_error<Rt: Conformant>() {
    let rt = Rt::create();
    let pool = AutoscaledPool::<Rt, (), ()>::builder()
        .concurrency_settings(ConcurrencySettings::fixed(3))
        .run_task(move || {
            let s = sleep(&rt, Duration::from_millis(5));
            async move {
                s.await;
                if true {
                    std::panic!("boom in a task");
                }
                Ok::<(), String>(())
            }
        })
        .is_task_ready(|| async { Ok(true) })
        .is_finished(|| async { Ok(false) })
        .build()
        .unwrap();
    match pool.run().await {
        Err(PoolError::Panicked(p)) => assert_eq!(p.message, "boom in a task"),
        other => std::panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(pool.current_concurrency(), 0);
}

/// Abort cancels running tasks quickly (under 10 s even on a busy machine) and the run returns `Ok` with
/// `aborted`.
pub async fn abort_cancels_running_tasks<Rt: Conformant>() {
    let c = Counters::default();
    let pool = Arc::new(
        fixed_pool!(Rt, c, 4, u32::MAX, Duration::from_secs(3600), None)
            .build()
            .unwrap(),
    );
    let rt = Rt::create();
    let aborter = {
        let pool = pool.clone();
        async move {
            while pool.current_concurrency() < 4 {
                sleep(&rt, Duration::from_millis(1)).await;
            }
            pool.abort().await
        }
    };
    let started = Rt::create();
    let t0 = started.now();
    let (report, aborted) = futures_lite::future::zip(pool.run(), aborter).await;
    assert_eq!(aborted, Ok(()));
    let report = report.unwrap();
    assert!(report.aborted);
    assert_eq!(report.cancelled, 4);
    assert!(
        started.now() - t0 < Duration::from_secs(10),
        "abort took too long"
    );
    assert_eq!(pool.current_concurrency(), 0);
    assert!(
        pool.abort().await.is_err(),
        "abort without a run is an error"
    );
}

/// A per-task timeout cancels the task and is counted; with `FailPool` it fails the run.
pub async fn task_timeouts_are_reported_or_fail_the_pool<Rt: Conformant>() {
    let c = Counters::default();
    let pool = fixed_pool!(Rt, c, 2, 4, Duration::from_secs(3600), None)
        .task_timeout(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    // Timed-out tasks never reach `done`, so `is_finished` cannot say yes; stop once all four timed out.
    let rt = Rt::create();
    let pool = Arc::new(pool);
    let stopper = {
        let pool = pool.clone();
        async move {
            while pool.handle().is_running() && c.started.load(Ordering::SeqCst) < 4
                || pool.current_concurrency() > 0
            {
                sleep(&rt, Duration::from_millis(5)).await;
            }
            let _ = pool.abort().await;
        }
    };
    let (report, ()) = futures_lite::future::zip(pool.run(), stopper).await;
    let report = report.unwrap();
    assert_eq!(report.timed_out, 4);

    let c = Counters::default();
    let mut config = crate::config::PoolConfig::default();
    config.concurrency = ConcurrencySettings::fixed(2);
    config.task_timeout = Some(Duration::from_millis(20));
    config.timeout_policy = TimeoutPolicy::FailPool;
    let pool = fixed_pool!(Rt, c, 2, 4, Duration::from_secs(3600), None)
        .config(config)
        .build()
        .unwrap();
    assert_eq!(
        pool.run().await.unwrap_err(),
        PoolError::TimedOut(Duration::from_millis(20))
    );
}

/// `max_tasks_per_minute` spaces starts evenly: 600 per minute is one per 100 ms.
pub async fn max_tasks_per_minute_spaces_starts<Rt: Conformant>() {
    let c = Counters::default();
    let pool = fixed_pool!(Rt, c, 1, 4, Duration::from_millis(1), None)
        .concurrency_settings(ConcurrencySettings::fixed(1).with_max_tasks_per_minute(Some(600)))
        .build()
        .unwrap();
    let report = pool.run().await.unwrap();
    assert_eq!(report.succeeded, 4);
    assert!(
        report.duration >= Duration::from_millis(290),
        "starts were not spaced: {:?}",
        report.duration
    );
}

/// Pause stops new starts while running tasks finish; resume restarts at once.
pub async fn pause_and_resume<Rt: Conformant>() {
    let c = Counters::default();
    let pool = Arc::new(
        fixed_pool!(Rt, c, 2, 10, Duration::from_millis(10), None)
            .build()
            .unwrap(),
    );
    pool.pause();
    let rt = Rt::create();
    let driver = {
        let pool = pool.clone();
        let c = c.clone();
        async move {
            sleep(&rt, Duration::from_millis(50)).await;
            assert_eq!(
                c.started.load(Ordering::SeqCst),
                0,
                "a paused pool started a task"
            );
            pool.resume();
        }
    };
    let (report, ()) = futures_lite::future::zip(pool.run(), driver).await;
    assert_eq!(report.unwrap().succeeded, 10);
}

/// The runtime's timer never fires early and `reset` re-arms it.
pub async fn timers_are_not_early_and_rearm<Rt: Conformant>() {
    let rt = Rt::create();
    let t0 = rt.now();
    sleep(&rt, Duration::from_millis(20)).await;
    assert!(rt.now() - t0 >= Duration::from_millis(20));
    let mut timer = Box::pin(rt.timer(Instant::FAR_FUTURE));
    let at = rt.now() + Duration::from_millis(10);
    timer.as_mut().reset(at);
    core::future::poll_fn(|cx| {
        if rt.now() >= at {
            core::task::Poll::Ready(())
        } else {
            timer.as_mut().poll_elapsed(cx).map(|()| ())
        }
    })
    .await;
    assert!(rt.now() >= at);
}

/// Expands to one `#[test]` per adapter conformance case that does not bound the wall clock, for runtime
/// `$rt`, blocking with `$block_on` (an expression taking a `Pin<Box<dyn Future<Output = ()>>>`).
#[macro_export]
macro_rules! conformance_tests {
    ($rt:ty, $block_on:expr) => {
        $crate::conformance_tests!(@cases $rt, $block_on;
            first_error_wins_and_in_flight_tasks_are_awaited,
            a_panic_becomes_an_error,
            task_timeouts_are_reported_or_fail_the_pool,
            max_tasks_per_minute_spaces_starts,
            pause_and_resume,
            timers_are_not_early_and_rearm
        );
    };
    (@cases $rt:ty, $block_on:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let block_on = $block_on;
                block_on(::std::boxed::Box::pin($crate::testing::conformance::$case::<$rt>()));
            }
        )*
    };
}

/// Expands to one `#[test]` per adapter conformance case that bounds how long a run takes on the wall clock,
/// with the same arguments as [`crate::conformance_tests!`]; the end-to-end tests in `crates/e2e` run these.
#[macro_export]
macro_rules! wall_clock_conformance_tests {
    ($rt:ty, $block_on:expr) => {
        $crate::conformance_tests!(@cases $rt, $block_on;
            runs_concurrently,
            abort_cancels_running_tasks
        );
    };
}
