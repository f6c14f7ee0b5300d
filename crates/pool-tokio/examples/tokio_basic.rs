//! A pool on tokio's multi-thread runtime working through a queue of 200 jobs of 20 ms each, printing how
//! concurrency moved. Run with `cargo run -p pool-tokio --example tokio_basic`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_tokio::{AutoscaledPool, ConcurrencySettings, ScalingSettings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue: Arc<Mutex<VecDeque<u32>>> = Arc::new(Mutex::new((0..200).collect()));
    let (take, peek, done) = (queue.clone(), queue.clone(), queue.clone());
    let pool = AutoscaledPool::builder()
        .concurrency_settings(
            ConcurrencySettings::default()
                .with_min(1)
                .with_desired(4)
                .with_max(32),
        )
        .scaling_settings(
            ScalingSettings::default().with_autoscale_interval(Duration::from_millis(100)),
        )
        .run_task(move || {
            let job = take.lock().unwrap().pop_front();
            async move {
                if job.is_some() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
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
    let report = pool.run().await?;
    println!(
        "{} jobs in {:.2} s, peak concurrency {}, final desired {}",
        report.succeeded,
        report.duration.as_secs_f64(),
        report.peak_concurrency,
        report.final_desired_concurrency
    );
    Ok(())
}
