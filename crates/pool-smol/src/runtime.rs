//! [`SmolRuntime`]: `pool-core`'s clock, timer and spawner on smol.

use core::future::Future;
use std::sync::Arc;

use pool_adapter::{AsyncIoTimer, Epoch, Join};
use pool_core::{Clock, InPlace, Instant, Launch, Runtime, Spawn, TaskPanic};

/// smol's clock, timers and spawner. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SmolRuntime {
    epoch: Epoch,
    executor: Option<Arc<async_executor::Executor<'static>>>,
}

impl SmolRuntime {
    /// A runtime spawning on smol's global executor.
    pub fn new() -> Self {
        SmolRuntime {
            epoch: Epoch::new(),
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
}

impl Default for SmolRuntime {
    fn default() -> Self {
        SmolRuntime::new()
    }
}

impl Clock for SmolRuntime {
    fn now(&self) -> Instant {
        self.epoch.now()
    }
}

/// An `async-io` timer, re-armed in place.
pub type SmolTimer = AsyncIoTimer;

impl Runtime for SmolRuntime {
    type Timer = SmolTimer;
    fn timer(&self, at: Instant) -> SmolTimer {
        self.epoch.timer(at)
    }
}

/// A spawned task whose panics become [`TaskPanic`]s; cancelling drops the task, which cancels it.
pub type SmolJoin<T> = Join<async_executor::Task<Result<T, TaskPanic>>>;

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
        Join::new(handle)
    }

    fn cancel<T: Send + 'static>(&self, handle: &mut SmolJoin<T>) {
        // Dropping an `async_executor::Task` cancels it; the future is dropped on its executor.
        drop(handle.take());
    }
}
