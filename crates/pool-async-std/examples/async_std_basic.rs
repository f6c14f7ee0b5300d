//! A pool on async-std working through 200 jobs of 20 ms each. Run with
//! `cargo run -p pool-async-std --example async_std_basic`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_async_std::{AutoscaledPool, ConcurrencySettings};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue: Arc<Mutex<VecDeque<u32>>> = Arc::new(Mutex::new((0..200).collect()));
    let (take, peek, done) = (queue.clone(), queue.clone(), queue.clone());
    let pool = AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::default().with_max(32))
        .run_task(move || {
            let job = take.lock().unwrap().pop_front();
            async move {
                if job.is_some() {
                    async_std::task::sleep(Duration::from_millis(20)).await;
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
        "{} jobs in {:.2} s, peak concurrency {}",
        report.succeeded,
        report.duration.as_secs_f64(),
        report.peak_concurrency
    );
    Ok(())
}
