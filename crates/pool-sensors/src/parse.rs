//! Parsers for the Linux text files the sensors read. Pure functions of the text, so they are unit-tested
//! without a file system; `None` or `Err` means garbage, never a panic.

/// The lines of `/proc/PID/cgroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// The unified (v2) path, from the `0::PATH` line.
    pub(crate) unified: Option<String>,
    /// v1 hierarchies: the controllers (`cpu`, `cpuacct`, `name=systemd`) and the path.
    pub(crate) v1: Vec<(Vec<String>, String)>,
}

#[cfg(test)]
impl ProcCgroup {
    /// The v1 path of the hierarchy that carries `controller`.
    pub(crate) fn v1_path(&self, controller: &str) -> Option<&str> {
        self.v1
            .iter()
            .find(|(c, _)| c.iter().any(|c| c == controller))
            .map(|(_, p)| p.as_str())
    }
}

/// Parses `/proc/PID/cgroup`: `ID:CONTROLLERS:PATH` per line. Lines that do not fit are skipped.
pub(crate) fn proc_cgroup(text: &str) -> ProcCgroup {
    let mut out = ProcCgroup::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        if id == "0" && ctrls.is_empty() {
            out.unified = Some(path.to_owned());
        } else if !ctrls.is_empty() {
            let list = ctrls.split(',').map(str::to_owned).collect();
            out.v1.push((list, path.to_owned()));
        }
    }
    out
}

/// A cgroup file system from `/proc/PID/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The cgroup path that the mount shows at its mount point (`/` unless bind-mounted from deeper).
    pub(crate) root: String,
    /// Where it is mounted, absolute in the (real or fixture) file system.
    pub(crate) point: String,
    /// `None` for cgroup2; the controllers of a v1 hierarchy otherwise.
    pub(crate) controllers: Option<Vec<String>>,
}

/// The cgroup and cgroup2 mounts in `/proc/PID/mountinfo`. Other mounts and malformed lines are skipped.
pub(crate) fn mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split_whitespace().collect();
        let right: Vec<&str> = right.split_whitespace().collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let controllers = match right[0] {
            "cgroup2" => None,
            "cgroup" => Some(
                right[2]
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("noprefix"))
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => continue,
        };
        out.push(Mount {
            root: unescape(left[3]),
            point: unescape(left[4]),
            controllers,
        });
    }
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
            && let Ok(v) = u8::try_from(
                u32::from(bytes[i + 1] - b'0') * 64
                    + u32::from(bytes[i + 2] - b'0') * 8
                    + u32::from(bytes[i + 3] - b'0'),
            )
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `Key: N kB` line of `/proc/meminfo` or `/proc/PID/status` or `smaps_rollup`, in bytes. `Ok(None)` when
/// the key is absent, `Err` when its value is garbage.
pub(crate) fn kb_field(text: &str, key: &str) -> Result<Option<u64>, ()> {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(key) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let n: u64 = it.next().and_then(|n| n.parse().ok()).ok_or(())?;
        return match it.next() {
            Some("kB") | None => n.checked_mul(1024).map(Some).ok_or(()),
            Some(_) => Err(()),
        };
    }
    Ok(None)
}

/// A `key value` line of a flat-keyed cgroup file (`memory.stat`, `cpu.stat`). `Ok(None)` when absent.
pub(crate) fn keyed(text: &str, key: &str) -> Result<Option<u64>, ()> {
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            return it.next().and_then(|v| v.parse().ok()).map(Some).ok_or(());
        }
    }
    Ok(None)
}

/// A single unsigned integer, or `max` (`Ok(None)`).
pub(crate) fn u64_or_max(text: &str) -> Result<Option<u64>, ()> {
    match text.trim() {
        "max" => Ok(None),
        t => t.parse().map(Some).map_err(|_| ()),
    }
}

/// `cpu.max`: `QUOTA PERIOD` in µs, `QUOTA` being `max` for none. `Ok(Some((quota, period)))` for a quota.
pub(crate) fn cpu_max(text: &str) -> Result<Option<(u64, u64)>, ()> {
    let mut it = text.split_whitespace();
    let quota = it.next().ok_or(())?;
    let period: u64 = match it.next() {
        Some(p) => p.parse().map_err(|_| ())?,
        None => 100_000,
    };
    if it.next().is_some() || period == 0 {
        return Err(());
    }
    match quota {
        "max" => Ok(None),
        q => q.parse().map(|q| Some((q, period))).map_err(|_| ()),
    }
}

/// A signed integer (v1 `cpu.cfs_quota_us`, where `-1` means none).
pub(crate) fn i64_value(text: &str) -> Result<i64, ()> {
    text.trim().parse().map_err(|_| ())
}

/// The number of CPUs in a cpuset list such as `0-3,8,10-11`. An empty list is `Err`: a cpuset without
/// CPUs cannot run this process, so it is garbage rather than a limit.
pub(crate) fn cpuset_count(text: &str) -> Result<u32, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Err(());
    }
    let mut n: u32 = 0;
    for part in text.split(',') {
        let count = match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().map_err(|_| ())?;
                let b: u32 = b.parse().map_err(|_| ())?;
                b.checked_sub(a).ok_or(())? + 1
            }
            None => {
                part.parse::<u32>().map_err(|_| ())?;
                1
            }
        };
        n = n.checked_add(count).ok_or(())?;
    }
    Ok(n)
}

/// Host CPU time from `/proc/stat`: busy and total jiffies summed over every CPU, and the number of online
/// CPUs (`cpuN` lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HostCpu {
    pub(crate) busy: u64,
    pub(crate) total: u64,
    pub(crate) online: u32,
}

/// Parses `/proc/stat`'s `cpu` line: `user nice system idle iowait irq softirq steal guest guest_nice`.
/// Busy is everything but idle and iowait; guest time is already inside user, so it is not added again.
pub(crate) fn proc_stat(text: &str) -> Option<HostCpu> {
    let mut host = None;
    let mut online = 0u32;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("cpu") => {
                let v: Vec<u64> = it.take(8).map(|f| f.parse().ok()).collect::<Option<_>>()?;
                if v.len() < 4 {
                    return None;
                }
                let total = v.iter().try_fold(0u64, |a, b| a.checked_add(*b))?;
                let idle = v[3] + v.get(4).copied().unwrap_or(0);
                host = Some((total - idle.min(total), total));
            }
            Some(c) if c.starts_with("cpu") && c[3..].bytes().all(|b| b.is_ascii_digit()) => {
                online += 1;
            }
            _ => {}
        }
    }
    let (busy, total) = host?;
    Some(HostCpu {
        busy,
        total,
        online,
    })
}

/// From `/proc/PID/stat`: the parent pid and utime + stime in clock ticks. The command name may hold spaces
/// and parentheses, so fields are counted after the last `)`.
pub(crate) fn pid_stat(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state(0) ppid(1) ... utime(11) stime(12), i.e. fields 14 and 15 of proc(5).
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime.checked_add(stime)?))
}

/// `utime + stime + cutime + cstime` from `/proc/PID/stat`, in clock ticks: the process's CPU time and that
/// of the children it has reaped, so a child's time stays counted once it exits.
pub(crate) fn pid_cpu_with_reaped(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let mut sum = 0u64;
    for i in 11..=14 {
        let v: i64 = f.get(i)?.parse().ok()?;
        sum = sum.checked_add(u64::try_from(v.max(0)).ok()?)?;
    }
    Some(sum)
}

/// The CPU count of `Cpus_allowed_list` in `/proc/PID/status`: the cores the process may run on.
pub(crate) fn allowed_cpus(status: &str) -> Option<u32> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    cpuset_count(line.trim()).ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_separates_the_unified_path_from_v1_hierarchies() {
        let c =
            proc_cgroup("12:cpu,cpuacct:/a/b\n4:memory:/m\n1:name=systemd:/s\n0::/u/v\ngarbage\n");
        assert_eq!(c.unified.as_deref(), Some("/u/v"));
        assert_eq!(c.v1_path("cpuacct"), Some("/a/b"));
        assert_eq!(c.v1_path("memory"), Some("/m"));
        assert_eq!(c.v1_path("cpuset"), None);
    }

    #[test]
    fn mountinfo_keeps_cgroup_mounts_with_their_controllers_and_unescapes_paths() {
        let m = mountinfo(
            "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
             32 31 0:29 /kube /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
             41 31 0:38 / /my\\040cg rw - cgroup2 cgroup2 rw,nsdelegate\n\
             short line\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].root, "/kube");
        assert_eq!(m[0].controllers, Some(vec!["cpu".into(), "cpuacct".into()]));
        assert_eq!(m[1].point, "/my cg");
        assert_eq!(m[1].controllers, None);
    }

    #[test]
    fn kb_fields_are_bytes_and_garbage_is_an_error() {
        let t = "MemTotal:       1000 kB\nMemAvailable: 250 kB\nBad: x kB\n";
        assert_eq!(kb_field(t, "MemTotal"), Ok(Some(1_024_000)));
        assert_eq!(kb_field(t, "MemAvailable"), Ok(Some(256_000)));
        assert_eq!(kb_field(t, "MemFree"), Ok(None));
        assert_eq!(kb_field(t, "Bad"), Err(()));
        assert_eq!(kb_field("X: 18446744073709551615 kB", "X"), Err(()));
    }

    #[test]
    fn keyed_files_find_exact_keys_only() {
        let t = "total_inactive_file 7\ninactive_file 5\nfile_dirty x\n";
        assert_eq!(keyed(t, "inactive_file"), Ok(Some(5)));
        assert_eq!(keyed(t, "file_dirty"), Err(()));
        assert_eq!(keyed(t, "file_writeback"), Ok(None));
    }

    #[test]
    fn cpu_max_reads_quota_and_period_and_max_means_none() {
        assert_eq!(cpu_max("200000 100000\n"), Ok(Some((200_000, 100_000))));
        assert_eq!(cpu_max("max 100000\n"), Ok(None));
        assert_eq!(cpu_max("50000"), Ok(Some((50_000, 100_000))));
        assert_eq!(cpu_max("abc 100000"), Err(()));
        assert_eq!(cpu_max("1 0"), Err(()));
        assert_eq!(cpu_max(""), Err(()));
    }

    #[test]
    fn cpuset_lists_count_ranges_and_singles() {
        assert_eq!(cpuset_count("0-3,8,10-11\n"), Ok(7));
        assert_eq!(cpuset_count("5"), Ok(1));
        assert_eq!(cpuset_count("\n"), Err(()));
        assert_eq!(cpuset_count("3-1"), Err(()));
        assert_eq!(cpuset_count("a-b"), Err(()));
    }

    #[test]
    fn proc_stat_counts_busy_total_and_online_cpus() {
        let t = "cpu  100 0 50 150 0 0 0 0 0 0\ncpu0 50 0 25 75 0 0 0 0 0 0\ncpu1 50 0 25 75 0 0 0 0 0 0\nintr 1\n";
        assert_eq!(
            proc_stat(t),
            Some(HostCpu {
                busy: 150,
                total: 300,
                online: 2
            })
        );
        assert_eq!(proc_stat("intr 1\n"), None);
        assert_eq!(proc_stat("cpu 1 x 3 4\n"), None);
    }

    #[test]
    fn pid_cpu_adds_the_reaped_childrens_time_to_the_processs_own() {
        let t = "42 (a) b) S 7 42 42 0 -1 4194560 100 0 0 0 30 12 5 3 20 0 1 0 5 1 1";
        assert_eq!(pid_cpu_with_reaped(t), Some(50));
        assert_eq!(
            pid_cpu_with_reaped("42 (x) S 7 1 1 0 -1 0 0 0 0 0 30 12"),
            None
        );
    }

    #[test]
    fn allowed_cpus_counts_the_affinity_list() {
        assert_eq!(
            allowed_cpus("Name:\tx\nCpus_allowed:\tf\nCpus_allowed_list:\t0-2,5\n"),
            Some(4)
        );
        assert_eq!(allowed_cpus("Name:\tx\n"), None);
    }

    #[test]
    fn pid_stat_counts_fields_after_the_last_parenthesis() {
        let t = "42 (a) b) c) S 7 42 42 0 -1 4194560 100 0 0 0 30 12 0 0 20 0 1 0 5 1 1";
        assert_eq!(pid_stat(t), Some((7, 42)));
        assert_eq!(pid_stat("42 (x) S"), None);
    }
}
