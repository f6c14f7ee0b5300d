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
//! The crawler (`crate::crawler`) crawls this site, or any site with its link layout, such as the static copy
//! [`write_static_site`] writes for a real server (`cargo xtask crawl-bench`).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
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
pub(crate) struct Leave<'a>(pub(crate) &'a AtomicUsize);

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
