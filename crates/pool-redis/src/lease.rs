//! [`Lease`]: the keeper's decisions, without IO: when to call Redis and with what, and what the process may
//! run after each answer or failure. The keeper (`keeper.rs`) does the calls; tests drive this in virtual
//! time.
//!
//! One invariant makes a lease safe: **the process never runs more than Redis has on record for it**. The
//! local capacity is raised only after Redis recorded the larger lease, and lowered before a call may record a
//! smaller one; the call's `floor` (what the process may run during the call) is never recorded below.

use std::time::{Duration, Instant};

use crate::script::Reply;
use crate::settings::RedisBudgetSettings;

/// What the process's pools read off their [`SharedBudget`](pool_core::SharedBudget) before a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The members' summed demand (their desired concurrency).
    pub(crate) demand: usize,
    /// Permits the process's tasks hold.
    pub(crate) in_use: usize,
    /// Throttles its tasks reported so far, and the last one's retry-after.
    pub(crate) throttles: (u64, Option<Duration>),
    /// Starts left under the rate cap, if there is one.
    pub(crate) starts: Option<usize>,
}

/// Why a call is made; shown in the keeper's trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The pools want more than the process holds.
    Acquire,
    /// The process holds more than a batch beyond what its pools want.
    Release,
    /// The lease's time-to-live is a third gone, or a throttle is to be shared.
    Renew,
    /// Redis did not answer last time.
    Reconnect,
    /// The process is running out of starts under the rate cap.
    Starts,
}

/// The next step: a call, or nothing until an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Call the script asking for `target` permits; lower the local capacity to `lower_to` first.
    Call {
        /// Permits to hold after the call, if the share and the budget allow.
        target: usize,
        /// The local capacity during the call.
        lower_to: usize,
        /// Why.
        why: Why,
    },
    /// Nothing to do before this instant (the keeper checks the pools again at its tick anyway).
    Wait(Instant),
}

/// The arguments of one call that [`Step::Call`] and the pools' reading decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) target: usize,
    pub(crate) floor: usize,
    pub(crate) demand: usize,
    pub(crate) throttles: u64,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) had_lease: bool,
    /// Starts asked for under the rate cap.
    pub(crate) want_starts: usize,
}

impl Request {
    /// A call that asks for nothing: the first one (to register) and the last (to leave).
    pub(crate) fn none() -> Self {
        Request {
            target: 0,
            floor: 0,
            demand: 0,
            throttles: 0,
            retry_after: None,
            had_lease: false,
            want_starts: 0,
        }
    }
}

/// The keeper's state.
#[derive(Debug)]
pub(crate) struct Lease {
    batch: usize,
    ttl: Duration,
    heartbeat: Duration,
    tick: Duration,
    allowance: usize,
    /// Permits Redis has on record for the process (as of the last answer).
    pub(crate) record: usize,
    /// What the process may run: never above `record`.
    pub(crate) capacity: usize,
    /// The process's fair share in the last answer.
    pub(crate) share: usize,
    last_ok: Option<Instant>,
    next_renew: Instant,
    next_acquire: Instant,
    backoff: Duration,
    throttles_sent: u64,
    seq_seen: Option<u64>,
    /// Redis did not answer the last call.
    pub(crate) outage: bool,
    /// The cluster's rate cap in starts a second, if any.
    rate: Option<u32>,
    /// Live processes in the last answer (the rate cap's blocks are a fair part of it).
    processes: usize,
    next_starts: Instant,
}

/// How long a block of starts lasts a process at its fair part of the rate cap.
const STARTS_BLOCK: Duration = Duration::from_millis(500);

impl Lease {
    pub(crate) fn new(settings: &RedisBudgetSettings, now: Instant) -> Self {
        Lease {
            batch: settings.batch,
            ttl: settings.lease_ttl,
            heartbeat: settings.lease_ttl / 3,
            tick: settings.tick,
            allowance: settings.outage_allowance,
            record: 0,
            capacity: 0,
            share: 0,
            last_ok: None,
            next_renew: now,
            next_acquire: now,
            backoff: settings.tick,
            throttles_sent: 0,
            seq_seen: None,
            outage: false,
            rate: settings.rate_cap.map(|c| c.per_second),
            processes: 1,
            next_starts: now,
        }
    }

    /// Starts to ask for at a time: half a second of the process's fair part of the rate cap.
    fn starts_block(&self) -> usize {
        self.rate.map_or(0, |rate| {
            let part = f64::from(rate) * STARTS_BLOCK.as_secs_f64() / self.processes.max(1) as f64;
            (part.ceil() as usize).max(1)
        })
    }

    /// The process has fewer than half a block of starts left.
    fn starts_low(&self, r: Reading) -> bool {
        r.starts.is_some_and(|left| left * 2 < self.starts_block())
    }

    /// What to do now, given the pools' reading.
    pub(crate) fn plan(&self, now: Instant, r: Reading) -> Step {
        let want = r.demand;
        let new_throttles = r.throttles.0 > self.throttles_sent;
        if self.outage {
            return if now >= self.next_acquire {
                self.call(self.record.max(self.capacity), Why::Reconnect)
            } else {
                Step::Wait(self.next_acquire)
            };
        }
        if want > self.capacity && now >= self.next_acquire {
            return self.call(want.min(self.capacity + self.batch), Why::Acquire);
        }
        let keep = want.max(r.in_use);
        if self.record >= keep + self.batch && self.record > 0 {
            return self.call(keep, Why::Release);
        }
        if new_throttles || now >= self.next_renew {
            return self.call(self.record.max(self.capacity), Why::Renew);
        }
        let starts_low = self.starts_low(r) && want > 0;
        if starts_low && now >= self.next_starts {
            return self.call(self.record.max(self.capacity), Why::Starts);
        }
        let mut until = self.next_renew;
        if want > self.capacity {
            until = until.min(self.next_acquire);
        }
        if starts_low {
            until = until.min(self.next_starts);
        }
        Step::Wait(until)
    }

    fn call(&self, target: usize, why: Why) -> Step {
        Step::Call {
            target,
            lower_to: self.capacity.min(target),
            why,
        }
    }

    /// The call's arguments, once the local capacity is `lower_to` and the pools' tasks hold `in_use`.
    pub(crate) fn request(&mut self, target: usize, lower_to: usize, r: Reading) -> Request {
        let had_lease = self.record > 0 || self.capacity > 0;
        self.capacity = self.capacity.min(lower_to);
        Request {
            target,
            floor: r.in_use.max(lower_to),
            demand: r.demand,
            throttles: r.throttles.0.saturating_sub(self.throttles_sent),
            retry_after: r.throttles.1,
            had_lease,
            want_starts: if self.starts_low(r) {
                self.starts_block()
            } else {
                0
            },
        }
    }

    /// Redis answered `reply` to `req`: returns the new local capacity, and a throttle another process saw
    /// (with its retry-after) when there is one to tell the pools of.
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        why: Why,
        req: &Request,
        reply: &Reply,
    ) -> (usize, Option<Option<Duration>>) {
        let gained = reply.held > self.capacity;
        self.record = reply.held;
        self.share = reply.share;
        self.capacity = reply.held.min(reply.share);
        self.last_ok = Some(now);
        self.outage = false;
        self.next_renew = now + self.heartbeat;
        if why == Why::Acquire && !gained {
            // Nothing came free: ask again later, sooner when another process's lease runs out.
            self.backoff = (self.backoff * 2).min(self.heartbeat);
            let mut next = now + self.backoff;
            if let Some(expiry) = reply.next_expiry_in {
                next = next.min(now + expiry + self.tick);
            }
            self.next_acquire = next;
        } else if gained {
            self.backoff = self.tick;
            self.next_acquire = now;
        }
        self.throttles_sent += req.throttles;
        self.processes = reply.processes.max(1);
        if req.want_starts > 0 && reply.starts == 0 {
            // The cap is spent for now: ask again after a tenth of a block.
            self.next_starts = now + STARTS_BLOCK / 10;
        }
        let foreign = match self.seq_seen {
            Some(seen) => reply.seq > seen + req.throttles,
            None => false,
        };
        self.seq_seen = Some(reply.seq);
        (self.capacity, foreign.then_some(reply.retry_after))
    }

    /// Redis did not answer: try again later.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.outage = true;
        self.backoff = (self.backoff * 2).clamp(self.tick, self.heartbeat);
        self.next_acquire = now + self.backoff;
    }

    /// During an outage, once the lease on record has run out, the process keeps at most the outage
    /// allowance: returns the lowered capacity when it lowers it.
    pub(crate) fn expire(&mut self, now: Instant) -> Option<usize> {
        let ran_out = match self.last_ok {
            Some(ok) => now >= ok + self.ttl,
            None => true,
        };
        if self.outage && ran_out && self.capacity > self.allowance {
            self.capacity = self.allowance;
            return Some(self.capacity);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RedisBudgetSettings {
        RedisBudgetSettings::new("t", 40)
            .with_batch(4)
            .with_lease_ttl(Duration::from_secs(3))
            .with_tick(Duration::from_millis(50))
    }

    fn reply(held: usize, share: usize) -> Reply {
        Reply {
            held,
            share,
            seq: 0,
            retry_after: None,
            ceiling: 40,
            recovering: false,
            next_expiry_in: None,
            processes: 1,
            starts: 0,
        }
    }

    fn reading(demand: usize, in_use: usize) -> Reading {
        Reading {
            demand,
            in_use,
            throttles: (0, None),
            starts: None,
        }
    }

    #[test]
    fn a_process_that_wants_more_asks_for_one_batch_more_and_runs_only_what_was_recorded() {
        let t0 = Instant::now();
        let mut lease = Lease::new(&settings(), t0);
        let step = lease.plan(t0, reading(10, 0));
        assert_eq!(
            step,
            Step::Call {
                target: 4,
                lower_to: 0,
                why: Why::Acquire
            }
        );
        let req = lease.request(4, 0, reading(10, 0));
        assert_eq!(req.floor, 0);
        let (cap, relay) = lease.answered(t0, Why::Acquire, &req, &reply(4, 4));
        assert_eq!((cap, relay), (4, None));
        // Share reached: the next ask is backed off, not made at every tick.
        let step = lease.plan(t0, reading(10, 4));
        assert!(matches!(step, Step::Call { target: 8, .. }));
        let req = lease.request(8, 4, reading(10, 4));
        let _ = lease.answered(t0, Why::Acquire, &req, &reply(4, 4));
        assert!(matches!(lease.plan(t0, reading(10, 4)), Step::Wait(_)));
    }

    #[test]
    fn a_release_lowers_the_local_capacity_before_the_call_and_never_records_below_what_runs() {
        let t0 = Instant::now();
        let mut lease = Lease::new(&settings(), t0);
        let req = lease.request(12, 0, reading(12, 0));
        lease.answered(t0, Why::Acquire, &req, &reply(12, 12));
        // The pools now want 2 and run 3: keep 3, lowering the capacity first.
        let step = lease.plan(t0, reading(2, 3));
        assert_eq!(
            step,
            Step::Call {
                target: 3,
                lower_to: 3,
                why: Why::Release
            }
        );
        // A task started between the plan and the lowering: the floor covers it.
        let req = lease.request(3, 3, reading(2, 4));
        assert_eq!(req.floor, 4);
    }

    #[test]
    fn an_outage_keeps_the_recorded_lease_until_its_ttl_then_only_the_allowance() {
        let t0 = Instant::now();
        let mut lease = Lease::new(&settings(), t0);
        let req = lease.request(12, 0, reading(12, 0));
        lease.answered(t0, Why::Acquire, &req, &reply(12, 12));
        lease.failed(t0 + Duration::from_secs(1));
        assert_eq!(lease.expire(t0 + Duration::from_secs(2)), None);
        assert_eq!(lease.expire(t0 + Duration::from_secs(3)), Some(4));
        assert!(matches!(
            lease.plan(t0 + Duration::from_secs(4), reading(12, 4)),
            Step::Call {
                why: Why::Reconnect,
                ..
            }
        ));
    }

    #[test]
    fn a_throttle_seen_by_another_process_is_told_to_the_pools_once() {
        let t0 = Instant::now();
        let mut lease = Lease::new(&settings(), t0);
        let req = lease.request(4, 0, reading(4, 0));
        lease.answered(t0, Why::Acquire, &req, &reply(4, 4));
        let mut r = reply(4, 4);
        r.seq = 1;
        r.retry_after = Some(Duration::from_secs(2));
        let req = lease.request(4, 4, reading(4, 4));
        let (_, relay) = lease.answered(t0, Why::Renew, &req, &r);
        assert_eq!(relay, Some(Some(Duration::from_secs(2))));
        let (_, relay) = lease.answered(t0, Why::Renew, &req, &r);
        assert_eq!(relay, None, "the same throttle is not told twice");
        // A throttle of our own comes back in the count, and is not told back to us.
        let mine = Reading {
            throttles: (1, None),
            ..reading(4, 4)
        };
        let req = lease.request(4, 4, mine);
        assert_eq!(req.throttles, 1);
        r.seq = 2;
        let (_, relay) = lease.answered(t0, Why::Renew, &req, &r);
        assert_eq!(relay, None);
    }
}
