//! The lease script (`lease.lua`) and its typed answer.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script};

use crate::lease::Request;
use crate::settings::RedisBudgetSettings;

/// The script's answer to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Permits on record for the process now.
    pub(crate) held: usize,
    /// Its fair share now.
    pub(crate) share: usize,
    /// Throttles reported by every process so far.
    pub(crate) seq: u64,
    /// The last throttle's retry-after.
    pub(crate) retry_after: Option<Duration>,
    /// The budget's ceiling now (the capacity, or lower after a throttle).
    pub(crate) ceiling: usize,
    /// Redis lost its data lately, and leases are being restored.
    pub(crate) recovering: bool,
    /// When the next other process's lease runs out, if any.
    pub(crate) next_expiry_in: Option<Duration>,
    /// Processes with a live lease, this one included.
    pub(crate) processes: usize,
    /// Starts granted under the rate cap.
    pub(crate) starts: usize,
}

/// The loaded script with the budget's keys.
#[derive(Debug)]
pub(crate) struct LeaseScript {
    script: Script,
    procs: String,
    state: String,
}

impl LeaseScript {
    pub(crate) fn new(name: &str) -> Self {
        LeaseScript {
            script: Script::new(include_str!("lease.lua")),
            procs: format!("{{{name}}}:procs"),
            state: format!("{{{name}}}:state"),
        }
    }

    /// One call for process `id`: `leaving` drops its record.
    pub(crate) async fn call(
        &self,
        con: &mut MultiplexedConnection,
        id: &str,
        s: &RedisBudgetSettings,
        req: &Request,
        leaving: bool,
    ) -> RedisResult<Reply> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let retry_after: i64 = req
            .retry_after
            .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let v: Vec<i64> = self
            .script
            .key(&self.procs)
            .key(&self.state)
            .arg(id)
            .arg(req.target)
            .arg(req.floor)
            .arg(req.demand)
            .arg(s.weight)
            .arg(s.capacity)
            .arg(ms(s.lease_ttl))
            .arg(req.throttles)
            .arg(retry_after)
            .arg(u8::from(req.had_lease))
            .arg(ms(s.ceiling_recovery))
            .arg(ms(s.throttle_hold))
            .arg(u8::from(leaving))
            .arg(s.rate_cap.map_or(0, |c| c.per_second))
            .arg(s.rate_cap.map_or(0, |c| c.burst))
            .arg(req.want_starts)
            .invoke_async(con)
            .await?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let count = |i: usize| usize::try_from(at(i)).unwrap_or(0);
        let millis = |i: usize| u64::try_from(at(i)).ok().map(Duration::from_millis);
        Ok(Reply {
            held: count(0),
            share: count(1),
            seq: u64::try_from(at(2)).unwrap_or(0),
            retry_after: millis(3),
            ceiling: count(4),
            recovering: at(5) == 1,
            next_expiry_in: millis(6),
            processes: count(7),
            starts: count(8),
        })
    }
}
