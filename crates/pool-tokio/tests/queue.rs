//! The crawl queue on tokio: spawned attempts on a multi-thread runtime, links pushed from the workers,
//! and each item given up reported as it happens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_tokio::{AutoscaledPool, ConcurrencySettings, CrawlQueue, Outcome, RetrySettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_crawl_fetches_each_page_once_and_reports_each_item_given_up() {
    let queue = CrawlQueue::new().dedupe_by(|page: &u32| *page).retries(
        RetrySettings::default()
            .with_max_retries(1)
            .with_backoff(Duration::from_millis(5), Duration::from_millis(5)),
    );
    queue.push(0);
    let fetched = Arc::new(Mutex::new(Vec::new()));
    let given_up = Mutex::new(Vec::new());
    let f = fetched.clone();
    let report = queue
        .crawl_reporting(
            AutoscaledPool::builder()
                .concurrency_settings(ConcurrencySettings::default().with_max(16)),
            move |page, ctx| {
                let f = f.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    f.lock().unwrap().push(page);
                    for link in [3 * page + 1, 3 * page + 2, 3 * page + 3] {
                        if link < 400 {
                            ctx.push(link);
                        }
                    }
                    // Every page divisible by 50 (but the root) fails, and is given up after one retry.
                    if page % 50 == 0 && page > 0 {
                        Err(format!("page {page} is broken"))
                    } else {
                        Ok(Outcome::Succeeded)
                    }
                }
            },
            |failed| given_up.lock().unwrap().push(failed.item),
        )
        .await
        .unwrap();
    let mut given_up = given_up.into_inner().unwrap();
    given_up.sort_unstable();
    assert_eq!(given_up, (1..8).map(|k| k * 50).collect::<Vec<u32>>());
    assert_eq!(report.failed.len(), 7);
    assert!(
        report
            .failed
            .iter()
            .all(|f| f.attempts == 2 && f.error.is_some())
    );
    assert_eq!(report.items_succeeded, 400 - 7);
    let mut fetched = fetched.lock().unwrap().clone();
    fetched.sort_unstable();
    fetched.dedup();
    assert_eq!(fetched.len(), 400);
}
