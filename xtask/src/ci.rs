//! `cargo xtask ci`: every CI step in order, run to the end so that one run reports every failure.

use std::{
    env, fs,
    path::Path,
    process::{Command, ExitCode},
    time::Instant,
};

use crate::{
    Result, all_ok, cargo, crate_dirs, cross, e2e, fleet, nostd, package_name, reliability,
    run_command, tidy,
};

/// A named CI step over the workspace at the given root.
type Step = (&'static str, fn(&Path) -> Result<()>);

/// The steps, in the order CI runs them: the cheap, most often failing checks come first.
const STEPS: &[Step] = &[
    ("fmt", fmt),
    ("clippy", clippy),
    ("test", test),
    ("e2e", e2e::run),
    ("loom", reliability::loom),
    ("miri", reliability::miri),
    ("sim", sim_fast),
    ("bench-smoke", bench_smoke),
    ("crawl-bench", crawl_bench_smoke),
    ("fleet", fleet::smoke),
    ("doc", doc),
    ("package", package),
    ("nostd", nostd::run),
    ("cross", cross::run),
    ("tidy", tidy::report),
];

/// Runs every step, prints a summary table, and fails if any step failed.
pub(crate) fn run(root: &Path) -> ExitCode {
    if env::var_os("CI").is_some() {
        print_versions(root);
    }
    let mut outcomes = Vec::new();
    for &(name, step) in STEPS {
        println!("==> {name}");
        let started = Instant::now();
        let res = step(root);
        if let Err(err) = &res {
            eprintln!("error: step `{name}` failed:\n{err}");
        }
        outcomes.push((name, res.is_ok(), started.elapsed()));
    }

    println!();
    let width = STEPS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, passed, elapsed) in &outcomes {
        let status = if *passed { "PASS" } else { "FAIL" };
        println!("{status}  {name:<width$}  ({:.1}s)", elapsed.as_secs_f64());
    }
    let n_failed = outcomes.iter().filter(|(_, passed, _)| !passed).count();
    println!(
        "xtask ci: {} passed, {n_failed} failed",
        outcomes.len() - n_failed
    );
    if n_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_versions(root: &Path) {
    // Versions only help a reader of the CI log; failing to print them must not fail the run.
    for mut cmd in [Command::new("rustc"), cargo(root)] {
        if let Err(err) = run_command(cmd.arg("--version")) {
            eprintln!("warning: {err}");
        }
    }
}

fn fmt(root: &Path) -> Result<()> {
    run_command(cargo(root).args(["fmt", "--all", "--", "--check"]))
}

fn clippy(root: &Path) -> Result<()> {
    // Each package is linted on its own because `--workspace` unifies features across packages,
    // which would hide a `std` leak in a crate that is meant to build without it.
    let mut cmds = Vec::new();
    for dir in crate_dirs(root)? {
        let manifest = fs::read_to_string(dir.join("Cargo.toml"))?;
        let name =
            package_name(&manifest).ok_or_else(|| format!("{}: no package name", dir.display()))?;
        cmds.push(clippy_cmd(root, name, &["--all-targets", "--all-features"]));
    }
    cmds.push(clippy_cmd(root, "pool-core", &["--no-default-features"]));
    let alloc = ["--no-default-features", "--features", "alloc"];
    cmds.push(clippy_cmd(root, "pool-core", &alloc));
    all_ok(cmds.iter_mut().filter_map(|cmd| run_command(cmd).err()))
}

fn clippy_cmd(root: &Path, package: &str, flags: &[&str]) -> Command {
    let mut cmd = cargo(root);
    cmd.args(["clippy", "-p", package])
        .args(flags)
        .args(["--", "-D", "warnings"]);
    cmd
}

fn test(root: &Path) -> Result<()> {
    // pool-redis's tests start a real redis-server.
    fleet::ensure_redis()?;
    run_command(cargo(root).args([
        "test",
        "--workspace",
        "--all-features",
        "--exclude",
        e2e::PACKAGE,
    ]))
}

fn bench_smoke(root: &Path) -> Result<()> {
    // Builds the benchmark binary and runs each implementation once on a tiny input, so it cannot rot;
    // measuring is `cargo xtask bench`'s job, never CI's.
    run_command(cargo(root).args(["run", "--quiet", "-p", "pool-bench", "--", "smoke"]))
}

fn crawl_bench_smoke(root: &Path) -> Result<()> {
    // The real-server benchmark in its short form, so that it cannot rot: nginx installed and started, every
    // system run once, the JSON and charts written. No figure is asserted here; measuring is the full run's.
    crate::crawl_bench::run(root, crate::crawl_bench::Options::quick())
}

fn sim_fast(root: &Path) -> Result<()> {
    // The simulator suite in its fast form: fails if the default policy misses an unlisted target.
    crate::sim::run(root, true)
}

/// The manifest keys crates.io shows; `repository` and `license` may come from the workspace.
const CRATES_IO_KEYS: [&str; 6] = [
    "description",
    "keywords",
    "categories",
    "repository",
    "readme",
    "license",
];

/// Every published crate (not `publish = false`) has the crates.io metadata and a CHANGELOG.md, and
/// `cargo package` accepts it (offline-ish: `--no-verify` skips the build of the packaged sources).
pub(crate) fn package(root: &Path) -> Result<()> {
    let mut cmd = cargo(root);
    cmd.args(["package", "--no-verify", "--allow-dirty", "--quiet"]);
    let mut missing = Vec::new();
    for dir in crate_dirs(root)? {
        let manifest = fs::read_to_string(dir.join("Cargo.toml"))?;
        if manifest.contains("publish = false") {
            continue;
        }
        let name =
            package_name(&manifest).ok_or_else(|| format!("{}: no package name", dir.display()))?;
        for key in CRATES_IO_KEYS
            .iter()
            .filter(|k| !manifest.lines().any(|l| l.starts_with(**k)))
        {
            missing.push(format!("{name}: no `{key}` in Cargo.toml"));
        }
        if !manifest.contains("[package.metadata.docs.rs]") {
            missing.push(format!("{name}: no [package.metadata.docs.rs]"));
        }
        if !dir.join("CHANGELOG.md").is_file() {
            missing.push(format!("{name}: no CHANGELOG.md"));
        }
        cmd.args(["-p", name]);
    }
    if !missing.is_empty() {
        return Err(missing.join("\n").into());
    }
    run_command(&mut cmd)
}

fn doc(root: &Path) -> Result<()> {
    // Docs deny warnings through `RUSTDOCFLAGS` rather than `RUSTFLAGS`, which would change the
    // compiler flags and so rebuild everything the other steps have already built.
    run_command(
        cargo(root)
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}
