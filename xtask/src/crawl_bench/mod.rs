//! `cargo xtask crawl-bench [--quick]`: the pool against a real nginx on 127.0.0.1, side by side with fixed
//! concurrency and Crawlee for Python.
//!
//! Two servers share one static copy of the crawl demo's site (32 KiB pages, each slowed to about 145 ms):
//! `conn-cap` answers 429 above 40 connections, `rate-cap` above 200 requests a second. On each, every system
//! crawls the whole site: a sweep of fixed concurrencies (the oracle is the best pages per second with at most
//! 1 % of requests throttled), the default builder (`adaptive`), `.crawlee_parity()` (`parity`), and Crawlee
//! for Python 1.11 (`crawlee-python`, its default settings). Runs alternate between systems so that drift
//! hits all alike; figures are medians. It writes `target/crawl-bench/summary.json` and a chart per server,
//! `target/crawl-bench/<server>.svg`. Nothing is asserted: CI runs `--quick` so that the benchmark cannot
//! rot, and the figures are read by people.

mod chart;
mod nginx;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{Result, cargo, run_command};

/// `cargo xtask crawl-bench` options.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// 300 pages, one run of each system, a two-level sweep: the CI smoke form.
    #[arg(long)]
    quick: bool,
}

impl Options {
    /// The CI smoke form.
    pub(crate) fn quick() -> Self {
        Options { quick: true }
    }
}

/// What `crawl-client run` and the Python peer write for one crawl.
#[derive(Debug, Deserialize)]
pub(super) struct CrawlResult {
    pages_per_s: f64,
    throttled_per_page: f64,
    timeline: Vec<Point>,
}

/// One sample of a crawl's timeline.
#[derive(Debug, Deserialize)]
pub(super) struct Point {
    t: f64,
    current: usize,
    throttled: u64,
}

/// One system's figures on one server: medians over its runs.
#[derive(Debug, Serialize)]
struct SystemFigures {
    pages_per_s: f64,
    throttled_per_page: f64,
    runs: usize,
}

/// One server's headline figures, as the issue asks for them, and every system's.
#[derive(Debug, Serialize)]
struct ServerSummary {
    /// The fixed concurrency with the best pages per second at ≤ 1 % throttled, and that rate.
    oracle_concurrency: Option<usize>,
    oracle_pages_per_s: Option<f64>,
    default_vs_oracle: Option<f64>,
    default_vs_crawlee_python: Option<f64>,
    /// The default builder's 429s per page fetched.
    throttled_per_page: f64,
    /// The service's limit in tasks: the connection cap, or the rate cap times a page's latency (measured
    /// by the `fixed:10` crawl).
    ceiling_tasks: f64,
    /// After its first throttle, the highest concurrency the default builder held for at least one page
    /// latency, over `ceiling_tasks`, minus 1 (the worst of its runs).
    peak_over_ceiling: Option<f64>,
    systems: BTreeMap<String, SystemFigures>,
}

#[derive(Debug, Serialize)]
struct Summary {
    pages: u32,
    runs: usize,
    servers: BTreeMap<String, ServerSummary>,
}

/// Runs the benchmark.
pub(crate) fn run(root: &Path, opts: Options) -> Result<()> {
    let (pages, runs, sweep): (u32, usize, &[usize]) = if opts.quick {
        (300, 1, &[20, 40])
    } else {
        (2000, 3, &[10, 20, 25, 30, 35, 40, 50])
    };
    let out = root.join("target/crawl-bench");
    let _ = fs::remove_dir_all(out.join("runs"));
    fs::create_dir_all(out.join("runs"))?;
    let nginx_bin = nginx::ensure_installed()?;
    let python = python_with_httpx(&root.join("target/peers/python"))?;
    run_command(cargo(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "crawl-demo",
        "--bin",
        "crawl-client",
    ]))?;
    let client = root.join("target/release/crawl-client");
    let site = out.join("site");
    let _ = fs::remove_dir_all(&site);
    run_command(
        Command::new(&client)
            .args(["write-site", "--pages", &pages.to_string(), "--dir"])
            .arg(&site),
    )?;
    let server = nginx::start(&nginx_bin, &out.join("nginx"), &site)?;

    let mut systems: Vec<String> = sweep.iter().map(|c| format!("fixed:{c}")).collect();
    systems.extend(["adaptive", "parity", "crawlee-python"].map(String::from));
    let peer = root.join("xtask/peers/crawlee_py_crawl.py");
    let mut results: BTreeMap<(String, String), Vec<CrawlResult>> = BTreeMap::new();
    for run in 0..runs {
        for &(name, port) in &server.servers {
            let base = format!("http://127.0.0.1:{port}/page/");
            // Rotate the order each run so that no system always goes first or last.
            for i in 0..systems.len() {
                let system = &systems[(i + run) % systems.len()];
                let file = out
                    .join("runs")
                    .join(format!("{name}-{}-{run}.json", system.replace(':', "")));
                let mut cmd = if system == "crawlee-python" {
                    let mut c = Command::new(&python);
                    c.arg(&peer).arg(&base).arg(pages.to_string()).arg(&file);
                    c
                } else {
                    let mut c = Command::new(&client);
                    c.args([
                        "run",
                        "--base",
                        &base,
                        "--pages",
                        &pages.to_string(),
                        "--policy",
                        system,
                        "--out",
                    ])
                    .arg(&file);
                    c
                };
                run_command(&mut cmd)?;
                let result: CrawlResult = serde_json::from_str(&fs::read_to_string(&file)?)?;
                results
                    .entry((name.to_owned(), system.clone()))
                    .or_default()
                    .push(result);
            }
        }
    }
    drop(server);

    let mut summary = Summary {
        pages,
        runs,
        servers: BTreeMap::new(),
    };
    for name in ["conn-cap", "rate-cap"] {
        let of = |system: &str| results.get(&(name.to_owned(), system.to_owned()));
        // A page's latency, from the crawl least likely to queue: ten at a time, never throttled.
        let latency_s = of("fixed:10")
            .map(|rs| median(rs.iter().map(|r| 10.0 / r.pages_per_s)))
            .unwrap_or(0.145);
        let limit = match name {
            "conn-cap" => nginx::CONN_CAP as f64,
            _ => nginx::RATE_PER_S as f64 * latency_s,
        };
        let figures = |rs: &[CrawlResult]| SystemFigures {
            pages_per_s: median(rs.iter().map(|r| r.pages_per_s)),
            throttled_per_page: median(rs.iter().map(|r| r.throttled_per_page)),
            runs: rs.len(),
        };
        let systems_fig: BTreeMap<String, SystemFigures> = systems
            .iter()
            .filter_map(|s| Some((s.clone(), figures(of(s)?))))
            .collect();
        let oracle = sweep
            .iter()
            .filter_map(|&c| Some((c, systems_fig.get(&format!("fixed:{c}"))?)))
            .filter(|(_, f)| f.throttled_per_page <= 0.01)
            .max_by(|a, b| a.1.pages_per_s.total_cmp(&b.1.pages_per_s));
        let default = &systems_fig["adaptive"];
        let python = systems_fig.get("crawlee-python").map(|f| f.pages_per_s);
        let peak_over_ceiling = of("adaptive").and_then(|runs| {
            let peak = runs
                .iter()
                .filter_map(|r| held_peak_after_first_throttle(&r.timeline, latency_s))
                .max()?;
            Some(peak as f64 / limit - 1.0)
        });
        summary.servers.insert(
            name.to_owned(),
            ServerSummary {
                oracle_concurrency: oracle.map(|o| o.0),
                oracle_pages_per_s: oracle.map(|o| o.1.pages_per_s),
                default_vs_oracle: oracle.map(|o| default.pages_per_s / o.1.pages_per_s),
                default_vs_crawlee_python: python.map(|p| default.pages_per_s / p),
                throttled_per_page: default.throttled_per_page,
                ceiling_tasks: limit,
                peak_over_ceiling,
                systems: systems_fig,
            },
        );
        let firsts: Vec<(String, &CrawlResult)> = systems
            .iter()
            .filter_map(|s| Some((s.clone(), of(s)?.first()?)))
            .collect();
        let title = format!("{name}: tasks running over time ({pages} pages)");
        chart::draw(&out.join(format!("{name}.svg")), &title, &firsts, limit)?;
    }
    let path: PathBuf = out.join("summary.json");
    fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
    print_table(&summary);
    println!("wrote {}", path.display());
    Ok(())
}

/// The peers' venv (Crawlee for Python 1.11.0) with httpx, the HTTP client the Python crawl uses.
fn python_with_httpx(venv: &Path) -> Result<PathBuf> {
    let python = crate::bench::python_venv(venv)?;
    let marker = venv.join(".installed-httpx");
    if !marker.is_file() {
        run_command(Command::new(venv.join("bin/pip")).args(["install", "--quiet", HTTPX]))?;
        fs::write(&marker, HTTPX)?;
    }
    Ok(python)
}

/// The Python crawl's HTTP client.
const HTTPX: &str = "httpx==0.28.1";

/// After the first throttle, the highest concurrency held over every sample of a window at least `latency_s`
/// long: a peak shorter than one page latency is a start that was refused at once, not a level that ran.
fn held_peak_after_first_throttle(timeline: &[Point], latency_s: f64) -> Option<usize> {
    let first = timeline.iter().position(|p| p.throttled > 0)?;
    let after = &timeline[first..];
    (0..after.len())
        .filter_map(|i| {
            let end = after[i..]
                .iter()
                .position(|p| p.t - after[i].t >= latency_s)?;
            after[i..=i + end].iter().map(|p| p.current).min()
        })
        .max()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn print_table(summary: &Summary) {
    for (name, s) in &summary.servers {
        println!(
            "\n{name}: oracle {:?} at {:?} pages/s",
            s.oracle_concurrency,
            s.oracle_pages_per_s.map(|p| p.round())
        );
        println!("{:<16} {:>10} {:>12}", "system", "pages/s", "429s/page");
        for (system, f) in &s.systems {
            println!(
                "{system:<16} {:>10.1} {:>12.3}",
                f.pages_per_s, f.throttled_per_page
            );
        }
        let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        println!(
            "default_vs_oracle {} default_vs_crawlee_python {} peak_over_ceiling {}",
            show(s.default_vs_oracle),
            show(s.default_vs_crawlee_python),
            show(s.peak_over_ceiling)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(points: &[(f64, usize, u64)]) -> Vec<Point> {
        points
            .iter()
            .map(|&(t, current, throttled)| Point {
                t,
                current,
                throttled,
            })
            .collect()
    }

    #[test]
    fn the_held_peak_ignores_spikes_shorter_than_a_latency_and_everything_before_the_first_throttle()
     {
        let t = timeline(&[
            (0.0, 60, 0),
            (0.1, 60, 0),
            (0.2, 45, 1),
            (0.3, 40, 1),
            (0.4, 52, 2),
            (0.5, 41, 2),
            (0.6, 41, 2),
        ]);
        // 60 ran before any throttle; 52 lasted one sample; 41 was held from 0.5 s to 0.6 s.
        assert_eq!(held_peak_after_first_throttle(&t, 0.1), Some(41));
        assert_eq!(held_peak_after_first_throttle(&t, 0.0), Some(52));
        assert_eq!(held_peak_after_first_throttle(&t[..2], 0.1), None);
    }
}
