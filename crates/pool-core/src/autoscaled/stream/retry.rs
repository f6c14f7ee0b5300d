//! [`RetryItems`]: a stream of items as a driver's task functions, each item's future made by a closure, so
//! an attempt that was throttled or failed can be made again.

use alloc::collections::VecDeque;
use core::convert::Infallible;
use core::fmt;
use core::future::{Future, Ready, ready};
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_lite::Stream;

use super::items::Done;
use super::{ItemSource, Upstream, buffer_full};
use crate::autoscaled::slab::Slab;
use crate::driver::Handle;
use crate::outcome::Outcome;
use crate::seams::TaskFns;

/// An item and the number of the attempt it waits for (1 for the first).
struct Entry<I> {
    item: I,
    attempt: u32,
}

/// The upstream of [`AutoscaledStreamExt::autoscaled_retrying`](super::AutoscaledStreamExt::autoscaled_retrying),
/// as the driver's task functions.
///
/// An attempt whose result `classify` calls throttled or failed is made again, up to `max_retries` times,
/// and its result is not yielded; the retry waits in line before new items, and the pool's own backoff
/// spaces it after a throttle. The last attempt's result is yielded whatever it was.
pub struct RetryItems<St: Stream, F, Fut: Future> {
    upstream: Upstream<St>,
    make: F,
    max_retries: u32,
    next: Option<Entry<St::Item>>,
    retries: VecDeque<Entry<St::Item>>,
    /// Each running attempt's item, by slot, for its retry.
    in_flight: Slab<Entry<St::Item>>,
    results: VecDeque<Fut::Output>,
    classify: fn(&Fut::Output) -> Outcome,
    handle: Handle,
}

impl<St: Stream, F, Fut: Future> fmt::Debug for RetryItems<St, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryItems")
            .field("max_retries", &self.max_retries)
            .field("exhausted", &self.upstream.is_exhausted())
            .field("retries", &self.retries.len())
            .field("results", &self.results.len())
            .finish_non_exhaustive()
    }
}

impl<St: Stream, F, Fut: Future> RetryItems<St, F, Fut> {
    pub(super) fn new(
        upstream: St,
        make: F,
        max_retries: u32,
        classify: fn(&Fut::Output) -> Outcome,
        handle: Handle,
    ) -> Self {
        RetryItems {
            upstream: Upstream::new(upstream),
            make,
            max_retries,
            next: None,
            retries: VecDeque::new(),
            in_flight: Slab::default(),
            results: VecDeque::new(),
            classify,
            handle,
        }
    }
}

impl<St, F, Fut> ItemSource for RetryItems<St, F, Fut>
where
    St: Stream,
    St::Item: Clone,
    F: FnMut(St::Item) -> Fut,
    Fut: Future,
{
    type Output = Fut::Output;
    fn results(&mut self) -> &mut VecDeque<Fut::Output> {
        &mut self.results
    }
    fn set_classify(&mut self, classify: fn(&Fut::Output) -> Outcome) {
        self.classify = classify;
    }
}

impl<St, F, Fut> TaskFns for RetryItems<St, F, Fut>
where
    St: Stream,
    St::Item: Clone,
    F: FnMut(St::Item) -> Fut,
    Fut: Future,
{
    type Error = Infallible;
    type Ok = Done<(u32, Fut::Output)>;
    type Task = RetryTask<Fut>;
    type Ready = Ready<Result<bool, Infallible>>;
    type Finished = Ready<Result<bool, Infallible>>;

    fn run_task(&mut self) -> Self::Task {
        let Some(entry) = self.next.take() else {
            return RetryTask { fut: None, slot: 0 };
        };
        let fut = (self.make)(entry.item.clone());
        let slot = self.in_flight.insert(entry);
        RetryTask {
            fut: Some(fut),
            slot,
        }
    }

    fn is_task_ready(&mut self) -> Self::Ready {
        // `poll_task_ready` always answers, so the driver never asks this.
        ready(Ok(self.next.is_some()))
    }

    fn poll_task_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<bool, Infallible>>> {
        if self.next.is_some() {
            return Some(Poll::Ready(Ok(true)));
        }
        if buffer_full(self.results.len(), &self.handle) {
            return Some(Poll::Ready(Ok(false)));
        }
        if let Some(entry) = self.retries.pop_front() {
            self.next = Some(entry);
            return Some(Poll::Ready(Ok(true)));
        }
        Some(self.upstream.poll_next(cx).map(|item| {
            self.next = item.map(|item| Entry { item, attempt: 1 });
            Ok(self.next.is_some())
        }))
    }

    fn is_finished(&mut self) -> Self::Finished {
        ready(Ok(self.upstream.is_exhausted()
            && self.next.is_none()
            && self.retries.is_empty()))
    }

    fn task_ended(&mut self, done: Self::Ok) -> Outcome {
        let Some((slot, result)) = done.0 else {
            return Outcome::Failed;
        };
        let outcome = (self.classify)(&result);
        if let Some(entry) = self.in_flight.take(slot) {
            let again = !matches!(outcome, Outcome::Succeeded) && entry.attempt <= self.max_retries;
            if again {
                self.retries.push_back(Entry {
                    item: entry.item,
                    attempt: entry.attempt + 1,
                });
                return outcome;
            }
        }
        self.results.push_back(result);
        outcome
    }
}

pin_project_lite::pin_project! {
    /// One attempt at an item as a pool task.
    #[derive(Debug)]
    pub struct RetryTask<Fut> {
        #[pin]
        fut: Option<Fut>,
        slot: u32,
    }
}

impl<Fut: Future> Future for RetryTask<Fut> {
    type Output = Result<Done<(u32, Fut::Output)>, Infallible>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.fut.as_pin_mut() {
            Some(fut) => fut.poll(cx).map(|out| Ok(Done(Some((*this.slot, out))))),
            None => Poll::Ready(Ok(Done(None))),
        }
    }
}
