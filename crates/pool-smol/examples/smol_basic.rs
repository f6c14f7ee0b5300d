//! A pool on smol working through 200 jobs of 20 ms each. Run with `cargo run -p pool-smol --example smol_basic`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_smol::{AutoscaledPool, ConcurrencySettings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue: Arc<Mutex<VecDeque<u32>>> = Arc::new(Mutex::new((0..200).collect()));
    let (take, peek, done) = (queue.clone(), queue.clone(), queue.clone());
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::default().with_max(32))
        .run_task(move || {
            let job = take.lock().unwrap().pop_front();
            async move {
                if job.is_some() {
                    smol::Timer::after(Duration::from_millis(20)).await;
                }
                Ok::<(), std::io::Error>(())
            }
        })
        .is_task_ready(move || {
            let ready = !peek.lock().unwrap().is_empty();
            async move { Ok(ready) }
        })
        .is_finished(move || {
            let finished = done.lock().unwrap().is_empty();
            async move { Ok(finished) }
        })
        .build()?;
    let report = smol::block_on(pool.run())?;
    println!(
        "{} jobs in {:.2} s, peak concurrency {}",
        report.succeeded,
        report.duration.as_secs_f64(),
        report.peak_concurrency
    );
    Ok(())
}
