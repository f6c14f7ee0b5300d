//! A pool on your own smol executor: its 200 jobs of 20 ms each are spawned on `ex`, which this thread
//! drives with `Executor::run` while the pool works. Run with `cargo run -p pool-smol --example smol_basic`.
//!
//! `AutoscaledPool::builder()` spawns on smol's global executor instead; `Builder::new` takes any runtime
//! value, here one bound to `ex`, and any sensors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pool_smol::{Builder, ConcurrencySettings, SensorSettings, SmolRuntime, SystemSensors};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ex = Arc::new(smol::Executor::new());
    let jobs = Arc::new(AtomicU32::new(200));
    let (take, left, done) = (jobs.clone(), jobs.clone(), jobs);
    let sensors = SystemSensors::new(SensorSettings::default());
    let pool = Builder::new(SmolRuntime::with_executor(ex.clone()), sensors)
        .concurrency_settings(ConcurrencySettings::default().with_max(32))
        .run_task(move || {
            take.fetch_sub(1, Ordering::SeqCst);
            async {
                smol::Timer::after(Duration::from_millis(20)).await;
                Ok::<(), std::io::Error>(())
            }
        })
        .is_task_ready(move || {
            let ready = left.load(Ordering::SeqCst) > 0;
            async move { Ok(ready) }
        })
        .is_finished(move || {
            let finished = done.load(Ordering::SeqCst) == 0;
            async move { Ok(finished) }
        })
        .build()?;
    // The pool's tasks run only while something drives `ex`: here, the same call that awaits the run.
    let report = smol::block_on(ex.run(pool.run()))?;
    println!(
        "{} jobs in {:.2} s on the caller's executor, peak concurrency {}",
        report.succeeded,
        report.duration.as_secs_f64(),
        report.peak_concurrency
    );
    Ok(())
}
