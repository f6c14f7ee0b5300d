//! The keeper: a tokio task that carries out [`Lease`]'s decisions against Redis and moves the process's
//! [`SharedBudget`] to what Redis recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use pool_core::SharedBudget;
use redis::Client;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

use crate::lease::{Lease, Reading, Request, Step, Why};
use crate::script::LeaseScript;
use crate::settings::RedisBudgetSettings;

/// What the keeper shares with [`RedisBudget`](crate::RedisBudget): its counters and the stop signal.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) record: AtomicUsize,
    pub(crate) share: AtomicUsize,
    pub(crate) ceiling: AtomicUsize,
    pub(crate) processes: AtomicUsize,
    pub(crate) outage: AtomicBool,
    pub(crate) stop: AtomicBool,
    pub(crate) wake: Notify,
}

/// The keeper's parts.
#[derive(Debug)]
pub(crate) struct Keeper {
    pub(crate) budget: SharedBudget,
    pub(crate) settings: RedisBudgetSettings,
    pub(crate) id: String,
    pub(crate) client: Client,
    pub(crate) con: Option<MultiplexedConnection>,
    pub(crate) script: LeaseScript,
    pub(crate) shared: Arc<Shared>,
}

impl Keeper {
    fn reading(&self) -> Reading {
        Reading {
            demand: self.budget.demand().min(self.settings.capacity),
            in_use: self.budget.in_use(),
            throttles: self.budget.throttles(),
            starts: self.budget.start_tokens(),
        }
    }

    /// One call with its timeout; `None` when Redis did not answer in time (the connection is then dropped and
    /// made again next time).
    pub(crate) async fn call(
        &mut self,
        req: &Request,
        leaving: bool,
    ) -> Option<crate::script::Reply> {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        let timeout = self.settings.call_timeout;
        let attempt = async {
            if self.con.is_none() {
                self.con = Some(self.client.get_multiplexed_async_connection().await?);
            }
            let con = self.con.as_mut().expect("connected above");
            self.script
                .call(con, &self.id, &self.settings, req, leaving)
                .await
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(reply)) => Some(reply),
            _ => {
                self.con = None;
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps the lease until told to stop; returns itself, for the last call.
    pub(crate) async fn run(mut self) -> Self {
        let mut lease = Lease::new(&self.settings, Instant::now());
        while !self.shared.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if let Some(cap) = lease.expire(now) {
                self.budget.set_capacity(cap);
            }
            match lease.plan(now, self.reading()) {
                Step::Wait(until) => {
                    let until = until.min(now + self.settings.tick);
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = self.shared.wake.notified() => {}
                    }
                }
                Step::Call {
                    target,
                    lower_to,
                    why,
                } => self.step(&mut lease, target, lower_to, why).await,
            }
        }
        self
    }

    async fn step(&mut self, lease: &mut Lease, target: usize, lower_to: usize, why: Why) {
        // Lower first, then read what runs: no task starts above what the call may record.
        if lower_to < self.budget.capacity() {
            self.budget.set_capacity(lower_to);
        }
        let req = lease.request(target, lower_to, self.reading());
        match self.call(&req, false).await {
            Some(reply) => {
                let (cap, relay) = lease.answered(Instant::now(), why, &req, &reply);
                self.budget.set_capacity(cap);
                self.budget.add_start_tokens(reply.starts);
                if let Some(retry_after) = relay {
                    self.budget.report_throttle(retry_after);
                }
                self.publish(lease, Some(&reply));
            }
            None => {
                lease.failed(Instant::now());
                self.publish(lease, None);
            }
        }
    }

    fn publish(&self, lease: &Lease, reply: Option<&crate::script::Reply>) {
        let s = &self.shared;
        s.record.store(lease.record, Ordering::Relaxed);
        s.share.store(lease.share, Ordering::Relaxed);
        s.outage.store(lease.outage, Ordering::Relaxed);
        if let Some(r) = reply {
            s.ceiling.store(r.ceiling, Ordering::Relaxed);
            s.processes.store(r.processes, Ordering::Relaxed);
        }
    }
}
