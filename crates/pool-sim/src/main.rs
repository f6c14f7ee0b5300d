//! `pool-sim`: runs the scenario suite, prints the table, writes `summary.json` and the SVGs.
//!
//! Usage: `pool-sim [--fast] [--scenarios DIR] [--out DIR] [--img DIR] [--only NAME]`. Exits non-zero if the
//! default policy misses a target.

use std::path::PathBuf;
use std::process::ExitCode;

use pool_sim::metrics::Sweep;
use pool_sim::report::{DEFAULT_POLICY, run_scenario, summary_json, table};
use pool_sim::scenario::Scenario;
use pool_sim::svg;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut scenarios = root.join("scenarios");
    let mut out = root.join("../../target/sim");
    let mut img: Option<PathBuf> = None;
    let mut only: Option<String> = None;
    let mut sweep = Sweep::Full;
    let mut trace: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fast" => sweep = Sweep::Fast,
            "--scenarios" => scenarios = args.next().map(PathBuf::from).unwrap_or(scenarios),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            "--img" => img = args.next().map(PathBuf::from),
            "--only" => only = args.next(),
            "--trace" => trace = args.next(),
            other => {
                eprintln!("unknown argument `{other}`");
                return ExitCode::FAILURE;
            }
        }
    }
    let list = match Scenario::load_dir(&scenarios) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let list: Vec<_> = list
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| *o == s.name))
        .collect();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = list
            .iter()
            .map(|sc| scope.spawn(move || run_scenario(sc, sweep)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scenario thread panicked"))
            .collect()
    });
    if let Some(policy) = &trace {
        for r in &results {
            for (name, run, _) in &r.runs {
                if name == policy {
                    for line in run.trace() {
                        println!("{line}");
                    }
                    for s in &run.series {
                        println!(
                            "t={:.0} desired={} running={} done={} 429={} cpu={:.2} mem={:.2} lag={:.0}ms",
                            s.t,
                            s.desired,
                            s.running,
                            s.completed,
                            s.rejected,
                            s.cpu,
                            s.memory,
                            s.lag_ms
                        );
                    }
                }
            }
        }
    }
    print!("{}", table(&results));
    if let Err(e) = std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("summary.json"), summary_json(&results)))
    {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", out.join("summary.json").display());
    if let Some(dir) = img {
        for r in &results {
            let path = dir.join(format!("sim-{}.svg", r.scenario.name));
            if let Err(e) =
                std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, svg::render(r)))
            {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        println!("wrote {} figures to {}", results.len(), dir.display());
    }
    // Misses recorded in `known-misses.txt` (one `scenario target` per line, with the reason in the docs)
    // are reported but do not fail; any other miss does. The file is meant to shrink to nothing.
    let known = std::fs::read_to_string(root.join("known-misses.txt")).unwrap_or_default();
    let known: Vec<(&str, &str)> = known
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(a, b)| (a.trim(), b.trim()))
        .collect();
    let (mut new, mut old) = (0, 0);
    for r in &results {
        for (target, miss) in r.misses() {
            let is_known = known.contains(&(r.scenario.name.as_str(), target));
            if is_known {
                old += 1;
            } else {
                new += 1;
            }
            let tag = if is_known { "KNOWN MISS" } else { "MISS" };
            println!(
                "{tag} {} ({DEFAULT_POLICY}) {target}: {miss}",
                r.scenario.name
            );
        }
    }
    if new > 0 {
        println!("the default policy misses {new} target(s) not in known-misses.txt");
        ExitCode::FAILURE
    } else if old > 0 {
        println!("the default policy misses only the {old} known target(s) in known-misses.txt");
        ExitCode::SUCCESS
    } else {
        println!("the default policy meets every target");
        ExitCode::SUCCESS
    }
}
