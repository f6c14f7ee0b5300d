//! One concurrency budget for autoscaled pools in many processes and on many machines, leased from Redis.
//!
//! [`RedisBudget::connect`] joins the budget called [`RedisBudgetSettings::name`]: every process that names
//! it shares [`RedisBudgetSettings::capacity`] permits. The process's pools take their permits from a local
//! [`SharedBudget`] ([`RedisBudget::member`]), as pools in one process do, so a start costs no round trip. A
//! keeper task leases the local budget's capacity from Redis:
//!
//! - **Leases with a time-to-live.** What a process holds is on record in Redis until its lease runs out
//!   ([`lease_ttl`](RedisBudgetSettings::lease_ttl), renewed every third of it): a killed process's permits
//!   come back within the TTL.
//! - **Batches.** The keeper asks for [`batch`](RedisBudgetSettings::batch) more permits at a time and gives
//!   permits back only when it holds a batch more than its pools want, so most starts and ends touch no Redis.
//! - **Fair shares.** One Lua script, atomic in Redis, water-fills the budget by weight over every live
//!   process's demand (its pools' desired concurrency), as [`SharedBudget`] does inside a process, and never
//!   records more than the budget.
//! - **Shared throttles.** A throttle one process's task reports halves the budget's ceiling for every
//!   process (once per [`throttle_hold`](RedisBudgetSettings::throttle_hold), or the retry-after), which grows
//!   back over [`ceiling_recovery`](RedisBudgetSettings::ceiling_recovery); the other processes' pools hear of
//!   it as their own [`Handle::report_throttle`](pool_core::Handle::report_throttle).
//! - **A rate cap, if asked for.** [`RateCap`] caps starts per second across every process, as a GCRA kept
//!   in Redis by the same script; each process takes starts in blocks of half a second of its fair part, and a
//!   start without one is [`Refusal::BudgetRate`](pool_core::Refusal::BudgetRate). During an outage the
//!   process starts only on the starts it holds.
//! - **Outages.** When Redis does not answer, the process keeps what Redis had on record for it until that
//!   lease would have run out, then at most [`outage_allowance`](RedisBudgetSettings::outage_allowance) (one
//!   batch or less): so the fleet never runs more than the budget plus one batch per process. When Redis
//!   comes back, each process restores its record at what it runs; after a restart that lost the data, no
//!   process gets new permits for one TTL, so the restored leases fit in the budget they fitted in before.
//!
//! The keeper runs on tokio (the Redis client's runtime); the pools may run on any runtime.
//!
//! # Examples
//!
//! ```no_run
//! use pool_redis::{RedisBudget, RedisBudgetSettings};
//! use pool_tokio::AutoscaledPool;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Every crawler process that joins "site-a" shares 40 requests in flight.
//! let budget = RedisBudget::connect("redis://127.0.0.1/", RedisBudgetSettings::new("site-a", 40)).await?;
//! let builder = AutoscaledPool::builder().budget(budget.member(1));
//! # drop(builder);
//! // ... run pools built from `builder` ...
//! budget.close().await; // gives the lease back at once, instead of after its TTL
//! # Ok(()) }
//! ```

mod keeper;
mod lease;
#[cfg(feature = "metrics")]
pub mod metrics;
mod script;
mod settings;
#[cfg(feature = "test-util")]
pub mod testing;

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pool_core::{BudgetMember, SharedBudget};
use tokio::task::JoinHandle;

use keeper::{Keeper, Shared};
use lease::Request;
use script::LeaseScript;

pub use settings::{RateCap, RedisBudgetSettings, SettingsError};

/// This process's part of a budget shared through Redis. Dropping it stops the keeper and lets the lease run
/// out; [`close`](Self::close) gives it back at once.
pub struct RedisBudget {
    budget: SharedBudget,
    capacity: usize,
    shared: Arc<Shared>,
    keeper: Option<JoinHandle<Keeper>>,
}

impl fmt::Debug for RedisBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBudget")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Why [`RedisBudget::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The settings break a rule.
    Settings(SettingsError),
    /// The URL is not a Redis URL.
    Url(redis::RedisError),
    /// Redis did not answer the first call within the call timeout.
    Unreachable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Settings(e) => write!(f, "bad budget settings: {e}"),
            Error::Url(e) => write!(f, "bad Redis URL: {e}"),
            Error::Unreachable(url) => write!(f, "Redis at {url} did not answer"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Settings(e) => Some(e),
            Error::Url(e) => Some(e),
            Error::Unreachable(_) => None,
        }
    }
}

/// What the keeper has done and holds, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// Calls to Redis (each one round trip).
    pub calls: u64,
    /// Calls Redis did not answer in time.
    pub failures: u64,
    /// Permits on record in Redis for this process.
    pub leased: usize,
    /// This process's fair share of the budget.
    pub share: usize,
    /// What the process's pools may run now (the local budget's capacity).
    pub capacity: usize,
    /// The budget's ceiling (its capacity, or lower after a throttle).
    pub ceiling: usize,
    /// Processes with a live lease.
    pub processes: usize,
    /// Redis did not answer the last call.
    pub outage: bool,
}

impl RedisBudget {
    /// Joins the budget at `url` (`redis://host:port/db`) and starts its keeper on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for bad settings, [`Error::Url`] for a bad URL, [`Error::Unreachable`] when Redis does
    /// not answer the first call within the call timeout. Nothing is leased then.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn connect(url: &str, settings: RedisBudgetSettings) -> Result<Self, Error> {
        settings.validate().map_err(Error::Settings)?;
        let client = redis::Client::open(url).map_err(Error::Url)?;
        let budget = SharedBudget::new(0);
        if settings.rate_cap.is_some() {
            budget.set_start_tokens(Some(0));
        }
        let capacity = settings.capacity;
        let shared = Arc::new(Shared::default());
        let mut keeper = Keeper {
            budget: budget.clone(),
            script: LeaseScript::new(&settings.name),
            settings,
            id: process_id(),
            client,
            con: None,
            shared: shared.clone(),
        };
        // Register with nothing leased: the script is loaded and the budget's state made, or Redis is down.
        if keeper.call(&Request::none(), false).await.is_none() {
            return Err(Error::Unreachable(url.to_owned()));
        }
        Ok(RedisBudget {
            budget,
            capacity,
            shared,
            keeper: Some(tokio::spawn(keeper.run())),
        })
    }

    /// A member of the process's budget with `weight` among the process's pools: hand it to one pool's
    /// builder ([`Builder::budget`](pool_core::Builder::budget)).
    pub fn member(&self, weight: usize) -> BudgetMember {
        self.budget.member(weight)
    }

    /// The budget's capacity (across every process).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The process's local budget, whose capacity the keeper leases.
    pub fn local(&self) -> &SharedBudget {
        &self.budget
    }

    /// What the keeper has done and holds.
    pub fn stats(&self) -> LeaseStats {
        let s = &self.shared;
        LeaseStats {
            calls: s.calls.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            leased: s.record.load(Ordering::Relaxed),
            share: s.share.load(Ordering::Relaxed),
            capacity: self.budget.capacity(),
            ceiling: s.ceiling.load(Ordering::Relaxed),
            processes: s.processes.load(Ordering::Relaxed),
            outage: s.outage.load(Ordering::Relaxed),
        }
    }

    /// Stops starting tasks, waits (up to one lease TTL) for the running ones to give their permits back, and
    /// drops the process's record, so the other processes get its permits at once.
    pub async fn close(mut self) {
        let Some(handle) = self.keeper.take() else {
            return;
        };
        self.stop();
        let Ok(mut keeper) = handle.await else {
            return;
        };
        let deadline = Instant::now() + keeper.settings.lease_ttl;
        while self.budget.in_use() > 0 && Instant::now() < deadline {
            tokio::time::sleep(keeper.settings.tick).await;
        }
        let _ = keeper.call(&Request::none(), true).await;
    }

    fn stop(&self) {
        self.budget.set_capacity(0);
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl Drop for RedisBudget {
    fn drop(&mut self) {
        if self.keeper.is_some() {
            self.stop();
        }
    }
}

/// An id no other process shares: the process id and the time it joined.
fn process_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!("{}-{nanos:x}", std::process::id())
}
