//! [`RedisBudgetSettings`] and what makes them wrong ([`SettingsError`]).

use core::fmt;
use std::time::Duration;

/// How a process leases its part of a budget shared through Redis.
///
/// Defaults: batch 4, a lease time-to-live of 5 s (renewed every third of it), a tick of 50 ms, calls cut off
/// after 500 ms, an outage allowance of one batch, a throttle hold of 1 s, a ceiling that grows back over
/// 20 s, and no rate cap.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBudgetSettings {
    /// The budget's name: every process that names it shares it. Its keys are `{name}:procs` and
    /// `{name}:state` (one hash slot, so a Redis Cluster keeps them together).
    pub name: String,
    /// The budget: permits in use across every process, never more.
    pub capacity: usize,
    /// This process's weight in the shares.
    pub weight: usize,
    /// Permits taken per round trip: the process asks for this many more at a time, and gives permits back
    /// only when it holds this many more than its pools want.
    pub batch: usize,
    /// How long a lease lives without renewal: a killed process's permits come back after it.
    pub lease_ttl: Duration,
    /// How often the keeper looks at the process's pools between calls.
    pub tick: Duration,
    /// A call that takes longer counts as an outage.
    pub call_timeout: Duration,
    /// What the process may run once its lease ran out during an outage (at most one batch).
    pub outage_allowance: usize,
    /// How long a throttle without a retry-after holds the budget's ceiling down.
    pub throttle_hold: Duration,
    /// How long the ceiling takes to grow back from a throttle to the capacity.
    pub ceiling_recovery: Duration,
    /// A cluster-wide cap on starts per second (GCRA), or none.
    pub rate_cap: Option<RateCap>,
}

/// A cap on task starts per second across every process of the budget, kept in Redis as a GCRA (generic cell
/// rate algorithm) and handed to each process in blocks of starts, so a start costs no round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateCap {
    /// Starts per second, across every process.
    pub per_second: u32,
    /// Starts allowed at once beyond the steady rate.
    pub burst: u32,
}

impl RateCap {
    /// `per_second` starts a second, with a burst of a tenth of a second's worth (at least 1).
    pub fn per_second(per_second: u32) -> Self {
        RateCap {
            per_second,
            burst: (per_second / 10).max(1),
        }
    }

    /// Sets the burst.
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }
}

impl RedisBudgetSettings {
    /// A budget called `name` of `capacity` permits, with the defaults.
    pub fn new(name: impl Into<String>, capacity: usize) -> Self {
        RedisBudgetSettings {
            name: name.into(),
            capacity,
            weight: 1,
            batch: 4,
            lease_ttl: Duration::from_secs(5),
            tick: Duration::from_millis(50),
            call_timeout: Duration::from_millis(500),
            outage_allowance: 4,
            throttle_hold: Duration::from_secs(1),
            ceiling_recovery: Duration::from_secs(20),
            rate_cap: None,
        }
    }

    /// Sets [`rate_cap`](Self::rate_cap).
    pub fn with_rate_cap(mut self, cap: RateCap) -> Self {
        self.rate_cap = Some(cap);
        self
    }

    /// Sets [`weight`](Self::weight).
    pub fn with_weight(mut self, weight: usize) -> Self {
        self.weight = weight;
        self
    }

    /// Sets [`batch`](Self::batch), and the outage allowance with it when that was the old batch.
    pub fn with_batch(mut self, batch: usize) -> Self {
        if self.outage_allowance == self.batch {
            self.outage_allowance = batch;
        }
        self.batch = batch;
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`tick`](Self::tick).
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets [`outage_allowance`](Self::outage_allowance).
    pub fn with_outage_allowance(mut self, allowance: usize) -> Self {
        self.outage_allowance = allowance;
        self
    }

    /// Sets [`throttle_hold`](Self::throttle_hold).
    pub fn with_throttle_hold(mut self, hold: Duration) -> Self {
        self.throttle_hold = hold;
        self
    }

    /// Sets [`ceiling_recovery`](Self::ceiling_recovery).
    pub fn with_ceiling_recovery(mut self, recovery: Duration) -> Self {
        self.ceiling_recovery = recovery;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// The first rule they break.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.name.is_empty() || self.name.contains(['{', '}']) {
            return Err(SettingsError::BadName(self.name.clone()));
        }
        if self.capacity == 0 {
            return Err(SettingsError::ZeroCapacity);
        }
        if self.weight == 0 {
            return Err(SettingsError::ZeroWeight);
        }
        if self.batch == 0 {
            return Err(SettingsError::ZeroBatch);
        }
        if self.outage_allowance > self.batch {
            return Err(SettingsError::AllowanceAboveBatch {
                allowance: self.outage_allowance,
                batch: self.batch,
            });
        }
        if let Some(cap) = self.rate_cap
            && (cap.per_second == 0 || cap.burst == 0)
        {
            return Err(SettingsError::ZeroRate);
        }
        if self.tick.is_zero() || self.call_timeout.is_zero() {
            return Err(SettingsError::ZeroInterval);
        }
        // Renewals come every third of the TTL; a call must fit well inside that, and so must a tick.
        let renew = self.lease_ttl / 3;
        if renew < self.call_timeout || renew < self.tick {
            return Err(SettingsError::TtlTooShort {
                ttl: self.lease_ttl,
                call_timeout: self.call_timeout,
                tick: self.tick,
            });
        }
        Ok(())
    }
}

/// Settings a distributed budget cannot run with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsError {
    /// The name is empty or has a brace (it goes inside a Redis hash tag).
    BadName(String),
    /// A budget of no permits.
    ZeroCapacity,
    /// A weight of 0.
    ZeroWeight,
    /// A batch of 0.
    ZeroBatch,
    /// The outage allowance is above the batch, which would break the bound of the budget plus one batch per
    /// process.
    AllowanceAboveBatch {
        /// The allowance.
        allowance: usize,
        /// The batch.
        batch: usize,
    },
    /// A zero tick or call timeout.
    ZeroInterval,
    /// A rate cap of 0 starts a second, or a burst of 0.
    ZeroRate,
    /// A third of the TTL (the renewal interval) is shorter than a call's timeout or a tick.
    TtlTooShort {
        /// The TTL.
        ttl: Duration,
        /// The call timeout.
        call_timeout: Duration,
        /// The tick.
        tick: Duration,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::BadName(n) => write!(f, "budget name {n:?} is empty or has a brace"),
            SettingsError::ZeroCapacity => f.write_str("a budget of 0 permits admits nothing"),
            SettingsError::ZeroWeight => f.write_str("weight must be at least 1"),
            SettingsError::ZeroBatch => f.write_str("batch must be at least 1"),
            SettingsError::AllowanceAboveBatch { allowance, batch } => {
                write!(f, "outage allowance {allowance} is above the batch {batch}")
            }
            SettingsError::ZeroInterval => f.write_str("tick and call timeout must not be zero"),
            SettingsError::ZeroRate => {
                f.write_str("a rate cap needs at least 1 start a second and a burst of 1")
            }
            SettingsError::TtlTooShort {
                ttl,
                call_timeout,
                tick,
            } => write!(
                f,
                "lease TTL {ttl:?} is too short: a third of it must cover the call timeout {call_timeout:?} and \
                 the tick {tick:?}"
            ),
        }
    }
}

impl core::error::Error for SettingsError {}
