//! The shared workload: the three task functions every implementation calls, over process-wide counters.
//!
//! One process runs one measurement, so plain statics are enough and the closures allocate nothing: a start
//! bumps `STARTED`, a task's end bumps `DONE`. The probes for `alloc_per_task` and `start_latency` hang off the
//! same two calls and cost one relaxed load when they are off.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Tasks started so far.
static STARTED: AtomicU64 = AtomicU64::new(0);
/// Tasks finished so far.
static DONE: AtomicU64 = AtomicU64::new(0);
/// Tasks to run.
static N: AtomicU64 = AtomicU64::new(0);
/// Which probe runs: 0 none, 1 allocations, 2 start latency.
static PROBE: AtomicU8 = AtomicU8::new(0);

/// Allocation count (allocations plus reallocations) at the start of the measured window and at its end.
static ALLOC_FROM: AtomicU64 = AtomicU64::new(0);
static ALLOC_TO: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since `EPOCH` when the last task finished.
static LAST_END: AtomicU64 = AtomicU64::new(0);
/// Rounds of [`spin`] each task does when it is first polled (0: a no-op task), for the CPU-bound workload.
static SPIN_ROUNDS: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// One latency per started task, in nanoseconds, allocated before the run.
static LATENCIES: OnceLock<Box<[AtomicU64]>> = OnceLock::new();

const PROBE_ALLOC: u8 = 1;
const PROBE_LATENCY: u8 = 2;

/// The counting allocator every heap allocation of this process goes through.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

/// Prepares the counters for a run of `n` tasks.
pub(crate) fn reset(n: u64) {
    STARTED.store(0, Relaxed);
    DONE.store(0, Relaxed);
    N.store(n, Relaxed);
}

/// Turns on the allocation probe: it counts allocations from the start of task `n / 10` to the start of
/// task `9n / 10`, the steady state between ramp-up and drain.
pub(crate) fn probe_allocations() {
    PROBE.store(PROBE_ALLOC, Relaxed);
}

/// Turns on the start-latency probe for a run of `n` tasks.
pub(crate) fn probe_latency(n: u64) {
    let epoch = *EPOCH.get_or_init(Instant::now);
    let _ = LATENCIES.set((0..n).map(|_| AtomicU64::new(u64::MAX)).collect());
    LAST_END.store(epoch.elapsed().as_nanos() as u64, Relaxed);
    PROBE.store(PROBE_LATENCY, Relaxed);
}

/// `is_task_ready`: whether tasks are left to start.
#[inline]
pub(crate) fn ready() -> bool {
    STARTED.load(Relaxed) < N.load(Relaxed)
}

/// `is_finished`: whether every task has finished.
#[inline]
pub(crate) fn finished() -> bool {
    DONE.load(Relaxed) >= N.load(Relaxed)
}

/// The synchronous part of `run_task`: counts the start.
#[inline]
pub(crate) fn on_start() {
    let i = STARTED.fetch_add(1, Relaxed);
    match PROBE.load(Relaxed) {
        0 => {}
        PROBE_ALLOC => {
            let n = N.load(Relaxed);
            if i == n / 10 {
                ALLOC_FROM.store(allocations(), Relaxed);
            } else if i == n - n / 10 {
                ALLOC_TO.store(allocations(), Relaxed);
            }
        }
        _ => {
            if let (Some(epoch), Some(lat)) = (EPOCH.get(), LATENCIES.get()) {
                let now = epoch.elapsed().as_nanos() as u64;
                let gap = now.saturating_sub(LAST_END.load(Relaxed));
                if let Some(slot) = lat.get(i as usize) {
                    slot.store(gap, Relaxed);
                }
            }
        }
    }
}

/// The end of a task.
#[inline]
pub(crate) fn on_done() {
    if PROBE.load(Relaxed) == PROBE_LATENCY
        && let Some(epoch) = EPOCH.get()
    {
        LAST_END.store(epoch.elapsed().as_nanos() as u64, Relaxed);
    }
    DONE.fetch_add(1, Relaxed);
}

/// Tasks finished so far.
pub(crate) fn done() -> u64 {
    DONE.load(Relaxed)
}

/// Allocations per task over the probe's window; `None` if the window was not reached.
pub(crate) fn allocations_per_task(n: u64) -> Option<f64> {
    let (from, to) = (ALLOC_FROM.load(Relaxed), ALLOC_TO.load(Relaxed));
    let tasks = (n - n / 10) - n / 10;
    (to >= from && to != 0 && tasks > 0).then(|| (to - from) as f64 / tasks as f64)
}

/// The p50 and p99 start latencies in µs, skipping the first tenth (warm-up).
pub(crate) fn latency_percentiles() -> Option<(f64, f64)> {
    let lat = LATENCIES.get()?;
    let skip = lat.len() / 10;
    let mut v: Vec<u64> = lat[skip..]
        .iter()
        .map(|a| a.load(Relaxed))
        .filter(|&x| x != u64::MAX)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Some((at(0.50), at(0.99)))
}

/// Real work that the optimiser cannot drop: `rounds` of a multiply-xorshift.
fn spin(rounds: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rounds {
        x = (x ^ (x >> 29))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9)
            .wrapping_add(i);
    }
    core::hint::black_box(x)
}

/// Makes every task do about `us` microseconds of CPU work when first polled, measured on this machine.
pub(crate) fn set_task_work(us: f64) {
    let probe = 1_000_000u64;
    let t0 = Instant::now();
    spin(probe);
    let per_us = probe as f64 / (t0.elapsed().as_secs_f64() * 1e6);
    SPIN_ROUNDS.store((per_us * us) as u64, Relaxed);
}

/// The CPU work of one task (none unless [`set_task_work`] was called): called inside the task's future, so
/// it runs wherever the implementation polls its tasks.
pub(crate) fn task_work() {
    let rounds = SPIN_ROUNDS.load(Relaxed);
    if rounds > 0 {
        spin(rounds);
    }
}
