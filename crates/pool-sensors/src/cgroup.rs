//! Where this process's cgroups are: its paths from `/proc/PID/cgroup`, mapped through the cgroup mounts of
//! `/proc/PID/mountinfo` to directories, leaf first and every ancestor up to the mount point.

use std::path::{Path, PathBuf};

use crate::parse::{self, Mount};
use crate::root::SensorRoot;
use crate::warn::Warnings;

/// One hierarchy's directories for this process, leaf first, ending at the hierarchy's mount point.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hierarchy {
    pub(crate) point: PathBuf,
    pub(crate) dirs: Vec<PathBuf>,
}

impl Hierarchy {
    /// The leaf directory (the process's own cgroup).
    pub(crate) fn leaf(&self) -> Option<&Path> {
        self.dirs.first().map(PathBuf::as_path)
    }
    /// The directory of this hierarchy at the same depth below its mount point as `dir` is below
    /// `other`'s, e.g. the cpuacct level that matches a cpu level.
    pub(crate) fn matching(&self, other: &Hierarchy, dir: &Path) -> Option<PathBuf> {
        let suffix = dir.strip_prefix(&other.point).ok()?;
        let d = self.point.join(suffix);
        self.dirs.contains(&d).then_some(d)
    }
}

/// The hierarchies this process belongs to.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cgroups {
    pub(crate) unified: Option<Hierarchy>,
    v1: Vec<(Vec<String>, Hierarchy)>,
}

impl Cgroups {
    /// The v1 hierarchy that carries `controller`.
    pub(crate) fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1
            .iter()
            .find(|(c, _)| c.iter().any(|c| c == controller))
            .map(|(_, h)| h)
    }

    /// Reads `/proc/PID/cgroup` and `/proc/PID/mountinfo` under `root`.
    ///
    /// Faults: an unreadable membership file gives no cgroups (`cgroup.membership_unreadable`); an
    /// unreadable mountinfo falls back to the conventional `/sys/fs/cgroup` layout
    /// (`cgroup.mountinfo_unreadable`); a path that does not exist under its mount falls back to the mount
    /// point (`cgroup.path_missing`).
    pub(crate) fn discover(root: &SensorRoot, pid: u32, w: &mut Warnings) -> Cgroups {
        let membership = match root.read(format!("/proc/{pid}/cgroup")) {
            Ok(t) => parse::proc_cgroup(&t),
            Err(e) => {
                w.warn("cgroup.membership_unreadable", || {
                    format!("cannot read /proc/{pid}/cgroup ({e}); cgroup limits are ignored")
                });
                return Cgroups::default();
            }
        };
        let mounts = match root.read(format!("/proc/{pid}/mountinfo")) {
            Ok(t) => Some(parse::mountinfo(&t)),
            Err(e) => {
                w.warn("cgroup.mountinfo_unreadable", || {
                    format!(
                        "cannot read /proc/{pid}/mountinfo ({e}); assuming cgroups are mounted under /sys/fs/cgroup"
                    )
                });
                None
            }
        };
        let mut out = Cgroups::default();
        if let Some(path) = &membership.unified {
            let mount = match &mounts {
                Some(m) => m.iter().find(|m| m.controllers.is_none()).cloned(),
                None => ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
                    .into_iter()
                    .find(|p| root.join(format!("{p}/cgroup.controllers")).exists())
                    .map(|p| conventional(p, None)),
            };
            out.unified = mount.map(|m| hierarchy(root, &m, path, w));
        }
        for (ctrls, path) in &membership.v1 {
            let mount = match &mounts {
                Some(m) => m
                    .iter()
                    .find(|m| {
                        m.controllers
                            .as_ref()
                            .is_some_and(|mc| ctrls.iter().all(|c| mc.contains(c)))
                    })
                    .cloned(),
                None => {
                    let joined = ctrls.join(",");
                    std::iter::once(joined.as_str())
                        .chain(ctrls.iter().map(String::as_str))
                        .map(|name| format!("/sys/fs/cgroup/{name}"))
                        .find(|p| root.join(p).is_dir())
                        .map(|p| conventional(&p, Some(ctrls.clone())))
                }
            };
            if let Some(m) = mount {
                out.v1.push((ctrls.clone(), hierarchy(root, &m, path, w)));
            }
        }
        out
    }
}

fn conventional(point: &str, controllers: Option<Vec<String>>) -> Mount {
    Mount {
        root: "/".into(),
        point: point.into(),
        controllers,
    }
}

/// The directories from the process's cgroup up to the mount point.
fn hierarchy(root: &SensorRoot, mount: &Mount, path: &str, w: &mut Warnings) -> Hierarchy {
    let point = root.join(&mount.point);
    // A path outside the cgroup namespace shows as `/..`; the mount point is the best we can see then.
    let rel = if path.split('/').any(|c| c == "..") {
        ""
    } else if mount.root == "/" {
        path
    } else {
        match path.strip_prefix(mount.root.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => "",
        }
    };
    let rel = rel.trim_start_matches('/');
    let mut leaf = point.join(rel);
    if !leaf.is_dir() {
        w.warn("cgroup.path_missing", || {
            format!(
                "cgroup directory {} does not exist; reading limits from the mount point {} only",
                leaf.display(),
                point.display()
            )
        });
        leaf = point.clone();
    }
    let mut dirs = Vec::new();
    let mut dir = leaf.as_path();
    loop {
        dirs.push(dir.to_path_buf());
        if dir == point {
            break;
        }
        match dir.parent() {
            Some(p) if p.starts_with(&point) => dir = p,
            _ => break,
        }
    }
    Hierarchy { point, dirs }
}
