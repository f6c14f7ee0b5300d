//! Project automation, run as `cargo xtask <task>` (the cargo-xtask convention).
//!
//! Every task shells out to the `cargo` that started it, so a Rust toolchain is all that
//! `cargo xtask ci` needs to reproduce CI on any machine.

mod bench;
mod ci;
mod e2e;
mod nostd;
mod reliability;
mod sim;
mod tidy;

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

fn try_main() -> Result<ExitCode> {
    let mut args = env::args().skip(1);
    let task = args.next();
    if task.as_deref() == Some("sim") {
        let fast = match args.next().as_deref() {
            None => false,
            Some("--fast") => true,
            Some(other) => return Err(format!("unexpected argument `{other}` to `sim`").into()),
        };
        return sim::run(&project_root(), fast).map(|()| ExitCode::SUCCESS);
    }
    if task.as_deref() == Some("bench") {
        return bench::run(&project_root(), &args.collect::<Vec<_>>());
    }
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument `{extra}`; see `cargo xtask help`").into());
    }
    let root = project_root();
    match task.as_deref() {
        Some("ci") => Ok(ci::run(&root)),
        Some("tidy") => tidy::report(&root).map(|()| ExitCode::SUCCESS),
        Some("nostd") => nostd::run(&root).map(|()| ExitCode::SUCCESS),
        Some("package") => ci::package(&root).map(|()| ExitCode::SUCCESS),
        Some("soak") => reliability::soak(&root).map(|()| ExitCode::SUCCESS),
        Some("miri") => reliability::miri(&root).map(|()| ExitCode::SUCCESS),
        Some("loom") => reliability::loom(&root).map(|()| ExitCode::SUCCESS),
        Some("help") | None => {
            print_help();
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown task `{other}`; see `cargo xtask help`").into()),
    }
}

fn print_help() {
    println!(
        "\
Usage: cargo xtask <task>

Tasks:
  ci      run every CI step (fmt, clippy, test, e2e, loom, miri, sim, bench-smoke, doc, package, nostd, tidy)
  tidy    check the source tree against the repository rules
  sim     run the scaling-policy simulator: table, target/sim/summary.json, docs/img [--fast]
  bench   benchmark against the raw runtimes and Crawlee [--quick] [--write-docs]
  nostd   build pool-core for {} and check that it names no runtime
  package check every published crate's metadata and CHANGELOG, then `cargo package` them
  miri    run pool-core's lib and machine-level tests under miri (installs the nightly component)
  loom    run the loom models of the driver's shared state (--cfg loom, release)
  soak    ~10M tasks on pool-tokio's multi-thread runtime with controls every ms (release; not in ci)
  help    print this message",
        nostd::TARGET
    );
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

/// Succeeds when there are no errors, and otherwise fails with all of them.
fn all_ok(errors: impl IntoIterator<Item = Error>) -> Result<()> {
    let errors: Vec<String> = errors.into_iter().map(|err| err.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n").into())
    }
}
