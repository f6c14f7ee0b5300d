//! [`Items`]: a stream of futures as a driver's task functions, each future run once.

use alloc::collections::VecDeque;
use core::convert::Infallible;
use core::fmt;
use core::future::{Future, Ready, ready};
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_lite::Stream;

use super::{ItemSource, Upstream, buffer_full};
use crate::driver::Handle;
use crate::outcome::Outcome;
use crate::seams::TaskFns;

/// The upstream of [`AutoscaledStreamExt::autoscaled`](super::AutoscaledStreamExt::autoscaled), as the
/// driver's task functions: readiness takes the next future, and each output is kept for the consumer.
pub struct Items<St: Stream>
where
    St::Item: Future,
{
    upstream: Upstream<St>,
    /// The future readiness took from the upstream, for `run_task`.
    next: Option<St::Item>,
    /// Results the consumer has not taken yet.
    results: VecDeque<<St::Item as Future>::Output>,
    classify: fn(&<St::Item as Future>::Output) -> Outcome,
    handle: Handle,
}

impl<St: Stream> fmt::Debug for Items<St>
where
    St::Item: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("exhausted", &self.upstream.is_exhausted())
            .field("results", &self.results.len())
            .finish_non_exhaustive()
    }
}

impl<St: Stream> Items<St>
where
    St::Item: Future,
{
    pub(super) fn new(upstream: St, handle: Handle) -> Self {
        Items {
            upstream: Upstream::new(upstream),
            next: None,
            results: VecDeque::new(),
            classify: |_| Outcome::Succeeded,
            handle,
        }
    }
}

impl<St: Stream> ItemSource for Items<St>
where
    St::Item: Future,
{
    type Output = <St::Item as Future>::Output;
    fn results(&mut self) -> &mut VecDeque<Self::Output> {
        &mut self.results
    }
    fn set_classify(&mut self, classify: fn(&Self::Output) -> Outcome) {
        self.classify = classify;
    }
}

impl<St: Stream> TaskFns for Items<St>
where
    St::Item: Future,
{
    type Error = Infallible;
    type Ok = Done<<St::Item as Future>::Output>;
    type Task = ItemTask<St::Item>;
    type Ready = Ready<Result<bool, Infallible>>;
    type Finished = Ready<Result<bool, Infallible>>;

    #[inline]
    fn run_task(&mut self) -> Self::Task {
        ItemTask {
            fut: self.next.take(),
        }
    }

    fn is_task_ready(&mut self) -> Self::Ready {
        // `poll_task_ready` always answers, so the driver never asks this.
        ready(Ok(self.next.is_some()))
    }

    #[inline]
    fn poll_task_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<bool, Infallible>>> {
        if self.next.is_some() {
            return Some(Poll::Ready(Ok(true)));
        }
        if buffer_full(self.results.len(), &self.handle) {
            return Some(Poll::Ready(Ok(false)));
        }
        Some(self.upstream.poll_next(cx).map(|fut| {
            self.next = fut;
            Ok(self.next.is_some())
        }))
    }

    fn is_finished(&mut self) -> Self::Finished {
        ready(Ok(self.upstream.is_exhausted() && self.next.is_none()))
    }

    #[inline]
    fn task_ended(&mut self, done: Self::Ok) -> Outcome {
        match done.0 {
            Some(result) => {
                let outcome = (self.classify)(&result);
                self.results.push_back(result);
                outcome
            }
            None => Outcome::Failed,
        }
    }
}

/// What an item task returns to the driver: the future's output (`None` only if `run_task` ran without a
/// ready item, which the driver never does).
#[derive(Debug)]
pub struct Done<T>(pub(super) Option<T>);

impl<T> From<Done<T>> for Outcome {
    fn from(_: Done<T>) -> Self {
        // `task_ended` classifies results; this conversion is the trait's fallback only.
        Outcome::Succeeded
    }
}

pin_project_lite::pin_project! {
    /// One item's future as a pool task.
    #[derive(Debug)]
    pub struct ItemTask<F> {
        #[pin]
        pub(super) fut: Option<F>,
    }
}

impl<F: Future> Future for ItemTask<F> {
    type Output = Result<Done<F::Output>, Infallible>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().fut.as_pin_mut() {
            Some(fut) => fut.poll(cx).map(|out| Ok(Done(Some(out)))),
            None => Poll::Ready(Ok(Done(None))),
        }
    }
}
