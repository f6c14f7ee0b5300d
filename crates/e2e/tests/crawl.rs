//! The crawl demo's server and crawl loop (`crawl_demo::site`, what the `crawl` binary runs) on a small site
//! over 127.0.0.1: every page is fetched exactly once, 429s happen, are reported to the client signal and
//! retried, and the pool cuts its desired concurrency because of them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crawl_demo::crawler::{self, CrawlOptions, Crawler, PolicyChoice};
use crawl_demo::site::{Site, SiteConfig};
use pool_tokio::{ConcurrencySettings, CpuMode};

async fn crawl_small_site(policy: PolicyChoice) {
    let config = SiteConfig {
        pages: 300,
        capacity: 6,
        knee: 4,
        base_latency: Duration::from_millis(5),
    };
    let site = Site::start(config).await.unwrap();
    assert!(site.addr().ip().is_loopback());
    let crawler = Crawler::new(site.addr(), config.pages);
    let options = CrawlOptions {
        policy,
        // Start above the server's capacity, so 429s come at once.
        concurrency: ConcurrencySettings::default()
            .with_min(1)
            .with_desired(12)
            .with_max(16),
        autoscale_interval: Duration::from_millis(200),
        max_attempts: 1000,
        request_timeout: Duration::from_secs(10),
        cpu: CpuMode::Process,
    };
    let handle = Arc::new(Mutex::new(None));
    let h = handle.clone();
    let run = crawler::crawl(crawler.clone(), options, move |handle| {
        *h.lock().unwrap() = Some(handle)
    });
    // The crawl takes a few seconds alone; the bound leaves room for a busy two-core machine.
    let report = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the crawl finishes within 180 s")
        .expect("the crawl succeeds");

    let stats = site.stats();
    assert_eq!(crawler.done.load(Ordering::Relaxed), 300);
    assert_eq!(stats.served.load(Ordering::Relaxed), 300, "each page once");
    assert_eq!(crawler.failed.load(Ordering::Relaxed), 0);
    assert_eq!(crawler.errors.load(Ordering::Relaxed), 0);
    assert_eq!(crawler.queued(), 0);
    let limited = crawler.rate_limited.load(Ordering::Relaxed);
    assert!(limited > 0, "the pool started above capacity, so some 429s");
    assert_eq!(limited, stats.rejected.load(Ordering::Relaxed));
    assert_eq!(report.started, 300 + limited, "each 429 was retried");
    assert_eq!(
        report.throttled, limited,
        "each 429 ended its task throttled"
    );
    assert_eq!(report.failed, 0);
    assert!(!report.aborted);
    // The client signal saw the 429s, and the pool cut desired below where it started.
    let handle = handle
        .lock()
        .unwrap()
        .clone()
        .expect("watch got the handle");
    let info = handle.historical_system_info().expect("sensors sampled");
    assert!(info.client.samples > 0);
    // The adaptive policy answers each throttle within a task latency: desired falls below the level the
    // server throttled at. Crawlee's controller reads 429s only through the client signal's history, which
    // the pool's backoff keeps thin on a crawl this short; that the crawl still completes, each page once,
    // is what holds for it.
    if policy == PolicyChoice::Adaptive {
        assert!(
            report.final_desired_concurrency < 12,
            "desired was cut from 12 to {}",
            report.final_desired_concurrency
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_with_the_adaptive_policy() {
    crawl_small_site(PolicyChoice::Adaptive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_with_crawlees_policy() {
    crawl_small_site(PolicyChoice::Crawlee).await;
}
