//! The clock, timer and join wrapper of the runtimes that sit on `async-io` (smol, async-std).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pool_core::{Instant, TaskPanic, Timer};

/// A clock from a `std::time::Instant` epoch: what a runtime without a clock of its own hands the pool.
#[derive(Clone, Copy, Debug)]
pub struct Epoch(std::time::Instant);

impl Epoch {
    /// An epoch at this instant.
    pub fn new() -> Self {
        Epoch(std::time::Instant::now())
    }

    /// Time since the epoch, saturating after 584 years.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// `at` as a `std::time::Instant`, or `None` when it cannot be represented (`Instant::FAR_FUTURE`), which
    /// the timer reads as "never".
    pub fn to_std(&self, at: Instant) -> Option<std::time::Instant> {
        self.0.checked_add(Duration::from_nanos(at.as_nanos()))
    }

    /// An [`AsyncIoTimer`] armed for `at`.
    pub fn timer(&self, at: Instant) -> AsyncIoTimer {
        let timer = self
            .to_std(at)
            .map_or_else(async_io::Timer::never, async_io::Timer::at);
        AsyncIoTimer {
            timer,
            epoch: *self,
        }
    }
}

impl Default for Epoch {
    fn default() -> Self {
        Epoch::new()
    }
}

/// An `async-io` timer, re-armed in place.
#[derive(Debug)]
pub struct AsyncIoTimer {
    timer: async_io::Timer,
    epoch: Epoch,
}

impl Timer for AsyncIoTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        match self.epoch.to_std(at) {
            Some(t) => self.timer.set_at(t),
            None => self.timer = async_io::Timer::never(),
        }
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

/// A spawned task's join handle `H`, already resolving to `Result<T, TaskPanic>`, that can be cancelled by
/// taking the handle out: a cancelled join resolves at once to a `TaskPanic` saying so, which the driver
/// never reports because it asked for the cancellation.
#[derive(Debug)]
pub struct Join<H>(Option<H>);

impl<H> Join<H> {
    /// Wraps a join handle.
    pub fn new(handle: H) -> Self {
        Join(Some(handle))
    }

    /// Takes the handle out, for the runtime to cancel it its own way (smol: drop it; async-std: `cancel`).
    pub fn take(&mut self) -> Option<H> {
        self.0.take()
    }
}

impl<T, H: Future<Output = Result<T, TaskPanic>> + Unpin> Future for Join<H> {
    type Output = Result<T, TaskPanic>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(handle) => Pin::new(handle).poll(cx),
            None => Poll::Ready(Err(TaskPanic {
                message: String::from("cancelled"),
            })),
        }
    }
}
