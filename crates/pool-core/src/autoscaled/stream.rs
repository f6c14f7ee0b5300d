//! [`AutoscaledStreamExt`]: a stream of futures run with autoscaled concurrency, results out in completion
//! order; `buffer_unordered` whose limit the pool sets.
//!
//! The stream owns a [`Driver`] whose task functions are the upstream stream: readiness polls it for the
//! next future (`TaskFns::poll_task_ready`), and each task's output is kept for the consumer as it ends
//! (`TaskFns::task_ended`). The driver is polled only from the consumer's `poll_next`, so a consumer that
//! stops polling stops new starts, and dropping the stream drops the driver, which cancels what runs.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::convert::Infallible;
use core::fmt;
use core::future::{Future, Ready, ready};
use core::pin::{Pin, pin};
use core::task::{Context, Poll};

use futures_lite::Stream;

use super::builder::{Builder, Parts};
use super::{BoxPolicy, Launcher, TaskMode};
use crate::config::ConfigError;
use crate::driver::{Driver, Handle, InPlace, Owned, PoolError};
use crate::outcome::Outcome;
use crate::pool::{Pool, RunReport};
use crate::seams::{EventSink, Runtime, Sensors, Spawn, TaskFns};

/// Runs a stream's futures with autoscaled concurrency: `buffer_unordered` whose limit the pool sets.
///
/// Each future is one task of an [`AutoscaledPool`](super::AutoscaledPool) built from `builder`, with its
/// settings, policy, sensors and event sink; results come out in completion order.
///
/// - Backpressure: the pool starts futures only while the stream is polled, and holds none back beyond
///   the running tasks: finished results waiting for the consumer count against the desired concurrency.
/// - Cancellation: dropping the stream cancels every running future.
/// - Panics: a future's panic ends the stream and is resumed in the consumer, as `buffer_unordered` does.
/// - Outcomes: every result is a success unless [`Autoscaled::outcomes`] classifies it (a throttled result
///   makes the pool back off); the result is yielded either way. A future cannot be run twice, so
///   retrying an item is the caller's (or the crawl queue's) job.
///
/// # Examples
///
/// In virtual time; on a real runtime the builder is the adapter's `AutoscaledPool::builder()`:
///
/// ```
/// use core::time::Duration;
/// use futures_lite::{StreamExt, stream};
/// use pool_core::testing::Sim;
/// use pool_core::{AutoscaledStreamExt, Builder, ConcurrencySettings};
///
/// let sim = Sim::new();
/// let builder = Builder::new(sim.runtime().clone(), ())
///     .concurrency_settings(ConcurrencySettings::default().with_max(8));
/// let pages = stream::iter(1..=20u64).map(|n| {
///     let fetched = sim.sleep(Duration::from_millis(100));
///     async move { fetched.await; n * 10 }
/// });
/// let mut results = pages.autoscaled_local(builder).unwrap();
/// let sum = sim.block_on(async { let mut s = 0; while let Some(r) = results.next().await { s += r; } s });
/// assert_eq!(sum.unwrap(), 2100);
/// assert_eq!(results.report().unwrap().as_ref().unwrap().succeeded, 20);
/// ```
pub trait AutoscaledStreamExt: Stream + Sized {
    /// Runs each future as a task of a pool built from `builder`, in the builder's task mode (spawned by
    /// default, so the futures run on the runtime's worker threads).
    ///
    /// # Errors
    ///
    /// The first invalid setting, as [`Builder::build`] reports it.
    fn autoscaled<Rt, Se>(
        self,
        builder: Builder<Rt, (), (), (), Se>,
    ) -> Result<Autoscaled<Self, Rt, Se, Launcher<Rt>>, ConfigError>
    where
        Self::Item: Future + Send + 'static,
        <Self::Item as Future>::Output: Send + 'static,
        Rt: Runtime + Spawn + Clone,
        Se: Sensors,
    {
        let (parts, _) = builder.into_parts()?;
        let launcher = match parts.mode {
            TaskMode::Spawned => Launcher::Spawned(parts.runtime.clone()),
            TaskMode::InPlace => Launcher::InPlace,
        };
        Ok(Autoscaled::new(self, parts, launcher))
    }

    /// Runs each future in place, polled by the stream itself, whatever the builder's task mode: the
    /// futures need not be `Send` or `'static`, so they may borrow from the caller and use `Rc`.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as [`Builder::build`] reports it.
    fn autoscaled_local<Rt, Se>(
        self,
        builder: Builder<Rt, (), (), (), Se>,
    ) -> Result<Autoscaled<Self, Rt, Se, InPlace>, ConfigError>
    where
        Self::Item: Future,
        Rt: Runtime + Clone,
        Se: Sensors,
    {
        let (parts, _) = builder.into_parts()?;
        Ok(Autoscaled::new(self, parts, InPlace))
    }
}

impl<St: Stream> AutoscaledStreamExt for St {}

/// The stream [`AutoscaledStreamExt`] returns: the futures' outputs, in completion order.
pub struct Autoscaled<St, Rt, Se, L>
where
    St: Stream,
    St::Item: Future,
    Rt: Runtime + Clone,
    L: crate::seams::Launch<ItemTask<St::Item>>,
{
    driver: ItemDriver<St, Rt, Se, L>,
    /// The runtime again, outside the driver, to wrap each poll of it ([`Runtime::drive`]).
    rt: Rt,
    handle: Handle,
    end: Option<Result<RunReport, PoolError<Infallible>>>,
}

impl<St, Rt, Se, L> fmt::Debug for Autoscaled<St, Rt, Se, L>
where
    St: Stream,
    St::Item: Future,
    Rt: Runtime + Clone,
    L: crate::seams::Launch<ItemTask<St::Item>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Autoscaled")
            .field("handle", &self.handle)
            .field("ended", &self.end.is_some())
            .finish_non_exhaustive()
    }
}

impl<St, Rt, Se, L> Autoscaled<St, Rt, Se, L>
where
    St: Stream,
    St::Item: Future,
    Rt: Runtime + Clone,
    L: crate::seams::Launch<ItemTask<St::Item>>,
    Se: Sensors,
{
    fn new(upstream: St, parts: Parts<Rt, Se>, launcher: L) -> Self {
        let handle = parts.handle;
        let items = Items {
            upstream: Box::pin(upstream),
            next: None,
            exhausted: false,
            results: VecDeque::new(),
            classify: |_| Outcome::Succeeded,
            handle: handle.clone(),
        };
        let rt = parts.runtime.clone();
        let driver = Driver::new(
            Owned(parts.pool),
            &handle,
            Owned(items),
            Owned(parts.runtime),
            launcher,
            parts.sensors,
            parts.sink,
        );
        match driver {
            Ok(driver) => Autoscaled {
                driver,
                rt,
                handle,
                end: None,
            },
            // A fresh machine with a fresh handle is never already running.
            Err(_) => unreachable!("a new pool is not running"),
        }
    }

    /// Says how each result ended for the pool: a throttled result makes it back off, a failed one counts in
    /// [`RunReport::failed`]. The default counts every result as a success.
    ///
    /// ```
    /// # use futures_lite::{StreamExt, stream};
    /// # use pool_core::testing::Sim;
    /// # use pool_core::{AutoscaledStreamExt, Builder, Outcome};
    /// # let sim = Sim::new();
    /// let statuses = stream::iter([200u16, 429, 200]).map(|s| async move { s });
    /// let results = statuses
    ///     .autoscaled_local(Builder::new(sim.runtime().clone(), ()))
    ///     .unwrap()
    ///     .outcomes(|status| if *status == 429 { Outcome::throttled() } else { Outcome::Succeeded });
    /// # let _ = results;
    /// ```
    #[must_use]
    pub fn outcomes(mut self, classify: fn(&<St::Item as Future>::Output) -> Outcome) -> Self {
        self.driver.task_fns().classify = classify;
        self
    }

    /// A handle to the stream's pool: pause, resume, setters, counters, and
    /// [`request_abort`](Handle::request_abort), after which the stream yields what finished and ends.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// How the run ended, once the stream has: its report, or what cut it short (a task timeout under
    /// [`TimeoutPolicy::Fail`](crate::TimeoutPolicy::FailPool)). `None` while it runs.
    pub fn report(&self) -> Option<&Result<RunReport, PoolError<Infallible>>> {
        self.end.as_ref()
    }
}

impl<St, Rt, Se, L> Stream for Autoscaled<St, Rt, Se, L>
where
    St: Stream,
    St::Item: Future,
    Rt: Runtime + Clone,
    L: crate::seams::Launch<ItemTask<St::Item>>,
    Se: Sensors,
{
    type Item = <St::Item as Future>::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin`: the upstream is boxed, and the driver pins its own state.
        let this = Pin::into_inner(self);
        // A result already out is handed over without a trip through the driver: the driver runs once per
        // batch of results, not once per result. The tasks those results ran in have left their slots, so
        // the pool already counts the room they made; it fills it on the poll that finds the buffer empty.
        if let Some(item) = this.driver.task_fns().results.pop_front() {
            return Poll::Ready(Some(item));
        }
        // Each poll goes through the runtime's wrapper, as `AutoscaledPool::run` does for its whole run: on
        // tokio it lifts the cooperative budget, which the driver's own bounded loop replaces.
        if this.end.is_none()
            && let Poll::Ready(end) = pin!(this.rt.drive(&mut this.driver)).poll(cx)
        {
            if let Err(PoolError::Panicked(p)) = &end {
                // As `buffer_unordered` does: a panicking future panics the consumer.
                std::panic::resume_unwind(Box::new(p.message.clone()));
            }
            this.end = Some(end);
        }
        match this.driver.task_fns().results.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            None if this.end.is_some() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

// The upstream is boxed and the driver pins its own state, so the stream may move between polls.
impl<St, Rt, Se, L> Unpin for Autoscaled<St, Rt, Se, L>
where
    St: Stream,
    St::Item: Future,
    Rt: Runtime + Clone,
    L: crate::seams::Launch<ItemTask<St::Item>>,
{
}

/// The driver an [`Autoscaled`] owns.
type ItemDriver<St, Rt, Se, L> =
    Driver<Owned<Pool<BoxPolicy>>, Owned<Items<St>>, Owned<Rt>, L, Se, Box<dyn EventSink + Send>>;

/// The upstream as the driver's task functions.
struct Items<St: Stream>
where
    St::Item: Future,
{
    upstream: Pin<Box<St>>,
    /// The future readiness took from the upstream, for `run_task`.
    next: Option<St::Item>,
    exhausted: bool,
    /// Results the consumer has not taken yet.
    results: VecDeque<<St::Item as Future>::Output>,
    classify: fn(&<St::Item as Future>::Output) -> Outcome,
    handle: Handle,
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
        // Results the consumer has not taken hold slots: the stream buffers no more than the pool runs.
        if self.exhausted || self.results.len() >= self.handle.desired_concurrency().max(1) {
            return Some(Poll::Ready(Ok(false)));
        }
        Some(match self.upstream.as_mut().poll_next(cx) {
            Poll::Ready(Some(fut)) => {
                self.next = Some(fut);
                Poll::Ready(Ok(true))
            }
            Poll::Ready(None) => {
                self.exhausted = true;
                Poll::Ready(Ok(false))
            }
            Poll::Pending => Poll::Pending,
        })
    }

    fn is_finished(&mut self) -> Self::Finished {
        ready(Ok(self.exhausted && self.next.is_none()))
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
pub struct Done<T>(Option<T>);

impl<T> From<Done<T>> for Outcome {
    fn from(_: Done<T>) -> Self {
        // `Items::task_ended` classifies results; this conversion is the trait's fallback only.
        Outcome::Succeeded
    }
}

pin_project_lite::pin_project! {
    /// One item's future as a pool task.
    #[derive(Debug)]
    pub struct ItemTask<F> {
        #[pin]
        fut: Option<F>,
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
