//! The crawl queue in virtual time: each item crawled once, retries with backoff, failed items reported,
//! fail-fast, retry-after holds, timed-out attempts retried, and pushes that wake the crawl.

use core::time::Duration;
use std::cell::RefCell;
use std::collections::HashMap;

use pool_core::testing::{Sim, TestRuntime};
use pool_core::{
    Builder, ConcurrencySettings, CrawlQueue, Instant, Outcome, PoolError, RetrySettings,
    TimeoutPolicy,
};

fn builder(sim: &Sim, max: usize) -> Builder<TestRuntime, (), (), (), ()> {
    Builder::new(sim.runtime().clone(), ())
        .concurrency_settings(ConcurrencySettings::default().with_max(max))
}

/// When each item's attempts started, by item.
type Attempts = RefCell<HashMap<u32, Vec<Instant>>>;

fn record(attempts: &Attempts, item: u32, at: Instant) {
    attempts.borrow_mut().entry(item).or_default().push(at);
}

#[test]
fn every_pushed_item_is_crawled_once_and_the_crawl_ends_when_empty_with_nothing_in_flight() {
    let sim = Sim::new();
    let attempts = Attempts::default();
    let queue = CrawlQueue::new().dedupe_by(|page: &u32| *page);
    queue.push(0);
    let crawl = queue.crawl_local(builder(&sim, 20), |page, ctx| {
        record(&attempts, page, sim.now());
        let fetched = sim.sleep(Duration::from_millis(30 + u64::from(page % 5) * 10));
        async move {
            fetched.await;
            // Every page links to its two children and back to the root: 500 pages, many links seen twice.
            for link in [2 * page + 1, 2 * page + 2, 0, page] {
                if link < 500 {
                    ctx.push(link);
                }
            }
            Ok::<(), String>(())
        }
    });
    let report = sim.block_on(crawl).unwrap().unwrap();
    let attempts = attempts.into_inner();
    assert_eq!(attempts.len(), 500);
    assert!(attempts.values().all(|a| a.len() == 1));
    assert_eq!(report.items_succeeded, 500);
    // Pushed: the root, 499 children, and each page's root and self links; 500 of them were new.
    assert_eq!(report.duplicates, 1 + 499 + 2 * 500 - 500);
    assert_eq!((report.retries, report.failed.len()), (0, 0));
    assert_eq!(report.run.succeeded, 500);
}

#[test]
fn a_failing_item_is_retried_with_doubling_backoff_then_reported_and_the_crawl_goes_on() {
    let sim = Sim::new();
    let attempts = Attempts::default();
    let queue = CrawlQueue::new().retries(
        RetrySettings::default()
            .with_max_retries(2)
            .with_backoff(Duration::from_secs(1), Duration::from_secs(30)),
    );
    for item in 0..10u32 {
        queue.push(item);
    }
    let crawl = queue.crawl_local(builder(&sim, 4), |item, ctx| {
        record(&attempts, item, sim.now());
        let attempt = ctx.attempt();
        let fetched = sim.sleep(Duration::from_millis(10));
        async move {
            fetched.await;
            if item == 3 {
                Err(format!("item 3, attempt {attempt}"))
            } else {
                Ok(())
            }
        }
    });
    let report = sim.block_on(crawl).unwrap().unwrap();
    assert_eq!(report.items_succeeded, 9);
    assert_eq!(report.retries, 2);
    assert_eq!(report.failed.len(), 1);
    let failed = &report.failed[0];
    assert_eq!((failed.item, failed.attempts), (3, 3));
    assert_eq!(failed.error.as_deref(), Some("item 3, attempt 3"));
    let at = &attempts.borrow()[&3];
    assert_eq!(at.len(), 3);
    // Each attempt takes 10 ms; the waits after it are 1 s, then 2 s.
    assert!(
        at[1] - at[0] >= Duration::from_millis(1010),
        "{:?}",
        at[1] - at[0]
    );
    assert!(
        at[2] - at[1] >= Duration::from_millis(2010),
        "{:?}",
        at[2] - at[1]
    );
    // The pool counted every attempt: 9 successes and 3 failures, none of which ended the run.
    assert_eq!((report.run.succeeded, report.run.failed), (9, 3));
}

#[test]
fn fail_fast_ends_the_crawl_with_the_first_error_as_the_seed_does() {
    let sim = Sim::new();
    let queue = CrawlQueue::new().retries(RetrySettings::default().with_fail_fast(true));
    for item in 0..10u32 {
        queue.push(item);
    }
    let crawl = queue.crawl_local(builder(&sim, 2), |item, _ctx| async move {
        if item == 4 { Err(item) } else { Ok(()) }
    });
    let result = sim.block_on(crawl).unwrap();
    assert_eq!(result.unwrap_err(), PoolError::Task(4));
}

#[test]
fn a_throttled_item_is_retried_no_sooner_than_its_retry_after() {
    let sim = Sim::new();
    let attempts = Attempts::default();
    let queue = CrawlQueue::new();
    for item in 0..5u32 {
        queue.push(item);
    }
    let crawl = queue.crawl_local(builder(&sim, 5), |item, ctx| {
        record(&attempts, item, sim.now());
        let first = ctx.attempt() == 1;
        async move {
            if item == 2 && first {
                Ok::<_, String>(Outcome::retry_after(Duration::from_secs(5)))
            } else {
                Ok(Outcome::Succeeded)
            }
        }
    });
    let report = sim.block_on(crawl).unwrap().unwrap();
    assert_eq!((report.items_succeeded, report.retries), (5, 1));
    assert_eq!(report.run.throttled, 1);
    let at = &attempts.borrow()[&2];
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_secs(5),
        "{:?}",
        at[1] - at[0]
    );
}

#[test]
fn an_attempt_cut_off_by_the_task_timeout_is_retried_not_lost() {
    let sim = Sim::new();
    let attempts = Attempts::default();
    let queue = CrawlQueue::new().retries(
        RetrySettings::default().with_backoff(Duration::from_millis(100), Duration::from_secs(1)),
    );
    for item in 0..3u32 {
        queue.push(item);
    }
    let builder = builder(&sim, 3).config({
        let mut c = pool_core::PoolConfig::default();
        c.concurrency = ConcurrencySettings::default().with_max(3);
        c.task_timeout = Some(Duration::from_secs(1));
        c.timeout_policy = TimeoutPolicy::Report;
        c
    });
    let crawl = queue.crawl_local(builder, |item, ctx| {
        record(&attempts, item, sim.now());
        // Item 1's first attempt hangs for an hour; the pool's timeout cuts it off after 1 s.
        let hang = item == 1 && ctx.attempt() == 1;
        let fetched = sim.sleep(Duration::from_secs(if hang { 3600 } else { 0 }));
        async move {
            fetched.await;
            Ok::<(), String>(())
        }
    });
    let report = sim.block_on(crawl).unwrap().unwrap();
    assert_eq!(report.items_succeeded, 3);
    assert_eq!((report.retries, report.run.timed_out), (1, 1));
    assert_eq!(attempts.borrow()[&1].len(), 2);
    assert!(
        sim.elapsed() < Duration::from_secs(10),
        "{:?}",
        sim.elapsed()
    );
}

#[test]
fn a_push_from_outside_wakes_the_crawl_while_a_task_is_in_flight() {
    let sim = Sim::new();
    let attempts = Attempts::default();
    let queue = CrawlQueue::new();
    queue.push(0u32);
    let pusher = queue.clone();
    let later = sim.sleep(Duration::from_secs(1));
    let pushed = sim.spawn(async move {
        later.await;
        pusher.push(1);
    });
    let crawl = queue.crawl_local(builder(&sim, 4), |item, _ctx| {
        record(&attempts, item, sim.now());
        let fetched = sim.sleep(Duration::from_secs(if item == 0 { 3 } else { 0 }));
        async move {
            fetched.await;
            Ok::<(), String>(())
        }
    });
    let report = sim.block_on(crawl).unwrap().unwrap();
    assert_eq!(report.items_succeeded, 2);
    assert!(pushed.is_finished());
    let started = attempts.borrow()[&1][0];
    assert_eq!(started, Instant::ZERO + Duration::from_secs(1));
}

#[test]
fn retries_are_not_dropped_as_duplicates() {
    let sim = Sim::new();
    let queue = CrawlQueue::new()
        .dedupe_by(|s: &String| s.clone())
        .retries(RetrySettings::default().with_backoff(Duration::ZERO, Duration::ZERO));
    queue.push("/a".to_string());
    queue.push("/a".to_string());
    let crawl = queue.crawl_local(builder(&sim, 2), |url, ctx| async move {
        if ctx.attempt() < 3 {
            Ok::<_, String>(Outcome::Failed)
        } else {
            assert_eq!(url, "/a");
            Ok(Outcome::Succeeded)
        }
    });
    let report = sim.block_on(crawl).unwrap().unwrap();
    assert_eq!(
        (report.items_succeeded, report.retries, report.duplicates),
        (1, 2, 1)
    );
}

#[test]
fn invalid_settings_are_a_config_error_before_any_item_runs() {
    let sim = Sim::new();
    let queue = CrawlQueue::new();
    queue.push(1u32);
    let crawl = queue.crawl_local(
        builder(&sim, 2).concurrency_settings(ConcurrencySettings::new(5, 2, 2)),
        |_item, _ctx| async { Ok::<(), String>(()) },
    );
    let result = sim.block_on(crawl).unwrap();
    assert!(matches!(result, Err(PoolError::Config(_))), "{result:?}");
    assert_eq!(queue.pending(), 1);
}
