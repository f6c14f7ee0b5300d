//! [`SmolRuntime`]: `pool-core`'s clock, timer and spawner on smol.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use pool_core::{
    Clock, DefaultRuntime, InPlace, Instant, Launch, Runtime, Spawn, TaskPanic, Timer,
};

/// smol's clock, timers and spawner. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SmolRuntime {
    epoch: std::time::Instant,
    executor: Option<Arc<async_executor::Executor<'static>>>,
}

impl SmolRuntime {
    /// A runtime spawning on smol's global executor.
    pub fn new() -> Self {
        SmolRuntime {
            epoch: std::time::Instant::now(),
            executor: None,
        }
    }

    /// A runtime spawning on `executor`; the caller drives it (with `Executor::run`).
    pub fn with_executor(executor: Arc<async_executor::Executor<'static>>) -> Self {
        SmolRuntime {
            executor: Some(executor),
            ..SmolRuntime::new()
        }
    }

    fn to_std(&self, at: Instant) -> Option<std::time::Instant> {
        // `FAR_FUTURE` (or anything unrepresentable) means "never": the timer is left unarmed.
        self.epoch.checked_add(Duration::from_nanos(at.as_nanos()))
    }
}

impl Default for SmolRuntime {
    fn default() -> Self {
        SmolRuntime::new()
    }
}

impl Clock for SmolRuntime {
    fn now(&self) -> Instant {
        let nanos = self.epoch.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// An `async-io` timer, re-armed in place.
#[derive(Debug)]
pub struct SmolTimer {
    timer: async_io::Timer,
    epoch_rt: SmolRuntime,
}

impl Timer for SmolTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        match self.epoch_rt.to_std(at) {
            Some(t) => self.timer.set_at(t),
            None => self.timer = async_io::Timer::never(),
        }
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

impl Runtime for SmolRuntime {
    type Timer = SmolTimer;
    fn timer(&self, at: Instant) -> SmolTimer {
        let timer = self
            .to_std(at)
            .map_or_else(async_io::Timer::never, async_io::Timer::at);
        SmolTimer {
            timer,
            epoch_rt: self.clone(),
        }
    }
}

/// A spawned task whose panics become [`TaskPanic`]s; cancelling drops the task, which cancels it.
#[derive(Debug)]
pub struct SmolJoin<T>(Option<async_executor::Task<Result<T, TaskPanic>>>);

impl<T> Future for SmolJoin<T> {
    type Output = Result<T, TaskPanic>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(task) => Pin::new(task).poll(cx),
            None => Poll::Ready(Err(TaskPanic {
                message: String::from("cancelled"),
            })),
        }
    }
}

impl Spawn for SmolRuntime {
    type Handle<T: Send + 'static> = SmolJoin<T>;

    fn spawn<F>(&self, task: F) -> SmolJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Panics are caught inside the task, so the handle reports them instead of re-raising them.
        let caught = InPlace.launch(task);
        let handle = match &self.executor {
            Some(ex) => ex.spawn(caught),
            None => smol::spawn(caught),
        };
        SmolJoin(Some(handle))
    }

    fn cancel<T: Send + 'static>(&self, handle: &mut SmolJoin<T>) {
        // Dropping an `async_executor::Task` cancels it; the future is dropped on its executor.
        handle.0 = None;
    }
}

impl DefaultRuntime for SmolRuntime {
    type Sensors = pool_sensors::SystemSensors;
    fn create() -> Self {
        SmolRuntime::new()
    }
    fn default_sensors(&self) -> Self::Sensors {
        pool_sensors::SystemSensors::new(pool_sensors::SensorSettings::default())
    }
}
