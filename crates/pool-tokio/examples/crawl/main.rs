//! The crawl demo: an autoscaled pool crawls a synthetic site on 127.0.0.1 whose latency grows past a load
//! knee and which answers 429 above its capacity, shows live progress, then prints a summary and writes an
//! SVG chart of concurrency, throughput and every load signal over time.
//!
//! Run with `cargo run --release -p pool-tokio --example crawl`; `-- --help` lists the flags.

mod chart;
mod site;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pool_tokio::{ConcurrencySettings, CpuMode, Handle, SystemInfo};

use chart::Sample;
use site::{CrawlOptions, Crawler, PolicyChoice, Site, SiteConfig};

const USAGE: &str = "\
Crawl a synthetic local site through an autoscaled pool, show progress, print a summary and write a chart.

Usage: cargo run --release -p pool-tokio --example crawl -- [OPTIONS]

Options:
  --pages N        pages on the site, 1 to 1000000                  [default: 5000]
  --capacity N     requests in flight above which the server answers 429
                                                                    [default: 48]
  --knee N         requests in flight past which latency grows, 1 to capacity
                                                                    [default: 32]
  --latency-ms N   latency at or below the knee, 1 to 10000 ms      [default: 150]
  --policy NAME    scaling policy: adaptive or crawlee              [default: adaptive]
  --max N          the pool's max concurrency, 1 to 10000           [default: 200]
  --cpu MODE       what the CPU signal measures: process (this process over one core, so other
                   load on a shared machine does not drive the demo), auto (the cgroup's or the
                   host's CPU, as in production) or host                [default: process]
  --out DIR        where to write crawl.svg                         [default: target/demo]
  -h, --help       print this help";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    site: SiteConfig,
    policy: PolicyChoice,
    max: usize,
    cpu: CpuMode,
    out: PathBuf,
}

fn default_out() -> PathBuf {
    // The workspace's target directory, wherever the demo is run from.
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/demo"))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut site = SiteConfig {
        pages: 5000,
        capacity: 48,
        knee: 32,
        base_latency: Duration::from_millis(150),
    };
    let (mut policy, mut max, mut out) = (PolicyChoice::Adaptive, 200, default_out());
    let mut cpu = CpuMode::Process;
    let mut knee_set = false;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        if !matches!(
            name.as_str(),
            "--pages"
                | "--capacity"
                | "--knee"
                | "--latency-ms"
                | "--policy"
                | "--max"
                | "--cpu"
                | "--out"
        ) {
            return Err(format!("unknown option `{flag}`"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("`{name}` needs a value")),
        };
        let number = |lo: u64, hi: u64| -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    format!("invalid value `{value}` for `{name}`: expected a whole number from {lo} to {hi}")
                })
        };
        match name.as_str() {
            "--pages" => site.pages = number(1, 1_000_000)? as u32,
            "--capacity" => site.capacity = number(1, 100_000)? as usize,
            "--knee" => {
                site.knee = number(1, 100_000)? as usize;
                knee_set = true;
            }
            "--latency-ms" => site.base_latency = Duration::from_millis(number(1, 10_000)?),
            "--policy" => {
                policy = value
                    .parse()
                    .map_err(|e| format!("invalid value for `--policy`: {e}"))?
            }
            "--max" => max = number(1, 10_000)? as usize,
            "--cpu" => {
                cpu = match value.as_str() {
                    "process" => CpuMode::Process,
                    "auto" => CpuMode::Auto,
                    "host" => CpuMode::Host,
                    _ => {
                        return Err(format!(
                            "invalid value `{value}` for `--cpu`: expected `process`, `auto` or `host`"
                        ));
                    }
                }
            }
            _ => out = PathBuf::from(&value),
        }
    }
    if !knee_set {
        // Keep the default knee below a lowered capacity, so latency still bends before the 429s.
        site.knee = site.knee.min(site.capacity * 2 / 3).max(1);
    }
    if site.knee > site.capacity {
        return Err(format!(
            "`--knee` ({}) must not exceed `--capacity` ({})",
            site.knee, site.capacity
        ));
    }
    Ok(Some(Args {
        site,
        policy,
        max,
        cpu,
        out,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\nRun with `--help` for the options.");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Samples taken while the pool runs, shared between the sampler and `main`.
type Samples = Arc<std::sync::Mutex<Vec<Sample>>>;

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        site: config,
        policy,
        max,
        cpu,
        out,
    } = args;
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("cannot create the output directory {}: {e}", out.display()))?;
    let site = Site::start(config).await?;
    let crawler = Crawler::new(site.addr(), config.pages);
    let options = CrawlOptions {
        policy,
        concurrency: ConcurrencySettings::default()
            .with_max(max)
            .with_desired(10.min(max)),
        autoscale_interval: Duration::from_secs(1),
        max_attempts: 20,
        request_timeout: Duration::from_secs(30),
        cpu,
    };
    println!(
        "Crawling {} pages on http://{} (latency {} ms up to {} in flight, growing past it; 429 above {}), policy {policy}",
        config.pages,
        site.addr(),
        config.base_latency.as_millis(),
        config.knee,
        config.capacity
    );

    let bar = ProgressBar::new(u64::from(config.pages));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} pages {per_sec:>12} | {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let samples: Samples = Arc::default();
    let started = Instant::now();
    let mut sampler = None;
    let report = site::crawl(crawler.clone(), options, |handle| {
        sampler = Some(tokio::spawn(sample(
            handle,
            crawler.clone(),
            samples.clone(),
            bar.clone(),
            started,
        )));
    })
    .await;
    if let Some(s) = sampler {
        s.abort();
    }
    bar.finish_and_clear();
    let report = report?;
    let elapsed = started.elapsed().as_secs_f64();

    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let path = out.join("crawl.svg");
    chart::draw(&path, &samples, &config, policy)?;

    let done = crawler.done.load(Ordering::Relaxed);
    let limited = crawler.rate_limited.load(Ordering::Relaxed);
    let best = chart::best_throughput(&samples);
    let peak_server = site.stats().peak_in_flight.load(Ordering::Relaxed);
    println!(
        "crawled {done} of {} pages in {elapsed:.1} s: {:.0} pages/s on average, {best:.0} pages/s at best (5 s window)",
        config.pages,
        done as f64 / elapsed.max(1e-9)
    );
    println!(
        "{limited} responses were 429 (reported to the client signal and retried); {} transport errors; {} pages failed",
        crawler.errors.load(Ordering::Relaxed),
        crawler.failed.load(Ordering::Relaxed)
    );
    println!(
        "policy {policy}: {} tasks, peak concurrency {} (server saw {peak_server}), final desired {}; the site's knee is {} and its capacity {}",
        report.started,
        report.peak_concurrency,
        report.final_desired_concurrency,
        config.knee,
        config.capacity
    );
    let path = path.canonicalize().unwrap_or(path);
    println!("chart: {}", path.display());
    Ok(())
}

/// Every 250 ms: records a sample for the chart and updates the progress bar.
async fn sample(
    handle: Handle,
    crawler: Arc<Crawler>,
    samples: Samples,
    bar: ProgressBar,
    started: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let info = handle.current_system_info();
        let s = Sample {
            t: started.elapsed().as_secs_f64(),
            current: handle.current_concurrency(),
            desired: handle.desired_concurrency(),
            done: crawler.done.load(Ordering::Relaxed),
            rate_limited: crawler.rate_limited.load(Ordering::Relaxed),
            ratios: ratios(info.as_ref()),
        };
        let overloaded = info
            .map(|i| i.overloaded())
            .filter(|o| !o.is_empty())
            .map_or_else(|| "none".to_string(), |o| o.to_string());
        bar.set_position(s.done);
        bar.set_message(format!(
            "current {:>3} desired {:>3} | 429s {:>5} | overloaded: {overloaded}",
            s.current, s.desired, s.rate_limited
        ));
        samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }
}

/// Each built-in signal's overloaded share of the current window: cpu, memory, event loop, client.
fn ratios(info: Option<&SystemInfo>) -> [f64; 4] {
    info.map_or([0.0; 4], |i| {
        [
            i.cpu.actual_ratio,
            i.memory.actual_ratio,
            i.event_loop.actual_ratio,
            i.client.actual_ratio,
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!((a.site.pages, a.site.capacity, a.site.knee), (5000, 48, 32));
        assert_eq!(a.policy, PolicyChoice::Adaptive);
        let a = parse(&["--pages=100", "--capacity", "9", "--policy", "crawlee"])
            .unwrap()
            .unwrap();
        assert_eq!((a.site.pages, a.site.capacity, a.site.knee), (100, 9, 6));
        assert_eq!(a.policy, PolicyChoice::Crawlee);
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let err = |args: &[&str]| parse(args).unwrap_err();
        assert!(err(&["--pages", "zero"]).contains("expected a whole number from 1"));
        assert!(err(&["--pages", "0"]).contains("`--pages`"));
        assert!(err(&["--policy", "fast"]).contains("expected `adaptive` or `crawlee`"));
        assert!(err(&["--bogus"]).contains("unknown option `--bogus`"));
        assert!(err(&["--max"]).contains("needs a value"));
        assert!(err(&["--cpu", "gpu"]).contains("expected `process`, `auto` or `host`"));
        assert!(err(&["--capacity", "10", "--knee", "20"]).contains("must not exceed"));
    }
}
