//! The crawl demo's moving parts, shared by the `crawl` binary and the end-to-end test
//! `crates/e2e/tests/crawl.rs`: a synthetic site served over HTTP/1.1 on 127.0.0.1 (an ephemeral port), and a
//! crawler that works through it with an autoscaled pool.
//!
//! The site has `pages` pages. Page `p` links to its children `8p + 1 ..= 8p + 8` (so every page is reachable
//! from page 0) and to four pseudo-random pages (so the crawler must skip pages it has seen). The server's
//! latency is `base_latency` up to `knee` requests in flight and grows with the square of the load past it,
//! so throughput peaks at the knee; above `capacity` requests in flight it answers `429 Too Many Requests`
//! after a third of the base latency.
//!
//! The crawler is Crawlee's crawler loop reduced to its core: a request queue, `is_task_ready` = the queue has
//! work, `is_finished` = the queue is empty and nothing is in flight. A 429 ends its task with
//! `Outcome::Throttled` (with the server's `Retry-After`, if it sent one) and the page goes straight back to
//! the queue: the pool's own backoff spaces the retries, so a throttled crawl does not spin on instant 429s.
//! The same crawler also crawls any site with this link layout, such as the static copy
//! [`write_static_site`] writes for a real server (`cargo xtask crawl-bench`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pool_core::{AdaptivePolicy, CrawleePolicy};
use pool_tokio::{
    AutoscaledPool, ConcurrencySettings, CpuMode, Handle, Outcome, PoolError, RunReport,
    ScalingSettings, SensorSettings, SystemSensors,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Links from each page to its children.
const FANOUT: u32 = 8;
/// Links from each page to pseudo-random pages.
const RANDOM_LINKS: u32 = 4;

/// The synthetic site's shape and its load behaviour.
#[derive(Clone, Copy, Debug)]
pub struct SiteConfig {
    /// Pages on the site (`/page/0` to `/page/{pages - 1}`).
    pub pages: u32,
    /// Requests in flight above which the server answers 429.
    pub capacity: usize,
    /// Requests in flight past which latency grows with the square of the load.
    pub knee: usize,
    /// Latency at or below the knee.
    pub base_latency: Duration,
}

impl SiteConfig {
    /// The latency of a request that arrives with `in_flight` requests (itself included) in flight.
    pub fn latency(&self, in_flight: usize) -> Duration {
        let load = in_flight as f64 / self.knee.max(1) as f64;
        self.base_latency.mul_f64(load.max(1.0).powi(2))
    }

    /// The links on page `p`.
    pub fn links(&self, p: u32) -> impl Iterator<Item = u32> + '_ {
        let children = (1..=FANOUT).map(move |i| u64::from(p) * u64::from(FANOUT) + u64::from(i));
        let random = (0..RANDOM_LINKS).map(move |i| splitmix(u64::from(p) << 8 | u64::from(i)));
        children
            .chain(random.map(move |r| r % u64::from(self.pages.max(1))))
            .filter(move |&q| q < u64::from(self.pages))
            .map(|q| q as u32)
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the server has seen.
#[derive(Debug, Default)]
pub struct ServerStats {
    in_flight: AtomicUsize,
    /// Pages served with 200.
    pub served: AtomicU64,
    /// Requests answered 429.
    pub rejected: AtomicU64,
    /// The most requests in flight at once.
    pub peak_in_flight: AtomicUsize,
}

/// The running server. Dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct Site {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    accept: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Binds 127.0.0.1 on an ephemeral port and starts serving. Must be called inside a tokio runtime.
    pub async fn start(config: SiteConfig) -> std::io::Result<Site> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(ServerStats::default());
        let st = stats.clone();
        let accept = tokio::spawn(async move {
            // Connection tasks live in this set, so aborting the accept loop closes them all.
            let mut connections = JoinSet::new();
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of descriptors or a reset before accept: wait a moment and go on.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                let service = hyper::service::service_fn(move |req| serve(req, config, st.clone()));
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Site {
            addr,
            stats,
            accept,
        })
    }

    /// Where the site listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server has seen.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Decrements a counter when dropped, so a cancelled request still leaves.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve(
    req: Request<Incoming>,
    config: SiteConfig,
    stats: Arc<ServerStats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = stats.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    let _leave = Leave(&stats.in_flight);
    stats.peak_in_flight.fetch_max(n, Ordering::AcqRel);
    let page = req
        .uri()
        .path()
        .strip_prefix("/page/")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|&p| p < config.pages);
    let Some(page) = page else {
        return Ok(response(StatusCode::NOT_FOUND, "no such page"));
    };
    if n > config.capacity {
        stats.rejected.fetch_add(1, Ordering::Relaxed);
        // Refusing is cheaper than serving, but not free: a third of the base latency.
        tokio::time::sleep(config.base_latency / 3).await;
        return Ok(response(StatusCode::TOO_MANY_REQUESTS, "slow down"));
    }
    tokio::time::sleep(config.latency(n)).await;
    stats.served.fetch_add(1, Ordering::Relaxed);
    Ok(response(StatusCode::OK, page_html(&config, page, 0)))
}

/// Page `page`'s HTML: its links, padded with a comment to at least `min_bytes`.
pub fn page_html(config: &SiteConfig, page: u32, min_bytes: usize) -> String {
    let mut body = format!("<html><body><h1>Page {page}</h1>\n");
    for q in config.links(page) {
        body.push_str(&format!("<a href=\"/page/{q}\">page {q}</a>\n"));
    }
    let end = "</body></html>\n";
    let pad = min_bytes.saturating_sub(body.len() + end.len() + 7);
    if pad > 0 {
        body.push_str("<!--");
        body.extend(std::iter::repeat_n('.', pad));
        body.push_str("-->\n");
    }
    body.push_str(end);
    body
}

/// Writes the site's pages as static files, `dir/page/{p}`, each at least `min_bytes` long, for a real web
/// server to serve.
pub fn write_static_site(
    config: &SiteConfig,
    dir: &std::path::Path,
    min_bytes: usize,
) -> std::io::Result<()> {
    let pages = dir.join("page");
    std::fs::create_dir_all(&pages)?;
    for p in 0..config.pages {
        std::fs::write(pages.join(p.to_string()), page_html(config, p, min_bytes))?;
    }
    Ok(())
}

fn response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res
}

/// Which scaling policy drives the crawl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyChoice {
    /// `pool_core::AdaptivePolicy`, at the crawl's autoscale tick.
    Adaptive,
    /// `pool_core::CrawleePolicy`, Crawlee's controller, at the crawl's autoscale tick.
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

/// A page to fetch and how often it was tried.
#[derive(Clone, Copy, Debug)]
struct Job {
    page: u32,
    attempts: u32,
}

/// The crawl's state: the queue, the pages seen, and counters the demo shows.
#[derive(Debug)]
pub struct Crawler {
    base: String,
    queue: Mutex<VecDeque<Job>>,
    seen: Mutex<Vec<bool>>,
    in_flight: AtomicUsize,
    /// Pages fetched with 200.
    pub done: AtomicU64,
    /// 429 responses (each a throttled outcome, and the page re-queued).
    pub rate_limited: AtomicU64,
    /// Transport errors and unexpected statuses (re-queued).
    pub errors: AtomicU64,
    /// Pages given up after `max_attempts`.
    pub failed: AtomicU64,
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

impl Crawler {
    /// A crawler of the site at `addr` with `pages` pages, starting from page 0.
    pub fn new(addr: SocketAddr, pages: u32) -> Arc<Crawler> {
        Crawler::at(format!("http://{addr}/page/"), pages)
    }

    /// A crawler of the pages under `base` (`base` + page number), starting from page 0.
    pub fn at(base: String, pages: u32) -> Arc<Crawler> {
        let mut seen = vec![false; pages as usize];
        let mut queue = VecDeque::new();
        if let Some(first) = seen.first_mut() {
            *first = true;
            queue.push_back(Job {
                page: 0,
                attempts: 0,
            });
        }
        Arc::new(Crawler {
            base,
            queue: Mutex::new(queue),
            seen: Mutex::new(seen),
            in_flight: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Requests waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the crawl is over: nothing queued or in flight.
    fn is_finished(&self) -> bool {
        self.queued() == 0 && self.in_flight.load(Ordering::Acquire) == 0
    }

    fn pop(&self) -> Option<Job> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    fn push(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
    }

    /// Queues the links of a fetched page that were not seen before.
    fn enqueue_links(&self, body: &[u8]) {
        let text = String::from_utf8_lossy(body);
        let links: Vec<u32> = text
            .split("href=\"/page/")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .collect();
        let mut fresh = Vec::new();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for p in links {
                if let Some(s) = seen.get_mut(p as usize).filter(|s| !**s) {
                    *s = true;
                    fresh.push(p);
                }
            }
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.extend(fresh.into_iter().map(|page| Job { page, attempts: 0 }));
    }

    /// One task: fetch one page. A 429 ends it throttled, any other failure ends it failed; either way the
    /// page goes back to the queue at once (until `max_attempts`), and the pool decides when to retry.
    async fn fetch(
        self: Arc<Self>,
        job: Job,
        client: Client<HttpConnector, Empty<Bytes>>,
        options: CrawlOptions,
    ) -> Result<Outcome, CrawlError> {
        let _leave = Leave(&self.in_flight);
        let uri: hyper::Uri = format!("{}{}", self.base, job.page)
            .parse()
            .map_err(|e| CrawlError(format!("bad URL: {e}")))?;
        let got = tokio::time::timeout(options.request_timeout, async {
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
        let outcome = match got {
            Ok(Ok((StatusCode::OK, _, body))) => {
                self.enqueue_links(&body);
                self.done.fetch_add(1, Ordering::Relaxed);
                return Ok(Outcome::Succeeded);
            }
            Ok(Ok((StatusCode::TOO_MANY_REQUESTS, retry_after, _))) => {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                Outcome::Throttled { retry_after }
            }
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Outcome::Failed
            }
        };
        let attempts = job.attempts + 1;
        if attempts < options.max_attempts {
            self.push(Job {
                page: job.page,
                attempts,
            });
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(outcome)
    }
}

/// Crawls the site at `site` with a pool set up by `options`. `watch` gets the pool's handle before the
/// run starts, for progress displays.
pub async fn crawl(
    crawler: Arc<Crawler>,
    options: CrawlOptions,
    watch: impl FnOnce(Handle),
) -> Result<RunReport, PoolError<CrawlError>> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    let sensors = SystemSensors::new(SensorSettings {
        cpu: options.cpu,
        ..SensorSettings::default()
    });
    let (take, ready, finished) = (crawler.clone(), crawler.clone(), crawler.clone());
    let builder = AutoscaledPool::builder()
        .sensors(sensors)
        .concurrency_settings(options.concurrency)
        .scaling_settings(ScalingSettings {
            autoscale_interval: options.autoscale_interval,
            status_log_interval: None,
            ..ScalingSettings::default()
        })
        .events(())
        .run_task(move || {
            // The pool calls this only to start a task, after `is_task_ready` said yes; nothing else pops.
            let job = take.pop();
            if job.is_some() {
                take.in_flight.fetch_add(1, Ordering::AcqRel);
            }
            let (crawler, client) = (take.clone(), client.clone());
            async move {
                match job {
                    Some(job) => crawler.fetch(job, client, options).await,
                    None => Ok(Outcome::Succeeded),
                }
            }
        })
        .is_task_ready(move || {
            let ready = ready.queued() > 0;
            async move { Ok(ready) }
        })
        .is_finished(move || {
            let done = finished.is_finished();
            async move { Ok(done) }
        });
    let pool = match options.policy {
        PolicyChoice::Adaptive => builder.policy(AdaptivePolicy::default()).build(),
        PolicyChoice::Crawlee => builder.policy(CrawleePolicy).build(),
        PolicyChoice::Parity => builder.crawlee_parity().build(),
        PolicyChoice::Fixed(n) => builder
            .concurrency_settings(ConcurrencySettings::fixed(n))
            .build(),
    }
    .map_err(|e| PoolError::Task(CrawlError(format!("invalid pool settings: {e}"))))?;
    watch(pool.handle());
    pool.run().await
}
