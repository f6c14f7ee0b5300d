//! `SystemSensors` against a real `Pool`: readings reach the machine, client errors are drained, custom
//! signals are registered and fed, and an unknown total is handled per budget kind.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{GIB, PID, Tree, assert_warned};
use pool_core::{Instant, MemoryBudget, Pool, PoolConfig, Sensors, SignalId};
use pool_sensors::{LoadSignal, SensorSettings, SystemSensors};

fn sensors(t: &Tree) -> SystemSensors {
    SystemSensors::new(
        SensorSettings::default()
            .with_root(t.root().path())
            .with_pid(PID),
    )
}

fn secs(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

fn snapshots(pool: &Pool, id: SignalId) -> Vec<bool> {
    pool.history(id)
        .map(|h| h.as_slice().iter().map(|s| s.is_overloaded()).collect())
        .unwrap_or_default()
}

#[test]
fn memory_over_the_budget_of_a_cgroup_limit_is_overloaded_in_the_pool() {
    let t = Tree::new();
    t.v2("/a");
    // A 32 MiB container: the default budget is a quarter, 8 MiB, and the process uses 10 MiB.
    t.file("/sys/fs/cgroup/a/memory.max", &(32u64 << 20).to_string());
    t.file(
        "/sys/fs/cgroup/a/memory.current",
        &(12u64 << 20).to_string(),
    );
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut s = sensors(&t);
    s.sample(secs(0), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Memory), [true]);
    // The container is resized: 10 MiB of a 256 MiB budget is fine, once the limits are looked up again
    // (every 30 s of the pool's clock).
    t.file("/sys/fs/cgroup/a/memory.max", &GIB.to_string());
    s.sample(secs(5), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Memory), [true, true]);
    s.sample(secs(30), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Memory), [true, true, false]);
    assert_warned(s.warnings(), &[]);
}

#[test]
fn cpu_is_reported_from_the_second_sample_on() {
    let t = Tree::new();
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut s = sensors(&t);
    s.sample(secs(0), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Cpu), Vec::<bool>::new());
    // The process used 1.98 s of CPU on the two cores in 1 s (the host's counters are not what counts).
    t.stat(PID, 1, 198);
    s.sample(secs(1), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Cpu), [true]);
}

#[test]
fn client_errors_reported_by_tasks_are_drained_into_the_pool() {
    let t = Tree::new();
    let mut config = PoolConfig::default();
    config.snapshot.max_client_errors = 2;
    let mut pool = Pool::new(config).unwrap();
    let mut s = sensors(&t);
    let errors = s.client_errors();
    let in_task = errors.clone();
    pool.start_run(secs(0)).unwrap();
    in_task.report();
    in_task.add(2);
    s.sample(secs(0), &mut pool);
    assert_eq!(errors.take(), 0, "the sample drained the counter");
}

struct Flag(Arc<AtomicBool>, &'static str);

impl LoadSignal for Flag {
    fn name(&self) -> &'static str {
        self.1
    }
    fn overload_threshold(&self) -> f64 {
        0.5
    }
    fn is_overloaded(&mut self, _now: Instant) -> Option<bool> {
        Some(self.0.load(Ordering::Relaxed))
    }
}

#[test]
fn custom_signals_are_registered_at_the_first_sample_and_fed_on_every_one() {
    let t = Tree::new();
    let flag = Arc::new(AtomicBool::new(false));
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut s = sensors(&t)
        .with_signal(Flag(flag.clone(), "queue"))
        .with_signal(Flag(flag.clone(), "cpu"));
    s.sample(secs(0), &mut pool);
    flag.store(true, Ordering::Relaxed);
    s.sample(secs(1), &mut pool);
    assert_eq!(pool.custom_signal_count(), 1);
    assert_eq!(snapshots(&pool, SignalId::Custom(0)), [false, true]);
    // The second signal reused a built-in name: dropped with a warning.
    assert_warned(s.warnings(), &["signal.rejected"]);

    let id = s
        .register_signal(&mut pool, Flag(flag, "gpu"))
        .expect("a fresh name registers");
    assert_eq!(id, SignalId::Custom(1));
}

#[test]
fn an_unknown_total_still_feeds_a_fixed_budget_but_not_a_ratio() {
    let t = Tree::new();
    t.remove("/proc/meminfo");
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut s = sensors(&t);
    s.sample(secs(0), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Memory), Vec::<bool>::new());
    assert_warned(
        s.warnings(),
        &["memory.meminfo_unreadable", "memory.total_unknown"],
    );

    let mut config = PoolConfig::default();
    config.snapshot.memory_budget = MemoryBudget::Fixed(8 << 20);
    let mut pool = Pool::new(config).unwrap();
    s.sample(secs(1), &mut pool);
    assert_eq!(snapshots(&pool, SignalId::Memory), [true]);
}

#[test]
fn the_last_warning_is_retrievable() {
    let t = Tree::new();
    t.unreadable("/proc/stat");
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let mut s = sensors(&t);
    s.sample(secs(0), &mut pool);
    let last = s.warnings().last().expect("a warning");
    assert_eq!(last.code, "cpu.stat_unreadable");
    assert!(last.to_string().contains("/proc/stat"), "{last}");
}
