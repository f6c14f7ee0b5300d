//! Tasks that are not `Send` on tokio's current-thread runtime: `run_local`, `autoscaled_local` and
//! `crawl_local`, each with an `Rc` held across an await.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{StreamExt, stream};
use pool_tokio::{AutoscaledPool, AutoscaledStreamExt, ConcurrencySettings, CrawlQueue};

#[tokio::test(flavor = "current_thread")]
async fn run_local_runs_tasks_that_hold_an_rc_across_an_await() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let left = Rc::new(RefCell::new(40u32));
    let (l1, l2, l3, lg) = (left.clone(), left.clone(), left.clone(), log.clone());
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::default().with_max(8))
        .run_task(move || {
            let n = {
                let mut l = l1.borrow_mut();
                *l -= 1;
                *l
            };
            let log = lg.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                log.borrow_mut().push(n);
                Ok::<(), std::io::Error>(())
            }
        })
        .is_task_ready(move || {
            let r = *l2.borrow() > 0;
            async move { Ok(r) }
        })
        .is_finished(move || {
            let f = *l3.borrow() == 0;
            async move { Ok(f) }
        })
        .build()
        .unwrap();
    let report = pool.run_local().await.unwrap();
    assert_eq!(report.succeeded, 40);
    let mut log = log.borrow().clone();
    log.sort_unstable();
    assert_eq!(log, (0..40).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn the_local_stream_and_queue_take_futures_that_borrow_and_hold_an_rc() {
    let seen = RefCell::new(Vec::new());
    let shared = Rc::new(7u64);
    let items = stream::iter(0..20u64).map(|n| {
        let (seen, shared) = (&seen, shared.clone());
        async move {
            tokio::task::yield_now().await;
            seen.borrow_mut().push(n);
            n * *shared
        }
    });
    let total: u64 = items
        .autoscaled_local(AutoscaledPool::builder())
        .unwrap()
        .fold(0, |a, b| a + b)
        .await;
    assert_eq!(total, 7 * (0..20).sum::<u64>());
    assert_eq!(seen.borrow().len(), 20);

    let queue = CrawlQueue::new();
    for n in 0..10u32 {
        queue.push(n);
    }
    let report = queue
        .crawl_local(AutoscaledPool::builder(), |n, _ctx| {
            let (seen, shared) = (&seen, shared.clone());
            async move {
                tokio::task::yield_now().await;
                seen.borrow_mut().push(u64::from(n) * *shared);
                Ok::<(), String>(())
            }
        })
        .await
        .unwrap();
    assert_eq!(report.items_succeeded, 10);
    assert_eq!(seen.borrow().len(), 30);
}
