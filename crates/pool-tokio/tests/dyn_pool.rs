//! `DynPool`: a built pool whose type a struct names, run from a spawned tokio task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use pool_tokio::{AutoscaledPool, DynPool};

/// What a user stores: no generics, no closure types.
struct Crawler {
    pool: DynPool<std::io::Error>,
    done: Arc<AtomicU32>,
}

impl Crawler {
    fn new(jobs: u32) -> Self {
        let left = Arc::new(AtomicU32::new(jobs));
        let done = Arc::new(AtomicU32::new(0));
        let (l1, l2, l3, d) = (left.clone(), left.clone(), left, done.clone());
        let pool = AutoscaledPool::builder()
            .run_task(move || {
                l1.fetch_sub(1, Ordering::SeqCst);
                let d = d.clone();
                async move {
                    d.fetch_add(1, Ordering::SeqCst);
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
            .unwrap();
        Crawler { pool, done }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_struct_holds_a_dyn_pool_and_runs_it_from_a_spawned_task() {
    let crawler = Arc::new(Crawler::new(500));
    let c = crawler.clone();
    let report = tokio::spawn(async move { c.pool.run().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.succeeded, 500);
    assert_eq!(crawler.done.load(Ordering::SeqCst), 500);
}
