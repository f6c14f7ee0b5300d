//! [`TaskMode`]: in place or spawned, and the [`Launcher`] that runs either; [`DrainTimeout`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::driver::{CatchPanic, InPlace, TaskPanic};
use crate::seams::{Launch, Spawn};

/// How tasks run: spawned on the runtime's executor (the default; tasks run in parallel on a multi-thread
/// runtime), or polled in place by the pool's own future (no spawn per task; best for I/O-bound tasks and
/// single-threaded runtimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TaskMode {
    /// One spawn per task on the runtime's executor.
    #[default]
    Spawned,
    /// Polled inside the pool's future.
    InPlace,
}

/// The launcher an [`AutoscaledPool`](super::AutoscaledPool) uses, chosen by [`TaskMode`].
#[derive(Clone, Debug)]
pub enum Launcher<S> {
    /// Poll in place.
    InPlace,
    /// Spawn with `S`.
    Spawned(S),
}

pin_project_lite::pin_project! {
    /// A task started by a [`Launcher`]: the task future itself, or the executor's join handle.
    // pin-project-lite accepts no doc comments on enum fields, so the variants' fields go undocumented.
    #[allow(missing_docs)]
    #[project = RunningProj]
    #[derive(Debug)]
    pub enum Running<F, H> {
        /// Polled in place.
        InPlace { #[pin] task: CatchPanic<F> },
        /// A join handle.
        Spawned { handle: H },
    }
}

impl<F: Future, H: Future<Output = Result<F::Output, TaskPanic>> + Unpin> Future for Running<F, H> {
    type Output = Result<F::Output, TaskPanic>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RunningProj::InPlace { task } => task.poll(cx),
            RunningProj::Spawned { handle } => Pin::new(handle).poll(cx),
        }
    }
}

impl<S: Spawn, F> Launch<F> for Launcher<S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = Running<F, S::Handle<F::Output>>;
    #[inline]
    fn launch(&self, task: F) -> Self::Running {
        match self {
            Launcher::InPlace => Running::InPlace {
                task: InPlace.launch(task),
            },
            Launcher::Spawned(s) => Running::Spawned {
                handle: s.spawn(task),
            },
        }
    }
    #[inline]
    fn cancel(&self, running: Pin<&mut Self::Running>) -> bool {
        match (self, running.project()) {
            (Launcher::Spawned(s), RunningProj::Spawned { handle }) => {
                s.cancel(handle);
                false
            }
            _ => true,
        }
    }
}

/// The pause-and-drain wait timed out; the pool stays paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainTimeout {
    /// The timeout that passed.
    pub timeout: Duration,
    /// Tasks still running when it passed.
    pub still_running: usize,
}

impl fmt::Display for DrainTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the pool's running tasks did not finish in {:.3} s after pause ({} still running); the pool stays paused",
            self.timeout.as_secs_f64(),
            self.still_running
        )
    }
}

impl core::error::Error for DrainTimeout {}
