//! The default task mode, `TaskMode::Workers`, on tokio (issue 13): tasks run on every thread of the
//! multi-thread runtime, each worker is reused by later tasks, a dropped run cancels what its workers run and
//! ends them, and a timed-out task frees its worker for the next one. The conformance suite runs on this mode
//! too, since it is the default builder's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_tokio::{AutoscaledPool, ConcurrencySettings, TaskMode};

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_mode_runs_tasks_on_every_thread_of_the_multi_thread_runtime() {
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let left = Arc::new(AtomicU32::new(400));
    let (t, a, b, c) = (threads.clone(), left.clone(), left.clone(), left);
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::fixed(8))
        .run_task(move || {
            a.fetch_sub(1, Ordering::SeqCst);
            let t = t.clone();
            async move {
                spin(Duration::from_micros(200));
                t.lock().unwrap().insert(std::thread::current().id());
                Ok::<(), String>(())
            }
        })
        .is_task_ready(move || {
            let r = b.load(Ordering::SeqCst) > 0;
            async move { Ok(r) }
        })
        .is_finished(move || {
            let f = c.load(Ordering::SeqCst) == 0;
            async move { Ok(f) }
        })
        .build()
        .unwrap();
    assert_eq!(pool.run().await.unwrap().succeeded, 400);
    assert_eq!(
        threads.lock().unwrap().len(),
        2,
        "tasks ran on both threads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_cancels_what_its_workers_run_and_frees_the_pool() {
    let guard = Arc::new(());
    let started = Arc::new(AtomicU32::new(0));
    let (g, s) = (guard.clone(), started.clone());
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::fixed(5))
        .run_task(move || {
            let (g, s) = (g.clone(), s.clone());
            async move {
                let _held = g;
                s.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<(), String>(())
            }
        })
        .is_task_ready(|| async { Ok(true) })
        .is_finished(|| async { Ok(false) })
        .build()
        .unwrap();
    // The guard and the pool's run_task closure hold it before the run.
    let before = Arc::strong_count(&guard);
    let run = tokio::time::timeout(Duration::from_millis(100), pool.run()).await;
    assert!(run.is_err(), "the run was cut off");
    assert_eq!(
        started.load(Ordering::SeqCst),
        5,
        "five tasks ran on workers"
    );
    // The five tasks held the guard; the cancelled workers drop them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&guard) > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(Arc::strong_count(&guard), before, "every task was dropped");
    assert!(
        !pool.handle().is_running(),
        "the pool is free for another run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_task_frees_its_worker_for_the_next_task() {
    let started = Arc::new(AtomicU32::new(0));
    let s = started.clone();
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::fixed(1))
        .task_mode(TaskMode::Workers)
        .task_timeout(Some(Duration::from_millis(50)))
        .run_task(move || {
            let n = s.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Ok::<(), String>(())
            }
        })
        .is_task_ready({
            let s = started.clone();
            move || {
                let r = s.load(Ordering::SeqCst) < 5;
                async move { Ok(r) }
            }
        })
        .is_finished({
            let s = started.clone();
            move || {
                let f = s.load(Ordering::SeqCst) >= 5;
                async move { Ok(f) }
            }
        })
        .build()
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), pool.run())
        .await
        .expect("the run ended")
        .unwrap();
    assert_eq!(report.timed_out, 1);
    assert_eq!(
        report.succeeded, 4,
        "the same one slot ran the four tasks after the timeout"
    );
}
