//! [`TokioRuntime`]: `pool-core`'s clock, timer and spawner on tokio.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pool_core::{Clock, Instant, Runtime, Spawn, TaskPanic, Timer};

/// Tokio's clock, timers and spawner. Cheap to clone.
///
/// Time is read from `tokio::time::Instant`, so a paused test runtime pauses the pool too.
#[derive(Clone, Copy, Debug)]
pub struct TokioRuntime {
    epoch: tokio::time::Instant,
}

impl TokioRuntime {
    /// A runtime whose epoch is now.
    pub fn new() -> Self {
        TokioRuntime {
            epoch: tokio::time::Instant::now(),
        }
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        // `FAR_FUTURE` means "never"; tokio's own idea of far future is about 30 years away.
        let far = Duration::from_secs(86_400 * 365 * 30);
        let d = Duration::from_nanos(at.as_nanos()).min(far);
        self.epoch
            .checked_add(d)
            .unwrap_or_else(|| tokio::time::Instant::now() + far)
    }
}

impl Default for TokioRuntime {
    fn default() -> Self {
        TokioRuntime::new()
    }
}

impl Clock for TokioRuntime {
    fn now(&self) -> Instant {
        let nanos = tokio::time::Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

pin_project_lite::pin_project! {
    /// A tokio `Sleep`, re-armed in place.
    #[derive(Debug)]
    pub struct TokioTimer {
        #[pin]
        sleep: tokio::time::Sleep,
        rt: TokioRuntime,
    }
}

impl Timer for TokioTimer {
    fn reset(self: Pin<&mut Self>, at: Instant) {
        let this = self.project();
        let deadline = this.rt.to_tokio(at);
        this.sleep.reset(deadline);
    }

    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().sleep.poll(cx)
    }
}

impl Runtime for TokioRuntime {
    type Timer = TokioTimer;
    fn timer(&self, at: Instant) -> TokioTimer {
        TokioTimer {
            sleep: tokio::time::sleep_until(self.to_tokio(at)),
            rt: *self,
        }
    }

    fn drive<F: Future>(&self, driver: F) -> impl Future<Output = F::Output> {
        // The driver polls in-place tasks itself and yields after a bounded amount of work per poll; under
        // tokio's cooperative budget those tasks would return `Pending` and wake themselves in a loop once the
        // driver had spent the budget.
        tokio::task::unconstrained(driver)
    }
}

/// A tokio `JoinHandle` whose panics become [`TaskPanic`]s.
#[derive(Debug)]
pub struct TokioJoin<T>(tokio::task::JoinHandle<T>);

impl<T> Future for TokioJoin<T> {
    type Output = Result<T, TaskPanic>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|res| {
            res.map_err(|e| match e.try_into_panic() {
                Ok(payload) => TaskPanic::from_payload(&*payload),
                Err(e) => TaskPanic {
                    message: e.to_string(),
                },
            })
        })
    }
}

impl Spawn for TokioRuntime {
    type Handle<T: Send + 'static> = TokioJoin<T>;

    fn spawn<F>(&self, task: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(tokio::spawn(task))
    }

    fn cancel<T: Send + 'static>(&self, handle: &mut TokioJoin<T>) {
        handle.0.abort();
    }
}
