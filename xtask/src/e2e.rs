//! The `e2e` CI step: the end-to-end tests of `crates/e2e`, apart from the unit tests.
//!
//! They run on real clocks, real memory and loopback HTTP, so their time bounds are generous and a busy
//! machine shows up here, in a step of its own, rather than as a flaky unit test. The `test` step leaves the
//! crate out with `--exclude e2e`.

use std::path::Path;

use crate::{Result, cargo, run_command};

/// The package that holds the end-to-end tests.
pub(crate) const PACKAGE: &str = "e2e";

/// Runs every end-to-end test.
pub(crate) fn run(root: &Path) -> Result<()> {
    run_command(cargo(root).args(["test", "-p", PACKAGE, "--all-features"]))
}
