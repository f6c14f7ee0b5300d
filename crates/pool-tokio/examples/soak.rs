//! The soak run (`cargo xtask soak`): ~10M tasks on tokio's multi-thread runtime, some failing inside their own
//! error handling, some timing out, while another thread pauses, resumes and changes the settings every
//! millisecond. Afterwards the counters must be consistent, every task id must have run exactly once, and
//! resident memory after warm-up must have grown by at most 2 MiB. It prints the figures and exits non-zero if
//! a check fails.
//!
//! `SOAK_TASKS` overrides the task count (default 10,000,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pool_tokio::{AutoscaledPool, ConcurrencySettings, ScalingSettings};

/// Resident set size in bytes, from `/proc/self/statm` (0 where unavailable).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[derive(Debug)]
struct Handled;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::var("SOAK_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let warm_up = total / 10;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Allocated before warm-up, so it is not counted as growth.
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..total).map(|_| AtomicU8::new(0)).collect());
    // The zeroed vector may come straight from the kernel, untouched: touch every page now, or marking the ids
    // would show as growth.
    for i in (0..total).step_by(1024) {
        seen[i].store(0, Ordering::Relaxed);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let handled_errors = Arc::new(AtomicU64::new(0));
    let (n2, s2, d2, h2, n3, n4) = (
        next.clone(),
        seen.clone(),
        done.clone(),
        handled_errors.clone(),
        next.clone(),
        next.clone(),
    );
    let pool = AutoscaledPool::builder()
        .concurrency_settings(
            ConcurrencySettings::default()
                .with_min(1)
                .with_desired(64)
                .with_max(256),
        )
        .scaling_settings(
            ScalingSettings::default()
                .with_autoscale_interval(Duration::from_millis(50))
                .with_status_log_interval(None),
        )
        .task_timeout(Some(Duration::from_millis(20)))
        .run_task(move || {
            // The driver calls this only after `is_task_ready` said yes, one call at a time.
            let id = n2.fetch_add(1, Ordering::Relaxed);
            // Counted when the pool starts the task: one started under load may be timed out before its first
            // poll, and that is still its one run.
            s2[id].fetch_add(1, Ordering::Relaxed);
            let (done, handled) = (d2.clone(), h2.clone());
            async move {
                done.fetch_add(1, Ordering::Relaxed);
                if id % 1_000 == 7 {
                    // Fails inside its own error handling: the error is caught and the task succeeds.
                    let r: Result<(), Handled> = Err(Handled);
                    if r.is_err() {
                        handled.fetch_add(1, Ordering::Relaxed);
                    }
                } else if id % 10_000 == 3 {
                    // Outlives the 20 ms timeout: cancelled and counted as timed out.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                } else if id % 16 == 0 {
                    tokio::task::yield_now().await;
                }
                Ok::<(), std::io::Error>(())
            }
        })
        .is_task_ready(move || {
            let ready = n3.load(Ordering::Relaxed) < total;
            async move { Ok(ready) }
        })
        .is_finished(move || {
            // Asked only with nothing running and nothing ready: every task has started and ended.
            let finished = n4.load(Ordering::Relaxed) >= total;
            async move { Ok(finished) }
        })
        .build()?;
    let handle = pool.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, done4) = (stop.clone(), done.clone());
    let controller = std::thread::spawn(move || {
        let (mut controls, mut rss_warm, mut rss_peak) = (0u64, 0u64, 0u64);
        let mut tick = 0u64;
        while !stop2.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
            tick += 1;
            match tick % 6 {
                0 => handle.pause(),
                1 => handle.resume(),
                2 => drop(handle.set_desired_concurrency(8 + (tick as usize * 7) % 200)),
                3 => drop(handle.set_max_concurrency(64 + (tick as usize * 13) % 192)),
                4 => drop(handle.set_min_concurrency(1 + (tick as usize) % 4)),
                _ => handle.notify(),
            }
            controls += 1;
            let d = done4.load(Ordering::Relaxed);
            if rss_warm == 0 && d >= warm_up as u64 {
                rss_warm = rss();
            }
            if rss_warm != 0 {
                rss_peak = rss_peak.max(rss());
            }
        }
        handle.resume();
        (controls, rss_warm, rss_peak)
    });
    let started = Instant::now();
    let res = rt.block_on(pool.run());
    stop.store(true, Ordering::Release);
    let (controls, rss_warm, rss_peak) = controller.join().expect("controller");
    let rss_end = rss();
    let elapsed = started.elapsed();
    let report = res?;

    let (mut zero, mut twice) = (0usize, 0usize);
    for s in seen.iter() {
        match s.load(Ordering::Relaxed) {
            0 => zero += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    let growth = rss_peak.max(rss_end).saturating_sub(rss_warm);
    println!(
        "soak: {total} tasks in {:.1} s ({:.0} tasks/s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "soak: started {} succeeded {} failed {} timed_out {} cancelled {} peak {} final desired {}",
        report.started,
        report.succeeded,
        report.failed,
        report.timed_out,
        report.cancelled,
        report.peak_concurrency,
        report.final_desired_concurrency
    );
    println!(
        "soak: errors handled inside tasks {}, tasks polled at least once {}, control requests {controls}",
        handled_errors.load(Ordering::Relaxed),
        done.load(Ordering::Relaxed)
    );
    println!("soak: ids never run {zero}, ids run twice or more {twice}");
    println!(
        "soak: rss after warm-up {:.1} MiB, peak after {:.1} MiB, end {:.1} MiB, growth {:.2} MiB",
        rss_warm as f64 / 1048576.0,
        rss_peak as f64 / 1048576.0,
        rss_end as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    let mut failures = Vec::new();
    if report.started != total as u64 {
        failures.push(format!("started {} != {total}", report.started));
    }
    if report.finished() != report.started {
        failures.push(format!(
            "finished {} != started {}",
            report.finished(),
            report.started
        ));
    }
    if report.failed != 0 || report.cancelled != 0 || report.aborted {
        failures.push("unexpected failures, cancellations or abort".into());
    }
    // The sleepers always time out; under load a task that waits too long for a worker may too (that is the
    // timeout working), so the check is a floor plus the accounting.
    let sleepers = (0..total)
        .filter(|id| id % 10_000 == 3 && id % 1_000 != 7)
        .count() as u64;
    if report.timed_out < sleepers || report.succeeded + report.timed_out != total as u64 {
        failures.push(format!(
            "timed out {} (at least {sleepers}), succeeded {}",
            report.timed_out, report.succeeded
        ));
    }
    if zero != 0 || twice != 0 {
        failures.push(format!("{zero} ids never ran, {twice} ran more than once"));
    }
    if growth > 2 << 20 {
        failures.push(format!(
            "resident memory grew by {growth} bytes after warm-up"
        ));
    }
    if pool.current_concurrency() != 0 {
        failures.push("tasks still counted as running".into());
    }
    if failures.is_empty() {
        println!("soak: PASS");
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
