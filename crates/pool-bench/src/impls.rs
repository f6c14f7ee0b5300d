//! The implementations under test: our pools on each runtime, and the raw baselines written the way a user
//! would write them without a pool. Each runs the same task functions from [`crate::work`].

use core::convert::Infallible;
use core::future::Future;
use core::time::Duration;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use pool_core::{
    AutoscaledPool, AutoscaledStreamExt, ConcurrencySettings, DefaultRuntime, RunReport, Sensors,
    TaskMode,
};

use crate::work;

/// A runtime's sleep, as a closure the tasks call; `None` for no-op tasks.
pub(crate) type Sleep<S> = Option<(S, Duration)>;

/// One task: counts its start now, then (after its sleep, if any) its end.
fn task<S, SF>(sleep: &Sleep<S>) -> impl Future<Output = ()> + Send + 'static + use<S, SF>
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    work::on_start();
    let s = sleep.as_ref().map(|(f, d)| f(*d));
    async move {
        work::task_work();
        if let Some(s) = s {
            s.await;
        }
        work::on_done();
    }
}

fn pinned(c: usize) -> ConcurrencySettings {
    ConcurrencySettings::default()
        .with_min(c)
        .with_desired(c)
        .with_max(c)
}

/// Runs our pool on runtime `Rt` at concurrency `c` until every task has finished: pinned at `c`, or, when
/// `autoscaled`, with `c` as the ceiling only, so the default policy scales from its default start.
pub(crate) async fn pool<Rt, Se, S, SF>(
    mode: TaskMode,
    c: usize,
    autoscaled: bool,
    sensors: Se,
    sleep: Sleep<S>,
) -> RunReport
where
    Rt: DefaultRuntime,
    Se: Sensors,
    S: Fn(Duration) -> SF + Send + 'static,
    SF: Future<Output = ()> + Send + 'static,
{
    let concurrency = if autoscaled {
        let s = ConcurrencySettings::default().with_max(c);
        s.with_desired(s.desired_concurrency.min(c))
    } else {
        pinned(c)
    };
    let pool = AutoscaledPool::<Rt, (), ()>::builder()
        .concurrency_settings(concurrency)
        .task_mode(mode)
        .sensors(sensors)
        .run_task(move || {
            let t = task(&sleep);
            async move {
                t.await;
                Ok::<(), Infallible>(())
            }
        })
        .is_task_ready(|| {
            let r = work::ready();
            async move { Ok(r) }
        })
        .is_finished(|| {
            let f = work::finished();
            async move { Ok(f) }
        })
        .build()
        .expect("pinned concurrency is a valid configuration");
    match pool.run().await {
        Ok(report) => report,
        Err(e) => panic!("the pool failed: {e:?}"),
    }
}

/// Runs the stream combinator on runtime `Rt` over a stream of the task futures, concurrency pinned at `c`,
/// in `mode` with `sensors`: `buffer_unordered`'s like, with the pool choosing the limit.
pub(crate) async fn stream<Rt, Se, S, SF>(
    mode: TaskMode,
    c: usize,
    sensors: Se,
    sleep: Sleep<S>,
) -> RunReport
where
    Rt: DefaultRuntime,
    Se: Sensors,
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let tasks = futures_util::stream::poll_fn(|_| {
        core::task::Poll::Ready(work::ready().then(|| task(&sleep)))
    });
    let builder = AutoscaledPool::<Rt, (), ()>::builder()
        .concurrency_settings(pinned(c))
        .task_mode(mode)
        .sensors(sensors);
    let mut results = tasks
        .autoscaled(builder)
        .expect("pinned concurrency is a valid configuration");
    while results.next().await.is_some() {}
    match results.report() {
        Some(Ok(report)) => *report,
        other => panic!("the stream's pool failed: {other:?}"),
    }
}

/// Runs our pool with nothing ready for `secs`, then aborts it; returns the process CPU seconds the wait
/// cost.
pub(crate) async fn pool_idle<Rt, Se, S, SF>(
    mode: TaskMode,
    secs: f64,
    sensors: Se,
    sleep: S,
) -> f64
where
    Rt: DefaultRuntime,
    Se: Sensors,
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let pool = AutoscaledPool::<Rt, (), ()>::builder()
        .task_mode(mode)
        .sensors(sensors)
        .run_task(|| async { Ok::<(), Infallible>(()) })
        .is_task_ready(|| async { Ok(false) })
        .is_finished(|| async { Ok(false) })
        .build()
        .expect("the default configuration is valid");
    let before = crate::os::cpu_seconds();
    let stop = async {
        sleep(Duration::from_secs_f64(secs)).await;
        pool.abort().await.expect("the pool is running");
    };
    let (report, ()) = futures_lite::future::zip(pool.run(), stop).await;
    let cpu = crate::os::cpu_seconds() - before;
    assert!(
        report.is_ok_and(|r| r.aborted),
        "the idle pool ends by abort"
    );
    cpu
}

/// `tokio_joinset`: a `JoinSet` and a `Semaphore`, one spawn per task.
pub(crate) async fn tokio_joinset<S, SF>(c: usize, sleep: Sleep<S>)
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(c));
    let mut set = tokio::task::JoinSet::new();
    while work::ready() {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        let t = task(&sleep);
        set.spawn(async move {
            t.await;
            drop(permit);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
}

/// `buffer_unordered`: futures' `buffer_unordered(c)` over a stream of the task futures, polled in place by
/// the caller: what a user writes without a pool.
pub(crate) async fn buffer_unordered<S, SF>(c: usize, sleep: Sleep<S>)
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let tasks = futures_util::stream::poll_fn(|_| {
        core::task::Poll::Ready(work::ready().then(|| task(&sleep)))
    });
    tasks.buffer_unordered(c).for_each(|()| async {}).await;
}

/// `buffer_unordered_spawn`: the same over `tokio::spawn`, one spawn per task, so the tasks run on every
/// worker thread.
pub(crate) async fn buffer_unordered_spawn<S, SF>(c: usize, sleep: Sleep<S>)
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let tasks = futures_util::stream::poll_fn(|_| {
        core::task::Poll::Ready(work::ready().then(|| tokio::spawn(task(&sleep))))
    });
    tasks
        .buffer_unordered(c)
        .for_each(|r| {
            r.expect("a bench task never panics");
            async {}
        })
        .await;
}

/// `inplace`: the task futures polled in place by the caller, at most `c` at once (`buffer_unordered`
/// style, on `FuturesUnordered`).
pub(crate) async fn inplace<S, SF>(c: usize, sleep: Sleep<S>)
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let mut set = FuturesUnordered::new();
    loop {
        while set.len() < c && work::ready() {
            set.push(task(&sleep));
        }
        if set.next().await.is_none() {
            break;
        }
    }
}

/// `smol_spawn`: `smol::spawn` on the global executor with a semaphore, one spawn per task.
pub(crate) async fn smol_spawn<S, SF>(c: usize, sleep: Sleep<S>)
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let sem = Arc::new(smol::lock::Semaphore::new(c));
    while work::ready() {
        let permit = sem.acquire_arc().await;
        let t = task(&sleep);
        smol::spawn(async move {
            t.await;
            drop(permit);
        })
        .detach();
    }
    let mut held = Vec::with_capacity(c);
    for _ in 0..c {
        held.push(sem.acquire_arc().await);
    }
}

/// `bare_loop`: no pool, the two task functions called back to back on the current thread. The limit of
/// any pool's hot path.
pub(crate) async fn bare_loop<S, SF>(sleep: Sleep<S>)
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let is_task_ready = || {
        let r = work::ready();
        async move { Ok::<bool, Infallible>(r) }
    };
    let run_task = || {
        let t = task(&sleep);
        async move {
            t.await;
            Ok::<(), Infallible>(())
        }
    };
    while let Ok(true) = is_task_ready().await {
        let Ok(()) = run_task().await;
    }
}
