//! `cargo xtask sim [--fast]`: runs the scaling-policy simulator suite (`crates/pool-sim`).
//!
//! It prints the table (Crawlee's policy and the adaptive one, per scenario), writes
//! `target/sim/summary.json`, and, in the full form, the figures in `docs/img/`. CI runs the fast form (a
//! coarser oracle sweep, no figures).
//!
//! The step holds the default policy to the targets and to `crates/pool-sim/known-misses.txt`, whose entries
//! are floors (`latency-knee goodput >= 0.91`). It fails on a miss the file does not list, on a listed figure
//! below its floor, on a listed target that is met now (until its line is deleted), and on an entry that names
//! no scenario or target. The check itself is `pool_sim::known_misses`, next to the targets and figures it
//! reads, and unit-tested there; this step passes the file explicitly so that a missing file fails.

use std::path::Path;

use crate::{Result, cargo, run_command};

/// The known misses, relative to the workspace root.
const KNOWN_MISSES: &str = "crates/pool-sim/known-misses.txt";

/// Runs the suite; `fast` is the CI form.
pub(crate) fn run(root: &Path, fast: bool) -> Result<()> {
    let known = root.join(KNOWN_MISSES);
    if !known.is_file() {
        return Err(format!(
            "{} is missing, so the known misses cannot be checked",
            known.display()
        )
        .into());
    }
    let mut cmd = cargo(root);
    cmd.args(["run", "--quiet", "--release", "-p", "pool-sim", "--"]);
    if fast {
        cmd.arg("--fast");
    } else {
        cmd.args(["--img", "docs/img"]);
    }
    cmd.args(["--out", "target/sim", "--known-misses", KNOWN_MISSES]);
    run_command(&mut cmd)
}
