//! [`ClientErrors`]: how tasks report rate-limit errors (HTTP 429) from the services they call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cheap, cloneable counter of rate-limit errors. Tasks call [`ClientErrors::report`]; the sensors drain
/// it into [`pool_core::Pool::handle_client_errors`] on every sample, and the pool's client probe turns the
/// count per probe interval (1 s by default) into a snapshot.
///
/// # Examples
///
/// ```
/// let errors = pool_sensors::ClientErrors::new();
/// let in_task = errors.clone();
/// in_task.report(); // the service answered 429
/// assert_eq!(errors.take(), 1);
/// assert_eq!(errors.take(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientErrors(Arc<AtomicU64>);

impl ClientErrors {
    /// A counter at zero.
    pub fn new() -> Self {
        ClientErrors::default()
    }

    /// Counts one rate-limit error.
    pub fn report(&self) {
        self.add(1);
    }

    /// Counts `n` rate-limit errors.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Errors counted since the last call, resetting the count.
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}
