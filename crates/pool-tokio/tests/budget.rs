//! A budget shared by two pools on tokio's multi-thread runtime (issue 14): spawned tasks on both never
//! exceed it, and when both want more than their share, the heavier pool runs more at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use pool_tokio::{AutoscaledPool, ConcurrencySettings, DynPool, SharedBudget};

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

fn pool(
    budget: &SharedBudget,
    weight: usize,
    jobs: u32,
    all: Arc<Gauge>,
    mine: Arc<Gauge>,
) -> DynPool<()> {
    let left = Arc::new(AtomicU32::new(jobs));
    let (l1, l2, l3) = (left.clone(), left.clone(), left);
    AutoscaledPool::builder()
        .concurrency_settings(ConcurrencySettings::new(40, 40, 40))
        .budget(budget.member(weight))
        .run_task(move || {
            l1.fetch_sub(1, Ordering::SeqCst);
            let (all, mine) = (all.clone(), mine.clone());
            async move {
                for g in [&all, &mine] {
                    let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                    g.peak.fetch_max(n, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                for g in [&all, &mine] {
                    g.now.fetch_sub(1, Ordering::SeqCst);
                }
                Ok(())
            }
        })
        .is_task_ready(move || {
            let r = l2.load(Ordering::SeqCst) > 0;
            async move { Ok(r) }
        })
        .is_finished(move || {
            let f = l3.load(Ordering::SeqCst) == 0;
            async move { Ok(f) }
        })
        .build_boxed()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_of_spawned_tasks_never_exceed_their_shared_budget() {
    let budget = SharedBudget::new(15);
    let all = Arc::new(Gauge::default());
    let (heavy, light) = (Arc::new(Gauge::default()), Arc::new(Gauge::default()));
    let a = pool(&budget, 2, 2000, all.clone(), heavy.clone());
    let b = pool(&budget, 1, 2000, all.clone(), light.clone());
    let (ra, rb) = tokio::join!(a.run(), b.run());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.succeeded, rb.succeeded), (2000, 2000));
    let peak = all.peak.load(Ordering::SeqCst);
    assert!(peak <= 15, "{peak} in flight on a budget of 15");
    assert!(peak >= 10, "the budget was used: peak {peak}");
    // 10 and 5 while both run; the heavier finishes first and the lighter then takes the whole budget.
    assert!(
        ra.duration < rb.duration,
        "{:?} vs {:?}",
        ra.duration,
        rb.duration
    );
    assert_eq!(budget.in_use(), 0);
}
