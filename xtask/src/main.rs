//! Project automation, run as `cargo xtask <task>` (the cargo-xtask convention).
//!
//! Every task shells out to the `cargo` that started it, so a Rust toolchain is all that
//! `cargo xtask ci` needs to reproduce CI on any machine.

mod apt;
mod bench;
mod ci;
mod crawl_bench;
mod cross;
mod e2e;
mod fleet;
mod nostd;
mod reliability;
mod sim;
mod tidy;

use clap::{CommandFactory as _, Parser, Subcommand};
use std::{
    env, fs, io,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

type Error = Box<dyn core::error::Error>;
type Result<T, E = Error> = core::result::Result<T, E>;

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask <task>`.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation for the workspace."
)]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run every CI step (fmt, clippy, test, e2e, loom, miri, sim, bench-smoke, crawl-bench, fleet, doc,
    /// package, nostd, cross, tidy).
    Ci,
    /// Check the source tree against the repository rules.
    Tidy,
    /// Run the scaling-policy simulator: table, target/sim/summary.json, docs/img.
    Sim {
        /// The CI form: a coarser oracle sweep and no figures.
        #[arg(long)]
        fast: bool,
    },
    /// Benchmark against the raw runtimes and Crawlee.
    Bench(bench::Options),
    /// The pool against a real nginx that throttles, beside fixed concurrency and Crawlee for Python.
    CrawlBench(crawl_bench::Options),
    /// Ten processes on one Redis budget: target/fleet/summary.json (installs redis-server).
    Fleet,
    /// Run the wall-clock end-to-end tests (crates/e2e).
    E2e,
    /// Build pool-core for a bare-metal target and check that it names no runtime.
    Nostd,
    /// `cargo check` pool-sensors and the adapters for Windows and macOS (installs the targets).
    Cross,
    /// Check every published crate's metadata and CHANGELOG, then `cargo package` them.
    Package,
    /// Run pool-core's lib and machine-level tests under miri (installs the nightly component).
    Miri,
    /// Run the loom models of the driver's shared state (--cfg loom, release).
    Loom,
    /// ~10M tasks on pool-tokio's multi-thread runtime with controls every ms (release; not in ci).
    Soak,
}

fn try_main() -> Result<ExitCode> {
    let root = project_root();
    let Some(task) = Cli::parse().task else {
        // A bare `cargo xtask` is a request for the list of tasks, not a mistake.
        Cli::command().print_help()?;
        return Ok(ExitCode::SUCCESS);
    };
    let done = |res: Result<()>| res.map(|()| ExitCode::SUCCESS);
    match task {
        Task::Ci => Ok(ci::run(&root)),
        Task::Tidy => done(tidy::report(&root)),
        Task::Sim { fast } => done(sim::run(&root, fast)),
        Task::Bench(opts) => bench::run(&root, opts),
        Task::CrawlBench(opts) => done(crawl_bench::run(&root, opts)),
        Task::E2e => done(e2e::run(&root)),
        Task::Fleet => done(fleet::run(&root)),
        Task::Nostd => done(nostd::run(&root)),
        Task::Cross => done(cross::run(&root)),
        Task::Package => done(ci::package(&root)),
        Task::Soak => done(reliability::soak(&root)),
        Task::Miri => done(reliability::miri(&root)),
        Task::Loom => done(reliability::loom(&root)),
    }
}

/// The workspace root, which is the parent of this crate's directory.
fn project_root() -> PathBuf {
    // The path is baked in at compile time, so the binary also works when run outside cargo.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Every crate directory in the workspace: `crates/*` in name order, then `xtask`.
fn crate_dirs(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root.join("crates"))? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    dirs.push(root.join("xtask"));
    Ok(dirs)
}

/// The package name in a manifest, taken from its first `name = "..."` line.
fn package_name(manifest: &str) -> Option<&str> {
    // `[package]` comes first in our manifests, so the first `name` key is the package's own.
    manifest.lines().find_map(|line| {
        let value = line.trim().strip_prefix("name")?.trim_start();
        Some(value.strip_prefix('=')?.trim().trim_matches('"'))
    })
}

/// A `cargo` command run from the workspace root.
fn cargo(root: &Path) -> Command {
    // `$CARGO` is the cargo running xtask, so nested builds use the same toolchain even when
    // `+toolchain` or a rustup override chose it.
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Echoes `cmd` like a shell trace, runs it with inherited output, and fails on a non-zero exit.
fn run_command(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})").into())
    }
}

/// Renders `cmd` as a shell line, with its environment overrides and the program's file name.
fn display(cmd: &Command) -> String {
    let envs = cmd.get_envs().filter_map(|(key, value)| {
        Some(format!("{}={:?}", key.display(), value?.to_string_lossy()))
    });
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program());
    let words = cmd.get_args().map(|arg| arg.display().to_string());
    let words: Vec<String> = envs
        .chain([program.display().to_string()])
        .chain(words)
        .collect();
    words.join(" ")
}

/// Installs the rustup `target` when it is missing, and fails (saying `why` it matters) rather than skipping
/// the check that needs it.
fn ensure_target(target: &str, why: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|err| format!("cannot run `rustup` to look for the `{target}` target: {err}"))?;
    let stdout = String::from_utf8_lossy(&installed.stdout);
    if installed.status.success() && stdout.lines().any(|line| line.trim() == target) {
        return Ok(());
    }
    run_command(Command::new("rustup").args(["target", "add", target])).map_err(|err| {
        format!("the `{target}` target is missing and could not be installed, {why}: {err}").into()
    })
}

/// Succeeds when there are no errors, and otherwise fails with all of them.
fn all_ok(errors: impl IntoIterator<Item = Error>) -> Result<()> {
    let errors: Vec<String> = errors.into_iter().map(|err| err.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed_and_reads_every_task() {
        Cli::command().debug_assert();
        let parse = |args: &[&str]| Cli::try_parse_from(["cargo xtask"].iter().chain(args));
        assert!(matches!(
            parse(&["sim", "--fast"]).unwrap().task,
            Some(Task::Sim { fast: true })
        ));
        assert!(matches!(
            parse(&["bench", "--quick"]).unwrap().task,
            Some(Task::Bench(_))
        ));
        assert!(parse(&[]).unwrap().task.is_none());
        assert!(parse(&["ci", "extra"]).is_err());
    }
}
