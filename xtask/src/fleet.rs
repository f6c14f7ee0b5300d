//! `cargo xtask fleet`: ten processes on one Redis budget (crates/pool-fleet), with Debian's redis-server
//! installed first when it is missing. Writes `target/fleet/summary.json`.

use std::path::Path;
use std::process::Command;

use crate::{Result, cargo, run_command};

/// Debian's redis-server, installed when missing: the fleet and pool-redis's tests start it.
pub(crate) fn ensure_redis() -> Result<()> {
    let found = || {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if found() {
        return Ok(());
    }
    crate::apt::install("redis-server")?;
    if found() {
        Ok(())
    } else {
        Err("apt-get installed redis-server but `redis-server --version` does not run".into())
    }
}

/// The full run, in release: its targets are the issue's, read off the summary it prints.
pub(crate) fn run(root: &Path) -> Result<()> {
    ensure_redis()?;
    let out = root.join("target").join("fleet");
    run_command(
        cargo(root)
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "pool-fleet",
                "--",
                "run",
                "--out",
            ])
            .arg(&out),
    )
}

/// The CI form: the same timeline in a debug build, so that the benchmark cannot rot; no figure is asserted.
pub(crate) fn smoke(root: &Path) -> Result<()> {
    ensure_redis()?;
    let out = root.join("target").join("fleet-smoke");
    run_command(
        cargo(root)
            .args(["run", "--quiet", "-p", "pool-fleet", "--", "run", "--out"])
            .arg(&out),
    )
}
