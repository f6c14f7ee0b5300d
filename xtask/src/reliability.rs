//! The reliability steps: `miri` and `loom` (run by `cargo xtask ci`) and `cargo xtask soak` (run by hand).
//! What each proves is in `docs/reliability.md`.

use std::{path::Path, process::Command};

use crate::{Result, cargo, run_command};

/// The toolchain miri comes with.
const NIGHTLY: &str = "nightly";

/// pool-core's test targets that run under miri: the library's unit tests and the machine-level suites.
///
/// - `conformance_pool` and `faults` are left out on purpose: they are the driver's suites, hundreds of
///   virtual-time runs each, which take tens of minutes under miri; the driver's unsafe-free code is covered by
///   the property suite's `driver_*` cases, which do run here.
/// - `properties` runs with 4 cases per property under miri (`cfg!(miri)` in the file), with proptest's
///   failure files off, since miri's isolation forbids the file system.
/// - `loom` only builds under `--cfg loom`.
const MIRI_TARGETS: &[&str] = &[
    "--lib",
    "--test",
    "conformance_machine",
    "--test",
    "conformance_status",
    "--test",
    "properties",
];

fn rustup() -> Command {
    Command::new("rustup")
}

/// Installs miri on the nightly toolchain (failing loudly if rustup cannot), then runs pool-core's tests
/// under it.
pub(crate) fn miri(root: &Path) -> Result<()> {
    // `component add` needs the toolchain itself; a machine without nightly gets a minimal one with just the
    // two components, and a machine with it is left on the nightly it has (no surprise update).
    let listed = rustup()
        .args(["toolchain", "list"])
        .output()
        .map_err(|e| format!("cannot run `rustup toolchain list`: {e}"))?;
    let has_nightly = String::from_utf8_lossy(&listed.stdout).lines().any(|l| {
        l.starts_with(&format!("{NIGHTLY}-")) || l.split_whitespace().next() == Some(NIGHTLY)
    });
    let install = if has_nightly {
        run_command(rustup().args([
            "component",
            "add",
            "--toolchain",
            NIGHTLY,
            "miri",
            "rust-src",
        ]))
    } else {
        run_command(rustup().args([
            "toolchain",
            "install",
            NIGHTLY,
            "--profile",
            "minimal",
            "--component",
            "miri",
            "--component",
            "rust-src",
        ]))
    };
    install.map_err(|e| {
        format!("cannot install miri with rustup (is a nightly toolchain reachable?): {e}")
    })?;
    let mut cmd = rustup();
    cmd.current_dir(root)
        .args(["run", NIGHTLY, "cargo", "miri", "test", "-p", "pool-core"])
        .args(MIRI_TARGETS)
        // cargo-miri keeps its artefacts apart by itself (`target/miri`); the flags are miri's defaults.
        .env_remove("RUSTFLAGS");
    run_command(&mut cmd)
}

/// Runs the loom models (`crates/pool-core/tests/loom.rs`) with `--cfg loom`, in release mode (loom explores
/// thousands of interleavings) and in their own target directory, since the flag rebuilds every crate.
pub(crate) fn loom(root: &Path) -> Result<()> {
    run_command(
        cargo(root)
            .args(["test", "-p", "pool-core", "--test", "loom", "--release"])
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", root.join("target/loom")),
    )
}

/// `cargo xtask soak`: the long run on pool-tokio's multi-thread runtime (`crates/pool-tokio/examples/soak.rs`),
/// in release mode. It prints its figures and fails if any check fails.
pub(crate) fn soak(root: &Path) -> Result<()> {
    run_command(cargo(root).args(["run", "--release", "-p", "pool-tokio", "--example", "soak"]))
}
