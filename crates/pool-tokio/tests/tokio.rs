//! The tokio adapter against the real runtime: multi-thread and current-thread, paused time, panics,
//! abort, pause-and-drain, and the seed's API end to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use pool_tokio::{AutoscaledPool, ConcurrencySettings, PoolError, TaskMode};

/// A queue of `n` jobs shared by the three task functions: `take` for run_task, `ready` for is_task_ready,
/// `finished` (queue empty and nothing in flight) for is_finished.
#[derive(Clone)]
struct Jobs {
    left: Arc<AtomicU32>,
    done: Arc<AtomicU32>,
    total: u32,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Jobs {
    fn new(total: u32) -> Self {
        Jobs {
            left: Arc::new(AtomicU32::new(total)),
            done: Arc::new(AtomicU32::new(0)),
            total,
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn task(&self, sleep: Duration) -> impl Future<Output = Result<(), String>> + Send + use<> {
        let j = self.clone();
        j.left.fetch_sub(1, Ordering::SeqCst);
        async move {
            let n = j.running.fetch_add(1, Ordering::SeqCst) + 1;
            j.peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(sleep).await;
            j.running.fetch_sub(1, Ordering::SeqCst);
            j.done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }
    fn ready(&self) -> bool {
        self.left.load(Ordering::SeqCst) > 0
    }
    fn finished(&self) -> bool {
        self.done.load(Ordering::SeqCst) == self.total
    }
}

fn pool_for(
    jobs: Jobs,
    concurrency: usize,
    sleep: Duration,
    mode: TaskMode,
) -> AutoscaledPool<
    impl pool_core::TaskFns<Error = String, Ok: Send + 'static, Task: Send + 'static>,
    pool_tokio::SystemSensors,
> {
    let (a, b, c) = (jobs.clone(), jobs.clone(), jobs.clone());
    AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::fixed(concurrency))
        .task_mode(mode)
        .run_task(move || a.task(sleep))
        .is_task_ready(move || {
            let r = b.ready();
            async move { Ok(r) }
        })
        .is_finished(move || {
            let f = c.finished();
            async move { Ok(f) }
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_concurrently_on_the_multi_thread_runtime() {
    let jobs = Jobs::new(200);
    let pool = pool_for(
        jobs.clone(),
        10,
        Duration::from_millis(5),
        TaskMode::Spawned,
    );
    let report = pool.run().await.unwrap();
    assert_eq!(report.succeeded, 200);
    assert_eq!(jobs.peak.load(Ordering::SeqCst), 10);
    assert_eq!(pool.current_concurrency(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn runs_in_place_on_the_current_thread_runtime() {
    let jobs = Jobs::new(200);
    let pool = pool_for(
        jobs.clone(),
        10,
        Duration::from_millis(5),
        TaskMode::InPlace,
    );
    let report = pool.run().await.unwrap();
    assert_eq!(report.succeeded, 200);
    assert_eq!(report.peak_concurrency, 10);
}

#[tokio::test(start_paused = true)]
async fn paused_time_drives_the_pool_exactly() {
    // 100 tasks of 100 ms at concurrency 10 take exactly one second of paused tokio time.
    let jobs = Jobs::new(100);
    let pool = pool_for(
        jobs.clone(),
        10,
        Duration::from_millis(100),
        TaskMode::Spawned,
    );
    let start = tokio::time::Instant::now();
    let report = pool.run().await.unwrap();
    assert_eq!(report.succeeded, 100);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_becomes_a_pool_error_with_its_message_and_frees_its_slot() {
    let started = Arc::new(AtomicU32::new(0));
    let s = started.clone();
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::fixed(4))
        .run_task(move || {
            let n = s.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if n == 5 {
                    panic!("task 5 exploded");
                }
                Ok::<(), String>(())
            }
        })
        .is_task_ready(|| async { Ok(true) })
        .is_finished(|| async { Ok(false) })
        .build()
        .unwrap();
    let err = pool.run().await.unwrap_err();
    match err {
        PoolError::Panicked(p) => assert_eq!(p.message, "task 5 exploded"),
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(pool.current_concurrency(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_cancels_running_tasks_and_run_returns_ok() {
    let pool = Arc::new(
        AutoscaledPool::builder()
            .concurrency_settings(ConcurrencySettings::fixed(10))
            .run_task(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), String>(())
            })
            .is_task_ready(|| async { Ok(true) })
            .is_finished(|| async { Ok(false) })
            .build()
            .unwrap(),
    );
    let runner = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run().await })
    };
    while pool.current_concurrency() < 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pool.abort().await.unwrap();
    assert_eq!(pool.current_concurrency(), 0);
    let report = runner.await.unwrap().unwrap();
    assert!(report.aborted);
    assert_eq!(report.cancelled, 10);
    assert!(pool.abort().await.is_err(), "abort with no run is an error");
}

#[tokio::test(start_paused = true)]
async fn pause_and_drain_times_out_and_stays_paused() {
    let pool = Arc::new(
        AutoscaledPool::builder()
            .concurrency_settings(ConcurrencySettings::fixed(2))
            .run_task(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<(), String>(())
            })
            .is_task_ready(|| async { Ok(true) })
            .is_finished(|| async { Ok(false) })
            .build()
            .unwrap(),
    );
    let runner = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run().await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let err = pool
        .pause_and_drain(Some(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(err.still_running, 2);
    assert!(pool.handle().is_paused());
    // Without a timeout the drain completes when the running tasks end, and nothing new starts.
    pool.pause_and_drain(None).await.unwrap();
    assert_eq!(pool.current_concurrency(), 0);
    pool.abort().await.unwrap();
    let report = runner.await.unwrap().unwrap();
    assert_eq!(report.started, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_run_is_refused() {
    let pool = Arc::new(
        AutoscaledPool::builder()
            .run_task(|| async { Ok::<(), String>(()) })
            .is_task_ready(|| async { Ok(false) })
            .is_finished(|| async { Ok(false) })
            .build()
            .unwrap(),
    );
    let runner = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run().await })
    };
    while !pool.handle().is_running() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(matches!(pool.run().await, Err(PoolError::AlreadyRunning)));
    pool.abort().await.unwrap();
    assert!(runner.await.unwrap().unwrap().aborted);
}

#[test]
fn bad_settings_are_a_typed_error_from_build() {
    let err = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::default().with_max(4).with_desired(10))
        .run_task(|| async { Ok::<(), String>(()) })
        .is_task_ready(|| async { Ok(false) })
        .is_finished(|| async { Ok(true) })
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "desired_concurrency cannot be greater than max_concurrency"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn setters_apply_between_runs_and_system_info_is_readable() {
    let pool = AutoscaledPool::builder()
        .run_task(|| async { Ok::<(), String>(()) })
        .is_task_ready(|| async { Ok(false) })
        .is_finished(|| async { Ok(true) })
        .build()
        .unwrap();
    pool.set_max_concurrency(5).unwrap();
    assert_eq!(pool.desired_concurrency(), 5);
    assert!(pool.set_min_concurrency(6).is_err());
    pool.run().await.unwrap();
    assert!(pool.current_system_info().is_system_idle());
    assert!(pool.historical_system_info().is_system_idle());
}

#[tokio::test]
async fn on_an_idle_pool_the_later_setter_call_wins_whether_made_on_the_pool_or_a_handle() {
    let build = || {
        AutoscaledPool::builder()
            .run_task(|| async { Ok::<(), String>(()) })
            .is_task_ready(|| async { Ok(false) })
            .is_finished(|| async { Ok(true) })
            .build()
            .unwrap()
    };
    let pool = build();
    let handle = pool.handle();
    handle.set_max_concurrency(2).unwrap();
    pool.set_max_concurrency(8).unwrap();
    handle.set_desired_concurrency(3).unwrap();
    pool.set_desired_concurrency(6).unwrap();
    pool.run().await.unwrap();
    assert_eq!(
        (handle.max_concurrency(), handle.desired_concurrency()),
        (8, 6)
    );

    let pool = build();
    let handle = pool.handle();
    pool.set_max_concurrency(8).unwrap();
    handle.set_max_concurrency(2).unwrap();
    pool.run().await.unwrap();
    assert_eq!(handle.max_concurrency(), 2);
}

#[test]
fn the_autoscale_tick_belongs_with_the_policy_unless_one_is_set() {
    use pool_tokio::{PoolConfig, ScalingSettings};
    fn with<Se>(b: pool_tokio::Builder<(), (), (), Se>) -> Duration {
        b.run_task(|| async { Ok::<(), String>(()) })
            .is_task_ready(|| async { Ok(false) })
            .is_finished(|| async { Ok(true) })
            .build()
            .unwrap()
            .config()
            .scaling
            .autoscale_interval
    }
    let secs = Duration::from_secs;
    // Other scaling settings, or a whole configuration, leave the adaptive policy's 1 s tick alone.
    let steps = ScalingSettings::default().with_scale_up_step_ratio(0.1);
    assert_eq!(
        with(AutoscaledPool::builder().scaling_settings(steps)),
        secs(1)
    );
    assert_eq!(
        with(AutoscaledPool::builder().config(PoolConfig::default())),
        secs(1)
    );
    // An interval that says something is kept, and so is an explicit one.
    let every_3s = ScalingSettings::default().with_autoscale_interval(secs(3));
    assert_eq!(
        with(AutoscaledPool::builder().scaling_settings(every_3s)),
        secs(3)
    );
    assert_eq!(
        with(AutoscaledPool::builder().autoscale_interval(secs(10))),
        secs(10)
    );
    // Crawlee's controller has no preference: its 10 s.
    assert_eq!(with(AutoscaledPool::builder().crawlee_parity()), secs(10));
}
