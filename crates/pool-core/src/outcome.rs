//! [`Outcome`]: how a task tells the pool it ended, beyond "it returned `Ok`".
//!
//! A task returns `Result<T, E>` with `T: Into<Outcome>`. `Ok(())` is [`Outcome::Succeeded`], so code written
//! for the seed's `Result<(), E>` compiles unchanged; `Err(e)` keeps the seed's meaning: the first error ends
//! the run. A task that was throttled by the service behind it (an HTTP 429 or 503) returns
//! `Ok(Outcome::throttled())`, or `Ok(Outcome::retry_after(d))` when the service said how long to wait; one
//! that failed without ending the run returns `Ok(Outcome::Failed)`. Code that cannot return an outcome (a
//! callback, a middleware) reports a throttle through
//! [`Handle::report_throttle`](crate::Handle::report_throttle) instead.

use core::time::Duration;

/// How a task ended, as the task reports it.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use pool_core::Outcome;
///
/// fn classify(status: u16, retry_after_s: Option<u64>) -> Outcome {
///     match (status, retry_after_s) {
///         (200..=299, _) => Outcome::Succeeded,
///         (429 | 503, Some(s)) => Outcome::retry_after(Duration::from_secs(s)),
///         (429 | 503, None) => Outcome::throttled(),
///         _ => Outcome::Failed,
///     }
/// }
/// assert_eq!(classify(429, Some(2)), Outcome::Throttled { retry_after: Some(Duration::from_secs(2)) });
/// assert_eq!(Outcome::from(()), Outcome::Succeeded);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The task did its work. Only these count as throughput.
    #[default]
    Succeeded,
    /// The service behind the task pushed back. The pool holds new starts until `retry_after` has passed, or
    /// spaces them with capped exponential backoff when it is `None`, and counts a client error.
    Throttled {
        /// How long the service asked the client to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The task failed, and the run goes on (an `Err` would end it).
    Failed,
}

impl Outcome {
    /// Throttled, without a retry-after.
    pub const fn throttled() -> Self {
        Outcome::Throttled { retry_after: None }
    }

    /// Throttled, with the wait the service asked for.
    pub const fn retry_after(wait: Duration) -> Self {
        Outcome::Throttled {
            retry_after: Some(wait),
        }
    }
}

/// `Ok(())` is a success, so the seed's task type still works.
impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Outcome::Succeeded
    }
}
