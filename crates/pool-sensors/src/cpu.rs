//! The Linux CPU sensor: a non-blocking delta between two samples, against a cgroup CPU limit when one
//! binds, the whole host otherwise, or one core for process-relative CPU.

use std::path::{Path, PathBuf};

use pool_core::Instant;

use crate::cgroup::Cgroups;
use crate::parse;
use crate::root::{Kept, SensorRoot};
use crate::tree;
use crate::warn::Warnings;

/// What CPU utilisation means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CpuMode {
    /// The cgroup's usage against its limit (quota or cpuset) when one binds; else this process and its
    /// descendants' CPU time over the cores the process may run on (its affinity list). Other processes on
    /// the host do not count: a neighbour's CPU must not collapse the pool. A host that neighbours saturate
    /// shows instead as scheduler lag (the event-loop signal) and slower tasks (the adaptive policy's
    /// throughput), which are what it costs the pool.
    #[default]
    Auto,
    /// The host's busy share over every CPU (`/proc/stat`), ignoring cgroup limits: what Crawlee reads, and
    /// what a pool that should yield to everything else on its host wants.
    Host,
    /// This process's CPU time over one core: for single-threaded workloads on many-core hosts, which look
    /// idle host-wide while their own core is saturated (crawlee-python #1119).
    Process,
}

/// Where a CPU ratio came from.
#[derive(Clone, Debug, PartialEq)]
pub enum CpuSource {
    /// `/proc/stat`, busy over total jiffies of every CPU.
    Host,
    /// A cgroup usage counter against a limit of this many cores.
    Cgroup {
        /// The usage counter read (`cpu.stat` or `cpuacct.usage`).
        usage: PathBuf,
        /// The binding limit, in cores.
        cores: f64,
    },
    /// `/proc/PID/stat` utime + stime over one core.
    Process,
    /// The process tree's CPU time (`/proc/PID/stat` of the process and every live descendant, with the
    /// time of the children they reaped) over this many cores.
    ProcessTree {
        /// The cores the process may run on.
        cores: f64,
    },
}

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`): 100 on every mainstream architecture, fixed by
/// the kernel ABI whatever the kernel's internal `HZ`.
const USER_HZ: u64 = 100;

/// Windows shorter than this give no reading; the baseline is kept so the next window is longer.
const MIN_WINDOW_NANOS: u64 = 10_000_000;

/// What `Auto` looked up at `at`: the binding limit, the online CPUs and the cores the affinity allows.
#[derive(Clone, Debug)]
struct Layout {
    at: Instant,
    limit: Option<Candidate>,
    online: Option<f64>,
    allowed: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
enum Baseline {
    Host {
        busy: u64,
        total: u64,
    },
    Timed {
        key: Key,
        value_ns: u64,
        at: Instant,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Key {
    Cgroup(PathBuf),
    Process,
    Tree,
}

/// Computes CPU utilisation between consecutive calls; the first call (and the first after the source
/// changes or a counter goes backwards) only sets the baseline.
#[derive(Clone, Debug)]
pub struct CpuSensor {
    root: SensorRoot,
    pid: u32,
    mode: CpuMode,
    prev: Option<Baseline>,
    last_source: Option<CpuSource>,
    layout: Option<Layout>,
    descendants: tree::Descendants,
    /// The process's own `/proc/PID/stat`, kept open.
    stat_file: Kept,
}

/// A limit candidate: cores and where its usage is counted.
#[derive(Clone, Debug)]
struct Candidate {
    cores: f64,
    usage: PathBuf,
    kind: UsageKind,
}

#[derive(Clone, Copy, Debug)]
enum UsageKind {
    /// `cpu.stat`'s `usage_usec`.
    V2,
    /// `cpuacct.usage`, nanoseconds.
    V1,
}

impl CpuSensor {
    /// A sensor for process `pid` under `root`.
    pub fn new(root: SensorRoot, pid: u32, mode: CpuMode) -> Self {
        CpuSensor {
            root,
            pid,
            mode,
            prev: None,
            last_source: None,
            layout: None,
            descendants: tree::Descendants::default(),
            stat_file: Kept::default(),
        }
    }

    /// Where the latest ratio came from.
    pub fn source(&self) -> Option<&CpuSource> {
        self.last_source.as_ref()
    }

    /// The busy share since the previous call, in [0, 1], or `None` when there is no baseline yet, the
    /// window is under 10 ms, or nothing could be read. Never blocks.
    pub fn read(&mut self, now: Instant, w: &mut Warnings) -> Option<f64> {
        match self.mode {
            CpuMode::Process => self.process(now, w),
            CpuMode::Host => self.host(w),
            CpuMode::Auto => {
                let Layout {
                    limit,
                    online,
                    allowed,
                    ..
                } = self.layout(now, w);
                if let Some(c) = limit
                    && let Some(ns) = read_usage(&c, w)
                {
                    let r = self.timed(Key::Cgroup(c.usage.clone()), ns, now, c.cores, w);
                    self.last_source = Some(CpuSource::Cgroup {
                        usage: c.usage,
                        cores: c.cores,
                    });
                    return r;
                }
                let cores = match (allowed, online) {
                    (Some(a), Some(o)) => a.min(o),
                    (a, o) => a.or(o).unwrap_or(1.0),
                };
                self.tree(now, cores, w)
            }
        }
    }

    /// The layout `Auto` reads against, looked up again every [`LAYOUT_RECHECK`] of `now`.
    ///
    /// [`LAYOUT_RECHECK`]: crate::LAYOUT_RECHECK
    fn layout(&mut self, now: Instant, w: &mut Warnings) -> Layout {
        if let Some(l) = &self.layout
            && now.saturating_duration_since(l.at) < crate::LAYOUT_RECHECK
        {
            return l.clone();
        }
        let online = self
            .host_counters(w)
            .map(|h| f64::from(h.online))
            .filter(|n| *n > 0.0);
        let limit = self.binding_limit(online, w);
        let allowed = self
            .root
            .read(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|t| parse::allowed_cpus(&t))
            .map(f64::from);
        let layout = Layout {
            at: now,
            limit,
            online,
            allowed,
        };
        self.layout = Some(layout.clone());
        layout
    }

    /// The process tree's CPU time over `cores`.
    fn tree(&mut self, now: Instant, cores: f64, w: &mut Warnings) -> Option<f64> {
        let pid = self.pid;
        let own = match self
            .stat_file
            .read(&self.root, &format!("/proc/{pid}/stat"), now)
        {
            Ok(t) => parse::pid_cpu_with_reaped(t),
            Err(e) => {
                w.warn("cpu.process_unreadable", || {
                    format!("cannot read /proc/{pid}/stat ({e}); no process CPU reading")
                });
                return None;
            }
        };
        let Some(mut ticks) = own else {
            w.warn("cpu.process_garbage", || {
                format!("/proc/{pid}/stat is garbage; no process CPU reading")
            });
            return None;
        };
        for child in self
            .descendants
            .at(&self.root, pid, now, "cpu.children_unlisted", w)
        {
            // A child that ended between the listing and this read is simply gone; its parent reaps its time.
            if let Ok(t) = self.root.read(format!("/proc/{child}/stat"))
                && let Some(v) = parse::pid_cpu_with_reaped(&t)
            {
                ticks = ticks.saturating_add(v);
            }
        }
        self.last_source = Some(CpuSource::ProcessTree { cores });
        let ns = ticks.saturating_mul(1_000_000_000 / USER_HZ);
        self.timed(Key::Tree, ns, now, cores, w)
    }

    fn host(&mut self, w: &mut Warnings) -> Option<f64> {
        let h = self.host_counters(w);
        self.host_from(h, w)
    }

    fn host_from(&mut self, h: Option<parse::HostCpu>, w: &mut Warnings) -> Option<f64> {
        let h = h?;
        self.last_source = Some(CpuSource::Host);
        let next = Baseline::Host {
            busy: h.busy,
            total: h.total,
        };
        let Some(Baseline::Host { busy, total }) = self.prev.replace(next.clone()) else {
            return None;
        };
        if h.busy < busy || h.total < total {
            w.warn("cpu.counter_backwards", || {
                "/proc/stat CPU counters went backwards; the baseline is reset and this sample skipped".into()
            });
            return None;
        }
        let (db, dt) = (h.busy - busy, h.total - total);
        if dt == 0 {
            // No tick elapsed: keep the older baseline so the next window is long enough.
            self.prev = Some(Baseline::Host { busy, total });
            return None;
        }
        Some((db as f64 / dt as f64).clamp(0.0, 1.0))
    }

    fn host_counters(&self, w: &mut Warnings) -> Option<parse::HostCpu> {
        match self.root.read("/proc/stat") {
            Ok(t) => {
                let h = parse::proc_stat(&t);
                if h.is_none() {
                    w.warn("cpu.stat_garbage", || {
                        "/proc/stat has no usable `cpu` line; no CPU reading".into()
                    });
                }
                h
            }
            Err(e) => {
                w.warn("cpu.stat_unreadable", || {
                    format!("cannot read /proc/stat ({e}); no host CPU reading")
                });
                None
            }
        }
    }

    fn process(&mut self, now: Instant, w: &mut Warnings) -> Option<f64> {
        let pid = self.pid;
        let ticks = match self
            .stat_file
            .read(&self.root, &format!("/proc/{pid}/stat"), now)
        {
            Ok(t) => match parse::pid_stat(t) {
                Some((_, ticks)) => ticks,
                None => {
                    w.warn("cpu.process_garbage", || {
                        format!("/proc/{pid}/stat is garbage; no process CPU reading")
                    });
                    return None;
                }
            },
            Err(e) => {
                w.warn("cpu.process_unreadable", || {
                    format!("cannot read /proc/{pid}/stat ({e}); no process CPU reading")
                });
                return None;
            }
        };
        self.last_source = Some(CpuSource::Process);
        let ns = ticks.saturating_mul(1_000_000_000 / USER_HZ);
        self.timed(Key::Process, ns, now, 1.0, w)
    }

    /// `Δusage / (Δwall × cores)` against the previous sample of the same counter.
    fn timed(
        &mut self,
        key: Key,
        value_ns: u64,
        now: Instant,
        cores: f64,
        w: &mut Warnings,
    ) -> Option<f64> {
        let next = Baseline::Timed {
            key: key.clone(),
            value_ns,
            at: now,
        };
        let prev = self.prev.replace(next);
        let Some(Baseline::Timed {
            key: pk,
            value_ns: pv,
            at: pat,
        }) = &prev
        else {
            return None;
        };
        let (pv, pat) = (*pv, *pat);
        if *pk != key {
            return None;
        }
        if value_ns < pv {
            // A tree's total falls for a moment when a child ends before its parent reaps it (or is reaped
            // by init): a new baseline, not a fault.
            if key == Key::Tree {
                return None;
            }
            w.warn("cpu.counter_backwards", || {
                "a CPU usage counter went backwards; the baseline is reset and this sample skipped"
                    .into()
            });
            return None;
        }
        let wall = now.saturating_duration_since(pat).as_nanos() as u64;
        if wall < MIN_WINDOW_NANOS {
            self.prev = prev;
            return None;
        }
        let used = (value_ns - pv) as f64;
        Some((used / (wall as f64 * cores)).clamp(0.0, 1.0))
    }

    /// The smallest cgroup CPU limit (quota along the path, or cpuset size) below the number of online
    /// CPUs, and the usage counter at the level where it binds.
    fn binding_limit(&self, online: Option<f64>, w: &mut Warnings) -> Option<Candidate> {
        let cg = Cgroups::discover(&self.root, self.pid, w);
        let mut candidates = Vec::new();
        if let Some(h) = &cg.unified {
            for dir in &h.dirs {
                if let Some(cores) = quota_v2(dir, w) {
                    candidates.push(Candidate {
                        cores,
                        usage: dir.join("cpu.stat"),
                        kind: UsageKind::V2,
                    });
                }
            }
            if let Some(leaf) = h.leaf()
                && let Some(n) = cpuset(&leaf.join("cpuset.cpus.effective"), w)
            {
                candidates.push(Candidate {
                    cores: f64::from(n),
                    usage: leaf.join("cpu.stat"),
                    kind: UsageKind::V2,
                });
            }
        }
        let acct = cg.v1("cpuacct");
        if let (Some(cpu), Some(acct)) = (cg.v1("cpu"), acct) {
            for dir in &cpu.dirs {
                if let Some(cores) = quota_v1(dir, w)
                    && let Some(usage_dir) = acct.matching(cpu, dir)
                {
                    candidates.push(Candidate {
                        cores,
                        usage: usage_dir.join("cpuacct.usage"),
                        kind: UsageKind::V1,
                    });
                }
            }
        }
        if let (Some(set), Some(acct)) = (cg.v1("cpuset"), acct)
            && let (Some(leaf), Some(acct_leaf)) = (set.leaf(), acct.leaf())
        {
            let effective = leaf.join("cpuset.effective_cpus");
            let file = if effective.exists() {
                effective
            } else {
                leaf.join("cpuset.cpus")
            };
            if let Some(n) = cpuset(&file, w) {
                candidates.push(Candidate {
                    cores: f64::from(n),
                    usage: acct_leaf.join("cpuacct.usage"),
                    kind: UsageKind::V1,
                });
            }
        }
        candidates
            .into_iter()
            .filter(|c| online.is_none_or(|n| c.cores < n))
            .min_by(|a, b| a.cores.total_cmp(&b.cores))
    }
}

/// Reads a text file, `None` if absent; other failures warn under `code`.
fn read_optional(path: &Path, code: &'static str, w: &mut Warnings) -> Option<String> {
    match crate::root::read_optional(path) {
        Ok(t) => t,
        Err(e) => {
            w.warn(code, || {
                format!(
                    "cannot read {} ({e}); that CPU limit is ignored",
                    path.display()
                )
            });
            None
        }
    }
}

fn quota_v2(dir: &Path, w: &mut Warnings) -> Option<f64> {
    let path = dir.join("cpu.max");
    let text = read_optional(&path, "cpu.limit_unreadable", w)?;
    match parse::cpu_max(&text) {
        Ok(Some((q, p))) if q > 0 => Some(q as f64 / p as f64),
        Ok(_) => None,
        Err(()) => {
            w.warn("cpu.limit_garbage", || {
                format!(
                    "{} holds {:?}; that CPU limit is ignored",
                    path.display(),
                    text.trim()
                )
            });
            None
        }
    }
}

fn quota_v1(dir: &Path, w: &mut Warnings) -> Option<f64> {
    let qpath = dir.join("cpu.cfs_quota_us");
    let quota = read_optional(&qpath, "cpu.limit_unreadable", w)?;
    let ppath = dir.join("cpu.cfs_period_us");
    let period = read_optional(&ppath, "cpu.limit_unreadable", w)?;
    match (parse::i64_value(&quota), parse::i64_value(&period)) {
        (Ok(q), _) if q <= 0 => None,
        (Ok(q), Ok(p)) if p > 0 => Some(q as f64 / p as f64),
        _ => {
            w.warn("cpu.limit_garbage", || {
                format!(
                    "{} / {} hold {:?} / {:?}; that CPU limit is ignored",
                    qpath.display(),
                    ppath.display(),
                    quota.trim(),
                    period.trim()
                )
            });
            None
        }
    }
}

fn cpuset(path: &Path, w: &mut Warnings) -> Option<u32> {
    let text = read_optional(path, "cpu.limit_unreadable", w)?;
    match parse::cpuset_count(&text) {
        Ok(n) => Some(n),
        Err(()) => {
            w.warn("cpu.limit_garbage", || {
                format!(
                    "{} holds {:?}; that cpuset is ignored",
                    path.display(),
                    text.trim()
                )
            });
            None
        }
    }
}

/// The usage counter of a binding limit, in nanoseconds.
fn read_usage(c: &Candidate, w: &mut Warnings) -> Option<u64> {
    let value = std::fs::read_to_string(&c.usage)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            match c.kind {
                UsageKind::V2 => parse::keyed(&t, "usage_usec")
                    .ok()
                    .flatten()
                    .and_then(|us| us.checked_mul(1000)),
                UsageKind::V1 => t.trim().parse().ok(),
            }
            .ok_or_else(|| format!("garbage {:?}", t.trim()))
        });
    match value {
        Ok(ns) => Some(ns),
        Err(e) => {
            w.warn("cpu.usage_unreadable", || {
                format!(
                    "cannot use {} ({e}); CPU is measured host-wide instead of against the cgroup limit",
                    c.usage.display()
                )
            });
            None
        }
    }
}
