//! The Linux memory sensor: the process tree's PSS (RSS as a fallback), and the memory available to the
//! process (the tightest cgroup limit along its path, or physical memory) with the use within it.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use pool_core::Instant;

use crate::cgroup::Cgroups;
use crate::parse;
use crate::root::{Kept, SensorRoot, read_optional};
use crate::tree;
use crate::warn::Warnings;

/// Where a memory total came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotalSource {
    /// The tightest cgroup v1 or v2 limit along the process's cgroup path.
    Cgroup,
    /// `MemTotal` in `/proc/meminfo`.
    Physical,
    /// Neither could be read.
    Unknown,
}

/// One memory measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemorySample {
    /// This process plus its descendants: PSS where the kernel offers it, RSS otherwise.
    pub used_bytes: u64,
    /// Memory available to the process; `None` when unknown.
    pub total_bytes: Option<u64>,
    /// Memory in use by everyone within `total_bytes` (cgroup charge less reclaimable cache, or
    /// `MemTotal − MemAvailable`); `None` when unknown.
    pub system_used_bytes: Option<u64>,
    /// Where `total_bytes` came from.
    pub source: TotalSource,
}

/// A v1 limit at or above this many bytes is the "unlimited" sentinel even when `MemTotal` is unknown.
const V1_UNLIMITED: u64 = 1 << 62;

/// Reads process-tree memory and the memory available to the process, under a [`SensorRoot`].
///
/// Stateless but for the PSS latch: once `smaps_rollup` is found missing for the process itself (a kernel
/// older than 4.14), RSS is used for every process from then on.
#[derive(Clone, Debug)]
pub struct MemorySensor {
    root: SensorRoot,
    pid: u32,
    pss_available: bool,
    /// For [`MemorySensor::read_at`]: the limited cgroup levels, looked up at an instant.
    levels: Option<(Instant, Levels)>,
    descendants: tree::Descendants,
    /// `/proc/meminfo` and the process's own `status`, kept open for [`MemorySensor::read_at`].
    meminfo_file: Kept,
    status_file: Kept,
}

/// The cgroup levels along the process's paths that have a memory limit below `MemTotal`, with that limit.
#[derive(Clone, Debug, Default)]
struct Levels {
    limited: Vec<(PathBuf, &'static Files, u64)>,
}

impl MemorySensor {
    /// A sensor for process `pid` under `root`.
    pub fn new(root: SensorRoot, pid: u32) -> Self {
        MemorySensor {
            root,
            pid,
            pss_available: true,
            levels: None,
            descendants: tree::Descendants::default(),
            meminfo_file: Kept::default(),
            status_file: Kept::default(),
        }
    }

    /// Whether PSS is still in use (the process-wide latch has not tripped).
    pub fn uses_pss(&self) -> bool {
        self.pss_available
    }

    /// Measures everything, looking everything up again. `None` only when the process's own memory cannot
    /// be read.
    pub fn read(&mut self, w: &mut Warnings) -> Option<MemorySample> {
        let children = tree::descendants(&self.root, self.pid, "memory.children_unlisted", w);
        let used_bytes = self.tree_bytes(&children, None, w)?;
        let (total_bytes, system_used_bytes, source) = self.available(w);
        Some(MemorySample {
            used_bytes,
            total_bytes,
            system_used_bytes,
            source,
        })
    }

    /// Measures everything at `now`, as the pool's sensors do once a second: the limited cgroup levels and
    /// (where the kernel has no `children` files) the descendants are looked up again every
    /// [`LAYOUT_RECHECK`](crate::LAYOUT_RECHECK) of `now`; the charges, `/proc/meminfo` and every process's
    /// memory are read each time. `None` only when the process's own memory cannot be read.
    pub fn read_at(&mut self, now: Instant, w: &mut Warnings) -> Option<MemorySample> {
        let children =
            self.descendants
                .at(&self.root, self.pid, now, "memory.children_unlisted", w);
        let used_bytes = self.tree_bytes(&children, Some(now), w)?;
        let text = self.meminfo_file.read(&self.root, "/proc/meminfo", now);
        let (mem_total, mem_available) = meminfo(text, w);
        let levels = match &self.levels {
            Some((at, levels)) if now.saturating_duration_since(*at) < crate::LAYOUT_RECHECK => {
                levels.clone()
            }
            _ => {
                let levels = self.limited_levels(mem_total, w);
                self.levels = Some((now, levels.clone()));
                levels
            }
        };
        let (total_bytes, system_used_bytes, source) = within(&levels, mem_total, mem_available, w);
        Some(MemorySample {
            used_bytes,
            total_bytes,
            system_used_bytes,
            source,
        })
    }

    /// The memory available to the process and the use within it, looked up again on every call so that a
    /// resized container is followed.
    pub fn available(&self, w: &mut Warnings) -> (Option<u64>, Option<u64>, TotalSource) {
        let (mem_total, mem_available) = self.meminfo(w);
        let levels = self.limited_levels(mem_total, w);
        within(&levels, mem_total, mem_available, w)
    }

    /// Every level of the process's unified and v1 memory paths that has a limit below `mem_total`.
    fn limited_levels(&self, mem_total: Option<u64>, w: &mut Warnings) -> Levels {
        let cgroups = Cgroups::discover(&self.root, self.pid, w);
        let mut limited = Vec::new();
        for (h, f) in [(cgroups.unified.as_ref(), &V2), (cgroups.v1("memory"), &V1)] {
            for dir in h.iter().flat_map(|h| h.dirs.iter()) {
                if let Some(limit) = level_limit(dir, f, mem_total, w) {
                    limited.push((dir.clone(), f, limit));
                }
            }
        }
        Levels { limited }
    }

    fn meminfo(&self, w: &mut Warnings) -> (Option<u64>, Option<u64>) {
        let text = self.root.read("/proc/meminfo");
        meminfo(
            text.as_deref()
                .map_err(|e| io::Error::new(e.kind(), e.to_string())),
            w,
        )
    }

    /// This process plus its descendants, in bytes. `None` when the process itself cannot be read.
    pub fn process_tree_bytes(&mut self, w: &mut Warnings) -> Option<u64> {
        let children = tree::descendants(&self.root, self.pid, "memory.children_unlisted", w);
        self.tree_bytes(&children, None, w)
    }

    /// This process plus `children`, in bytes. Sampled at an instant and with no children, the process alone
    /// is measured by its RSS (`/proc/PID/status`, kept open), a tenth of the cost of `smaps_rollup`'s PSS:
    /// PSS exists to count the pages a tree shares once, and a process alone shares with no one it is
    /// measured with.
    fn tree_bytes(
        &mut self,
        children: &[u32],
        sampled_at: Option<Instant>,
        w: &mut Warnings,
    ) -> Option<u64> {
        let own = match sampled_at {
            Some(now) if children.is_empty() => {
                let text =
                    self.status_file
                        .read(&self.root, &format!("/proc/{}/status", self.pid), now);
                own_rss(text)
            }
            _ => self.process_bytes(self.pid, w),
        };
        let mut sum = match own {
            Ok(b) => b,
            Err(e) => {
                let pid = self.pid;
                w.warn("memory.self_unreadable", || {
                    format!(
                        "cannot read the memory of process {pid} itself ({e}); no memory reading"
                    )
                });
                return None;
            }
        };
        for &child in children {
            match self.process_bytes(child, w) {
                Ok(b) => sum = sum.saturating_add(b),
                Err(e) => w.warn("memory.child_unreadable", || {
                    format!("cannot read the memory of child process {child} ({e}); it counts as 0")
                }),
            }
        }
        Some(sum)
    }

    /// One process's PSS, or RSS when PSS is unavailable, denied or 0. A process that vanished is 0.
    fn process_bytes(&mut self, pid: u32, w: &mut Warnings) -> Result<u64, String> {
        if self.pss_available {
            match self.root.read(format!("/proc/{pid}/smaps_rollup")) {
                Ok(t) => match parse::kb_field(&t, "Pss") {
                    Ok(Some(b)) if b > 0 => return Ok(b),
                    _ => w.warn("memory.pss_fallback", || {
                        format!(
                            "/proc/{pid}/smaps_rollup has no usable Pss; using RSS for that process"
                        )
                    }),
                },
                Err(e) if e.kind() == ErrorKind::NotFound && pid == self.pid => {
                    self.pss_available = false;
                    w.warn("memory.pss_unavailable", || {
                        format!(
                            "/proc/{pid}/smaps_rollup does not exist (kernel older than 4.14?); using RSS for every process"
                        )
                    });
                }
                // A child may just have exited: RSS tells.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => w.warn("memory.pss_fallback", || {
                    format!(
                        "cannot read /proc/{pid}/smaps_rollup ({e}); using RSS for that process"
                    )
                }),
            }
        }
        self.rss_bytes(pid)
    }

    /// One process's RSS from `/proc/PID/status`. A process that vanished, a zombie or a kernel thread is 0.
    fn rss_bytes(&self, pid: u32) -> Result<u64, String> {
        match self.root.read(format!("/proc/{pid}/status")) {
            Ok(t) => match parse::kb_field(&t, "VmRSS") {
                Ok(Some(b)) => Ok(b),
                // Zombies and kernel threads have no VmRSS: they hold no user memory.
                Ok(None) if pid != self.pid => Ok(0),
                Ok(None) => Err("no VmRSS in /proc/PID/status".into()),
                Err(()) => Err("garbage VmRSS in /proc/PID/status".into()),
            },
            Err(e) if e.kind() == ErrorKind::NotFound && pid != self.pid => Ok(0),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The file names of one cgroup version's memory controller.
#[derive(Debug)]
struct Files {
    limit: &'static str,
    usage: &'static str,
    inactive_file: &'static str,
    dirty: &'static str,
    writeback: &'static str,
}

const V2: Files = Files {
    limit: "memory.max",
    usage: "memory.current",
    inactive_file: "inactive_file",
    dirty: "file_dirty",
    writeback: "file_writeback",
};

const V1: Files = Files {
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
    inactive_file: "total_inactive_file",
    dirty: "total_dirty",
    writeback: "total_writeback",
};

/// The memory available to the process and the use within it: the tightest of the limited `levels`, with
/// the least headroom under any of them (each level's charge read now), else physical memory.
fn within(
    levels: &Levels,
    mem_total: Option<u64>,
    mem_available: Option<u64>,
    w: &mut Warnings,
) -> (Option<u64>, Option<u64>, TotalSource) {
    let mut tightest: Option<u64> = None;
    let mut headroom: Option<u64> = None;
    let mut usage_unknown = false;
    for (dir, f, limit) in &levels.limited {
        tightest = Some(tightest.map_or(*limit, |l| l.min(*limit)));
        match charged(dir, f, w) {
            Some(c) => {
                let room = limit.saturating_sub(c);
                headroom = Some(headroom.map_or(room, |r| r.min(room)));
            }
            None => usage_unknown = true,
        }
    }
    match (tightest, mem_total) {
        (Some(l), _) => {
            let used = (!usage_unknown).then(|| l - headroom.unwrap_or(l).min(l));
            (Some(l), used, TotalSource::Cgroup)
        }
        (None, Some(t)) => {
            let used = mem_available.map(|a| t.saturating_sub(a));
            (Some(t), used, TotalSource::Physical)
        }
        (None, None) => (None, None, TotalSource::Unknown),
    }
}

/// A level's hard limit, or `None` when it has none (absent file, `max`, at or above physical memory) or
/// when it cannot be used (unreadable or garbage, with a warning).
fn level_limit(dir: &Path, f: &Files, mem_total: Option<u64>, w: &mut Warnings) -> Option<u64> {
    let path = dir.join(f.limit);
    let text = match read_optional(&path) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            w.warn("memory.limit_unreadable", || {
                format!(
                    "cannot read {} ({e}); that level's limit is ignored",
                    path.display()
                )
            });
            return None;
        }
    };
    match parse::u64_or_max(&text) {
        Ok(Some(l)) if mem_total.is_some_and(|t| l >= t) || l >= V1_UNLIMITED => None,
        Ok(l) => l,
        Err(()) => {
            w.warn("memory.limit_garbage", || {
                format!(
                    "{} holds {:?}, not a byte count or `max`; that level's limit is ignored",
                    path.display(),
                    text.trim()
                )
            });
            None
        }
    }
}

/// What a level is charged, less the reclaimable inactive file cache that is not dirty or under writeback.
fn charged(dir: &Path, f: &Files, w: &mut Warnings) -> Option<u64> {
    let path = dir.join(f.usage);
    let usage = match std::fs::read_to_string(&path).map(|t| t.trim().parse::<u64>()) {
        Ok(Ok(u)) => u,
        Ok(Err(_)) => {
            w.warn("memory.usage_garbage", || {
                format!(
                    "{} is not a byte count; system-wide use is unknown",
                    path.display()
                )
            });
            return None;
        }
        Err(e) => {
            w.warn("memory.usage_unreadable", || {
                format!(
                    "cannot read {} ({e}); system-wide use is unknown",
                    path.display()
                )
            });
            return None;
        }
    };
    let stat_path = dir.join("memory.stat");
    let credit = match read_optional(&stat_path) {
        Ok(None) => 0,
        Ok(Some(stat)) => {
            let inactive = parse::keyed(&stat, f.inactive_file);
            let dirty = parse::keyed(&stat, f.dirty);
            let writeback = parse::keyed(&stat, f.writeback);
            match (inactive, dirty, writeback) {
                (Ok(i), Ok(d), Ok(wb)) => {
                    let i = i.unwrap_or(0);
                    i.saturating_sub(d.unwrap_or(0).saturating_add(wb.unwrap_or(0)))
                }
                _ => {
                    w.warn("memory.stat_garbage", || {
                        format!(
                            "{} has garbage values; no cache is credited",
                            stat_path.display()
                        )
                    });
                    0
                }
            }
        }
        Err(e) => {
            w.warn("memory.stat_unreadable", || {
                format!(
                    "cannot read {} ({e}); no cache is credited",
                    stat_path.display()
                )
            });
            0
        }
    };
    Some(usage.saturating_sub(credit))
}

/// `MemTotal` and `MemAvailable` from `/proc/meminfo`'s text, warning about what is missing.
fn meminfo(text: io::Result<&str>, w: &mut Warnings) -> (Option<u64>, Option<u64>) {
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            w.warn("memory.meminfo_unreadable", || {
                format!("cannot read /proc/meminfo ({e}); physical memory is unknown")
            });
            return (None, None);
        }
    };
    let total = match parse::kb_field(text, "MemTotal") {
        Ok(Some(t)) if t > 0 => Some(t),
        _ => {
            w.warn("memory.meminfo_garbage", || {
                "/proc/meminfo has no usable MemTotal; physical memory is unknown".into()
            });
            None
        }
    };
    let available = match parse::kb_field(text, "MemAvailable") {
        Ok(Some(a)) => Some(a),
        _ => {
            w.warn("memory.available_unknown", || {
                "/proc/meminfo has no usable MemAvailable (kernel older than 3.14?); system-wide use is unknown"
                    .into()
            });
            None
        }
    };
    (total, available)
}

/// The process's own RSS from its `/proc/PID/status` text.
fn own_rss(text: io::Result<&str>) -> Result<u64, String> {
    match text {
        Ok(t) => match parse::kb_field(t, "VmRSS") {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err("no VmRSS in /proc/PID/status".into()),
            Err(()) => Err("garbage VmRSS in /proc/PID/status".into()),
        },
        Err(e) => Err(e.to_string()),
    }
}
