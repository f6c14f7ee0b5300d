//! `pool-fleet run`: the benchmark's timeline, and the summary it writes.
//!
//! | from (s) | what happens |
//! |---|---|
//! | 0 | ten members start, each an autoscaled pool on the one budget |
//! | 2–6 | window A: each member's answered requests (Jain's fairness), Redis calls per permit |
//! | 6 | member 0 is killed with SIGKILL: the time until the server sees the whole budget in flight again |
//! | 11 | Redis is killed, and started again empty 0.5 s later |
//! | 16–20 | window B, over the nine members left |
//! | 20 | member 1 is killed with SIGKILL |
//! | 25 | the members stop |

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_redis::testing::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::server::{self, Counts};

/// `pool-fleet run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Member processes.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// The budget's capacity.
    #[arg(long, default_value_t = 40)]
    budget: usize,
    /// The lease batch.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// The lease TTL, in ms.
    #[arg(long, default_value_t = 3000)]
    ttl_ms: u64,
    /// How long the server holds each request, in ms.
    #[arg(long, default_value_t = 50)]
    hold_ms: u64,
    /// Where to write summary.json.
    #[arg(long, default_value = "target/fleet")]
    out: PathBuf,
}

/// A member's last counts line.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
struct Line {
    starts: u64,
    calls: u64,
    failures: u64,
}

/// What one phase measured.
#[derive(Debug, Serialize)]
struct Phase {
    max_in_flight_seen: usize,
    jain_fairness: f64,
    answered_per_member: Vec<u64>,
    reclaim_after_kill_s: Option<f64>,
    redis_calls_per_permit: f64,
}

/// The summary.
#[derive(Debug, Serialize)]
struct Summary {
    budget: usize,
    processes: usize,
    batch: usize,
    lease_ttl_s: f64,
    hold_ms: u64,
    max_in_flight_seen: usize,
    jain_fairness: f64,
    answered_per_member: Vec<u64>,
    reclaim_after_kill_s: Option<f64>,
    redis_calls_per_permit: f64,
    members_that_saw_the_outage: usize,
    during_redis_restart_max_in_flight_seen: usize,
    during_redis_restart_bound: usize,
    after_redis_restart: Phase,
    targets_met: Targets,
}

#[derive(Debug, Serialize)]
struct Targets {
    max_in_flight_within_budget: bool,
    within_budget_plus_one_batch_each_during_restart: bool,
    jain_fairness_at_least_0_9: bool,
    reclaim_within_ttl_plus_1_s: bool,
    redis_calls_per_permit_at_most_0_25: bool,
}

struct Fleet {
    started: Instant,
    counts: Arc<Counts>,
    lines: Arc<Mutex<Vec<Line>>>,
    children: Vec<Child>,
    alive: Vec<bool>,
}

impl Fleet {
    async fn until(&self, s: f64) {
        tokio::time::sleep_until((self.started + Duration::from_secs_f64(s)).into()).await;
    }

    /// Each alive member's answered requests and last counts line, now.
    fn snapshot(&self) -> Vec<Option<(u64, Line)>> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.children.len())
            .map(|i| {
                self.alive[i].then(|| (self.counts.answered[i].load(Ordering::SeqCst), lines[i]))
            })
            .collect()
    }

    /// Kills member `i` with SIGKILL and returns when the server sees the whole budget in flight again.
    async fn kill_and_time_reclaim(
        &mut self,
        i: usize,
        budget: usize,
        limit: Duration,
    ) -> Option<f64> {
        let _ = self.children[i].start_kill();
        self.alive[i] = false;
        let killed = Instant::now();
        // Its requests in flight end within one hold; only then can the budget be "whole again".
        tokio::time::sleep(Duration::from_millis(100)).await;
        while killed.elapsed() < limit {
            if self.counts.in_flight.load(Ordering::SeqCst) >= budget {
                return Some(killed.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }
}

/// Jain's index of the answered requests between two snapshots, over the members alive in both, and Redis
/// calls per permit (task start) over the same members.
fn window(a: &[Option<(u64, Line)>], b: &[Option<(u64, Line)>]) -> (f64, f64, Vec<u64>) {
    let mut xs = Vec::new();
    let (mut calls, mut starts) = (0u64, 0u64);
    for (x, y) in a.iter().zip(b) {
        if let (Some((ax, al)), Some((bx, bl))) = (x, y) {
            xs.push((bx - ax) as f64);
            calls += bl.calls - al.calls;
            starts += bl.starts - al.starts;
        }
    }
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    let jain = if sq > 0.0 {
        sum * sum / (xs.len() as f64 * sq)
    } else {
        0.0
    };
    let answered = xs.iter().map(|&x| x as u64).collect();
    (jain, calls as f64 / starts.max(1) as f64, answered)
}

pub(crate) async fn run(o: Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut redis = RedisServer::start()?;
    let hold = Duration::from_millis(o.hold_ms);
    let (port, counts) = server::start(o.members, hold).await?;
    let exe = std::env::current_exe()?;
    let lines = Arc::new(Mutex::new(vec![Line::default(); o.members]));
    let mut children = Vec::new();
    for id in 0..o.members {
        let mut child = Command::new(&exe)
            .arg("member")
            .args(["--id", &id.to_string(), "--redis", &redis.url()])
            .args([
                "--port",
                &port.to_string(),
                "--budget",
                &o.budget.to_string(),
            ])
            .args([
                "--batch",
                &o.batch.to_string(),
                "--ttl-ms",
                &o.ttl_ms.to_string(),
            ])
            .args(["--seconds", "25"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = child.stdout.take().ok_or("no member stdout")?;
        let lines = lines.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(out).lines();
            while let Ok(Some(l)) = out.next_line().await {
                if let Ok(line) = serde_json::from_str::<Line>(&l) {
                    lines.lock().unwrap_or_else(|e| e.into_inner())[id] = line;
                }
            }
        });
        children.push(child);
    }
    let mut fleet = Fleet {
        started: Instant::now(),
        counts: counts.clone(),
        lines,
        alive: vec![true; o.members],
        children,
    };
    let ttl = Duration::from_millis(o.ttl_ms);
    let limit = ttl + Duration::from_secs(3);

    fleet.until(2.0).await;
    let a0 = fleet.snapshot();
    fleet.until(6.0).await;
    let a1 = fleet.snapshot();
    let (jain_a, per_permit_a, answered_a) = window(&a0, &a1);
    let reclaim_a = fleet.kill_and_time_reclaim(0, o.budget, limit).await;

    fleet.until(11.0).await;
    let max_before = counts.max_in_flight.swap(0, Ordering::SeqCst);
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| redis.restart())?;
    tokio::time::sleep(2 * ttl + Duration::from_secs(1)).await;
    let max_restart = counts.max_in_flight.swap(0, Ordering::SeqCst);

    fleet.until(16.0).await;
    let b0 = fleet.snapshot();
    fleet.until(20.0).await;
    let b1 = fleet.snapshot();
    let (jain_b, per_permit_b, answered_b) = window(&b0, &b1);
    let reclaim_b = fleet.kill_and_time_reclaim(1, o.budget, limit).await;
    for child in &mut fleet.children {
        let _ = child.wait().await;
    }
    let max_after = counts.max_in_flight.load(Ordering::SeqCst);
    // Failures before the restart were none (checked by the tests); those counted now are the outage's.
    let saw_outage = b1.iter().flatten().filter(|(_, l)| l.failures > 0).count();

    let ttl_s = ttl.as_secs_f64();
    let bound = o.budget + o.batch * o.members;
    let max_seen = max_before.max(max_after);
    let reclaim_ok = |r: Option<f64>| r.is_some_and(|r| r <= ttl_s + 1.0);
    let summary = Summary {
        budget: o.budget,
        processes: o.members,
        batch: o.batch,
        lease_ttl_s: ttl_s,
        hold_ms: o.hold_ms,
        max_in_flight_seen: max_seen,
        jain_fairness: jain_a,
        answered_per_member: answered_a,
        reclaim_after_kill_s: reclaim_a,
        redis_calls_per_permit: per_permit_a,
        members_that_saw_the_outage: saw_outage,
        during_redis_restart_max_in_flight_seen: max_restart,
        during_redis_restart_bound: bound,
        after_redis_restart: Phase {
            max_in_flight_seen: max_after,
            jain_fairness: jain_b,
            answered_per_member: answered_b,
            reclaim_after_kill_s: reclaim_b,
            redis_calls_per_permit: per_permit_b,
        },
        targets_met: Targets {
            max_in_flight_within_budget: max_seen <= o.budget,
            within_budget_plus_one_batch_each_during_restart: max_restart <= bound,
            jain_fairness_at_least_0_9: jain_a >= 0.9 && jain_b >= 0.9,
            reclaim_within_ttl_plus_1_s: reclaim_ok(reclaim_a) && reclaim_ok(reclaim_b),
            redis_calls_per_permit_at_most_0_25: per_permit_a <= 0.25 && per_permit_b <= 0.25,
        },
    };
    std::fs::create_dir_all(&o.out)?;
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(o.out.join("summary.json"), &json)?;
    println!("{json}");
    Ok(())
}
