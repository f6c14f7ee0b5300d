//! Fixture trees: a fake `/proc` and `/sys/fs/cgroup` in a temporary directory, read through a
//! `SensorRoot`.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::PathBuf;

use pool_sensors::{SensorRoot, Warnings};
use tempfile::TempDir;

/// The fixture's own process id.
pub const PID: u32 = 4242;
pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// A fixture tree: 8 GiB of physical memory with 6 GiB available, 2 online CPUs, and process [`PID`] with
/// 10 MiB PSS and 30 MiB RSS, in no cgroup until one of the layout methods is called.
pub struct Tree {
    dir: TempDir,
}

impl Tree {
    pub fn new() -> Self {
        let t = Tree {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        t.file(
            "/proc/meminfo",
            "MemTotal:        8388608 kB\nMemFree:         1000000 kB\nMemAvailable:    6291456 kB\n",
        );
        t.host_cpu(0, 0, 0, 2);
        t.process(PID, 1, 10 * MIB, 30 * MIB);
        t.file(&format!("/proc/{PID}/cgroup"), "0::/\n");
        t.file(&format!("/proc/{PID}/mountinfo"), "");
        t
    }

    pub fn root(&self) -> SensorRoot {
        SensorRoot::new(self.dir.path())
    }

    pub fn path(&self, abs: &str) -> PathBuf {
        self.root().join(abs)
    }

    /// Writes `content` at `abs`, creating parents.
    pub fn file(&self, abs: &str, content: &str) {
        let p = self.path(abs);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn mkdir(&self, abs: &str) {
        fs::create_dir_all(self.path(abs)).unwrap();
    }

    pub fn remove(&self, abs: &str) {
        let p = self.path(abs);
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
    }

    /// Makes `abs` unreadable even to root: a directory where a file should be.
    pub fn unreadable(&self, abs: &str) {
        let p = self.path(abs);
        let _ = fs::remove_file(&p);
        fs::create_dir_all(p).unwrap();
    }

    /// Makes `abs` a dangling symlink.
    pub fn dangling(&self, abs: &str) {
        let p = self.path(abs);
        let _ = fs::remove_file(&p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(self.path("/nowhere/at/all"), p).unwrap();
    }

    /// `/proc/stat` with `cpus` online CPUs and the given aggregate user, system and idle jiffies.
    pub fn host_cpu(&self, user: u64, system: u64, idle: u64, cpus: u32) {
        let mut s = format!("cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\n");
        for i in 0..cpus {
            s.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n"));
        }
        s.push_str("intr 0\nctxt 0\n");
        self.file("/proc/stat", &s);
    }

    /// A process with a parent, PSS and RSS (either may be 0 to write it as 0).
    pub fn process(&self, pid: u32, ppid: u32, pss: u64, rss: u64) {
        self.file(
            &format!("/proc/{pid}/smaps_rollup"),
            &format!(
                "00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\nRss: {} kB\nPss: {} kB\n",
                rss / 1024,
                pss / 1024
            ),
        );
        self.file(
            &format!("/proc/{pid}/status"),
            &format!("Name:\tp{pid}\nPPid:\t{ppid}\nVmRSS:\t{} kB\n", rss / 1024),
        );
        self.stat(pid, ppid, 0);
    }

    /// `/proc/PID/stat` with a parent and utime + stime ticks (all in utime).
    pub fn stat(&self, pid: u32, ppid: u32, ticks: u64) {
        self.file(
            &format!("/proc/{pid}/stat"),
            &format!("{pid} (p {pid}) S {ppid} 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 1 1 1\n"),
        );
    }

    /// Lists `children` in `/proc/PID/task/PID/children`, the kernel's fast path.
    pub fn children(&self, pid: u32, children: &[u32]) {
        let list: Vec<String> = children.iter().map(u32::to_string).collect();
        self.file(
            &format!("/proc/{pid}/task/{pid}/children"),
            &format!("{} ", list.join(" ")),
        );
    }

    /// Pure cgroup v2 at `/sys/fs/cgroup`, the process at `path`.
    pub fn v2(&self, path: &str) {
        self.file(&format!("/proc/{PID}/cgroup"), &format!("0::{path}\n"));
        self.file(
            &format!("/proc/{PID}/mountinfo"),
            "25 1 0:22 / / rw - ext4 /dev/root rw\n\
             30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        self.file("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu memory\n");
        self.mkdir(&format!("/sys/fs/cgroup{path}"));
    }

    /// Pure cgroup v1: memory, cpu+cpuacct (co-mounted) and cpuset hierarchies, the process at `path` in each.
    pub fn v1(&self, path: &str) {
        self.file(
            &format!("/proc/{PID}/cgroup"),
            &format!(
                "5:memory:{path}\n4:cpu,cpuacct:{path}\n3:cpuset:{path}\n1:name=systemd:{path}\n"
            ),
        );
        self.file(
            &format!("/proc/{PID}/mountinfo"),
            "31 25 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
             32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
             35 31 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n",
        );
        for h in ["memory", "cpu,cpuacct", "cpuset", "systemd"] {
            self.mkdir(&format!("/sys/fs/cgroup/{h}{path}"));
        }
    }

    /// Hybrid: v1 memory and cpu hierarchies plus cgroup2 at `/sys/fs/cgroup/unified` with no controllers.
    pub fn hybrid(&self, path: &str) {
        self.v1(path);
        let mut cg = fs::read_to_string(self.path(&format!("/proc/{PID}/cgroup"))).unwrap();
        cg.push_str(&format!("0::{path}\n"));
        self.file(&format!("/proc/{PID}/cgroup"), &cg);
        let mut mi = fs::read_to_string(self.path(&format!("/proc/{PID}/mountinfo"))).unwrap();
        mi.push_str("36 31 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        self.file(&format!("/proc/{PID}/mountinfo"), &mi);
        self.file("/sys/fs/cgroup/unified/cgroup.controllers", "");
        self.mkdir(&format!("/sys/fs/cgroup/unified{path}"));
    }
}

/// Asserts that exactly these warning codes (in any order) were met.
pub fn assert_warned(w: &Warnings, codes: &[&str]) {
    let mut got: Vec<&str> = w.all().iter().map(|w| w.code).collect();
    got.sort_unstable();
    let mut want = codes.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "warnings: {:#?}", w.all());
}
