//! Debian packages a check needs, installed when missing: `apt-get update`, then `apt-get install -y`.

use std::process::Command;

use crate::Result;

/// Installs Debian's `package`, failing loudly when apt-get cannot.
pub(crate) fn install(package: &str) -> Result<()> {
    println!("installing Debian's {package}");
    for args in [&["update"][..], &["install", "-y", package][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get to install {package}: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`apt-get {}` failed ({status}); {package} is needed",
                args.join(" ")
            )
            .into());
        }
    }
    Ok(())
}
