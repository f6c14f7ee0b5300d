//! The driver's errors: what ends a run ([`PoolError`]) and what a panic becomes ([`TaskPanic`]).

use alloc::string::String;
use core::fmt;
use core::time::Duration;

use crate::config::ConfigError;

/// A task or task function panicked; the message is what `panic!` was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskPanic {
    /// The panic message, or a placeholder when the payload was not a string.
    pub message: String,
}

impl TaskPanic {
    /// Builds one from a panic payload.
    #[cfg(feature = "std")]
    pub fn from_payload(payload: &(dyn core::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            String::from(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            String::from("a panic with a non-string payload")
        };
        TaskPanic { message }
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a task panicked: {}", self.message)
    }
}

impl core::error::Error for TaskPanic {}

/// Why a run failed. The user's error type `E` comes out unchanged in [`PoolError::Task`].
// Not `Eq`: `ConfigError` carries ratios.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// `run_task`, `is_task_ready` or `is_finished` returned this error first.
    Task(E),
    /// A task or task function panicked.
    Panicked(TaskPanic),
    /// A task outlived its timeout and the timeout policy fails the pool.
    TimedOut(Duration),
    /// The pool is already running.
    AlreadyRunning,
    /// This [`Run`](crate::driver::Run) was polled again after it completed; the poll that completed it
    /// returned its result. Awaiting a run consumes it, so only code that polls a run by hand sees this.
    RunEnded,
    /// The settings did not validate. Only the crawl queue, which builds its pool when the crawl starts,
    /// returns this; a built pool's settings were checked at `build`.
    Config(ConfigError),
}

impl<E: fmt::Display> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Task(e) => write!(f, "a task failed: {e}"),
            PoolError::Panicked(p) => p.fmt(f),
            PoolError::TimedOut(d) => write!(f, "a task timed out after {:.3} s", d.as_secs_f64()),
            PoolError::AlreadyRunning => f.write_str("the pool is already running"),
            PoolError::RunEnded => {
                f.write_str("the run already ended; the poll that ended it returned its result")
            }
            PoolError::Config(e) => write!(f, "invalid pool settings: {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for PoolError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PoolError::Task(e) => Some(e),
            PoolError::Config(e) => Some(e),
            _ => None,
        }
    }
}
