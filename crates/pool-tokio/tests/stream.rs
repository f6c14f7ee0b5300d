//! The stream combinator on tokio: spawned futures on a multi-thread runtime, every result out, and
//! cancellation of spawned tasks when the stream is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_lite::{StreamExt, stream};
use pool_tokio::{AutoscaledPool, AutoscaledStreamExt, ConcurrencySettings, TaskMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_futures_on_a_multi_thread_runtime_yield_every_result_once() {
    let items = stream::iter(0..2000u64).map(|n| async move {
        tokio::task::yield_now().await;
        n
    });
    let builder = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::default().with_max(64).with_min(8));
    let mut results = items.autoscaled(builder).unwrap();
    let mut sum = 0;
    while let Some(n) = results.next().await {
        sum += n;
    }
    assert_eq!(sum, (0..2000).sum::<u64>());
    let report = results.report().unwrap().as_ref().unwrap();
    assert_eq!((report.started, report.succeeded), (2000, 2000));
}

struct Guard(Arc<AtomicU32>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn dropping_the_stream_cancels_its_spawned_tasks() {
    let (started, dropped) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let items = stream::iter(0..100u32).map(|n| {
        started.fetch_add(1, Ordering::SeqCst);
        let guard = Guard(dropped.clone());
        async move {
            let _guard = guard;
            let wait = if n == 0 { 1 } else { 3600 };
            tokio::time::sleep(Duration::from_secs(wait)).await;
            n
        }
    });
    let builder = AutoscaledPool::builder()
        .task_mode(TaskMode::Spawned)
        .concurrency_settings(ConcurrencySettings::default().with_max(10).with_min(10));
    let mut results = items.autoscaled(builder).unwrap();
    assert_eq!(results.next().await, Some(0));
    let running = started.load(Ordering::SeqCst);
    assert!(running >= 10, "{running} started");
    drop(results);
    // Aborted tokio tasks drop their futures when the runtime next runs them.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(dropped.load(Ordering::SeqCst), running);
}
