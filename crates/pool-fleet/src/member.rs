//! One member process: an autoscaled pool from the default builder, its permits from the Redis budget, each
//! task one request to the server over a kept connection. Every 200 ms it prints a JSON line of its counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pool_redis::{RedisBudget, RedisBudgetSettings};
use pool_tokio::AutoscaledPool;
use serde::Serialize;
use std::sync::Mutex;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// `pool-fleet member`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// This member's number.
    #[arg(long)]
    id: usize,
    /// The Redis URL.
    #[arg(long)]
    redis: String,
    /// The server's port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// The budget's capacity.
    #[arg(long)]
    budget: usize,
    /// The lease batch.
    #[arg(long)]
    batch: usize,
    /// The lease TTL, in ms.
    #[arg(long)]
    ttl_ms: u64,
    /// How long to run, in s.
    #[arg(long)]
    seconds: f64,
}

/// One line of counts.
#[derive(Debug, Serialize)]
struct Line {
    id: usize,
    starts: u64,
    calls: u64,
    failures: u64,
    leased: usize,
    share: usize,
    outage: bool,
}

pub(crate) async fn run(o: Options) -> Result<(), Box<dyn std::error::Error>> {
    let settings = RedisBudgetSettings::new("fleet", o.budget)
        .with_batch(o.batch)
        .with_lease_ttl(Duration::from_millis(o.ttl_ms));
    let budget = Arc::new(RedisBudget::connect(&o.redis, settings).await?);
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let starts = Arc::new(AtomicU64::new(0));
    let conns: Arc<Mutex<Vec<BufReader<TcpStream>>>> = Arc::default();
    let printer = {
        let (budget, starts, id) = (budget.clone(), starts.clone(), o.id);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let s = budget.stats();
                let line = Line {
                    id,
                    starts: starts.load(Ordering::Relaxed),
                    calls: s.calls,
                    failures: s.failures,
                    leased: s.leased,
                    share: s.share,
                    outage: s.outage,
                };
                println!("{}", serde_json::to_string(&line).unwrap_or_default());
            }
        })
    };
    let (id, port) = (o.id, o.port);
    let pool = AutoscaledPool::builder()
        .budget(budget.member(1))
        .run_task(move || {
            let (conns, starts) = (conns.clone(), starts.clone());
            async move {
                starts.fetch_add(1, Ordering::Relaxed);
                let kept = conns.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let mut conn = match kept {
                    Some(c) => c,
                    None => BufReader::new(TcpStream::connect(("127.0.0.1", port)).await?),
                };
                conn.get_mut()
                    .write_all(format!("{id}\n").as_bytes())
                    .await?;
                let mut reply = String::new();
                conn.read_line(&mut reply).await?;
                conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                Ok::<(), std::io::Error>(())
            }
        })
        .is_task_ready(move || async move { Ok(Instant::now() < deadline) })
        .is_finished(move || async move { Ok(Instant::now() >= deadline) })
        .build()?;
    pool.run().await?;
    printer.abort();
    if let Ok(budget) = Arc::try_unwrap(budget) {
        budget.close().await;
    }
    Ok(())
}
