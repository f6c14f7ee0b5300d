//! [`TaskMode`]: on workers, spawned or in place, and the [`Launcher`] that runs each; [`DrainTimeout`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::driver::{CatchPanic, InPlace, TaskPanic, WorkerTask, Workers};
use crate::seams::{Launch, Spawn};

/// How tasks run: on long-lived workers of the runtime's executor (the default: tasks run in parallel on a
/// multi-thread runtime, and a task costs no spawn and no allocation), spawned one by one, or polled in place
/// by the pool's own future (no executor at all; best for tiny I/O-bound tasks and single-threaded
/// runtimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TaskMode {
    /// A few long-lived worker tasks (one per core), each polling the tasks of many slots, spawned when the
    /// first slots are used and reused by every later task.
    #[default]
    Workers,
    /// One spawn per task on the runtime's executor.
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
    /// Workers spawned with `S`.
    Workers(Workers<S>),
}

impl<S> Launcher<S> {
    /// The launcher for `mode`, spawning with `spawner` where it spawns.
    pub fn for_mode(mode: TaskMode, spawner: S) -> Self {
        match mode {
            TaskMode::Workers => Launcher::Workers(Workers::new(spawner)),
            TaskMode::Spawned => Launcher::Spawned(spawner),
            TaskMode::InPlace => Launcher::InPlace,
        }
    }
}

pin_project_lite::pin_project! {
    /// A task started by a [`Launcher`]: the task future itself, or the executor's join handle.
    // pin-project-lite accepts no doc comments on enum fields, so the variants' fields go undocumented.
    #[allow(missing_docs)]
    #[project = RunningProj]
    #[derive(Debug)]
    pub enum Running<F, H, W> {
        /// Polled in place.
        InPlace { #[pin] task: CatchPanic<F> },
        /// A join handle.
        Spawned { handle: H },
        /// A worker's handle.
        Workers { worker: W },
    }
}

impl<F, H, W> Future for Running<F, H, W>
where
    F: Future,
    H: Future<Output = Result<F::Output, TaskPanic>> + Unpin,
    W: Future<Output = Result<F::Output, TaskPanic>> + Unpin,
{
    type Output = Result<F::Output, TaskPanic>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RunningProj::InPlace { task } => task.poll(cx),
            RunningProj::Spawned { handle } => Pin::new(handle).poll(cx),
            RunningProj::Workers { worker } => Pin::new(worker).poll(cx),
        }
    }
}

impl<S: Spawn, F> Launch<F> for Launcher<S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Running = Running<F, S::Handle<F::Output>, WorkerTask<F, S::Handle<()>>>;
    #[inline]
    fn launch(&self, task: F) -> Self::Running {
        match self {
            Launcher::InPlace => Running::InPlace {
                task: InPlace.launch(task),
            },
            Launcher::Spawned(s) => Running::Spawned {
                handle: s.spawn(task),
            },
            Launcher::Workers(w) => Running::Workers {
                worker: w.start(task),
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
            (Launcher::Workers(_), RunningProj::Workers { worker }) => {
                worker.cancel();
                false
            }
            _ => true,
        }
    }
    #[inline]
    fn reuses(&self) -> bool {
        matches!(self, Launcher::Workers(_))
    }
    #[inline]
    fn runs_elsewhere(&self) -> bool {
        !matches!(self, Launcher::InPlace)
    }
    fn pace(&self, hot: bool) {
        if let Launcher::Workers(w) = self {
            Launch::<F>::pace(w, hot);
        }
    }
    #[inline]
    fn relaunch(&self, running: Pin<&mut Self::Running>, task: F) -> Result<(), F> {
        match (self, running.project()) {
            (Launcher::Workers(_), RunningProj::Workers { worker }) => worker.relaunch(task),
            _ => Err(task),
        }
    }
    fn poll_retire(&self, running: Pin<&mut Self::Running>, cx: &mut Context<'_>) -> Poll<()> {
        match (self, running.project()) {
            (Launcher::Workers(w), RunningProj::Workers { worker }) => {
                w.poll_retire(Pin::new(worker), cx)
            }
            _ => Poll::Ready(()),
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
