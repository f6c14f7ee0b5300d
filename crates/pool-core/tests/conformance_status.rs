//! Conformance ports of Crawlee's snapshot and system-status tests: per-snapshot overload rules, the
//! time-weighted ratio, sample windows, pruning, the critical-memory warning and the JS status fixtures.
//!
//! Every test runs in virtual time: instants are built from numbers, nothing sleeps or reads a clock.

use core::time::Duration;

use pool_core::snapshot::{History, Snapshot, overload_ratio};
use pool_core::{
    CpuReading, Event, Instant, MemoryBudget, MemoryReading, Pool, PoolConfig, SignalId, SignalSet,
    StatusSettings, SystemInfo,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A fixed "now", far enough from the epoch that hours can be subtracted from it.
const T0: Instant = Instant::from_secs(100_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(3600 * h)
}

/// A default config whose history is `history`; the probe and sensor periods are stretched to a hundredth of
/// it, since `PoolConfig::validate` caps one history at 128 snapshots.
fn long_history(history: Duration) -> PoolConfig {
    let mut c = PoolConfig::default();
    c.status.history = history;
    c.snapshot.event_loop_probe_interval = history / 100;
    c.snapshot.client_probe_interval = history / 100;
    c.snapshot.sensor_interval = history / 100;
    c
}

fn cpu(pool: &mut Pool, now: Instant, at: Instant, used_ratio: f64) {
    pool.handle_cpu(now, CpuReading { at, used_ratio }).unwrap();
}

fn mem(pool: &mut Pool, now: Instant, at: Instant, used: u64, total: u64, system: Option<u64>) {
    pool.handle_memory(
        now,
        MemoryReading {
            at,
            used_bytes: used,
            total_bytes: total,
            system_used_bytes: system,
        },
    )
    .unwrap();
}

fn flags(pool: &Pool, id: SignalId) -> Vec<bool> {
    pool.history(id)
        .unwrap()
        .as_slice()
        .iter()
        .map(|s| s.is_overloaded())
        .collect()
}

fn times(pool: &Pool, id: SignalId) -> Vec<Instant> {
    pool.history(id)
        .unwrap()
        .as_slice()
        .iter()
        .map(|s| s.at())
        .collect()
}

fn events(pool: &mut Pool) -> Vec<Event> {
    core::iter::from_fn(|| pool.poll_event()).collect()
}

fn memory_critical_count(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::MemoryCritical { .. }))
        .count()
}

fn set(ids: &[SignalId]) -> SignalSet {
    let mut s = SignalSet::EMPTY;
    for id in ids {
        s.insert(*id);
    }
    s
}

// ---------------------------------------------------------------------------------------------------------
// crawlee-python tests/unit/_autoscaling/test_system_status.py
// ---------------------------------------------------------------------------------------------------------

/// A pool holding Crawlee's four CPU snapshots at -3, -2, -1 and 0 minutes, judged against `max_used` 0.75.
fn cpu_minutes(used: [f64; 4]) -> Pool {
    let mut c = long_history(hours(1));
    c.status.cpu_overload_threshold = 0.5;
    c.snapshot.max_used_cpu_ratio = 0.75;
    let mut pool = Pool::new(c).unwrap();
    for (m, u) in [3, 2, 1, 0].into_iter().zip(used) {
        cpu(&mut pool, T0, T0 - mins(m), u);
    }
    pool
}

#[test]
fn py_cpu_is_overloaded() {
    let pool = cpu_minutes([0.6, 0.7, 0.8, 0.9]);
    // Python evaluates the full history relative to its newest snapshot; ours is anchored at `now`, so `now`
    // is the newest snapshot's time.
    let info = pool.historical_info(T0).cpu;
    assert_eq!(info.limit_ratio, 0.5);
    assert_eq!(info.actual_ratio, 0.667);
    assert_eq!(info.samples, 4);
    assert!(info.is_overloaded());
}

#[test]
fn py_cpu_is_not_overloaded() {
    let pool = cpu_minutes([0.7, 0.8, 0.6, 0.5]);
    // Our windows end at `now`, not at the newest snapshot, so `now` is the newest snapshot's time.
    let info = pool.historical_info(T0).cpu;
    assert_eq!(info.limit_ratio, 0.5);
    assert_eq!(info.actual_ratio, 0.333);
    assert!(!info.is_overloaded());
}

#[test]
fn py_get_system_info() {
    let mut c = PoolConfig::default();
    c.status = StatusSettings::default()
        .with_current_window(mins(1))
        .with_history(secs(200))
        .with_cpu_overload_threshold(0.5)
        .with_memory_overload_threshold(0.5)
        .with_event_loop_overload_threshold(0.5)
        .with_client_overload_threshold(0.5);
    c.snapshot.max_used_cpu_ratio = 0.75;
    c.snapshot.max_used_memory_ratio = 0.8;
    // `Ratio(1.0)` makes each reading's total its budget, so a reading carries Crawlee's (current, max) pair.
    c.snapshot.memory_budget = MemoryBudget::Ratio(1.0);
    c.snapshot.max_event_loop_delay = ms(500);
    c.snapshot.max_client_errors = 2;
    c.snapshot.event_loop_probe_interval = mins(1);
    c.snapshot.client_probe_interval = mins(1);
    c.snapshot.sensor_interval = mins(1);
    let mut pool = Pool::new(c).unwrap();

    // Event-loop and client snapshots come from the machine's own probes: the event-loop delay is how late
    // `handle_timeout` runs after the probe's deadline, so the probe times drift by the delays (700, 600, 200,
    // 100 ms) instead of sitting on exact minute marks. The start probe is pruned by the 200 s history.
    let s = T0 - secs(242);
    pool.start_run(s).unwrap();
    let mut probe = s;
    for (delay, new_errors) in [(700, 1), (600, 1), (200, 2), (100, 0)] {
        probe = probe + mins(1) + ms(delay);
        pool.handle_client_errors(new_errors);
        pool.handle_timeout(probe);
    }
    // Our windows end at `now`, not at each signal's newest snapshot, so `now` is the newest snapshot's time.
    let now = probe;
    assert_eq!(
        flags(&pool, SignalId::EventLoop),
        [true, true, false, false]
    );
    assert_eq!(flags(&pool, SignalId::Client), [false; 4]);

    for (m, u) in [(3, 0.6), (2, 0.7), (1, 0.8), (0, 0.9)] {
        cpu(&mut pool, now, now - mins(m), u);
    }
    for (sec, used, total) in [(90, 4, 12), (60, 7, 8), (30, 28, 30), (0, 48, 60)] {
        mem(
            &mut pool,
            now,
            now - secs(sec),
            used * GIB,
            total * GIB,
            None,
        );
    }

    let current = pool.current_info(now);
    assert_eq!(current.cpu.actual_ratio, 1.0);
    assert_eq!(current.memory.actual_ratio, 0.5);
    assert_eq!(current.event_loop.actual_ratio, 0.0);
    assert_eq!(current.client.actual_ratio, 0.0);
    // 48/60 = 0.8 is not above 0.8, and 0.5 is not above 0.5: only the CPU is overloaded now.
    assert_eq!(current.overloaded(), set(&[SignalId::Cpu]));
    assert!(!current.is_system_idle());

    let historical = pool.historical_info(now);
    assert_eq!(historical.cpu.actual_ratio, 0.667);
    assert_eq!(historical.memory.actual_ratio, 0.667);
    // Python's hand-made snapshots give 1/3 = 0.333; the probe's drift makes it 60.6 / 180.9 s here.
    assert_eq!(historical.event_loop.actual_ratio, 0.335);
    assert_eq!(historical.client.actual_ratio, 0.0);
    assert_eq!(
        historical.overloaded(),
        set(&[SignalId::Cpu, SignalId::Memory])
    );
    assert!(!historical.is_system_idle());
}

/// Client snapshots 1 min apart with new errors 1, 1, 0 after the start probe, `max_client_errors` 0.
fn client_ratio_pool(threshold: f64) -> (Pool, Instant) {
    let mut c = PoolConfig::default();
    c.status.history = mins(5);
    c.status.client_overload_threshold = threshold;
    c.snapshot.max_client_errors = 0;
    c.snapshot.client_probe_interval = mins(1);
    c.snapshot.event_loop_probe_interval = mins(1);
    c.snapshot.sensor_interval = mins(1);
    let mut pool = Pool::new(c).unwrap();
    // Our first client snapshot is the start probe (0 new errors, so not overloaded) where Python's is
    // overloaded; the first snapshot's flag never counts, so the ratio is the same 2/3.
    pool.start_run(T0).unwrap();
    for (k, new_errors) in [(1, 1), (2, 1), (3, 0)] {
        pool.handle_client_errors(new_errors);
        pool.handle_timeout(T0 + mins(k));
    }
    (pool, T0 + mins(3))
}

#[test]
fn py_client_overloaded_at_0_66() {
    let (pool, now) = client_ratio_pool(0.66);
    assert_eq!(flags(&pool, SignalId::Client), [false, true, true, false]);
    let info = pool.historical_info(now).client;
    assert_eq!(info.actual_ratio, 0.667);
    assert!(info.is_overloaded());
}

#[test]
fn py_client_not_overloaded_at_0_67() {
    let (pool, now) = client_ratio_pool(0.67);
    let info = pool.historical_info(now).client;
    assert_eq!(info.actual_ratio, 0.667);
    assert!(!info.is_overloaded());
}

#[test]
fn py_memory_overloaded_system_wide() {
    let mut c = long_history(mins(2));
    c.status.memory_overload_threshold = 0.5;
    c.snapshot.max_used_memory_ratio = 0.8;
    c.snapshot.memory_budget = MemoryBudget::Fixed(8 * GIB);
    let mut pool = Pool::new(c).unwrap();
    // 31/32 = 96.875 % is below the 97 % failsafe; 31.5/32 = 98.4 % is above it. The process itself uses
    // 1 of 8 GB, far below its own 0.8 line.
    mem(&mut pool, T0, T0 - mins(1), GIB, 32 * GIB, Some(31 * GIB));
    mem(&mut pool, T0, T0, GIB, 32 * GIB, Some(31 * GIB + GIB / 2));
    assert_eq!(flags(&pool, SignalId::Memory), [false, true]);
    let info = pool.historical_info(T0).memory;
    assert_eq!(info.limit_ratio, 0.5);
    assert_eq!(info.actual_ratio, 1.0);
    assert!(info.is_overloaded());
}

// ---------------------------------------------------------------------------------------------------------
// crawlee-python tests/unit/_autoscaling/test_snapshotter.py
// ---------------------------------------------------------------------------------------------------------

#[test]
fn py_snapshot_cpu() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    cpu(&mut pool, T0, T0, 0.5);
    assert_eq!(flags(&pool, SignalId::Cpu), [false]);
    assert_eq!(times(&pool, SignalId::Cpu), [T0]);
}

#[test]
fn py_snapshot_memory() {
    // Python's fixture: 4 of 8 GB used, a quarter of the total as the budget: 4 GB > 0.9 × 2 GB. Our
    // snapshot keeps only the flag and the time, not the sizes.
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    mem(&mut pool, T0, T0, 4 * GIB, 8 * GIB, Some(5 * GIB));
    assert_eq!(flags(&pool, SignalId::Memory), [true]);
    assert_eq!(times(&pool, SignalId::Memory), [T0]);
}

#[test]
fn py_snapshot_event_loop() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    assert_eq!(pool.history(SignalId::EventLoop).unwrap().len(), 0);
    pool.start_run(T0).unwrap();
    // The first probe runs as the run starts, as Crawlee's RecurringTask does.
    assert_eq!(pool.history(SignalId::EventLoop).unwrap().len(), 1);
    pool.handle_timeout(T0 + ms(500));
    assert_eq!(pool.history(SignalId::EventLoop).unwrap().len(), 2);
    assert_eq!(flags(&pool, SignalId::EventLoop), [false, false]);
}

#[test]
fn py_snapshot_client() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    // Python's first client snapshot has no previous one, so it counts 0 new errors whatever came before.
    pool.handle_client_errors(5);
    pool.start_run(T0).unwrap();
    assert_eq!(pool.history(SignalId::Client).unwrap().len(), 1);
    assert_eq!(flags(&pool, SignalId::Client), [false]);
}

#[test]
fn py_snapshot_client_overloaded() {
    let mut c = PoolConfig::default();
    c.snapshot.max_client_errors = 2;
    let mut pool = Pool::new(c).unwrap();
    pool.start_run(T0).unwrap();
    // Cumulative errors 1, 2, 4, 7: new errors 1, 1, 2, 3 against a maximum of 2.
    for (k, new_errors) in [(1, 1), (2, 1), (3, 2), (4, 3)] {
        pool.handle_client_errors(new_errors);
        pool.handle_timeout(T0 + secs(k));
    }
    assert_eq!(
        flags(&pool, SignalId::Client),
        [false, false, false, false, true]
    );
}

#[test]
fn py_get_cpu_sample() {
    let mut pool = Pool::new(long_history(hours(10))).unwrap();
    for h in (1..=5).rev() {
        cpu(&mut pool, T0, T0 - hours(h), 0.5);
    }
    let history = pool.history(SignalId::Cpu).unwrap();
    assert_eq!(history.len(), 5);
    // Python's sample is relative to the newest snapshot; ours is anchored at `now`, so `now` is the newest
    // snapshot's time (-1 h).
    let newest = history.newest().unwrap();
    assert_eq!(newest, T0 - hours(1));
    assert_eq!(history.window(newest, Duration::from_secs(1800)).len(), 1);
    assert_eq!(history.window(newest, Duration::from_secs(9000)).len(), 3);
    assert_eq!(history.window(newest, hours(10)).len(), 5);
}

#[test]
fn py_snapshot_pruning_removes_outdated_records() {
    let mut pool = Pool::new(long_history(hours(2))).unwrap();
    // Out of order, as the reference describes: pruning is relative to the newest snapshot and keeps the
    // boundary itself.
    for (h, u) in [(0, 0.8), (3, 0.6), (2, 0.7), (5, 0.5)] {
        cpu(&mut pool, T0, T0 - hours(h), u);
    }
    assert_eq!(times(&pool, SignalId::Cpu), [T0 - hours(2), T0]);
}

#[test]
fn py_snapshot_pruning_keeps_recent_records_unaffected() {
    let mut pool = Pool::new(long_history(hours(2))).unwrap();
    cpu(&mut pool, T0, T0 - hours(1), 0.7);
    cpu(&mut pool, T0, T0, 0.8);
    assert_eq!(times(&pool, SignalId::Cpu), [T0 - hours(1), T0]);

    let mut empty = History::new();
    empty.prune(T0, hours(2));
    assert!(empty.is_empty());
}

/// A pool with Python's `memory_mbytes = 8 GiB`: a fixed budget.
fn fixed_8_gib() -> Pool {
    let mut c = PoolConfig::default();
    c.snapshot.memory_budget = MemoryBudget::Fixed(8 * GIB);
    Pool::new(c).unwrap()
}

#[test]
fn py_memory_load_evaluation_logs_warning_on_high_usage() {
    let mut pool = fixed_8_gib();
    // `ByteSize.from_gb(8) * 0.95` truncates to 8160437862 bytes.
    let high = (8.0 * GIB as f64 * 0.95) as u64;
    assert_eq!(high, 8_160_437_862);
    mem(&mut pool, T0, T0, high, 16 * GIB, None);
    let first = events(&mut pool);
    assert_eq!(
        first,
        [Event::MemoryCritical {
            at: T0,
            used_bytes: high,
            budget_bytes: 8 * GIB,
        }]
    );
    // Within the 10 s cooldown of snapshot time: silent.
    mem(&mut pool, T0 + secs(1), T0 + secs(1), high, 16 * GIB, None);
    mem(
        &mut pool,
        T0 + ms(9999),
        T0 + ms(9999),
        high,
        16 * GIB,
        None,
    );
    assert_eq!(memory_critical_count(&events(&mut pool)), 0);
    // Python skips only while `ts < last + 10 s`, so exactly 10 s later it warns again.
    mem(
        &mut pool,
        T0 + secs(10),
        T0 + secs(10),
        high,
        16 * GIB,
        None,
    );
    assert_eq!(memory_critical_count(&events(&mut pool)), 1);
}

#[test]
fn py_memory_critical_line_truncates_like_bytesize() {
    // crawlee-python.md §4.8: the line is trunc(0.9·max) + trunc(trunc(max·(1−0.9))·0.5) = 8160437861 bytes,
    // one byte below 0.95 × 8 GiB, and the comparison is strict.
    let mut pool = fixed_8_gib();
    mem(&mut pool, T0, T0, 8_160_437_861, 16 * GIB, None);
    assert_eq!(memory_critical_count(&events(&mut pool)), 0);
    mem(&mut pool, T0, T0, 8_160_437_862, 16 * GIB, None);
    assert_eq!(memory_critical_count(&events(&mut pool)), 1);
}

#[test]
fn py_memory_load_evaluation_silent_on_acceptable_usage() {
    // Python patches a logger with the wrong name, so its version cannot fail; this one can.
    let mut pool = fixed_8_gib();
    let low = (8.0 * GIB as f64 * 0.8) as u64;
    mem(&mut pool, T0, T0, low, 16 * GIB, None);
    assert_eq!(memory_critical_count(&events(&mut pool)), 0);
    assert_eq!(flags(&pool, SignalId::Memory), [false]);
}

#[test]
fn py_snapshots_time_ordered() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let (new, old) = (T0, T0 - ms(50));
    for at in [new, old] {
        cpu(&mut pool, T0, at, 0.5);
        mem(&mut pool, T0, at, 1, 2, Some(1));
    }
    assert_eq!(times(&pool, SignalId::Cpu), [old, new]);
    assert_eq!(times(&pool, SignalId::Memory), [old, new]);
}

#[test]
fn py_sorted_snapshot_list_add_maintains_order() {
    // Python's `SortedSnapshotList.add` does not prune; ours prunes on insert, so the history is set to 60 s
    // to keep the -50 s snapshot.
    let mut c = PoolConfig::default();
    c.status.history = secs(60);
    let mut pool = Pool::new(c).unwrap();
    let offsets = [50u64, 40, 30, 20, 10, 5, 0];
    for i in [3, 0, 5, 1, 6, 2, 4] {
        cpu(&mut pool, T0, T0 - secs(offsets[i]), 0.1 * (i + 1) as f64);
    }
    let expected: Vec<Instant> = offsets.iter().map(|&o| T0 - secs(o)).collect();
    assert_eq!(times(&pool, SignalId::Cpu), expected);
}

/// Crawlee for Python's dynamic-memory case: usage `total × 0.99 × 0.97` (just under the 97 % failsafe),
/// then the same usage after the total doubles.
fn dynamic_memory_flags(budget: MemoryBudget, total: u64) -> Vec<bool> {
    let mut c = PoolConfig::default();
    c.snapshot.memory_budget = budget;
    let mut pool = Pool::new(c).unwrap();
    let used = (total as f64 * 0.99 * 0.97) as u64;
    mem(&mut pool, T0, T0, used, total, Some(used));
    mem(
        &mut pool,
        T0 + secs(1),
        T0 + secs(1),
        used,
        2 * total,
        Some(used),
    );
    flags(&pool, SignalId::Memory)
}

#[test]
fn py_dynamic_memory_ratio() {
    // A ratio budget follows each reading's own total, so doubling the memory lifts the overload.
    assert_eq!(
        dynamic_memory_flags(MemoryBudget::Ratio(1.0), 8 * GIB),
        [true, false]
    );
}

#[test]
fn py_dynamic_memory_fixed() {
    assert_eq!(
        dynamic_memory_flags(MemoryBudget::Fixed(8 * GIB), 8 * GIB),
        [true, true]
    );
}

#[test]
fn py_time_weighted_ratio_rules() {
    let s = |millis: u64, o: bool| Snapshot::new(T0 + ms(millis), o);
    // Empty: 0. One snapshot: its own flag.
    assert_eq!(overload_ratio(&[]), 0.0);
    assert_eq!(overload_ratio(&[s(0, true)]), 1.0);
    assert_eq!(overload_ratio(&[s(0, false)]), 0.0);
    // All timestamps equal: 0, even when every snapshot is overloaded.
    assert_eq!(overload_ratio(&[s(5, true), s(5, true), s(5, true)]), 0.0);
    // The first snapshot's flag never counts; each interval takes the later snapshot's flag.
    assert_eq!(overload_ratio(&[s(0, true), s(1000, false)]), 0.0);
    assert_eq!(overload_ratio(&[s(0, false), s(1000, true)]), 1.0);
    assert_eq!(
        overload_ratio(&[s(0, false), s(1000, true), s(3000, false)]),
        0.333
    );
    // Python's round(x, 3) rounds ties to even: 1/2000 → 0.0, 3/2000 → 0.002.
    assert_eq!(
        overload_ratio(&[s(0, false), s(1, true), s(2000, false)]),
        0.0
    );
    assert_eq!(
        overload_ratio(&[s(0, false), s(3, true), s(2000, false)]),
        0.002
    );
}

// ---------------------------------------------------------------------------------------------------------
// crawlee-python edge case 13 (time references): our deliberate divergence
// ---------------------------------------------------------------------------------------------------------

#[test]
fn py_edge_case_13_current_window_anchored_at_now() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    for k in 0..=5 {
        cpu(&mut pool, T0 + secs(k), T0 + secs(k), 1.0);
    }
    let fresh = pool.current_info(T0 + secs(5)).cpu;
    assert!(fresh.is_overloaded());
    assert!(!fresh.stale);
    // Python judges the window relative to the newest snapshot, so a stopped sensor keeps its verdict; ours
    // is anchored at now, so the verdict lapses and the signal is marked stale instead.
    let later = pool.current_info(T0 + secs(20));
    assert_eq!(later.cpu.samples, 0);
    assert_eq!(later.cpu.actual_ratio, 0.0);
    assert!(later.cpu.stale);
    assert_eq!(later.stale(), set(&[SignalId::Cpu]));
    assert!(later.is_system_idle());
    // The 30 s history still holds them.
    assert!(pool.historical_info(T0 + secs(20)).cpu.is_overloaded());
}

// ---------------------------------------------------------------------------------------------------------
// crawlee (JS) test/core/autoscaling/system_status.test.ts
// ---------------------------------------------------------------------------------------------------------

/// JS's `generateSnapsSync(p, flag)`: 100 flags, the first `p` equal to `flag`, the rest its negation.
fn snaps(p: usize, flag: bool) -> Vec<bool> {
    (0..100).map(|i| if i < p { flag } else { !flag }).collect()
}

/// Which of the four built-in signals to feed, JS's `MockSnapshotter(mem, loop, cpu, client)` order.
#[derive(Default)]
struct JsSamples<'a> {
    mem: Option<&'a [bool]>,
    event_loop: Option<&'a [bool]>,
    cpu: Option<&'a [bool]>,
    client: Option<&'a [bool]>,
}

/// Status settings for the JS fixtures: a 120 ms history holds all 100 snapshots, and a current window of
/// `current` (pass `None` for JS's default, which covers every one of the 100).
fn js_status(current: Option<Duration>, thresholds: [f64; 4]) -> StatusSettings {
    let [mem, event_loop, cpu, client] = thresholds;
    StatusSettings::default()
        .with_current_window(current.unwrap_or(ms(120)))
        .with_history(ms(120))
        .with_cpu_overload_threshold(cpu)
        .with_memory_overload_threshold(mem)
        .with_event_loop_overload_threshold(event_loop)
        .with_client_overload_threshold(client)
}

/// Feeds 100 snapshots per chosen signal and returns the pool and the newest snapshot's time.
///
/// JS's fixture gives all 100 snapshots the same `createdAt` and counts each interval as 1 ms; ours gives 0 for
/// equal timestamps (Python's rule), so the snapshots are 1 ms apart instead. CPU and memory come from
/// readings; the event loop and the client from the machine's probes, which only run during a run: a
/// running pool always has both, so a JS "empty" sample of those becomes an all-fine one. An overloaded
/// event-loop snapshot is a probe run 1 ns late against a zero delay limit, so those intervals are 1 ms + 1 ns.
fn js_pool(status: StatusSettings, s: &JsSamples<'_>) -> (Pool, Instant) {
    let mut c = PoolConfig::default();
    c.status = status;
    c.snapshot.max_event_loop_delay = Duration::ZERO;
    c.snapshot.event_loop_probe_interval = ms(1);
    c.snapshot.client_probe_interval = ms(1);
    c.snapshot.sensor_interval = ms(1);
    c.snapshot.memory_budget = MemoryBudget::Fixed(1000);
    let mut pool = Pool::new(c).unwrap();
    let running = s.event_loop.is_some() || s.client.is_some();
    let flag = |f: Option<&[bool]>, k: usize| f.is_some_and(|f| f[k]);
    let mut t = T0;
    for k in 0..100 {
        if k > 0 {
            t = t + ms(1);
            if flag(s.event_loop, k) {
                t = t + Duration::from_nanos(1);
            }
        }
        if running {
            if k == 0 {
                // The start probes are never overloaded; as first snapshots their flags never count.
                pool.start_run(t).unwrap();
            } else {
                pool.handle_client_errors(if flag(s.client, k) { 2 } else { 0 });
                pool.handle_timeout(t);
            }
        }
        if let Some(f) = s.cpu {
            cpu(&mut pool, t, t, if f[k] { 1.0 } else { 0.0 });
        }
        if let Some(f) = s.mem {
            mem(&mut pool, t, t, if f[k] { 1000 } else { 0 }, 1000, None);
        }
    }
    if running {
        assert_eq!(pool.history(SignalId::EventLoop).unwrap().len(), 100);
        assert_eq!(pool.history(SignalId::Client).unwrap().len(), 100);
    }
    (pool, t)
}

fn idle_now_and_lately(status: StatusSettings, s: &JsSamples<'_>) -> (bool, bool) {
    let (pool, now) = js_pool(status, s);
    (
        pool.current_info(now).is_system_idle(),
        pool.historical_info(now).is_system_idle(),
    )
}

fn all_four(f: &[bool]) -> JsSamples<'_> {
    JsSamples {
        mem: Some(f),
        event_loop: Some(f),
        cpu: Some(f),
        client: Some(f),
    }
}

const JS_DEFAULT_THRESHOLDS: [f64; 4] = [0.2, 0.6, 0.4, 0.3];

#[test]
fn js_should_return_ok_for_ok_snapshots() {
    // JS's 100 snapshots share one `createdAt` (each weight replaced by 1); Python's rule gives 0 for that,
    // so ours are 1 ms apart.
    let fine = snaps(100, false);
    let status = js_status(None, JS_DEFAULT_THRESHOLDS);
    assert_eq!(idle_now_and_lately(status, &all_four(&fine)), (true, true));
}

#[test]
fn js_should_return_overloaded_for_overloaded_snapshots() {
    // JS's 100 snapshots share one `createdAt` (each weight replaced by 1); Python's rule gives 0 for that,
    // so ours are 1 ms apart.
    let over = snaps(100, true);
    let (pool, now) = js_pool(js_status(None, JS_DEFAULT_THRESHOLDS), &all_four(&over));
    for info in [pool.current_info(now), pool.historical_info(now)] {
        assert_eq!(
            info.overloaded(),
            set(&[
                SignalId::Cpu,
                SignalId::Memory,
                SignalId::EventLoop,
                SignalId::Client
            ])
        );
    }
}

#[test]
fn js_should_work_with_some_samples_empty() {
    // JS's 100 snapshots share one `createdAt` (each weight replaced by 1); Python's rule gives 0 for that,
    // so ours are 1 ms apart.
    let over = snaps(100, true);
    let status = js_status(None, JS_DEFAULT_THRESHOLDS);

    let only_mem = JsSamples {
        mem: Some(&over),
        ..JsSamples::default()
    };
    let (pool, now) = js_pool(status, &only_mem);
    let info = pool.current_info(now);
    assert_eq!(
        (
            info.cpu.samples,
            info.event_loop.samples,
            info.client.samples
        ),
        (0, 0, 0)
    );
    assert_eq!(info.overloaded(), set(&[SignalId::Memory]));
    assert!(!pool.historical_info(now).is_system_idle());

    // The client probe runs alongside the event-loop probe, so its sample is all fine rather than empty.
    let only_loop = JsSamples {
        event_loop: Some(&over),
        ..JsSamples::default()
    };
    let (pool, now) = js_pool(status, &only_loop);
    assert_eq!(
        pool.current_info(now).overloaded(),
        set(&[SignalId::EventLoop])
    );
    assert!(!pool.historical_info(now).is_system_idle());

    let cpu_and_client = JsSamples {
        cpu: Some(&over),
        client: Some(&over),
        ..JsSamples::default()
    };
    let (pool, now) = js_pool(status, &cpu_and_client);
    assert_eq!(
        pool.current_info(now).overloaded(),
        set(&[SignalId::Cpu, SignalId::Client])
    );
    assert!(!pool.historical_info(now).is_system_idle());

    let (pool, now) = js_pool(status, &JsSamples::default());
    let info: SystemInfo = pool.current_info(now);
    assert_eq!(
        (
            info.cpu.samples,
            info.memory.samples,
            info.event_loop.samples,
            info.client.samples
        ),
        (0, 0, 0, 0)
    );
    assert!(info.is_system_idle());
    assert!(pool.historical_info(now).is_system_idle());
}

#[test]
fn js_should_overload_if_only_one_sample_is_overloaded() {
    // JS's 100 snapshots share one `createdAt` (each weight replaced by 1); Python's rule gives 0 for that,
    // so ours are 1 ms apart.
    let over = snaps(100, true);
    let fine = snaps(100, false);
    let status = js_status(None, JS_DEFAULT_THRESHOLDS);
    let cases: [(JsSamples<'_>, SignalId); 4] = [
        (
            JsSamples {
                mem: Some(&fine),
                event_loop: Some(&fine),
                cpu: Some(&over),
                client: Some(&fine),
            },
            SignalId::Cpu,
        ),
        (
            JsSamples {
                mem: Some(&fine),
                event_loop: Some(&over),
                cpu: Some(&fine),
                client: Some(&fine),
            },
            SignalId::EventLoop,
        ),
        (
            JsSamples {
                mem: Some(&over),
                event_loop: Some(&fine),
                cpu: Some(&fine),
                client: Some(&fine),
            },
            SignalId::Memory,
        ),
        (
            JsSamples {
                mem: Some(&fine),
                event_loop: Some(&fine),
                cpu: Some(&fine),
                client: Some(&over),
            },
            SignalId::Client,
        ),
    ];
    for (samples, id) in cases {
        let (pool, now) = js_pool(status, &samples);
        assert_eq!(pool.current_info(now).overloaded(), set(&[id]), "{id:?}");
        assert_eq!(pool.historical_info(now).overloaded(), set(&[id]), "{id:?}");
    }
}

#[test]
fn js_should_overload_when_threshold_is_crossed() {
    // JS's 100 snapshots share one `createdAt` (each weight replaced by 1); Python's rule gives 0 for that,
    // so ours are 1 ms apart.
    let half = snaps(50, true);
    let samples = all_four(&half);
    // 49 overloaded intervals out of 99 (the first snapshot's flag never counts): 0.495.
    let (pool, now) = js_pool(js_status(None, [0.5; 4]), &samples);
    let info = pool.historical_info(now);
    for r in [info.cpu, info.memory, info.event_loop, info.client] {
        assert_eq!(r.actual_ratio, 0.495);
    }
    assert!(info.is_system_idle());
    assert!(pool.current_info(now).is_system_idle());

    assert_eq!(
        idle_now_and_lately(js_status(None, [0.49; 4]), &samples),
        (false, false)
    );
    // mem and loop at 0.5, cpu and client at 0.49.
    let (pool, now) = js_pool(js_status(None, [0.5, 0.5, 0.49, 0.49]), &samples);
    assert_eq!(
        pool.current_info(now).overloaded(),
        set(&[SignalId::Cpu, SignalId::Client])
    );
    assert!(!pool.historical_info(now).is_system_idle());

    assert_eq!(
        idle_now_and_lately(js_status(None, [1.0; 4]), &samples),
        (true, true)
    );
}

#[test]
fn js_should_show_different_values_for_now_and_lately() {
    // JS's 100 snapshots share one `createdAt` (each weight replaced by 1); Python's rule gives 0 for that,
    // so ours are 1 ms apart.
    // JS's mock takes the last N snapshots for a window of N; at 1 ms spacing a window of N − 0.5 ms holds N.
    let window = |n: u64| Some(Duration::from_micros(n * 1000 - 500));
    let late = snaps(95, false);
    let samples = all_four(&late);
    assert_eq!(
        idle_now_and_lately(js_status(window(5), [0.5; 4]), &samples),
        (false, true)
    );
    // 5 of 9 intervals: 0.556.
    let (pool, now) = js_pool(js_status(window(10), [0.5; 4]), &samples);
    assert_eq!(pool.current_info(now).cpu.actual_ratio, 0.556);
    assert!(!pool.current_info(now).is_system_idle());
    assert!(pool.historical_info(now).is_system_idle());
    // 5 of 11 intervals: 0.455.
    let (pool, now) = js_pool(js_status(window(12), [0.5; 4]), &samples);
    assert_eq!(pool.current_info(now).cpu.actual_ratio, 0.455);
    assert!(pool.current_info(now).is_system_idle());
    assert_eq!(pool.historical_info(now).cpu.actual_ratio, 0.051);
    assert!(pool.historical_info(now).is_system_idle());

    let early = snaps(95, true);
    let samples = all_four(&early);
    assert_eq!(
        idle_now_and_lately(js_status(window(5), [0.5; 4]), &samples),
        (true, false)
    );
    assert_eq!(
        idle_now_and_lately(js_status(window(10), [0.5; 4]), &samples),
        (true, false)
    );
    assert_eq!(
        idle_now_and_lately(js_status(window(12), [0.5; 4]), &samples),
        (false, false)
    );
}

#[test]
fn js_historical_window_is_requested_explicitly() {
    // v4: a custom signal with 3 overloaded snapshots at -60/-59/-58 s and a fine one at -1 s, ratio 0.
    let judge = |history: Duration| {
        let mut pool = Pool::new(long_history(history)).unwrap();
        let id = pool.add_signal("custom", 0.0).unwrap();
        for (s, over) in [(60, true), (59, true), (58, true), (1, false)] {
            pool.handle_signal(T0, id, T0 - secs(s), over).unwrap();
        }
        pool.historical_info(T0).is_system_idle()
    };
    assert!(judge(secs(30)));
    assert!(!judge(secs(120)));
}

// ---------------------------------------------------------------------------------------------------------
// crawlee (JS) test/core/autoscaling/snapshotter.test.ts
// ---------------------------------------------------------------------------------------------------------

#[test]
fn js_correctly_marks_cpu_overloaded() {
    // The OS-metrics variant: ratios 0, 0.5, 1, 0, 1 against a 0.5 limit (strict).
    let mut c = PoolConfig::default();
    c.snapshot.max_used_cpu_ratio = 0.5;
    let mut pool = Pool::new(c).unwrap();
    for (k, r) in [0.0, 0.5, 1.0, 0.0, 1.0].into_iter().enumerate() {
        let at = T0 + secs(k as u64);
        cpu(&mut pool, at, at, r);
    }
    assert_eq!(
        flags(&pool, SignalId::Cpu),
        [false, false, true, false, true]
    );
}

#[test]
fn js_correctly_marks_event_loop_overloaded() {
    // JS uses a 0 ms interval and gaps of 1, 2, 7 and 3 ms; ours needs a non-zero interval, so the probe runs
    // every 100 ms and `handle_timeout` is called 1, 2, 7 and 3 ms after each deadline.
    let mut c = PoolConfig::default();
    c.status.history = secs(10);
    c.snapshot.max_event_loop_delay = ms(5);
    c.snapshot.event_loop_probe_interval = ms(100);
    let mut pool = Pool::new(c).unwrap();
    pool.start_run(T0).unwrap();
    let mut t = T0;
    for late in [1, 2, 7, 3] {
        t = t + ms(100) + ms(late);
        pool.handle_timeout(t);
    }
    assert_eq!(
        flags(&pool, SignalId::EventLoop),
        [false, false, false, true, false]
    );
}

#[test]
fn js_correctly_marks_memory_overloaded() {
    let mut c = PoolConfig::default();
    c.snapshot.memory_budget = MemoryBudget::Ratio(1.0);
    c.snapshot.max_used_memory_ratio = 0.5;
    let mut pool = Pool::new(c).unwrap();
    for (k, used) in [2000, 3000, 4000, 5001, 5000].into_iter().enumerate() {
        let at = T0 + secs(k as u64);
        mem(&mut pool, at, at, used * MIB, 10_000 * MIB, None);
    }
    assert_eq!(
        flags(&pool, SignalId::Memory),
        [false, false, false, true, false]
    );
}

#[test]
fn js_correctly_logs_critical_memory_overload() {
    let mut c = PoolConfig::default();
    c.snapshot.memory_budget = MemoryBudget::Ratio(1.0);
    c.snapshot.max_used_memory_ratio = 0.5;
    let mut pool = Pool::new(c).unwrap();
    let total = 10_000 * MIB;
    // The critical line is 0.5 + 0.5 × 0.5 = 0.75 of the total; reaching it is not crossing it.
    mem(&mut pool, T0, T0, total / 4 * 3, total, None);
    assert_eq!(memory_critical_count(&events(&mut pool)), 0);
    let high = (total as f64 * 0.76) as u64;
    mem(&mut pool, T0, T0, high, total, None);
    assert_eq!(
        events(&mut pool)
            .into_iter()
            .filter(|e| matches!(e, Event::MemoryCritical { .. }))
            .collect::<Vec<_>>(),
        [Event::MemoryCritical {
            at: T0,
            used_bytes: high,
            budget_bytes: total,
        }]
    );
    mem(&mut pool, T0, T0, high, total, None);
    assert_eq!(memory_critical_count(&events(&mut pool)), 0);
}

#[test]
fn js_correctly_marks_client_overloaded() {
    // rateLimitErrors[2] goes 0 → 1 → 2 → 4 with maxClientErrors 1; the start probe is JS's baseline.
    let mut c = PoolConfig::default();
    c.snapshot.max_client_errors = 1;
    let mut pool = Pool::new(c).unwrap();
    pool.start_run(T0).unwrap();
    for (k, new_errors) in [(1, 1), (2, 1), (3, 2)] {
        pool.handle_client_errors(new_errors);
        pool.handle_timeout(T0 + secs(k));
    }
    assert_eq!(flags(&pool, SignalId::Client), [false, false, false, true]);
}

fn js_memory_flags(budget: MemoryBudget) -> Vec<bool> {
    let mut c = PoolConfig::default();
    c.snapshot.memory_budget = budget;
    let mut pool = Pool::new(c).unwrap();
    mem(&mut pool, T0, T0, 60 * MIB, 100 * MIB, None);
    mem(
        &mut pool,
        T0 + secs(1),
        T0 + secs(1),
        60 * MIB,
        200 * MIB,
        None,
    );
    flags(&pool, SignalId::Memory)
}

#[test]
fn js_dynamic_memory() {
    assert_eq!(js_memory_flags(MemoryBudget::Ratio(0.5)), [true, false]);
}

#[test]
fn js_static_memory() {
    assert_eq!(js_memory_flags(MemoryBudget::Fixed(50 * MIB)), [true, true]);
}
