//! End to end: tasks that really allocate, under a fixed memory budget, with the real memory sensor.
//!
//! Each task holds 8 MiB for 200 ms. Left alone, 64 of them would need 512 MiB; the budget is 256 MiB. The pool
//! must finish every task while the process's measured memory stays under the budget. This file holds one
//! test so no other test shares the process's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use pool_core::MemoryBudget;
use pool_sensors::{MemorySensor, SensorRoot, Warnings};
use pool_tokio::{AutoscaledPool, ConcurrencySettings, PoolConfig};

const MIB: u64 = 1024 * 1024;
const BUDGET: u64 = 256 * MIB;
const TASKS: u32 = 200;

/// The two policies run one after the other in one test, so they never share the process's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_under_a_fixed_budget_while_every_task_completes() {
    for crawlee in [true, false] {
        run_under_budget(crawlee).await;
    }
}

async fn run_under_budget(crawlee: bool) {
    let mut config = PoolConfig::default();
    config.concurrency = ConcurrencySettings::default()
        .with_min(1)
        .with_desired(4)
        .with_max(64);
    config.snapshot.memory_budget = MemoryBudget::Fixed(BUDGET);
    config.snapshot.sensor_interval = Duration::from_millis(50);
    config.status.current_window = Duration::from_secs(1);
    config.status.history = Duration::from_secs(5);
    config.scaling.autoscale_interval = Duration::from_millis(100);
    // The default (adaptive) policy runs with the default overload line, 90 % of the budget. Crawlee's rule
    // judges the share of overloaded time in the window, so it reacts a few samples after the line is crossed
    // while its autoscaler keeps adding tasks; for it the line sits at 60 % of the budget to leave room for
    // the tasks started meanwhile.
    if crawlee {
        config.snapshot.max_used_memory_ratio = 0.6;
    }

    // An independent watcher samples the same process-tree memory every 5 ms and keeps the peak.
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sensor = MemorySensor::new(SensorRoot::default(), std::process::id());
            let mut warnings = Warnings::default();
            while !stop.load(Ordering::SeqCst) {
                if let Some(s) = sensor.read(&mut warnings) {
                    peak.fetch_max(s.used_bytes, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let (started, done) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (s1, s2, d1, d2) = (started.clone(), started.clone(), done.clone(), done.clone());
    let builder = AutoscaledPool::builder();
    let builder = if crawlee {
        builder.crawlee_parity()
    } else {
        builder
    };
    let pool = builder
        .config(config)
        .run_task(move || {
            s1.fetch_add(1, Ordering::SeqCst);
            let done = d1.clone();
            async move {
                // Written, not zeroed, so every page is really resident.
                let block = vec![1u8; 8 * MIB as usize];
                tokio::time::sleep(Duration::from_millis(200)).await;
                std::hint::black_box(&block);
                drop(block);
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        })
        .is_task_ready(move || {
            let ready = s2.load(Ordering::SeqCst) < TASKS;
            async move { Ok(ready) }
        })
        .is_finished(move || {
            let finished = d2.load(Ordering::SeqCst) == TASKS;
            async move { Ok(finished) }
        })
        .build()
        .unwrap();
    let report = pool.run().await.unwrap();
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();

    let peak = peak.load(Ordering::SeqCst);
    println!(
        "memory e2e ({}): {} tasks, peak concurrency {}, peak memory {:.1} MiB of a {} MiB budget, {:.2} s",
        if crawlee { "crawlee" } else { "adaptive" },
        report.succeeded,
        report.peak_concurrency,
        peak as f64 / MIB as f64,
        BUDGET / MIB,
        report.duration.as_secs_f64()
    );
    assert_eq!(report.succeeded, u64::from(TASKS));
    assert!(peak > 0, "the watcher never read memory");
    assert!(
        peak < BUDGET,
        "peak memory {peak} crossed the budget {BUDGET}"
    );
    // The pool must have been held back: 64 tasks at once would need 512 MiB.
    assert!(
        report.peak_concurrency < 32,
        "peak concurrency {} ignored the budget",
        report.peak_concurrency
    );
}
