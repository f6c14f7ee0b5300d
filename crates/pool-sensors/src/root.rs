//! [`SensorRoot`]: the directory the Linux sensors treat as `/`, so tests read fixture trees.

use std::io;
use std::path::{Path, PathBuf};

/// The directory under which `/proc` and `/sys` are read; `/` in production, a fixture tree in tests.
///
/// # Examples
///
/// ```
/// let root = pool_sensors::SensorRoot::new("/tmp/fixture");
/// assert_eq!(root.join("/proc/meminfo"), std::path::Path::new("/tmp/fixture/proc/meminfo"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorRoot(PathBuf);

impl Default for SensorRoot {
    fn default() -> Self {
        SensorRoot(PathBuf::from("/"))
    }
}

impl SensorRoot {
    /// A root at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SensorRoot(path.into())
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `abs` (an absolute path such as `/proc/meminfo`) under this root.
    pub fn join(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.0.join(abs.strip_prefix("/").unwrap_or(abs))
    }

    /// Reads `abs` under this root as text.
    pub(crate) fn read(&self, abs: impl AsRef<Path>) -> io::Result<String> {
        std::fs::read_to_string(self.join(abs))
    }
}

/// Reads a file that may legitimately be absent: `Ok(None)` when nothing is there, `Err` when something is
/// there but cannot be read (a directory, a dangling symlink, a permission error).
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.symlink_metadata().is_err() => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
