//! `crawl-client`: the Rust side of `cargo xtask crawl-bench`. `write-site` writes the crawl demo's site as
//! static pages for a real web server; `run` crawls such a site once with one system (the default policy,
//! `.crawlee_parity()`, or a fixed concurrency) and writes what happened as JSON: pages per second, the 429s
//! it drew, and a timeline of concurrency and progress. `local` crawls the demo's own site, served in this
//! process, with the queue crawler or the three-closure one, for `cargo xtask bench`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use crawl_demo::crawler::{self, CrawlOptions, Crawler, PolicyChoice};
use crawl_demo::site::{self, Site, SiteConfig};
use pool_tokio::{ConcurrencySettings, SensorSettings};
use serde::Serialize;

/// `crawl-client write-site|run`.
#[derive(Debug, Parser)]
#[command(
    name = "crawl-client",
    about = "Crawls a real server's copy of the crawl demo's site."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the site's pages as static files under DIR/page/.
    WriteSite {
        /// Where to write.
        #[arg(long)]
        dir: PathBuf,
        /// Pages on the site.
        #[arg(long)]
        pages: u32,
        /// The least size of each page, in bytes.
        #[arg(long, default_value = "32768")]
        bytes: usize,
    },
    /// Crawl the site under BASE (BASE + page number) once and write the result as JSON.
    Run {
        /// The pages' URL prefix, such as http://127.0.0.1:8080/page/.
        #[arg(long)]
        base: String,
        /// Pages on the site.
        #[arg(long)]
        pages: u32,
        /// adaptive (the default builder), parity (`.crawlee_parity()`) or fixed:N.
        #[arg(long)]
        policy: PolicyChoice,
        /// Where to write the JSON result.
        #[arg(long)]
        out: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value = "300")]
        timeout_s: u64,
    },
    /// Crawl the demo's site, served in this process on 127.0.0.1, once with the default builder; print
    /// `pages_per_s`.
    Local {
        /// queue (the crawl demo's crawler, on `CrawlQueue`) or closures (the seed's three task functions).
        #[arg(long)]
        crawler: CrawlerChoice,
        /// Pages on the site.
        #[arg(long, default_value = "3000")]
        pages: u32,
        /// The site's latency at or below its knee (32 in flight; 429 above 48), in ms.
        #[arg(long, default_value = "50")]
        latency_ms: u64,
    },
}

/// Which crawler `local` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CrawlerChoice {
    Queue,
    Closures,
}

/// One crawl, as `crawl-bench` reads it.
#[derive(Debug, Serialize)]
struct CrawlResult {
    system: String,
    pages: u32,
    fetched: u64,
    wall_s: f64,
    pages_per_s: f64,
    throttled: u64,
    throttled_per_page: f64,
    failed: u64,
    peak_concurrency: usize,
    timeline: Vec<Point>,
}

/// The crawl every 100 ms.
#[derive(Clone, Copy, Debug, Serialize)]
struct Point {
    t: f64,
    current: usize,
    desired: usize,
    fetched: u64,
    throttled: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Local {
            crawler,
            pages,
            latency_ms,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let config = SiteConfig {
                pages,
                capacity: 48,
                knee: 32,
                base_latency: Duration::from_millis(latency_ms),
            };
            let (wall, done) = rt.block_on(local(crawler, config))?;
            println!(
                "crawl-client crawler={crawler:?} pages={done} wall_s={wall:.3} pages_per_s={:.1}",
                f64::from(done) / wall
            );
            Ok(())
        }
        Command::WriteSite { dir, pages, bytes } => {
            site::write_static_site(&site_config(pages), &dir, bytes)?;
            Ok(())
        }
        Command::Run {
            base,
            pages,
            policy,
            out,
            timeout_s,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let result = rt.block_on(run(base, pages, policy, Duration::from_secs(timeout_s)))?;
            std::fs::write(&out, serde_json::to_string_pretty(&result)?)?;
            println!(
                "crawl-client system={} pages_per_s={:.1} throttled={} failed={}",
                result.system, result.pages_per_s, result.throttled, result.failed
            );
            Ok(())
        }
    }
}

/// Crawls the demo's site, served in this process, with `choice`; returns the wall time and pages fetched.
async fn local(
    choice: CrawlerChoice,
    config: SiteConfig,
) -> Result<(f64, u32), Box<dyn std::error::Error>> {
    let site = Site::start(config).await?;
    let crawler = Crawler::new(site.addr(), config.pages);
    let options = CrawlOptions {
        policy: PolicyChoice::Adaptive,
        concurrency: ConcurrencySettings::default(),
        autoscale_interval: Duration::from_secs(1),
        max_attempts: 10_000,
        request_timeout: Duration::from_secs(30),
        cpu: SensorSettings::default().cpu,
    };
    let started = Instant::now();
    let crawl = async {
        match choice {
            CrawlerChoice::Queue => crawler::crawl(crawler.clone(), options, drop).await,
            CrawlerChoice::Closures => {
                crawler::crawl_closures(crawler.clone(), options, drop).await
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(300), crawl)
        .await
        .map_err(|_| "the crawl did not finish within 300 s")??;
    let wall = started.elapsed().as_secs_f64();
    let done = crawler.done.load(Ordering::Relaxed);
    if done != u64::from(config.pages) {
        return Err(format!("fetched {done} of {} pages", config.pages).into());
    }
    Ok((wall, config.pages))
}

/// The link layout of the site; only `pages` matters to the crawler (the server's own limits do the rest).
fn site_config(pages: u32) -> SiteConfig {
    SiteConfig {
        pages,
        capacity: usize::MAX,
        knee: usize::MAX,
        base_latency: Duration::ZERO,
    }
}

async fn run(
    base: String,
    pages: u32,
    policy: PolicyChoice,
    timeout: Duration,
) -> Result<CrawlResult, Box<dyn std::error::Error>> {
    let crawler = Crawler::at(base, pages);
    let options = CrawlOptions {
        policy,
        // What a user of the default builder gets: the default bounds (the policy choice may pin them).
        concurrency: ConcurrencySettings::default(),
        autoscale_interval: Duration::from_secs(1),
        max_attempts: 10_000,
        request_timeout: Duration::from_secs(30),
        // The default builder's CPU signal (a cgroup limit, else the host), as a user gets it, though the server
        // and the other systems' processes share this machine.
        cpu: SensorSettings::default().cpu,
    };
    let timeline = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let (tl, c) = (timeline.clone(), crawler.clone());
    let crawl = crawler::crawl(crawler.clone(), options, move |handle| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                tl.lock().unwrap_or_else(|e| e.into_inner()).push(Point {
                    t: started.elapsed().as_secs_f64(),
                    current: handle.current_concurrency(),
                    desired: handle.desired_concurrency(),
                    fetched: c.done.load(Ordering::Relaxed),
                    throttled: c.rate_limited.load(Ordering::Relaxed),
                });
                if !handle.is_running() && started.elapsed() > Duration::from_millis(200) {
                    break;
                }
            }
        });
    });
    let report = tokio::time::timeout(timeout, crawl)
        .await
        .map_err(|_| format!("the crawl did not finish within {} s", timeout.as_secs()))??;
    let wall_s = started.elapsed().as_secs_f64();
    let fetched = crawler.done.load(Ordering::Relaxed);
    let throttled = crawler.rate_limited.load(Ordering::Relaxed);
    let timeline = timeline.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(CrawlResult {
        system: policy.to_string(),
        pages,
        fetched,
        wall_s,
        pages_per_s: fetched as f64 / wall_s,
        throttled,
        throttled_per_page: throttled as f64 / fetched.max(1) as f64,
        failed: crawler.failed.load(Ordering::Relaxed),
        peak_concurrency: report.peak_concurrency,
        timeline,
    })
}
