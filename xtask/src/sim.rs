//! `cargo xtask sim [--fast]`: runs the scaling-policy simulator suite (`crates/pool-sim`).
//!
//! It prints the table (Crawlee's policy and the adaptive one, per scenario), writes
//! `target/sim/summary.json`, and, in the full form, the figures in `docs/img/`. It fails if the default
//! policy misses a target that `crates/pool-sim/known-misses.txt` does not list. CI runs the fast form
//! (a coarser oracle sweep, no figures).

use std::path::Path;

use crate::{Result, cargo, run_command};

/// Runs the suite; `fast` is the CI form.
pub(crate) fn run(root: &Path, fast: bool) -> Result<()> {
    let mut cmd = cargo(root);
    cmd.args(["run", "--quiet", "--release", "-p", "pool-sim", "--"]);
    if fast {
        cmd.arg("--fast");
    } else {
        cmd.args(["--img", "docs/img"]);
    }
    cmd.args(["--out", "target/sim"]);
    run_command(&mut cmd)
}
