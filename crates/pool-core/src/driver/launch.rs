//! The two ways a task runs: [`InPlace`], polled by the driver itself, and [`Spawned`], on an executor.
//!
//! Both catch panics, so a panicking task is a failed task and never unwinds through the driver.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::TaskPanic;
use crate::seams::{Launch, Spawn};

/// Runs task futures in place: the driver polls them. No spawner, no `Send` bound, no allocation per task.
#[derive(Clone, Copy, Debug, Default)]
pub struct InPlace;

pin_project_lite::pin_project! {
    /// A task polled in place, with panics caught (under `std`).
    #[derive(Debug)]
    pub struct CatchPanic<F> {
        #[pin]
        inner: F,
    }
}

impl<F> CatchPanic<F> {
    /// Wraps `inner` so that its panics become [`TaskPanic`]s.
    #[inline]
    pub(crate) fn new(inner: F) -> Self {
        CatchPanic { inner }
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, TaskPanic>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        #[cfg(feature = "std")]
        {
            // The future is dropped right after a panic and never polled again, so observing broken
            // invariants through it is impossible; that is what makes the assertion sound.
            match std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(p) => p.map(Ok),
                Err(payload) => Poll::Ready(Err(TaskPanic::from_payload(&*payload))),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            inner.poll(cx).map(Ok)
        }
    }
}

/// Calls `f`, turning a panic into a [`TaskPanic`] (under `std`; without it a panic aborts anyway).
#[inline]
pub(crate) fn call_caught<T>(f: impl FnOnce() -> T) -> Result<T, TaskPanic> {
    #[cfg(feature = "std")]
    {
        // The value `f` was building is discarded after a panic, so no broken state can be observed.
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(f))
            .map_err(|p| TaskPanic::from_payload(&*p))
    }
    #[cfg(not(feature = "std"))]
    {
        Ok(f())
    }
}

impl<F: Future> Launch<F> for InPlace {
    type Running = CatchPanic<F>;
    #[inline]
    fn launch(&self, task: F) -> CatchPanic<F> {
        CatchPanic { inner: task }
    }
    #[inline]
    fn cancel(&self, _running: Pin<&mut CatchPanic<F>>) -> bool {
        true
    }
}

/// Runs tasks on an executor through its [`Spawn`] implementation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spawned<S>(pub S);

impl<S: Spawn, F> Launch<F> for Spawned<S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = S::Handle<F::Output>;
    #[inline]
    fn launch(&self, task: F) -> Self::Running {
        self.0.spawn(task)
    }
    #[inline]
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool {
        self.0.cancel(Pin::into_inner(running));
        false
    }
    #[inline]
    fn runs_elsewhere(&self) -> bool {
        true
    }
}
