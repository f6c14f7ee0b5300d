//! The CPU sensor on fixture trees: deltas between samples (counters are rewritten between calls, never
//! slept on), host-wide, cgroup quota and cpuset limits in v1 and v2, process-relative CPU, and faults.

mod common;

use std::time::Duration;

use common::{PID, Tree, assert_warned};
use pool_core::Instant;
use pool_sensors::{CpuMode, CpuSensor, CpuSource, Warnings};

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

struct Run {
    sensor: CpuSensor,
    w: Warnings,
}

impl Run {
    fn new(t: &Tree, mode: CpuMode) -> Self {
        Run {
            sensor: CpuSensor::new(t.root(), PID, mode),
            w: Warnings::new(),
        }
    }
    fn read(&mut self, ms: u64) -> Option<f64> {
        self.sensor.read(at(ms), &mut self.w)
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn the_first_sample_only_sets_the_baseline() {
    let t = Tree::new();
    for mode in [CpuMode::Auto, CpuMode::Host, CpuMode::Process] {
        assert_eq!(Run::new(&t, mode).read(0), None);
    }
}

#[test]
fn host_cpu_is_the_busy_share_of_the_delta_not_of_the_totals() {
    // Crawlee's cpu-infoV2 case: baseline total 400 / idle 200, then 600 / 250 gives 0.75, not 0.583.
    let t = Tree::new();
    t.host_cpu(100, 100, 200, 2);
    let mut r = Run::new(&t, CpuMode::Host);
    assert_eq!(r.read(0), None);
    t.host_cpu(200, 150, 250, 2);
    assert!(close(r.read(1000), 0.75));
    assert_eq!(r.sensor.source(), Some(&CpuSource::Host));
    assert_warned(&r.w, &[]);
}

#[test]
fn host_counters_going_backwards_reset_the_baseline_with_a_warning() {
    let t = Tree::new();
    t.host_cpu(500, 0, 500, 2);
    let mut r = Run::new(&t, CpuMode::Host);
    r.read(0);
    t.host_cpu(100, 0, 100, 2);
    assert_eq!(r.read(1000), None);
    t.host_cpu(150, 0, 150, 2);
    assert!(close(r.read(2000), 0.5));
    assert_warned(&r.w, &["cpu.counter_backwards"]);
}

#[test]
fn no_tick_between_samples_gives_nothing_and_keeps_the_baseline() {
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 2);
    let mut r = Run::new(&t, CpuMode::Host);
    r.read(0);
    assert_eq!(r.read(5), None);
    t.host_cpu(10, 0, 30, 2);
    assert!(close(r.read(1000), 0.25));
}

#[test]
fn garbage_or_unreadable_proc_stat_gives_nothing_with_a_warning() {
    let t = Tree::new();
    t.file("/proc/stat", "cpu lots of time\n");
    let mut r = Run::new(&t, CpuMode::Host);
    assert_eq!(r.read(0), None);
    assert_eq!(r.read(1000), None);
    assert_warned(&r.w, &["cpu.stat_garbage"]);
    t.unreadable("/proc/stat");
    assert_eq!(r.read(2000), None);
    assert_warned(&r.w, &["cpu.stat_garbage", "cpu.stat_unreadable"]);
}

#[test]
fn a_v2_quota_binds_and_usage_is_read_from_its_cpu_stat() {
    let t = Tree::new();
    t.v2("/pod/c1");
    t.file("/sys/fs/cgroup/pod/c1/cpu.max", "50000 100000\n");
    t.file(
        "/sys/fs/cgroup/pod/c1/cpu.stat",
        "usage_usec 1000000\nuser_usec 1\n",
    );
    let mut r = Run::new(&t, CpuMode::Auto);
    assert_eq!(r.read(0), None);
    t.file("/sys/fs/cgroup/pod/c1/cpu.stat", "usage_usec 1250000\n");
    // 250 ms of CPU in 1 s against half a core.
    assert!(close(r.read(1000), 0.5));
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::Cgroup {
            usage: t.path("/sys/fs/cgroup/pod/c1/cpu.stat"),
            cores: 0.5
        })
    );
    assert_warned(&r.w, &[]);
}

#[test]
fn a_tighter_parent_quota_binds_at_the_parent_level() {
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 4);
    t.v2("/pod/c1");
    t.file("/sys/fs/cgroup/pod/c1/cpu.max", "max 100000\n");
    t.file("/sys/fs/cgroup/pod/c1/cpu.stat", "usage_usec 0\n");
    t.file("/sys/fs/cgroup/pod/cpu.max", "100000 100000\n");
    t.file("/sys/fs/cgroup/pod/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/pod/cpu.stat", "usage_usec 300000\n");
    assert!(close(r.read(1000), 0.3));
}

#[test]
fn a_quota_of_at_least_the_online_cpus_does_not_bind() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "200000 100000\n"); // 2 cores on a 2-CPU host
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.stat(PID, 1, 100); // 1 s of CPU over 2 cores
    assert!(close(r.read(1000), 0.5));
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::ProcessTree { cores: 2.0 })
    );
}

#[test]
fn a_cpuset_smaller_than_the_host_binds() {
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 4);
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpuset.cpus.effective", "2-3\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 1000000\n");
    assert!(close(r.read(1000), 0.5));
}

#[test]
fn the_smallest_of_quota_and_cpuset_wins() {
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 8);
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpuset.cpus.effective", "0-3\n");
    t.file("/sys/fs/cgroup/a/cpu.max", "150000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 750000\n");
    assert!(close(r.read(1000), 0.5));
}

#[test]
fn a_v1_cfs_quota_binds_with_cpuacct_usage() {
    let t = Tree::new();
    t.v1("/docker/abc");
    let leaf = "/sys/fs/cgroup/cpu,cpuacct/docker/abc";
    t.file(&format!("{leaf}/cpu.cfs_quota_us"), "50000\n");
    t.file(&format!("{leaf}/cpu.cfs_period_us"), "100000\n");
    t.file(&format!("{leaf}/cpuacct.usage"), "123456789\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file(
        &format!("{leaf}/cpuacct.usage"),
        &(123_456_789u64 + 100_000_000).to_string(),
    );
    assert!(close(r.read(1000), 0.2));
    assert_warned(&r.w, &[]);
}

#[test]
fn a_v1_quota_of_minus_one_means_none_and_a_v1_cpuset_can_still_bind() {
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 4);
    t.v1("/d");
    t.file("/sys/fs/cgroup/cpu,cpuacct/d/cpu.cfs_quota_us", "-1\n");
    t.file("/sys/fs/cgroup/cpu,cpuacct/d/cpu.cfs_period_us", "100000\n");
    t.file("/sys/fs/cgroup/cpu,cpuacct/d/cpuacct.usage", "0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.stat(PID, 1, 160);
    assert!(close(r.read(1000), 0.4));
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::ProcessTree { cores: 4.0 })
    );

    t.file("/sys/fs/cgroup/cpuset/d/cpuset.cpus", "0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/cpu,cpuacct/d/cpuacct.usage", "600000000\n");
    assert!(close(r.read(1000), 0.6));
}

#[test]
fn hybrid_hierarchies_use_the_v1_cpu_controller() {
    let t = Tree::new();
    t.hybrid("/s");
    t.file("/sys/fs/cgroup/cpu,cpuacct/s/cpu.cfs_quota_us", "100000\n");
    t.file("/sys/fs/cgroup/cpu,cpuacct/s/cpu.cfs_period_us", "100000\n");
    t.file("/sys/fs/cgroup/cpu,cpuacct/s/cpuacct.usage", "0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/cpu,cpuacct/s/cpuacct.usage", "900000000\n");
    assert!(close(r.read(1000), 0.9));
}

#[test]
fn a_garbage_or_unreadable_quota_is_ignored_with_a_warning() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "half 100000\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.stat(PID, 1, 50);
    assert!(close(r.read(1000), 0.25));
    // Limits are looked up again every `LAYOUT_RECHECK` (30 s) of the pool's clock.
    t.dangling("/sys/fs/cgroup/a/cpu.max");
    r.read(5000);
    assert_warned(&r.w, &["cpu.limit_garbage"]);
    r.read(31_000);
    assert_warned(&r.w, &["cpu.limit_garbage", "cpu.limit_unreadable"]);
}

#[test]
fn an_unreadable_usage_counter_falls_back_to_the_process_tree_with_a_warning() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "50000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "user_usec 5\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.stat(PID, 1, 100);
    assert!(close(r.read(1000), 0.5));
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::ProcessTree { cores: 2.0 })
    );
    assert_warned(&r.w, &["cpu.usage_unreadable"]);
}

#[test]
fn a_cgroup_counter_going_backwards_resets_with_a_warning() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "100000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 5000000\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 1000\n");
    assert_eq!(r.read(1000), None);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 101000\n");
    assert!(close(r.read(2000), 0.1));
    assert_warned(&r.w, &["cpu.counter_backwards"]);
}

#[test]
fn usage_above_the_limit_is_clamped_to_one() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "10000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 900000\n");
    assert_eq!(r.read(1000), Some(1.0));
}

#[test]
fn a_window_under_ten_milliseconds_keeps_the_older_baseline() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "100000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 1000\n");
    assert_eq!(r.read(5), None);
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 100000\n");
    assert!(close(r.read(200), 0.5));
}

#[test]
fn a_limit_that_appears_is_followed_within_the_layout_recheck_and_restarts_the_baseline() {
    let t = Tree::new();
    t.v2("/a");
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    assert!(r.read(1000).is_some());
    t.file("/sys/fs/cgroup/a/cpu.max", "100000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    // The layout looked up at 0 s still holds at 29 s: the process tree is read.
    assert!(r.read(29_000).is_some());
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::ProcessTree { cores: 2.0 })
    );
    assert_eq!(r.read(30_000), None, "the limit binds: a new baseline");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 250000\n");
    assert!(close(r.read(31_000), 0.25));
}

#[test]
fn host_mode_ignores_cgroup_limits() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/cpu.max", "50000 100000\n");
    t.file("/sys/fs/cgroup/a/cpu.stat", "usage_usec 0\n");
    let mut r = Run::new(&t, CpuMode::Host);
    r.read(0);
    t.host_cpu(1, 0, 9, 2);
    assert!(close(r.read(1000), 0.1));
}

#[test]
fn process_mode_is_utime_plus_stime_over_one_core() {
    let t = Tree::new();
    t.stat(PID, 1, 1000);
    let mut r = Run::new(&t, CpuMode::Process);
    r.read(0);
    t.stat(PID, 1, 1050); // 50 ticks of 10 ms
    assert!(close(r.read(1000), 0.5));
    assert_eq!(r.sensor.source(), Some(&CpuSource::Process));
    t.stat(PID, 1, 1000);
    assert_eq!(r.read(2000), None);
    t.file(&format!("/proc/{PID}/stat"), "4242 (x) S");
    assert_eq!(r.read(3000), None);
    assert_warned(&r.w, &["cpu.counter_backwards", "cpu.process_garbage"]);
}

/// `/proc/PID/stat` with `own` ticks of utime and `reaped` ticks of cutime (children it has waited for).
fn stat_with_reaped(t: &Tree, pid: u32, ppid: u32, own: u64, reaped: u64) {
    t.file(
        &format!("/proc/{pid}/stat"),
        &format!("{pid} (p {pid}) S {ppid} 1 1 0 -1 0 0 0 0 0 {own} 0 {reaped} 0 20 0 1 0 1 1 1\n"),
    );
}

#[test]
fn auto_without_a_binding_limit_counts_this_process_tree_not_the_host() {
    // A neighbour keeps the host's two CPUs busy; the process and its child used half a second of CPU.
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 2);
    t.children(PID, &[77]);
    t.stat(PID, 1, 0);
    t.stat(77, PID, 0);
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.host_cpu(200, 0, 0, 2);
    t.stat(PID, 1, 20);
    t.stat(77, PID, 30);
    assert!(close(r.read(1000), 0.25), "{:?}", r.read(1000));
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::ProcessTree { cores: 2.0 })
    );
    assert_warned(&r.w, &[]);
}

#[test]
fn a_childs_cpu_time_stays_counted_once_it_is_reaped_and_a_vanished_one_only_resets_the_baseline() {
    let t = Tree::new();
    t.children(PID, &[77]);
    stat_with_reaped(&t, PID, 1, 10, 0);
    t.stat(77, PID, 40);
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    // The child ended and was reaped: its 40 ticks moved into the parent's cutime, and 100 more were used.
    t.children(PID, &[]);
    t.remove("/proc/77/stat");
    stat_with_reaped(&t, PID, 1, 60, 90);
    assert!(close(r.read(1000), 0.5), "{:?}", r.read(1000));
    // A child that vanished before it was reaped takes its time out of the total: a new baseline, no fault.
    // (Alone since 1 s, the process lists its children again only after `CHILDLESS_RELIST`, 5 s.)
    t.children(PID, &[78]);
    t.stat(78, PID, 500);
    assert!(r.read(6000).is_some());
    t.children(PID, &[]);
    t.remove("/proc/78/stat");
    assert_eq!(r.read(7000), None);
    stat_with_reaped(&t, PID, 1, 160, 90);
    assert!(close(r.read(8000), 0.5));
    assert_warned(&r.w, &[]);
}

#[test]
fn the_process_tree_is_measured_against_the_cores_its_affinity_allows() {
    let t = Tree::new();
    t.host_cpu(0, 0, 0, 4);
    t.file(
        &format!("/proc/{PID}/status"),
        "Name:\tp\nCpus_allowed_list:\t2\n",
    );
    t.stat(PID, 1, 0);
    let mut r = Run::new(&t, CpuMode::Auto);
    r.read(0);
    t.stat(PID, 1, 80);
    assert!(close(r.read(1000), 0.8));
    assert_eq!(
        r.sensor.source(),
        Some(&CpuSource::ProcessTree { cores: 1.0 })
    );
}
