//! A CPU-burning neighbour: other processes keep every core of the host busy, and the default CPU signal
//! (`CpuMode::Auto`) must not read their CPU as the pool's own overload, while `CpuMode::Host` (Crawlee's
//! reading) does. The neighbour is not a descendant of the test: it is orphaned at once, as another program
//! on the host would be.

#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::{Duration, Instant as WallInstant};

use pool_core::Instant;
use pool_sensors::{CpuMode, CpuSensor, SensorRoot, Warnings};
use pool_tokio::{AutoscaledPool, ConcurrencySettings};

/// Busy loops in processes that are not this test's descendants, one per online CPU; killed on drop.
struct Neighbour {
    pids: Vec<String>,
}

impl Neighbour {
    fn burn_every_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // `sh` starts the loops in the background, prints their pids and exits: the loops are orphaned and
        // re-parented away from this process.
        let script = format!(
            "for i in $(seq {cores}); do (while :; do :; done) >/dev/null 2>&1 & echo $!; done"
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh starts the neighbour");
        assert!(out.status.success(), "{out:?}");
        let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(pids.len(), cores, "one busy loop per core: {pids:?}");
        Neighbour { pids }
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-9").args(&self.pids).status();
    }
}

/// The ratio `mode` reads over about `window`, while this thread mostly sleeps.
fn read_over(mode: CpuMode, window: Duration) -> f64 {
    let mut w = Warnings::new();
    let mut s = CpuSensor::new(SensorRoot::default(), std::process::id(), mode);
    let start = WallInstant::now();
    let now = || Instant::ZERO + start.elapsed();
    assert_eq!(s.read(now(), &mut w), None);
    std::thread::sleep(window);
    let r = s.read(now(), &mut w).expect("a reading after the window");
    assert!(w.all().is_empty(), "{:#?}", w.all());
    r
}

#[test]
fn a_cpu_burning_neighbour_does_not_collapse_the_default_pool() {
    let neighbour = Neighbour::burn_every_core();
    // Let the loops get going.
    std::thread::sleep(Duration::from_millis(300));
    let host = read_over(CpuMode::Host, Duration::from_millis(1500));
    let own = read_over(CpuMode::Auto, Duration::from_millis(1500));
    assert!(host > 0.8, "the host reads busy with the neighbour: {host}");
    assert!(
        own < 0.3,
        "the default reading is this process's own: {own}"
    );

    // The default pool, sleeping tasks, next to the neighbour: its CPU signal stays clear, and its desired
    // concurrency does not fall below where it started.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (report, cpu_overloaded, desired) = rt.block_on(async {
        let started = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let s = started.clone();
        let deadline = WallInstant::now() + Duration::from_secs(4);
        let pool = AutoscaledPool::builder()
            .concurrency_settings(ConcurrencySettings::default().with_max(40))
            .run_task(move || {
                s.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<(), std::convert::Infallible>(())
                }
            })
            .is_task_ready(move || async move { Ok(WallInstant::now() < deadline) })
            .is_finished(move || async move { Ok(WallInstant::now() >= deadline) })
            .build()
            .unwrap();
        let handle = pool.handle();
        let report = tokio::time::timeout(Duration::from_secs(60), pool.run())
            .await
            .expect("the run ends within 60 s")
            .expect("the run succeeds");
        let info = handle
            .historical_system_info()
            .expect("the sensors sampled");
        (
            report,
            info.cpu.is_overloaded(),
            handle.desired_concurrency(),
        )
    });
    drop(neighbour);
    assert!(report.succeeded > 0);
    assert!(
        !cpu_overloaded,
        "the neighbour's CPU is not the pool's overload"
    );
    assert!(
        desired >= 10,
        "desired stayed at or above its start of 10: {desired}"
    );
}
