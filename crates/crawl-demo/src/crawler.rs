//! The crawler: Crawlee's crawler loop reduced to its core, on the pool's [`CrawlQueue`] ([`crawl`]), and
//! the same crawler on the seed's three task functions ([`crawl_closures`]), kept to measure one against the
//! other (`cargo xtask bench`, `crawl_queue_vs_closures`).
//!
//! A page is fetched once (the queue de-duplicates by page number). A 429 ends its attempt with
//! `Outcome::Throttled` (with the server's `Retry-After`, if it sent one), a transport error or another
//! status with `Outcome::Failed`; either way the page is retried, and the pool's own backoff spaces the
//! retries, so a throttled crawl does not spin on instant 429s.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pool_core::{AdaptivePolicy, CrawleePolicy};
use pool_tokio::{
    AutoscaledPool, Builder, ConcurrencySettings, CpuMode, CrawlQueue, Handle, Outcome, PoolError,
    RetrySettings, RunReport, ScalingSettings, SensorSettings, SystemSensors,
};

use crate::site::Leave;

/// The scaling policy a crawl uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyChoice {
    /// The default builder's policy: [`AdaptivePolicy`].
    Adaptive,
    /// Crawlee's controller ([`CrawleePolicy`]) at the crawl's autoscale interval.
    Crawlee,
    /// What `.crawlee_parity()` gives a user: Crawlee's controller and Crawlee's scaling settings.
    Parity,
    /// Concurrency pinned at this many.
    Fixed(usize),
}

impl FromStr for PolicyChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adaptive" => Ok(PolicyChoice::Adaptive),
            "crawlee" => Ok(PolicyChoice::Crawlee),
            "parity" => Ok(PolicyChoice::Parity),
            _ => match s.strip_prefix("fixed:").map(str::parse::<usize>) {
                Some(Ok(n)) if n > 0 => Ok(PolicyChoice::Fixed(n)),
                _ => Err(format!(
                    "expected `adaptive`, `crawlee`, `parity` or `fixed:N` (N ≥ 1), got `{s}`"
                )),
            },
        }
    }
}

impl fmt::Display for PolicyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyChoice::Adaptive => f.write_str("adaptive"),
            PolicyChoice::Crawlee => f.write_str("crawlee"),
            PolicyChoice::Parity => f.write_str("parity"),
            PolicyChoice::Fixed(n) => write!(f, "fixed:{n}"),
        }
    }
}

/// How the crawl's pool is set up.
#[derive(Clone, Copy, Debug)]
pub struct CrawlOptions {
    /// The scaling policy.
    pub policy: PolicyChoice,
    /// The pool's concurrency bounds.
    pub concurrency: ConcurrencySettings,
    /// The autoscale tick.
    pub autoscale_interval: Duration,
    /// Attempts per page (429s and transport errors) before the page counts as failed.
    pub max_attempts: u32,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// What the CPU signal measures.
    pub cpu: CpuMode,
}

/// The crawl failed to run (the pool's own errors; pages that fail are counted, not raised).
#[derive(Debug)]
pub struct CrawlError(String);

impl fmt::Display for CrawlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for CrawlError {}

/// A crawl's target and the counters the demo shows.
#[derive(Debug)]
pub struct Crawler {
    base: String,
    pages: u32,
    /// The queue of the last queue crawl, for [`Crawler::queued`].
    queue: Mutex<Option<CrawlQueue<u32, u32>>>,
    /// Pages fetched with 200.
    pub done: AtomicU64,
    /// 429 responses (each a throttled outcome, and the page retried).
    pub rate_limited: AtomicU64,
    /// Transport errors and unexpected statuses (retried).
    pub errors: AtomicU64,
    /// Pages given up after `max_attempts`.
    pub failed: AtomicU64,
}

/// What one request for a page came to.
enum Fetched {
    /// A 200, with the page's links.
    Page(Vec<u32>),
    /// A 429, with the server's `Retry-After`.
    Throttled(Option<Duration>),
    /// Anything else.
    Failed,
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

impl Crawler {
    /// A crawler of the site at `addr` with `pages` pages, starting from page 0.
    pub fn new(addr: std::net::SocketAddr, pages: u32) -> Arc<Crawler> {
        Crawler::at(format!("http://{addr}/page/"), pages)
    }

    /// A crawler of the pages under `base` (`base` + page number), starting from page 0.
    pub fn at(base: String, pages: u32) -> Arc<Crawler> {
        Arc::new(Crawler {
            base,
            pages,
            queue: Mutex::new(None),
            done: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Pages pushed to the last queue crawl's queue and not taken in yet.
    pub fn queued(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, CrawlQueue::pending)
    }

    /// Requests `page` once and counts what came back.
    async fn fetch(&self, page: u32, client: &HttpClient, timeout: Duration) -> Fetched {
        let Ok(uri) = format!("{}{page}", self.base).parse::<hyper::Uri>() else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return Fetched::Failed;
        };
        let got = tokio::time::timeout(timeout, async {
            let res = client.get(uri).await?;
            let status = res.status();
            let retry_after = res
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn Error + Send + Sync>>((status, retry_after, body))
        })
        .await;
        match got {
            Ok(Ok((StatusCode::OK, _, body))) => {
                self.done.fetch_add(1, Ordering::Relaxed);
                Fetched::Page(self.links(&body))
            }
            Ok(Ok((StatusCode::TOO_MANY_REQUESTS, retry_after, _))) => {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                Fetched::Throttled(retry_after)
            }
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Fetched::Failed
            }
        }
    }

    /// The on-site links of a page.
    fn links(&self, body: &[u8]) -> Vec<u32> {
        String::from_utf8_lossy(body)
            .split("href=\"/page/")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .filter(|p| *p < self.pages)
            .collect()
    }
}

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http()
}

/// The builder `options` describe, before the task functions.
fn builder(options: CrawlOptions) -> Builder<(), (), (), SystemSensors> {
    let sensors = SystemSensors::new(SensorSettings::default().with_cpu(options.cpu));
    let builder = AutoscaledPool::builder()
        .concurrency_settings(options.concurrency)
        .scaling_settings(
            ScalingSettings::default()
                .with_autoscale_interval(options.autoscale_interval)
                .with_status_log_interval(None),
        )
        .events(())
        .sensors(sensors);
    match options.policy {
        PolicyChoice::Adaptive => builder.policy(AdaptivePolicy::default()),
        PolicyChoice::Crawlee => builder.policy(CrawleePolicy),
        PolicyChoice::Parity => builder.crawlee_parity(),
        PolicyChoice::Fixed(n) => builder.concurrency_settings(ConcurrencySettings::fixed(n)),
    }
}

/// Crawls the site of `crawler` from page 0 on a [`CrawlQueue`], with a pool set up by `options`. `watch`
/// gets the pool's handle as the crawl starts, for progress displays.
pub async fn crawl(
    crawler: Arc<Crawler>,
    options: CrawlOptions,
    watch: impl FnOnce(Handle),
) -> Result<RunReport, PoolError<CrawlError>> {
    let client = http_client();
    let queue = CrawlQueue::new().dedupe_by(|page: &u32| *page).retries(
        RetrySettings::default()
            .with_max_retries(options.max_attempts.saturating_sub(1))
            // As Crawlee does: a failed page goes straight back; the pool spaces what the server refused.
            .with_backoff(Duration::ZERO, Duration::ZERO),
    );
    *crawler.queue.lock().unwrap_or_else(|e| e.into_inner()) = Some(queue.clone());
    queue.push(0);
    let c = crawler.clone();
    let run = queue.crawl_reporting(
        builder(options),
        move |page, ctx| {
            let (crawler, client) = (c.clone(), client.clone());
            async move {
                Ok::<_, CrawlError>(
                    match crawler.fetch(page, &client, options.request_timeout).await {
                        Fetched::Page(links) => {
                            for link in links {
                                ctx.push(link);
                            }
                            Outcome::Succeeded
                        }
                        Fetched::Throttled(retry_after) => Outcome::Throttled { retry_after },
                        Fetched::Failed => Outcome::Failed,
                    },
                )
            }
        },
        |_failed| {
            crawler.failed.fetch_add(1, Ordering::Relaxed);
        },
    );
    // The crawl publishes its handle on its first poll, which `zip` makes before it polls the watcher.
    let watcher = async {
        if let Some(handle) = queue.handle() {
            watch(handle);
        }
    };
    let (report, ()) = futures_lite::future::zip(run, watcher).await;
    Ok(report?.run)
}

/// A page to fetch and how often it was tried, for [`crawl_closures`].
#[derive(Clone, Copy, Debug)]
struct Job {
    page: u32,
    attempts: u32,
}

/// The same crawl on the seed's three task functions: a `Mutex`ed queue and seen-set shared by `run_task`,
/// `is_task_ready` and `is_finished`, and an in-flight counter; what a crawler was before the queue.
pub async fn crawl_closures(
    crawler: Arc<Crawler>,
    options: CrawlOptions,
    watch: impl FnOnce(Handle),
) -> Result<RunReport, PoolError<CrawlError>> {
    struct State {
        queue: Mutex<VecDeque<Job>>,
        seen: Mutex<Vec<bool>>,
        in_flight: AtomicUsize,
    }
    let mut seen = vec![false; crawler.pages as usize];
    if let Some(first) = seen.first_mut() {
        *first = true;
    }
    let state = Arc::new(State {
        queue: Mutex::new(VecDeque::from([Job {
            page: 0,
            attempts: 0,
        }])),
        seen: Mutex::new(seen),
        in_flight: AtomicUsize::new(0),
    });
    let client = http_client();
    let (take, ready, finished) = (state.clone(), state.clone(), state.clone());
    let queued = |s: &State| s.queue.lock().unwrap_or_else(|e| e.into_inner()).len();
    let pool = builder(options)
        .run_task(move || {
            let job = take
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            if job.is_some() {
                take.in_flight.fetch_add(1, Ordering::AcqRel);
            }
            let (state, crawler, client) = (take.clone(), crawler.clone(), client.clone());
            async move {
                let Some(job) = job else {
                    return Ok::<_, CrawlError>(Outcome::Succeeded);
                };
                let _leave = Leave(&state.in_flight);
                let outcome = match crawler
                    .fetch(job.page, &client, options.request_timeout)
                    .await
                {
                    Fetched::Page(links) => {
                        let mut fresh = Vec::new();
                        {
                            let mut seen = state.seen.lock().unwrap_or_else(|e| e.into_inner());
                            for p in links {
                                if let Some(s) = seen.get_mut(p as usize).filter(|s| !**s) {
                                    *s = true;
                                    fresh.push(Job {
                                        page: p,
                                        attempts: 0,
                                    });
                                }
                            }
                        }
                        state
                            .queue
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend(fresh);
                        return Ok(Outcome::Succeeded);
                    }
                    Fetched::Throttled(retry_after) => Outcome::Throttled { retry_after },
                    Fetched::Failed => Outcome::Failed,
                };
                let attempts = job.attempts + 1;
                if attempts < options.max_attempts {
                    state
                        .queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back(Job {
                            page: job.page,
                            attempts,
                        });
                } else {
                    crawler.failed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(outcome)
            }
        })
        .is_task_ready(move || {
            let ready = queued(&ready) > 0;
            async move { Ok(ready) }
        })
        .is_finished(move || {
            let done = queued(&finished) == 0 && finished.in_flight.load(Ordering::Acquire) == 0;
            async move { Ok(done) }
        })
        .build()
        .map_err(|e| PoolError::Task(CrawlError(format!("invalid pool settings: {e}"))))?;
    watch(pool.handle());
    pool.run().await
}
