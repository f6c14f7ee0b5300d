//! `cargo xtask nostd`: proves that `pool-core` builds for a bare-metal target and names no runtime.

use std::{path::Path, process::Stdio};

use crate::{Result, all_ok, cargo, display, ensure_target, run_command};

/// A target without `std`, so any accidental use of it fails to build.
pub(crate) const TARGET: &str = "thumbv7em-none-eabihf";

/// Crates that would tie the sans-IO core to one async runtime; only adapters may name them.
const RUNTIMES: &[&str] = &[
    "tokio",
    "smol",
    "async-std",
    "async-io",
    "async-executor",
    "futures-util",
];

/// The package under test, with `std` switched off.
const CORE: [&str; 3] = ["-p", "pool-core", "--no-default-features"];

/// Builds `pool-core` for [`TARGET`] with and without `alloc`, then checks its dependency tree.
pub(crate) fn run(root: &Path) -> Result<()> {
    ensure_target(TARGET, "so the no_std build cannot be checked")?;
    let mut errors = Vec::new();
    for features in [&[][..], &["--features", "alloc"]] {
        let mut cmd = cargo(root);
        cmd.arg("build")
            .args(CORE)
            .args(["--target", TARGET])
            .args(features);
        errors.extend(run_command(&mut cmd).err());
    }
    errors.extend(check_no_runtime(root).err());
    all_ok(errors)
}

fn check_no_runtime(root: &Path) -> Result<()> {
    let mut cmd = cargo(root);
    cmd.arg("tree")
        .args(CORE)
        .args(["--features", "alloc", "-e", "normal"]);
    // Only stdout is parsed; warnings on stderr go straight to the log.
    cmd.stderr(Stdio::inherit());
    let shown = display(&cmd);
    println!("$ {shown}");
    let output = cmd
        .output()
        .map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    if !output.status.success() {
        return Err(format!("`{shown}` failed ({})", output.status).into());
    }
    let named = runtimes_named(&String::from_utf8_lossy(&output.stdout));
    if named.is_empty() {
        Ok(())
    } else {
        let hint = "`cargo tree -i NAME` shows which dependency pulls it in";
        Err(format!(
            "pool-core depends on a runtime: {} ({hint})",
            named.join(", ")
        )
        .into())
    }
}

/// The runtimes that appear as crate names in `cargo tree` output.
fn runtimes_named(tree: &str) -> Vec<&'static str> {
    // Whole words are compared, so a crate such as `futures-lite` is not mistaken for a runtime.
    let words: Vec<&str> = tree.split_whitespace().collect();
    RUNTIMES
        .iter()
        .copied()
        .filter(|runtime| words.contains(runtime))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::runtimes_named;

    #[test]
    fn runtimes_are_matched_by_whole_crate_name() {
        let tree = "pool-core v0.1.0\n├── futures-lite v2.6.0\n└── tokio v1.0.0 (*)\n";
        assert_eq!(runtimes_named(tree), ["tokio"]);
        assert!(runtimes_named("pool-core v0.1.0\n└── async-io-extra v1.0.0\n").is_empty());
    }
}
