//! `pool-sim`: runs the scenario suite, prints the table, writes `summary.json` and the SVGs.
//!
//! Usage: `pool-sim [--fast] [--scenarios DIR] [--out DIR] [--img DIR] [--only NAME] [--trace POLICY]` (see
//! `--help`). Exits non-zero if the default policy misses a target.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clap::builder::PossibleValuesParser;

use pool_sim::known_misses::{self, Scored};
use pool_sim::metrics::Sweep;
use pool_sim::report::{POLICIES, run_scenario, summary_json, table};
use pool_sim::scenario::Scenario;
use pool_sim::svg;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "pool-sim",
    about = "Runs the scaling-policy simulator suite: the table, summary.json and the figures.",
    after_help = "Exits non-zero if the default policy misses a target that known-misses.txt does not list, or \
                  if a listed miss falls below its floor, is met now, or names no scenario."
)]
struct Cli {
    /// A coarser oracle sweep, for CI.
    #[arg(long)]
    fast: bool,
    /// The directory of `*.toml` scenario files.
    #[arg(long, value_name = "DIR", default_value = Scenario::BUNDLED_DIR)]
    scenarios: PathBuf,
    /// Where `summary.json` goes.
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/sim"))]
    out: PathBuf,
    /// Also write one `sim-<scenario>.svg` figure per scenario here.
    #[arg(long, value_name = "DIR")]
    img: Option<PathBuf>,
    /// Run only this scenario.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// The default policy's known misses, with their floors.
    #[arg(long, value_name = "FILE", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/known-misses.txt"))]
    known_misses: PathBuf,
    /// Print this policy's decisions and per-second samples.
    #[arg(long, value_name = "POLICY", value_parser = PossibleValuesParser::new(POLICIES))]
    trace: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (scenarios, out, img, only, trace) = (cli.scenarios, cli.out, cli.img, cli.only, cli.trace);
    let sweep = if cli.fast { Sweep::Fast } else { Sweep::Full };
    let list = match Scenario::load_dir(&scenarios) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The file is read before the suite runs, so that a typo in it fails in a second, not after the sweep.
    let cli_known = cli.known_misses;
    let known = match std::fs::read_to_string(&cli_known)
        .map_err(|e| e.to_string())
        .and_then(|text| known_misses::parse(&text).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {}: {e}", cli_known.display());
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<String> = list.iter().map(|s| s.name.clone()).collect();
    let list: Vec<_> = list
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| *o == s.name))
        .collect();
    if let Some(name) = &only
        && list.is_empty()
    {
        // Running nothing and reporting success would hide a misspelt name.
        eprintln!(
            "error: no scenario named `{name}` in {}",
            scenarios.display()
        );
        return ExitCode::FAILURE;
    }
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
            let svg = match svg::render(r) {
                Ok(svg) => svg,
                Err(e) => {
                    eprintln!("error: cannot draw {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, svg))
            {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        println!("wrote {} figures to {}", results.len(), dir.display());
    }
    // Every miss fails unless `known-misses.txt` lists it, and a listed one fails too if its figure fell past
    // its floor, if it is met now (the line must go), or if the entry names nothing.
    let findings = known_misses::check(
        &known,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
        &results.iter().map(Scored::from).collect::<Vec<_>>(),
        sweep,
    );
    for f in &findings {
        println!("{f}");
    }
    let failed = findings.iter().filter(|f| f.fails()).count();
    let known = findings.len() - failed;
    if failed > 0 {
        println!(
            "{failed} finding(s) above fail the run (known misses: {})",
            cli_known.display()
        );
        ExitCode::FAILURE
    } else if known > 0 {
        println!(
            "the default policy misses only the {known} known target(s), each within its limit"
        );
        ExitCode::SUCCESS
    } else {
        println!("the default policy meets every target");
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed_and_reads_the_xtask_forms() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["pool-sim", "--fast", "--out", "target/sim"]).unwrap();
        assert!(cli.fast && cli.img.is_none());
        assert!(Cli::try_parse_from(["pool-sim", "--trace", "nobody"]).is_err());
    }
}
