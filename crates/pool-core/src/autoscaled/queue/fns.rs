//! [`QueueFns`]: the crawl queue's driver-side half, as the driver's task functions.
//!
//! Readiness takes in what was pushed (dropping seen keys) and what came due, and answers from the ready
//! items; with none ready but some held, it arms one timer for the earliest and answers `Pending`. Each
//! started item stays in an in-flight slot until its task ends (`task_ended`) or is dropped unfinished
//! (a timeout: the task's drop posts its slot to the inbox), and is then counted, retried or given up.

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::future::{Future, Ready, ready};
use core::hash::Hash;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::collections::HashSet;

use super::{CrawlQueue, CrawlReport, Ctx, FailedItem, Inbox, RetrySettings};
use crate::autoscaled::slab::Slab;
use crate::driver::Handle;
use crate::outcome::Outcome;
use crate::pool::RunReport;
use crate::seams::{Runtime, TaskFns, Timer};
use crate::time::Instant;

/// An item and the number of the attempt it is waiting for (1 for the first).
struct Entry<T> {
    item: T,
    attempt: u32,
}

/// An item waiting for a retry-after or a backoff, ordered so the heap's top is the earliest (then the first
/// held).
struct Held<T> {
    at: Instant,
    seq: u64,
    entry: Entry<T>,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The driver-side state of one crawl.
pub(super) struct QueueFns<T, K, F, R, Rt: Runtime, E> {
    inbox: Arc<Inbox<T>>,
    key: Option<fn(&T) -> K>,
    retry: RetrySettings,
    seen: HashSet<K>,
    ready: VecDeque<Entry<T>>,
    held: BinaryHeap<Held<T>>,
    in_flight: Slab<Entry<T>>,
    task: F,
    on_failed: R,
    handle: Handle,
    rt: Rt,
    timer: Option<Pin<Box<Rt::Timer>>>,
    seq: u64,
    items_succeeded: u64,
    retries: u64,
    duplicates: u64,
    failed: Vec<FailedItem<T, E>>,
}

impl<T, K, F, R, Rt, E> QueueFns<T, K, F, R, Rt, E>
where
    K: Hash + Eq,
    Rt: Runtime,
    R: FnMut(&FailedItem<T, E>),
{
    pub(super) fn new(
        queue: &CrawlQueue<T, K>,
        task: F,
        on_failed: R,
        handle: Handle,
        rt: Rt,
    ) -> Self {
        QueueFns {
            inbox: queue.inbox.clone(),
            key: queue.key,
            retry: queue.retry,
            seen: HashSet::new(),
            ready: VecDeque::new(),
            held: BinaryHeap::new(),
            in_flight: Slab::default(),
            task,
            on_failed,
            handle,
            rt,
            timer: None,
            seq: 0,
            items_succeeded: 0,
            retries: 0,
            duplicates: 0,
            failed: Vec::new(),
        }
    }

    pub(super) fn into_report(self, run: RunReport) -> CrawlReport<T, E> {
        CrawlReport {
            run,
            items_succeeded: self.items_succeeded,
            retries: self.retries,
            duplicates: self.duplicates,
            failed: self.failed,
        }
    }

    /// Takes in pushes (dropping seen keys), attempts dropped unfinished, and held items that came due.
    fn take_in(&mut self) {
        while let Ok(item) = self.inbox.items.pop() {
            if let Some(key) = self.key
                && !self.seen.insert(key(&item))
            {
                self.duplicates += 1;
                continue;
            }
            self.ready.push_back(Entry { item, attempt: 1 });
        }
        while let Ok(slot) = self.inbox.abandoned.pop() {
            if let Some(entry) = self.leave(slot) {
                let wait = self.backoff(entry.attempt);
                self.retry_later(entry, wait, None);
            }
        }
        if !self.held.is_empty() {
            let now = self.rt.now();
            while self.held.peek().is_some_and(|h| h.at <= now) {
                if let Some(h) = self.held.pop() {
                    self.ready.push_back(h.entry);
                }
            }
        }
    }

    /// Frees an in-flight slot, returning its item.
    fn leave(&mut self, slot: u32) -> Option<Entry<T>> {
        self.in_flight.take(slot)
    }

    /// The wait before retrying an item whose attempt `attempt` failed: the backoff doubled per retry.
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.retry
            .backoff
            .saturating_mul(1 << doublings)
            .min(self.retry.max_backoff)
    }

    /// Queues the next attempt at `entry` after `wait`, or gives it up after its last retry.
    fn retry_later(&mut self, entry: Entry<T>, wait: Duration, error: Option<E>) {
        if entry.attempt > self.retry.max_retries {
            let failed = FailedItem {
                item: entry.item,
                attempts: entry.attempt,
                error,
            };
            (self.on_failed)(&failed);
            self.failed.push(failed);
            return;
        }
        self.retries += 1;
        let next = Entry {
            item: entry.item,
            attempt: entry.attempt + 1,
        };
        if wait.is_zero() {
            self.ready.push_back(next);
        } else {
            self.seq += 1;
            self.held.push(Held {
                at: self.rt.now() + wait,
                seq: self.seq,
                entry: next,
            });
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        loop {
            self.take_in();
            if !self.ready.is_empty() {
                return Poll::Ready(true);
            }
            // Nothing ready: pushes and dropped attempts wake this crawl from now on, and one that raced the
            // check above is taken in on the next turn.
            self.inbox.waker.register(cx.waker());
            if !self.inbox.items.is_empty() || !self.inbox.abandoned.is_empty() {
                continue;
            }
            let Some(next) = self.held.peek().map(|h| h.at) else {
                return Poll::Ready(false);
            };
            let rt = &self.rt;
            let timer = self.timer.get_or_insert_with(|| Box::pin(rt.timer(next)));
            timer.as_mut().reset(next);
            if timer.as_mut().poll_elapsed(cx).is_pending() {
                return Poll::Pending;
            }
            if self.rt.now() < next {
                // The timer fired before the clock reached its deadline (rounding in the runtime's timer);
                // ask again soon rather than trusting it, as the driver does with its own timer.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl<T, K, F, R, Rt, E, Fut, O> TaskFns for QueueFns<T, K, F, R, Rt, E>
where
    T: Clone,
    K: Hash + Eq,
    F: FnMut(T, Ctx<T>) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Into<Outcome>,
    R: FnMut(&FailedItem<T, E>),
    Rt: Runtime,
{
    type Error = E;
    type Ok = Settled<O, E>;
    type Task = QueueTask<Fut, T>;
    type Ready = Ready<Result<bool, E>>;
    type Finished = Ready<Result<bool, E>>;

    fn run_task(&mut self) -> Self::Task {
        let fail_fast = self.retry.fail_fast;
        let Some(entry) = self.ready.pop_front() else {
            // Readiness said yes only with an item ready, and nothing else takes one.
            return QueueTask::empty(fail_fast);
        };
        let ctx = Ctx {
            inbox: self.inbox.clone(),
            handle: self.handle.clone(),
            attempt: entry.attempt,
        };
        let fut = (self.task)(entry.item.clone(), ctx);
        let slot = self.in_flight.insert(entry);
        QueueTask {
            fut: Some(fut),
            slot,
            inbox: Some(self.inbox.clone()),
            fail_fast,
        }
    }

    fn is_task_ready(&mut self) -> Self::Ready {
        // `poll_task_ready` always answers, so the driver never asks this.
        ready(Ok(!self.ready.is_empty()))
    }

    fn poll_task_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<bool, E>>> {
        Some(self.poll_ready(cx).map(Ok))
    }

    fn is_finished(&mut self) -> Self::Finished {
        self.take_in();
        let done = self.ready.is_empty()
            && self.held.is_empty()
            && self.in_flight.len() == 0
            && self.inbox.items.is_empty();
        ready(Ok(done))
    }

    fn task_ended(&mut self, settled: Settled<O, E>) -> Outcome {
        let Some((slot, result)) = settled.0 else {
            return Outcome::Failed;
        };
        let Some(entry) = self.leave(slot) else {
            return outcome_of(result);
        };
        match result {
            Ok(o) => {
                let outcome = o.into();
                match outcome {
                    Outcome::Succeeded => self.items_succeeded += 1,
                    Outcome::Throttled { retry_after } => {
                        // The pool spaces starts after a throttle; the item waits only for what the service
                        // asked.
                        self.retry_later(entry, retry_after.unwrap_or(Duration::ZERO), None);
                    }
                    Outcome::Failed => {
                        let wait = self.backoff(entry.attempt);
                        self.retry_later(entry, wait, None);
                    }
                }
                outcome
            }
            Err(e) => {
                let wait = self.backoff(entry.attempt);
                self.retry_later(entry, wait, Some(e));
                Outcome::Failed
            }
        }
    }
}

fn outcome_of<O: Into<Outcome>, E>(result: Result<O, E>) -> Outcome {
    match result {
        Ok(o) => o.into(),
        Err(_) => Outcome::Failed,
    }
}

/// What an attempt's task returns to the driver: its slot and result (`None` only for a task started with
/// nothing ready, which the driver never does).
#[derive(Debug)]
pub struct Settled<O, E>(Option<(u32, Result<O, E>)>);

impl<O: Into<Outcome>, E> From<Settled<O, E>> for Outcome {
    fn from(settled: Settled<O, E>) -> Self {
        // `QueueFns::task_ended` classifies results; this conversion is the trait's fallback only.
        settled.0.map_or(Outcome::Failed, |(_, r)| outcome_of(r))
    }
}

pin_project_lite::pin_project! {
    /// One attempt at an item, as a pool task. Dropped before it ended (a timeout), it posts its slot to the
    /// queue's inbox, so the item is retried rather than lost.
    pub struct QueueTask<Fut, T> {
        #[pin]
        fut: Option<Fut>,
        slot: u32,
        // `Some` until the attempt ends.
        inbox: Option<Arc<Inbox<T>>>,
        fail_fast: bool,
    }

    impl<Fut, T> PinnedDrop for QueueTask<Fut, T> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(inbox) = this.inbox.take() {
                // Unbounded, never closed: the push cannot fail.
                let _ = inbox.abandoned.push(*this.slot);
                inbox.waker.wake();
            }
        }
    }
}

impl<Fut, T> QueueTask<Fut, T> {
    fn empty(fail_fast: bool) -> Self {
        QueueTask {
            fut: None,
            slot: 0,
            inbox: None,
            fail_fast,
        }
    }
}

impl<Fut, T, O, E> Future for QueueTask<Fut, T>
where
    Fut: Future<Output = Result<O, E>>,
{
    type Output = Result<Settled<O, E>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(fut) = this.fut.as_pin_mut() else {
            return Poll::Ready(Ok(Settled(None)));
        };
        let result = core::task::ready!(fut.poll(cx));
        // Ended: nothing to post on drop.
        *this.inbox = None;
        Poll::Ready(match result {
            Err(e) if *this.fail_fast => Err(e),
            result => Ok(Settled(Some((*this.slot, result)))),
        })
    }
}
