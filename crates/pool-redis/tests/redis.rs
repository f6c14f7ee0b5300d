//! The distributed budget against a real redis-server (issue 14): several "processes" (each its own
//! `RedisBudget`, as a process would have) never run more than the budget together, share it evenly, get a
//! vanished process's permits back within the lease TTL, hear of each other's throttles, and stay within the
//! budget plus one batch each across a Redis restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pool_redis::testing::RedisServer;
use pool_redis::{Error, RedisBudget, RedisBudgetSettings, SettingsError};
use pool_tokio::{AutoscaledPool, ConcurrencySettings, Outcome, RunReport};

/// Tasks in flight across every process, and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    starts: AtomicU64,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        self.starts.fetch_add(1, Ordering::SeqCst);
    }
    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn settings(name: &str, capacity: usize) -> RedisBudgetSettings {
    RedisBudgetSettings::new(name, capacity)
        .with_batch(2)
        .with_lease_ttl(Duration::from_millis(1500))
        .with_call_timeout(Duration::from_millis(200))
        .with_tick(Duration::from_millis(20))
}

/// Runs a pool of up to `want` tasks of 20 ms on `budget` until `stop`; the first task reports a throttle
/// when `throttle` is set.
async fn run_pool(
    budget: &RedisBudget,
    want: usize,
    gauge: Arc<Gauge>,
    mine: Arc<Gauge>,
    stop: Arc<AtomicBool>,
    throttle: bool,
) -> RunReport {
    let first = Arc::new(AtomicBool::new(throttle));
    let (s1, s2) = (stop.clone(), stop);
    AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::new(want, want, want))
        .budget(budget.member(1))
        .run_task(move || {
            let (gauge, mine, first) = (gauge.clone(), mine.clone(), first.clone());
            async move {
                gauge.enter();
                mine.enter();
                tokio::time::sleep(Duration::from_millis(20)).await;
                gauge.exit();
                mine.exit();
                Ok::<_, ()>(if first.swap(false, Ordering::SeqCst) {
                    Outcome::Throttled {
                        retry_after: Some(Duration::from_millis(300)),
                    }
                } else {
                    Outcome::Succeeded
                })
            }
        })
        .is_task_ready(move || {
            let r = !s1.load(Ordering::SeqCst);
            async move { Ok(r) }
        })
        .is_finished(move || {
            let f = s2.load(Ordering::SeqCst);
            async move { Ok(f) }
        })
        .build()
        .unwrap()
        .run()
        .await
        .unwrap()
}

fn stop_after(d: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        s.store(true, Ordering::SeqCst);
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_budget_never_run_more_than_it_and_share_it_evenly() {
    let redis = RedisServer::start().unwrap();
    let all = Arc::new(Gauge::default());
    let mut budgets = Vec::new();
    for _ in 0..3 {
        budgets.push(
            RedisBudget::connect(&redis.url(), settings("even", 9))
                .await
                .unwrap(),
        );
    }
    let mine: Vec<Arc<Gauge>> = (0..3).map(|_| Arc::new(Gauge::default())).collect();
    let stop = stop_after(Duration::from_secs(3));
    let run = |i: usize| {
        run_pool(
            &budgets[i],
            20,
            all.clone(),
            mine[i].clone(),
            stop.clone(),
            false,
        )
    };
    let (r0, r1, r2) = tokio::join!(run(0), run(1), run(2));
    let reports = [r0, r1, r2];
    let peak = all.peak.load(Ordering::SeqCst);
    assert!(peak <= 9, "{peak} in flight on a budget of 9");
    assert!(peak >= 8, "the budget was used: peak {peak}");
    for r in &reports {
        assert!(r.succeeded > 0);
    }
    // Jain's index over the tasks each process ran: 1 when even. The first to join ran the whole budget until
    // the others came, so it is a little above 1/3.
    let counts: Vec<f64> = mine
        .iter()
        .map(|m| m.starts.load(Ordering::SeqCst) as f64)
        .collect();
    let jain =
        counts.iter().sum::<f64>().powi(2) / (3.0 * counts.iter().map(|c| c * c).sum::<f64>());
    assert!(jain >= 0.95, "Jain's index {jain:.3} over {counts:?}");
    let starts: u64 = mine.iter().map(|m| m.starts.load(Ordering::SeqCst)).sum();
    let calls: u64 = budgets.iter().map(|b| b.stats().calls).sum();
    let per_permit = calls as f64 / starts as f64;
    assert!(
        per_permit <= 0.25,
        "{calls} Redis calls for {starts} permits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_process_s_permits_come_back_within_the_lease_ttl() {
    let redis = RedisServer::start().unwrap();
    let (all, ga, gb) = (
        Arc::new(Gauge::default()),
        Arc::new(Gauge::default()),
        Arc::new(Gauge::default()),
    );
    let a = RedisBudget::connect(&redis.url(), settings("reclaim", 8))
        .await
        .unwrap();
    let b = RedisBudget::connect(&redis.url(), settings("reclaim", 8))
        .await
        .unwrap();
    let stop_a = stop_after(Duration::from_millis(1000));
    let stop_b = stop_after(Duration::from_millis(5000));
    let run_b = tokio::spawn({
        let (all, gb) = (all.clone(), gb.clone());
        async move {
            let r = run_pool(&b, 20, all, gb, stop_b, false).await;
            (r, b)
        }
    });
    run_pool(&a, 20, all.clone(), ga.clone(), stop_a, false).await;
    // The process vanishes: its keeper stops without giving the lease back (as a SIGKILL would leave it).
    let gone = Instant::now();
    drop(a);
    let mut reclaimed = None;
    while gone.elapsed() < Duration::from_secs(4) {
        if gb.now.load(Ordering::SeqCst) >= 8 {
            reclaimed = Some(gone.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, b) = run_b.await.unwrap();
    let reclaimed = reclaimed.expect("the other process never got the whole budget");
    assert!(
        reclaimed <= Duration::from_millis(1500 + 1000),
        "reclaimed after {reclaimed:?}, TTL 1.5 s"
    );
    assert!(all.peak.load(Ordering::SeqCst) <= 8);
    assert_eq!(b.stats().failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_in_one_process_lowers_the_ceiling_and_is_told_to_the_others() {
    let redis = RedisServer::start().unwrap();
    let all = Arc::new(Gauge::default());
    let s = settings("throttle", 8).with_throttle_hold(Duration::from_secs(1));
    let a = RedisBudget::connect(&redis.url(), s.clone()).await.unwrap();
    let b = RedisBudget::connect(&redis.url(), s).await.unwrap();
    let stop = stop_after(Duration::from_millis(1500));
    let (g1, g2) = (Arc::new(Gauge::default()), Arc::new(Gauge::default()));
    let (ra, rb) = tokio::join!(
        run_pool(&a, 20, all.clone(), g1, stop.clone(), true),
        async {
            let mut lowest = usize::MAX;
            let run = run_pool(&b, 20, all.clone(), g2, stop.clone(), false);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    r = &mut run => break (r, lowest),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {
                        let s = b.stats();
                        if s.ceiling > 0 { lowest = lowest.min(s.ceiling); }
                    }
                }
            }
        }
    );
    let (rb, lowest_ceiling) = rb;
    assert_eq!(ra.throttled, 1);
    assert!(
        rb.throttles_reported >= 1,
        "the other process's pool heard of the throttle"
    );
    assert!(
        lowest_ceiling < 8,
        "the budget's ceiling came down: {lowest_ceiling}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_keeps_the_processes_within_the_budget_plus_one_batch_each_and_recovers() {
    let mut redis = RedisServer::start().unwrap();
    let all = Arc::new(Gauge::default());
    let a = RedisBudget::connect(&redis.url(), settings("restart", 6))
        .await
        .unwrap();
    let b = RedisBudget::connect(&redis.url(), settings("restart", 6))
        .await
        .unwrap();
    let stop = stop_after(Duration::from_millis(4500));
    let (ga, gb) = (Arc::new(Gauge::default()), Arc::new(Gauge::default()));
    let restart = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        redis.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let outage = a.stats().outage || b.stats().outage;
        redis.restart().unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        (outage, a.stats(), b.stats())
    };
    let (_, _, (outage, sa, sb)) = tokio::join!(
        run_pool(&a, 20, all.clone(), ga, stop.clone(), false),
        run_pool(&b, 20, all.clone(), gb, stop.clone(), false),
        restart
    );
    assert!(outage, "the keepers noticed the outage");
    let peak = all.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 6 + 2 * 2,
        "{peak} in flight on a budget of 6, batch 2, 2 processes"
    );
    assert!(!sa.outage && !sb.outage, "both reconnected: {sa:?} {sb:?}");
    assert!(sa.leased + sb.leased <= 6, "{sa:?} {sb:?}");
    assert!(
        sa.leased > 0 && sb.leased > 0,
        "both lease again: {sa:?} {sb:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_gives_the_lease_back_at_once() {
    let redis = RedisServer::start().unwrap();
    let (all, g) = (Arc::new(Gauge::default()), Arc::new(Gauge::default()));
    let a = RedisBudget::connect(&redis.url(), settings("close", 4))
        .await
        .unwrap();
    run_pool(
        &a,
        4,
        all.clone(),
        g.clone(),
        stop_after(Duration::from_millis(300)),
        false,
    )
    .await;
    assert!(a.stats().leased > 0);
    a.close().await;
    let b = RedisBudget::connect(&redis.url(), settings("close", 4))
        .await
        .unwrap();
    let started = Instant::now();
    let gb = Arc::new(Gauge::default());
    run_pool(
        &b,
        4,
        all,
        gb.clone(),
        stop_after(Duration::from_millis(400)),
        false,
    )
    .await;
    assert_eq!(
        gb.peak.load(Ordering::SeqCst),
        4,
        "the whole budget, well before a TTL"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn bad_settings_and_an_unreachable_redis_are_refused_with_their_reason() {
    let bad = RedisBudget::connect("redis://127.0.0.1:1/", RedisBudgetSettings::new("x", 0)).await;
    assert!(matches!(
        bad,
        Err(Error::Settings(SettingsError::ZeroCapacity))
    ));
    let short = RedisBudgetSettings::new("x", 4).with_lease_ttl(Duration::from_millis(900));
    let no_rate =
        RedisBudgetSettings::new("x", 4).with_rate_cap(pool_redis::RateCap::per_second(0));
    assert!(matches!(no_rate.validate(), Err(SettingsError::ZeroRate)));
    assert!(matches!(
        short.validate(),
        Err(SettingsError::TtlTooShort { .. })
    ));
    let wide = RedisBudgetSettings::new("x", 4).with_outage_allowance(5);
    assert!(matches!(
        wide.validate(),
        Err(SettingsError::AllowanceAboveBatch {
            allowance: 5,
            batch: 4
        })
    ));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = RedisBudget::connect(
        &format!("redis://127.0.0.1:{port}/"),
        RedisBudgetSettings::new("x", 4),
    )
    .await;
    assert!(matches!(down, Err(Error::Unreachable(_))), "{down:?}");
    assert!(matches!(
        RedisBudget::connect("not a url", RedisBudgetSettings::new("x", 4)).await,
        Err(Error::Url(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_exported_as_gauges_a_replica_autoscaler_reads() {
    let redis = RedisServer::start().unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let a = RedisBudget::connect(&redis.url(), settings("gauges", 6))
        .await
        .unwrap();
    let (all, g) = (Arc::new(Gauge::default()), Arc::new(Gauge::default()));
    run_pool(&a, 4, all, g, stop_after(Duration::from_millis(300)), false).await;
    metrics::with_local_recorder(&recorder, || pool_redis::metrics::record_lease(&a));
    let text = prometheus.render();
    assert!(text.contains("autoscaled_pool_lease_capacity 6"), "{text}");
    assert!(text.contains("autoscaled_pool_lease_processes 1"), "{text}");
    assert!(text.contains("autoscaled_pool_lease_outage 0"), "{text}");
    assert!(text.contains("autoscaled_pool_lease_leased"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_cap_holds_the_processes_starts_together_to_its_rate() {
    let redis = RedisServer::start().unwrap();
    let all = Arc::new(Gauge::default());
    let s = settings("rate", 20).with_rate_cap(pool_redis::RateCap::per_second(100));
    let a = RedisBudget::connect(&redis.url(), s.clone()).await.unwrap();
    let b = RedisBudget::connect(&redis.url(), s).await.unwrap();
    let (ga, gb) = (Arc::new(Gauge::default()), Arc::new(Gauge::default()));
    let began = Instant::now();
    let stop = stop_after(Duration::from_secs(2));
    // Uncapped, 20 permits of 20 ms tasks would start about 1,000 a second.
    let (ra, rb) = tokio::join!(
        run_pool(&a, 20, all.clone(), ga.clone(), stop.clone(), false),
        run_pool(&b, 20, all.clone(), gb.clone(), stop.clone(), false)
    );
    let secs = began.elapsed().as_secs_f64();
    let starts = all.starts.load(Ordering::SeqCst) as f64;
    // The rate, its burst of 10, and the blocks of starts the two processes may hold (25 each).
    let most = 100.0 * secs + 10.0 + 50.0;
    assert!(
        starts <= most,
        "{starts} starts in {secs:.2} s, at most {most:.0}"
    );
    assert!(
        starts >= 100.0 * secs * 0.6,
        "{starts} starts in {secs:.2} s: the cap was not used"
    );
    assert!(
        ra.succeeded > 20 && rb.succeeded > 20,
        "{} and {}",
        ra.succeeded,
        rb.succeeded
    );
}
