//! The memory sensor on fixture trees: cgroup v2, v1, hybrid and nested limits, faults, and the process
//! tree's PSS with its RSS fallbacks.

mod common;

use common::{GIB, MIB, PID, Tree, assert_warned};
use pool_sensors::{MemorySample, MemorySensor, TotalSource, Warnings};

fn read(t: &Tree) -> (Option<MemorySample>, Warnings) {
    let mut w = Warnings::new();
    let s = MemorySensor::new(t.root(), PID).read(&mut w);
    (s, w)
}

fn physical(used: u64) -> MemorySample {
    MemorySample {
        used_bytes: used,
        total_bytes: Some(8 * GIB),
        system_used_bytes: Some(2 * GIB),
        source: TotalSource::Physical,
    }
}

fn cgroup(total: u64, system_used: Option<u64>) -> MemorySample {
    MemorySample {
        used_bytes: 10 * MIB,
        total_bytes: Some(total),
        system_used_bytes: system_used,
        source: TotalSource::Cgroup,
    }
}

#[test]
fn without_cgroup_limits_the_total_is_memtotal_and_system_use_is_total_less_available() {
    let t = Tree::new();
    let (s, w) = read(&t);
    assert_eq!(s, Some(physical(10 * MIB)));
    assert_warned(&w, &[]);
}

#[test]
fn v2_memory_max_is_the_total_and_its_charge_less_clean_inactive_file_is_system_use() {
    let t = Tree::new();
    t.v2("/kubepods/pod1/c1");
    let leaf = "/sys/fs/cgroup/kubepods/pod1/c1";
    t.file(&format!("{leaf}/memory.max"), "1073741824\n");
    t.file(
        &format!("{leaf}/memory.current"),
        &format!("{}\n", 600 * MIB),
    );
    t.file(
        &format!("{leaf}/memory.stat"),
        &format!(
            "anon 1\ninactive_file {}\nfile_dirty {}\nfile_writeback 0\n",
            100 * MIB,
            10 * MIB
        ),
    );
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(GIB, Some(510 * MIB))));
    assert_warned(&w, &[]);
}

#[test]
fn without_dirty_and_writeback_keys_the_whole_inactive_file_is_credited() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/a/memory.current", &(600 * MIB).to_string());
    t.file(
        "/sys/fs/cgroup/a/memory.stat",
        &format!("inactive_file {}\n", 100 * MIB),
    );
    assert_eq!(read(&t).0, Some(cgroup(GIB, Some(500 * MIB))));
}

#[test]
fn v1_limit_in_bytes_is_the_total_with_total_prefixed_stat_keys() {
    let t = Tree::new();
    t.v1("/docker/abc");
    let leaf = "/sys/fs/cgroup/memory/docker/abc";
    t.file(
        &format!("{leaf}/memory.limit_in_bytes"),
        &(512 * MIB).to_string(),
    );
    t.file(
        &format!("{leaf}/memory.usage_in_bytes"),
        &(300 * MIB).to_string(),
    );
    t.file(
        &format!("{leaf}/memory.stat"),
        &format!(
            "inactive_file 999\ntotal_inactive_file {}\ntotal_dirty 0\ntotal_writeback 0\n",
            50 * MIB
        ),
    );
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(512 * MIB, Some(250 * MIB))));
    assert_warned(&w, &[]);
}

#[test]
fn v1_unlimited_sentinel_falls_back_to_physical_memory() {
    let t = Tree::new();
    t.v1("/docker/abc");
    t.file(
        "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    t.file(
        "/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes",
        "1",
    );
    let (s, w) = read(&t);
    assert_eq!(s, Some(physical(10 * MIB)));
    assert_warned(&w, &[]);
}

#[test]
fn a_limit_at_or_above_memtotal_counts_as_unlimited() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &(8 * GIB).to_string());
    t.file("/sys/fs/cgroup/a/memory.current", "0");
    assert_eq!(read(&t).0, Some(physical(10 * MIB)));
}

#[test]
fn hybrid_reads_the_v1_memory_controller_when_the_unified_tree_has_none() {
    let t = Tree::new();
    t.hybrid("/user.slice");
    let leaf = "/sys/fs/cgroup/memory/user.slice";
    t.file(
        &format!("{leaf}/memory.limit_in_bytes"),
        &(2 * GIB).to_string(),
    );
    t.file(&format!("{leaf}/memory.usage_in_bytes"), &GIB.to_string());
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(2 * GIB, Some(GIB))));
    assert_warned(&w, &[]);
}

#[test]
fn a_tighter_parent_sets_the_total_and_the_least_headroom_sets_system_use() {
    let t = Tree::new();
    t.v2("/pod/c1");
    t.file("/sys/fs/cgroup/pod/c1/memory.max", &(2 * GIB).to_string());
    t.file(
        "/sys/fs/cgroup/pod/c1/memory.current",
        &(100 * MIB).to_string(),
    );
    t.file("/sys/fs/cgroup/pod/memory.max", &GIB.to_string());
    t.file(
        "/sys/fs/cgroup/pod/memory.current",
        &(900 * MIB).to_string(),
    );
    // The pod has 124 MiB of room left, less than the container's own 1948 MiB: the pod's charge counts.
    assert_eq!(read(&t).0, Some(cgroup(GIB, Some(900 * MIB))));
}

#[test]
fn max_at_every_level_falls_back_to_physical_memory() {
    let t = Tree::new();
    t.v2("/pod/c1");
    t.file("/sys/fs/cgroup/pod/c1/memory.max", "max\n");
    t.file("/sys/fs/cgroup/pod/memory.max", "max\n");
    let (s, w) = read(&t);
    assert_eq!(s, Some(physical(10 * MIB)));
    assert_warned(&w, &[]);
}

#[test]
fn absent_cgroup_files_fall_back_to_physical_memory_silently() {
    let t = Tree::new();
    t.v2("/empty");
    let (s, w) = read(&t);
    assert_eq!(s, Some(physical(10 * MIB)));
    assert_warned(&w, &[]);
}

#[test]
fn a_garbage_limit_is_skipped_with_one_warning_while_a_parent_limit_still_applies() {
    let t = Tree::new();
    t.v2("/pod/c1");
    t.file("/sys/fs/cgroup/pod/c1/memory.max", "lots\n");
    t.file("/sys/fs/cgroup/pod/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/pod/memory.current", &(GIB / 2).to_string());
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    for _ in 0..3 {
        assert_eq!(sensor.read(&mut w), Some(cgroup(GIB, Some(GIB / 2))));
    }
    assert_warned(&w, &["memory.limit_garbage"]);
    assert_eq!(w.occurrences(), 3);
}

#[test]
fn an_unreadable_limit_is_skipped_with_a_warning() {
    for make_unreadable in [Tree::unreadable, Tree::dangling] {
        let t = Tree::new();
        t.v2("/a");
        make_unreadable(&t, "/sys/fs/cgroup/a/memory.max");
        let (s, w) = read(&t);
        assert_eq!(s, Some(physical(10 * MIB)));
        assert_warned(&w, &["memory.limit_unreadable"]);
    }
}

#[test]
fn an_unreadable_charge_keeps_the_limit_but_leaves_system_use_unknown() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.unreadable("/sys/fs/cgroup/a/memory.current");
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(GIB, None)));
    assert_warned(&w, &["memory.usage_unreadable"]);
}

#[test]
fn a_garbage_charge_or_stat_degrades_with_its_own_warning() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/a/memory.current", "-1\n");
    assert_eq!(read(&t).0, Some(cgroup(GIB, None)));
    t.file("/sys/fs/cgroup/a/memory.current", &(GIB / 4).to_string());
    t.file("/sys/fs/cgroup/a/memory.stat", "inactive_file many\n");
    let (s, w) = read(&t);
    // No cache is credited: the whole charge counts.
    assert_eq!(s, Some(cgroup(GIB, Some(GIB / 4))));
    assert_warned(&w, &["memory.stat_garbage"]);
}

#[test]
fn a_resized_container_is_followed_on_the_next_read() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/a/memory.current", "0");
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(sensor.read(&mut w).unwrap().total_bytes, Some(GIB));
    t.file("/sys/fs/cgroup/a/memory.max", &(3 * GIB).to_string());
    assert_eq!(sensor.read(&mut w).unwrap().total_bytes, Some(3 * GIB));
    t.file("/sys/fs/cgroup/a/memory.max", "max");
    assert_eq!(sensor.read(&mut w).unwrap().source, TotalSource::Physical);
}

#[test]
fn unreadable_meminfo_and_no_cgroup_leave_the_total_unknown() {
    let t = Tree::new();
    t.remove("/proc/meminfo");
    let (s, w) = read(&t);
    let s = s.unwrap();
    assert_eq!((s.total_bytes, s.source), (None, TotalSource::Unknown));
    assert_eq!(s.used_bytes, 10 * MIB);
    assert_warned(&w, &["memory.meminfo_unreadable"]);
}

#[test]
fn garbage_meminfo_leaves_the_total_unknown_but_a_cgroup_limit_still_applies() {
    let t = Tree::new();
    t.file("/proc/meminfo", "MemTotal: lots kB\n");
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/a/memory.current", "0");
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(GIB, Some(0))));
    assert_warned(&w, &["memory.meminfo_garbage", "memory.available_unknown"]);
}

#[test]
fn without_mountinfo_the_conventional_layout_is_assumed() {
    let t = Tree::new();
    t.v2("/a");
    t.remove(&format!("/proc/{PID}/mountinfo"));
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/a/memory.current", "0");
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(GIB, Some(0))));
    assert_warned(&w, &["cgroup.mountinfo_unreadable"]);

    let t = Tree::new();
    t.v1("/d");
    t.remove(&format!("/proc/{PID}/mountinfo"));
    t.file(
        "/sys/fs/cgroup/memory/d/memory.limit_in_bytes",
        &GIB.to_string(),
    );
    t.file("/sys/fs/cgroup/memory/d/memory.usage_in_bytes", "0");
    assert_eq!(read(&t).0, Some(cgroup(GIB, Some(0))));
}

#[test]
fn a_cgroup_path_missing_under_its_mount_falls_back_to_the_mount_point() {
    let t = Tree::new();
    t.v2("/a");
    t.file(&format!("/proc/{PID}/cgroup"), "0::/elsewhere\n");
    t.file("/sys/fs/cgroup/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/memory.current", "0");
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(GIB, Some(0))));
    assert_warned(&w, &["cgroup.path_missing"]);
}

#[test]
fn a_mount_of_a_deeper_cgroup_maps_the_path_below_its_root() {
    // Docker without a cgroup namespace: the container's cgroup is mounted at /sys/fs/cgroup.
    let t = Tree::new();
    t.file(&format!("/proc/{PID}/cgroup"), "0::/docker/abc/sub\n");
    t.file(
        &format!("/proc/{PID}/mountinfo"),
        "30 25 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
    );
    t.mkdir("/sys/fs/cgroup/sub");
    t.file("/sys/fs/cgroup/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/memory.current", "0");
    t.file("/sys/fs/cgroup/sub/memory.max", &(GIB / 2).to_string());
    t.file("/sys/fs/cgroup/sub/memory.current", "0");
    let (s, w) = read(&t);
    assert_eq!(s, Some(cgroup(GIB / 2, Some(0))));
    assert_warned(&w, &[]);
}

#[test]
fn unreadable_cgroup_membership_ignores_cgroups_with_a_warning() {
    let t = Tree::new();
    t.unreadable(&format!("/proc/{PID}/cgroup"));
    let (s, w) = read(&t);
    assert_eq!(s, Some(physical(10 * MIB)));
    assert_warned(&w, &["cgroup.membership_unreadable"]);
}

// ----- The process tree -----

#[test]
fn pss_is_summed_over_children_and_grandchildren() {
    let t = Tree::new();
    t.process(100, PID, 5 * MIB, 50 * MIB);
    t.process(101, 100, MIB, 50 * MIB);
    t.children(PID, &[100]);
    t.children(100, &[101]);
    let (s, w) = read(&t);
    assert_eq!(s.unwrap().used_bytes, 16 * MIB);
    assert_warned(&w, &[]);
}

#[test]
fn without_children_files_descendants_are_found_by_scanning_parent_pids() {
    let t = Tree::new();
    t.process(100, PID, 5 * MIB, 0);
    t.process(101, 100, MIB, 0);
    t.process(200, 1, 7 * MIB, 0); // not ours
    let (s, w) = read(&t);
    assert_eq!(s.unwrap().used_bytes, 16 * MIB);
    assert_warned(&w, &[]);
}

#[test]
fn missing_smaps_rollup_for_the_process_latches_rss_for_every_process() {
    let t = Tree::new();
    t.process(100, PID, 5 * MIB, 7 * MIB);
    t.children(PID, &[100]);
    t.remove(&format!("/proc/{PID}/smaps_rollup"));
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(sensor.read(&mut w).unwrap().used_bytes, 37 * MIB);
    assert!(!sensor.uses_pss());
    // The latch holds even once the file is back.
    t.process(PID, 1, 10 * MIB, 30 * MIB);
    assert_eq!(sensor.read(&mut w).unwrap().used_bytes, 37 * MIB);
    assert_warned(&w, &["memory.pss_unavailable"]);
}

#[test]
fn a_denied_or_zero_pss_falls_back_to_rss_for_that_process_only() {
    let t = Tree::new();
    t.process(100, PID, 0, 7 * MIB);
    t.process(101, PID, 5 * MIB, 9 * MIB);
    t.unreadable("/proc/101/smaps_rollup");
    t.process(102, PID, 2 * MIB, 50 * MIB);
    t.children(PID, &[100, 101, 102]);
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(
        sensor.read(&mut w).unwrap().used_bytes,
        (10 + 7 + 9 + 2) * MIB
    );
    assert!(sensor.uses_pss());
    assert_warned(&w, &["memory.pss_fallback"]);
}

#[test]
fn a_child_that_vanished_counts_zero_without_a_warning() {
    let t = Tree::new();
    t.children(PID, &[100, 101]);
    t.process(101, PID, MIB, MIB);
    let (s, w) = read(&t);
    assert_eq!(s.unwrap().used_bytes, 11 * MIB);
    assert_warned(&w, &[]);
}

#[test]
fn an_unreadable_child_is_skipped_with_a_one_time_warning() {
    let t = Tree::new();
    t.children(PID, &[100, 101]);
    for c in [100, 101] {
        t.process(c, PID, MIB, MIB);
        t.unreadable(&format!("/proc/{c}/smaps_rollup"));
        t.unreadable(&format!("/proc/{c}/status"));
    }
    let (s, w) = read(&t);
    assert_eq!(s.unwrap().used_bytes, 10 * MIB);
    assert_warned(&w, &["memory.pss_fallback", "memory.child_unreadable"]);
    assert_eq!(w.occurrences(), 4);
}

#[test]
fn an_unreadable_process_gives_no_reading() {
    let t = Tree::new();
    t.remove(&format!("/proc/{PID}/smaps_rollup"));
    t.dangling(&format!("/proc/{PID}/status"));
    let (s, w) = read(&t);
    assert_eq!(s, None);
    assert_warned(&w, &["memory.pss_unavailable", "memory.self_unreadable"]);
}

fn at_s(s: u64) -> pool_core::Instant {
    pool_core::Instant::from_secs(s)
}

#[test]
fn sampled_at_an_instant_limits_are_looked_up_again_every_layout_recheck_and_charges_every_time() {
    let t = Tree::new();
    t.v2("/a");
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    t.file("/sys/fs/cgroup/a/memory.current", "0");
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(
        sensor.read_at(at_s(0), &mut w).unwrap().total_bytes,
        Some(GIB)
    );
    t.file("/sys/fs/cgroup/a/memory.max", &(3 * GIB).to_string());
    t.file("/sys/fs/cgroup/a/memory.current", &(100 * MIB).to_string());
    let s = sensor.read_at(at_s(29), &mut w).unwrap();
    assert_eq!(s.total_bytes, Some(GIB), "the limit looked up at 0 s");
    assert_eq!(s.system_used_bytes, Some(100 * MIB), "the charge read now");
    let s = sensor.read_at(at_s(30), &mut w).unwrap();
    assert_eq!(s.total_bytes, Some(3 * GIB));
    assert_warned(&w, &[]);
}

#[test]
fn without_children_files_a_new_child_is_counted_within_the_layout_recheck_and_its_memory_every_time()
 {
    let t = Tree::new();
    t.process(100, PID, 5 * MIB, 0);
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(
        sensor.read_at(at_s(0), &mut w).unwrap().used_bytes,
        15 * MIB
    );
    // The known child grew; a new one started.
    t.process(100, PID, 8 * MIB, 0);
    t.process(101, PID, 2 * MIB, 0);
    assert_eq!(
        sensor.read_at(at_s(29), &mut w).unwrap().used_bytes,
        18 * MIB
    );
    assert_eq!(
        sensor.read_at(at_s(30), &mut w).unwrap().used_bytes,
        20 * MIB
    );
    // With the kernel's children files (looked up again every `LAYOUT_RECHECK` too), the listing is cheap
    // and done on every sample while there are children.
    t.children(PID, &[100]);
    assert_eq!(
        sensor.read_at(at_s(59), &mut w).unwrap().used_bytes,
        20 * MIB,
        "still the scan of 30 s"
    );
    assert_eq!(
        sensor.read_at(at_s(60), &mut w).unwrap().used_bytes,
        18 * MIB
    );
    assert_warned(&w, &[]);
}

#[test]
fn sampled_at_an_instant_a_process_alone_is_measured_by_rss_and_a_tree_by_pss() {
    let t = Tree::new();
    t.children(PID, &[]);
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(
        sensor.read_at(at_s(0), &mut w).unwrap().used_bytes,
        30 * MIB
    );
    assert_eq!(
        sensor.read(&mut w).unwrap().used_bytes,
        10 * MIB,
        "`read` keeps PSS"
    );
    t.process(100, PID, 5 * MIB, 50 * MIB);
    t.children(PID, &[100]);
    // Alone at 0 s, the process lists its children again after `CHILDLESS_RELIST`.
    assert_eq!(
        sensor
            .read_at(at_s(pool_sensors::CHILDLESS_RELIST.as_secs()), &mut w)
            .unwrap()
            .used_bytes,
        15 * MIB
    );
    assert_warned(&w, &[]);
}

#[test]
fn with_children_files_a_tree_is_listed_every_sample_and_a_lone_process_every_childless_relist() {
    let t = Tree::new();
    t.process(100, PID, 5 * MIB, 0);
    t.children(PID, &[100]);
    let mut sensor = MemorySensor::new(t.root(), PID);
    let mut w = Warnings::new();
    assert_eq!(
        sensor.read_at(at_s(0), &mut w).unwrap().used_bytes,
        15 * MIB
    );
    // With a child, a second child is seen at the next sample, and so is the end of both.
    t.process(101, PID, 2 * MIB, 0);
    t.children(PID, &[100, 101]);
    assert_eq!(
        sensor.read_at(at_s(1), &mut w).unwrap().used_bytes,
        17 * MIB
    );
    t.children(PID, &[]);
    assert_eq!(
        sensor.read_at(at_s(2), &mut w).unwrap().used_bytes,
        30 * MIB,
        "alone again: measured by RSS"
    );
    // Alone, a new child waits for the relist.
    t.children(PID, &[100]);
    assert_eq!(
        sensor
            .read_at(at_s(2) + pool_sensors::CHILDLESS_RELIST / 2, &mut w)
            .unwrap()
            .used_bytes,
        30 * MIB
    );
    assert_eq!(
        sensor
            .read_at(at_s(2) + pool_sensors::CHILDLESS_RELIST, &mut w)
            .unwrap()
            .used_bytes,
        15 * MIB
    );
    assert_warned(&w, &[]);
}
