//! `cargo xtask cross`: `cargo check` of the crates that touch the operating system, for Windows and macOS,
//! from whatever machine runs CI.
//!
//! `pool-sensors` reads `/proc` and `/sys` on Linux and goes through `sysinfo` elsewhere (`portable.rs`), and
//! the adapters pick runtime features per platform; a Linux-only CI would never compile those paths. Checking
//! needs only the targets' standard libraries, which rustup installs, and no linker or SDK.

use std::path::Path;

use crate::{Result, all_ok, cargo, ensure_target, run_command};

/// The non-Linux targets: the GNU Windows one (its standard library needs no MSVC) and Apple silicon.
const TARGETS: &[&str] = &["x86_64-pc-windows-gnu", "aarch64-apple-darwin"];

/// The crates with platform-specific code or dependencies.
const PACKAGES: &[&str] = &["pool-sensors", "pool-tokio", "pool-smol", "pool-async-std"];

/// Installs each target when it is missing (failing if rustup cannot), then checks every package for it.
pub(crate) fn run(root: &Path) -> Result<()> {
    let mut errors = Vec::new();
    for &target in TARGETS {
        if let Err(err) = ensure_target(target, "so the cross-platform check cannot run") {
            errors.push(err);
            continue;
        }
        let mut cmd = cargo(root);
        // Warnings are errors here as in the clippy step. With `--target`, RUSTFLAGS reach only the cross
        // artifacts, not the host's build scripts, so nothing the other steps built is rebuilt.
        cmd.arg("check")
            .args(["--target", target])
            .env("RUSTFLAGS", "-D warnings");
        for package in PACKAGES {
            cmd.args(["-p", package]);
        }
        errors.extend(run_command(&mut cmd).err());
    }
    all_ok(errors)
}

#[cfg(test)]
mod tests {
    use super::PACKAGES;
    use crate::{crate_dirs, package_name, project_root};

    #[test]
    fn every_checked_package_is_in_the_workspace() {
        let mut names = Vec::new();
        for dir in crate_dirs(&project_root()).unwrap() {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            names.push(package_name(&manifest).unwrap().to_owned());
        }
        for package in PACKAGES {
            assert!(names.iter().any(|n| n == package), "no package {package}");
        }
    }
}
