//! The crawl demo: an autoscaled pool crawls a synthetic site on 127.0.0.1 whose latency grows past a load
//! knee and which answers 429 above its capacity, shows live progress, then prints a summary and writes an
//! SVG chart of concurrency, throughput and every load signal over time.
//!
//! Run with `cargo run --release -p crawl-demo`; `-- --help` lists the flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use crawl_demo::chart::{self, Sample};
use crawl_demo::crawler::{self, CrawlOptions, Crawler, PolicyChoice};
use crawl_demo::site::{Site, SiteConfig};
use indicatif::{ProgressBar, ProgressStyle};
use pool_tokio::{ConcurrencySettings, CpuMode, Handle, SystemInfo};

/// The command line, as clap parses it; [`Cli::resolve`] checks what spans flags and fills in the defaults
/// that depend on other flags.
#[derive(Debug, Parser)]
#[command(
    name = "crawl",
    about = "Crawl a synthetic local site through an autoscaled pool, show progress, print a summary and write a chart.",
    override_usage = "cargo run --release -p crawl-demo -- [OPTIONS]"
)]
struct Cli {
    /// Pages on the site, 1 to 1000000.
    #[arg(long, value_name = "N", default_value = "5000", value_parser = whole_number(1, 1_000_000))]
    pages: u64,
    /// Requests in flight above which the server answers 429.
    #[arg(long, value_name = "N", default_value = "48", value_parser = whole_number(1, 100_000))]
    capacity: u64,
    /// Requests in flight past which latency grows, 1 to capacity [default: 32, or two thirds of a lower
    /// capacity].
    #[arg(long, value_name = "N", value_parser = whole_number(1, 100_000))]
    knee: Option<u64>,
    /// Latency at or below the knee, 1 to 10000 ms.
    #[arg(long = "latency-ms", value_name = "N", default_value = "150", value_parser = whole_number(1, 10_000))]
    latency_ms: u64,
    /// Scaling policy: adaptive, crawlee (Crawlee's controller at this tick), parity (`.crawlee_parity()`) or fixed:N.
    #[arg(long, value_name = "NAME", default_value = "adaptive")]
    policy: PolicyChoice,
    /// The pool's max concurrency, 1 to 10000.
    #[arg(long, value_name = "N", default_value = "200", value_parser = whole_number(1, 10_000))]
    max: u64,
    /// What the CPU signal measures: process (this process over one core, so other load on a shared machine
    /// does not drive the demo), auto (the cgroup's or the host's CPU, as in production) or host.
    #[arg(long, value_name = "MODE", default_value = "process", value_parser = cpu_mode)]
    cpu: CpuMode,
    /// Where to write crawl.svg [default: the workspace's target/demo].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// A parser of whole numbers from `lo` to `hi` whose error says the range, for flags that clap passes on.
fn whole_number(
    lo: u64,
    hi: u64,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |value| {
        value
            .parse::<u64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| format!("expected a whole number from {lo} to {hi}"))
    }
}

/// Parses `--cpu`; `CpuMode` belongs to pool-sensors, which knows nothing of command lines.
fn cpu_mode(value: &str) -> Result<CpuMode, String> {
    match value {
        "process" => Ok(CpuMode::Process),
        "auto" => Ok(CpuMode::Auto),
        "host" => Ok(CpuMode::Host),
        _ => Err("expected `process`, `auto` or `host`".to_string()),
    }
}

/// The checked command line.
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

impl Cli {
    /// The run's settings, or a clap error (shown like clap's own) when the flags contradict each other.
    fn resolve(self) -> Result<Args, clap::Error> {
        // Every number went through `whole_number`, so each fits its field.
        let capacity = self.capacity as usize;
        // Keep the default knee below a lowered capacity, so latency still bends before the 429s.
        let knee = self
            .knee
            .map_or_else(|| 32.min(capacity * 2 / 3).max(1), |k| k as usize);
        if knee > capacity {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("`--knee` ({knee}) must not exceed `--capacity` ({capacity})"),
            ));
        }
        Ok(Args {
            site: SiteConfig {
                pages: self.pages as u32,
                capacity,
                knee,
                base_latency: Duration::from_millis(self.latency_ms),
            },
            policy: self.policy,
            max: self.max as usize,
            cpu: self.cpu,
            out: self.out.unwrap_or_else(default_out),
        })
    }
}

fn main() -> ExitCode {
    let args = match Cli::parse().resolve() {
        Ok(args) => args,
        // `exit` prints the error, or the help, and exits with clap's code: 2 for a bad command line.
        Err(e) => e.exit(),
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
    let report = crawler::crawl(crawler.clone(), options, |handle| {
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
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("crawl").chain(args.iter().copied()))?.resolve()
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.site.pages, a.site.capacity, a.site.knee), (5000, 48, 32));
        assert_eq!(a.policy, PolicyChoice::Adaptive);
        let a = parse(&["--pages=100", "--capacity", "9", "--policy", "crawlee"]).unwrap();
        assert_eq!((a.site.pages, a.site.capacity, a.site.knee), (100, 9, 6));
        assert_eq!(a.policy, PolicyChoice::Crawlee);
        assert_eq!(
            parse(&["--help"]).unwrap_err().kind(),
            ErrorKind::DisplayHelp
        );
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let err = |args: &[&str]| parse(args).unwrap_err();
        let text = |args: &[&str]| err(args).to_string();
        assert!(text(&["--pages", "zero"]).contains("expected a whole number from 1"));
        assert!(text(&["--pages", "0"]).contains("--pages"));
        assert!(
            text(&["--policy", "fast"])
                .contains("expected `adaptive`, `crawlee`, `parity` or `fixed:N`")
        );
        // clap words these two itself: an unknown flag, and a flag at the end without its value.
        let bogus = err(&["--bogus"]);
        assert_eq!(bogus.kind(), ErrorKind::UnknownArgument);
        assert!(bogus.to_string().contains("--bogus"));
        assert!(text(&["--max"]).contains("a value is required for '--max <N>'"));
        assert!(text(&["--cpu", "gpu"]).contains("expected `process`, `auto` or `host`"));
        assert!(text(&["--capacity", "10", "--knee", "20"]).contains("must not exceed"));
    }
}
