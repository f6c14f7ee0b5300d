//! The process tree: a process's live descendants, which the memory and CPU sensors count as the process's
//! own (a crawler's browsers are part of what it uses).

use std::collections::HashSet;

use pool_core::Instant;

use crate::parse;
use crate::root::SensorRoot;
use crate::warn::Warnings;

/// A process's descendants as a sensor sees them from sample to sample: listed from the kernel's `children`
/// files on every sample while there are some, and every [`CHILDLESS_RELIST`] while there are none; rescanned
/// at most every
/// [`LAYOUT_RECHECK`](crate::LAYOUT_RECHECK) elsewhere (gVisor, kernels without `CONFIG_PROC_CHILDREN`),
/// where the scan reads one file per process on the host, the dearest part of a sample; a child started in
/// between is counted within that long.
#[derive(Clone, Debug, Default)]
pub(crate) struct Descendants {
    scanned: Option<(Instant, Vec<u32>)>,
    /// When the `children` files last showed no descendants.
    childless_at: Option<Instant>,
    /// Whether the kernel has `children` files, and when that was looked up: a property of the kernel,
    /// looked up again every `LAYOUT_RECHECK` like the rest of the layout.
    children_files: Option<(Instant, bool)>,
}

/// How long a process whose `children` files listed no descendants goes before they are listed again. Most
/// pools start no processes, and a listing reads one file per thread; a process with descendants is listed
/// on every sample.
pub const CHILDLESS_RELIST: core::time::Duration = core::time::Duration::from_secs(5);

impl Descendants {
    /// The descendants of `pid` at `now`.
    pub(crate) fn at(
        &mut self,
        root: &SensorRoot,
        pid: u32,
        now: Instant,
        code: &'static str,
        w: &mut Warnings,
    ) -> Vec<u32> {
        let files = match self.children_files {
            Some((at, files)) if now.saturating_duration_since(at) < crate::LAYOUT_RECHECK => files,
            _ => {
                let files = has_children_files(root, pid);
                self.children_files = Some((now, files));
                files
            }
        };
        if files {
            if self
                .childless_at
                .is_some_and(|at| now.saturating_duration_since(at) < CHILDLESS_RELIST)
            {
                return Vec::new();
            }
            let pids = listed(root, pid);
            self.childless_at = pids.is_empty().then_some(now);
            return pids;
        }
        match &self.scanned {
            Some((at, pids)) if now.saturating_duration_since(*at) < crate::LAYOUT_RECHECK => {
                pids.clone()
            }
            _ => {
                let pids = scanned(root, pid, code, w);
                self.scanned = Some((now, pids.clone()));
                pids
            }
        }
    }
}

fn has_children_files(root: &SensorRoot, pid: u32) -> bool {
    root.join(format!("/proc/{pid}/task/{pid}/children"))
        .exists()
}

/// Every descendant of `pid`, from `/proc/PID/task/TID/children` where the kernel has it, else by scanning
/// every `/proc/N/stat` for parent pids. A failure to list `/proc` warns under `code`.
pub(crate) fn descendants(
    root: &SensorRoot,
    pid: u32,
    code: &'static str,
    w: &mut Warnings,
) -> Vec<u32> {
    if has_children_files(root, pid) {
        listed(root, pid)
    } else {
        scanned(root, pid, code, w)
    }
}

/// The descendants from the kernel's `children` files.
fn listed(root: &SensorRoot, pid: u32) -> Vec<u32> {
    walk(pid, |p| children_of(root, p))
}

/// The descendants found by reading every process's parent from `/proc/N/stat`.
fn scanned(root: &SensorRoot, pid: u32, code: &'static str, w: &mut Warnings) -> Vec<u32> {
    let entries = match std::fs::read_dir(root.join("/proc")) {
        Ok(e) => e,
        Err(e) => {
            w.warn(code, || {
                format!("cannot list /proc ({e}); child processes are not counted")
            });
            return Vec::new();
        }
    };
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in entries.flatten() {
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if n == pid {
            continue;
        }
        if let Ok(t) = std::fs::read_to_string(entry.path().join("stat"))
            && let Some((ppid, _)) = parse::pid_stat(&t)
        {
            parents.push((n, ppid));
        }
    }
    walk(pid, |p| {
        parents
            .iter()
            .filter(|(_, pp)| *pp == p)
            .map(|(c, _)| *c)
            .collect()
    })
}

/// Every process below `pid` by way of `children`, each once (a pid reused mid-walk cannot loop).
fn walk(pid: u32, mut children: impl FnMut(u32) -> Vec<u32>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut seen = HashSet::from([pid]);
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children(p) {
            if seen.insert(c) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// The children of every thread of `pid`: a child belongs to the thread that forked it.
fn children_of(root: &SensorRoot, pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(root.join(format!("/proc/{pid}/task"))) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|s| s.parse::<u32>().ok()),
            );
        }
    }
    out
}
