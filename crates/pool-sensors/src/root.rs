//! [`SensorRoot`]: the directory the Linux sensors treat as `/`, so tests read fixture trees.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use pool_core::Instant;

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

/// A `/proc` file the sensors read on every sample, kept open: each read is a seek to 0 and a read, which
/// the kernel answers with fresh content, at half the cost of opening the file each time (on this gVisor
/// sandbox 7–8 µs against 15–16 for `/proc/self/status`, 7 against 15 for `/proc/meminfo`). The file is
/// opened again after a failed read, and every [`LAYOUT_RECHECK`](crate::LAYOUT_RECHECK), so a file that was
/// replaced is followed.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    file: Option<(Instant, File)>,
    buf: Vec<u8>,
}

/// A clone starts closed: a descriptor is not shared between sensors.
impl Clone for Kept {
    fn clone(&self) -> Self {
        Kept::default()
    }
}

impl Kept {
    /// The text of `abs` under `root` at `now`.
    pub(crate) fn read(&mut self, root: &SensorRoot, abs: &str, now: Instant) -> io::Result<&str> {
        let fresh = match &mut self.file {
            Some((opened, file))
                if now.saturating_duration_since(*opened) < crate::LAYOUT_RECHECK =>
            {
                file.seek(SeekFrom::Start(0)).is_err() || fill(file, &mut self.buf).is_err()
            }
            _ => true,
        };
        if fresh {
            self.file = None;
            let mut file = File::open(root.join(abs))?;
            fill(&mut file, &mut self.buf)?;
            self.file = Some((now, file));
        }
        std::str::from_utf8(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Reads `file` to its end into `buf`. Plain reads into a buffer kept from call to call: `read_to_string`
/// would also ask for the file's size and position on each call (a `statx` and an `lseek`), which cost as
/// much as the read itself here.
fn fill(file: &mut File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut len = 0;
    loop {
        if buf.len() < len + 4096 {
            buf.resize(len + 4096, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Kept, SensorRoot};
    use pool_core::Instant;

    #[test]
    fn a_kept_file_reads_what_was_written_since_and_a_replaced_one_after_the_layout_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let root = SensorRoot::new(dir.path());
        std::fs::create_dir_all(root.join("/proc")).unwrap();
        std::fs::write(root.join("/proc/meminfo"), "a").unwrap();
        let mut kept = Kept::default();
        let at = Instant::from_secs;
        assert_eq!(kept.read(&root, "/proc/meminfo", at(0)).unwrap(), "a");
        // Rewritten in place, as the kernel's files are: read through the open descriptor.
        std::fs::write(root.join("/proc/meminfo"), "bb").unwrap();
        assert_eq!(kept.read(&root, "/proc/meminfo", at(1)).unwrap(), "bb");
        // Replaced by another file: the descriptor still reads the old one until the recheck.
        std::fs::write(root.join("/proc/new"), "ccc").unwrap();
        std::fs::rename(root.join("/proc/new"), root.join("/proc/meminfo")).unwrap();
        assert_eq!(kept.read(&root, "/proc/meminfo", at(2)).unwrap(), "bb");
        let recheck = at(0) + crate::LAYOUT_RECHECK;
        assert_eq!(kept.read(&root, "/proc/meminfo", recheck).unwrap(), "ccc");
        // Gone: an error, and the next read opens again.
        std::fs::remove_file(root.join("/proc/meminfo")).unwrap();
        assert!(kept.clone().read(&root, "/proc/meminfo", recheck).is_err());
    }
}
