//! smol-specific behaviour: a pool spawning on the caller's own `async-executor`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use pool_core::{AutoscaledPool, Builder};
use pool_smol::{ConcurrencySettings, SmolRuntime, SystemSensors};

#[test]
fn tasks_run_on_the_callers_executor() {
    let ex = Arc::new(async_executor::Executor::new());
    let rt = SmolRuntime::with_executor(ex.clone());
    let left = Arc::new(AtomicU32::new(40));
    let (a, b, c) = (left.clone(), left.clone(), left.clone());
    let pool: AutoscaledPool<_, _, _> = Builder::new(rt, SystemSensors::new(Default::default()))
        .concurrency_settings(ConcurrencySettings::fixed(8))
        .run_task(move || {
            a.fetch_sub(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .is_task_ready(move || {
            let r = b.load(Ordering::SeqCst) > 0;
            async move { Ok(r) }
        })
        .is_finished(move || {
            let f = c.load(Ordering::SeqCst) == 0;
            async move { Ok(f) }
        })
        .build()
        .unwrap();
    // Not driving the executor: the tasks are spawned onto it and wait there, so the run cannot finish.
    let stalled = smol::block_on(futures_lite::future::or(
        async { Some(pool.run().await) },
        async {
            smol::Timer::after(std::time::Duration::from_millis(200)).await;
            None
        },
    ));
    assert!(
        stalled.is_none(),
        "the run finished without the caller's executor"
    );
    assert!(
        !ex.is_empty(),
        "no task was spawned on the caller's executor"
    );
    // Driving it, the run (dropped above, which freed the pool) completes.
    left.store(40, Ordering::SeqCst);
    let report = smol::block_on(ex.run(pool.run())).unwrap();
    assert_eq!(report.succeeded, 40);
    assert_eq!(report.peak_concurrency, 8);
    assert!(
        ex.is_empty(),
        "a task outlived the run on the caller's executor"
    );
}
