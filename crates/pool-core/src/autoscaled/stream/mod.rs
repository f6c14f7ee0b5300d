//! [`AutoscaledStreamExt`]: a stream of futures run with autoscaled concurrency, results out in completion
//! order; `buffer_unordered` whose limit the pool sets.
//!
//! The stream owns a [`Driver`] whose task functions are the upstream stream: readiness polls it for the
//! next future (`TaskFns::poll_task_ready`), and each task's output is kept for the consumer as it ends
//! (`TaskFns::task_ended`). The driver is polled only from the consumer's `poll_next`, so a consumer that
//! stops polling stops new starts, and dropping the stream drops the driver, which cancels what runs.
//!
//! `items.rs` holds the task functions of a stream of futures ([`Items`]); `retry.rs` those of a stream of
//! items whose futures a closure makes, so an attempt can be made again ([`RetryItems`]).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::pin::{Pin, pin};
use core::task::{Context, Poll};

use futures_lite::Stream;

mod items;
mod retry;

pub use items::{Done, ItemTask, Items};
pub use retry::{RetryItems, RetryTask};

use super::builder::{Builder, Parts};
use super::{BoxPolicy, Launcher};
use crate::config::ConfigError;
use crate::driver::{Driver, Handle, InPlace, Owned, PoolError};
use crate::outcome::Outcome;
use crate::pool::{Pool, RunReport};
use crate::seams::{EventSink, Launch, Runtime, Sensors, Spawn, TaskFns};

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
///   [`autoscaled_retrying`](AutoscaledStreamExt::autoscaled_retrying) takes items and a closure that
///   makes each attempt's future, and retries throttled and failed attempts up to a limit.
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
    /// Runs each future as a task of a pool built from `builder`, in the builder's task mode (on workers
    /// by default, so the futures run on the runtime's worker threads).
    ///
    /// # Errors
    ///
    /// The first invalid setting, as [`Builder::build`] reports it.
    fn autoscaled<Rt, Se>(
        self,
        builder: Builder<Rt, (), (), (), Se>,
    ) -> Result<Autoscaled<Items<Self>, Rt, Se, Launcher<Rt>>, ConfigError>
    where
        Self::Item: Future + Send + 'static,
        <Self::Item as Future>::Output: Send + 'static,
        Rt: Runtime + Spawn + Clone,
        Se: Sensors,
    {
        let (parts, _) = builder.into_parts()?;
        let launcher = Launcher::for_mode(parts.mode, parts.runtime.clone());
        let items = Items::new(self, parts.handle.clone());
        Ok(Autoscaled::new(items, parts, launcher))
    }

    /// Makes each item's future with `make` and runs it as a task of a pool built from `builder`, retrying an
    /// attempt whose result `classify` calls throttled or failed up to `max_retries` times; yields each
    /// item's last result, in completion order. The item is cloned for each attempt.
    ///
    /// A retry waits in line before new items, and after a throttle the pool's backoff spaces it (and every
    /// other start). An attempt the pool's task timeout cuts off is not retried and yields nothing; the
    /// crawl queue ([`CrawlQueue`](crate::CrawlQueue)) retries those too, with backoff and retry-after holds.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as [`Builder::build`] reports it.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{StreamExt, stream};
    /// use pool_core::testing::Sim;
    /// use pool_core::{AutoscaledStreamExt, Builder, Outcome};
    /// use std::cell::Cell;
    ///
    /// let sim = Sim::new();
    /// let calls = Cell::new(0);
    /// // Every item is throttled (429) on its first attempt and served on its second.
    /// let statuses = stream::iter(1..=5u32)
    ///     .autoscaled_retrying(
    ///         Builder::new(&sim, ()),
    ///         2,
    ///         |status: &u16| if *status == 429 { Outcome::throttled() } else { Outcome::Succeeded },
    ///         |n| {
    ///             calls.set(calls.get() + 1);
    ///             let status = if calls.get() <= 5 { 429 } else { 200 };
    ///             async move { let _ = n; status }
    ///         },
    ///     )
    ///     .unwrap();
    /// let all: Vec<u16> = sim.block_on(statuses.collect()).unwrap();
    /// assert_eq!(all, vec![200; 5]);
    /// assert_eq!(calls.get(), 10);
    /// ```
    fn autoscaled_retrying<Rt, Se, F, Fut>(
        self,
        builder: Builder<Rt, (), (), (), Se>,
        max_retries: u32,
        classify: fn(&Fut::Output) -> Outcome,
        make: F,
    ) -> Result<Retrying<Self, F, Fut, Rt, Se>, ConfigError>
    where
        Self::Item: Clone,
        F: FnMut(Self::Item) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
        Rt: Runtime + Spawn + Clone,
        Se: Sensors,
    {
        let (parts, _) = builder.into_parts()?;
        let launcher = Launcher::for_mode(parts.mode, parts.runtime.clone());
        let items = RetryItems::new(self, make, max_retries, classify, parts.handle.clone());
        Ok(Autoscaled::new(items, parts, launcher))
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
    ) -> Result<Autoscaled<Items<Self>, Rt, Se, InPlace>, ConfigError>
    where
        Self::Item: Future,
        Rt: Runtime + Clone,
        Se: Sensors,
    {
        let (parts, _) = builder.into_parts()?;
        let items = Items::new(self, parts.handle.clone());
        Ok(Autoscaled::new(items, parts, InPlace))
    }
}

impl<St: Stream> AutoscaledStreamExt for St {}

/// The stream [`AutoscaledStreamExt::autoscaled_retrying`] returns.
pub type Retrying<St, F, Fut, Rt, Se> = Autoscaled<RetryItems<St, F, Fut>, Rt, Se, Launcher<Rt>>;

/// What an [`Autoscaled`] stream's driver runs: its upstream as task functions that keep each result for
/// the consumer. [`Items`] and [`RetryItems`] are the two.
pub trait ItemSource: TaskFns<Error = Infallible> {
    /// What the stream yields.
    type Output;
    /// The results the consumer has not taken yet.
    fn results(&mut self) -> &mut VecDeque<Self::Output>;
    /// Sets how a result ended for the pool.
    fn set_classify(&mut self, classify: fn(&Self::Output) -> Outcome);
}

/// The stream [`AutoscaledStreamExt`] returns: the results, in completion order.
pub struct Autoscaled<Src, Rt, Se, L>
where
    Src: ItemSource,
    Rt: Runtime + Clone,
    L: Launch<Src::Task>,
{
    driver: ItemDriver<Src, Rt, Se, L>,
    /// The runtime again, outside the driver, to wrap each poll of it ([`Runtime::drive`]).
    rt: Rt,
    handle: Handle,
    end: Option<Result<RunReport, PoolError<Infallible>>>,
}

impl<Src, Rt, Se, L> fmt::Debug for Autoscaled<Src, Rt, Se, L>
where
    Src: ItemSource,
    Rt: Runtime + Clone,
    L: Launch<Src::Task>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Autoscaled")
            .field("handle", &self.handle)
            .field("ended", &self.end.is_some())
            .finish_non_exhaustive()
    }
}

impl<Src, Rt, Se, L> Autoscaled<Src, Rt, Se, L>
where
    Src: ItemSource,
    Rt: Runtime + Clone,
    L: Launch<Src::Task>,
    Se: Sensors,
{
    fn new(items: Src, parts: Parts<Rt, Se>, launcher: L) -> Self {
        let handle = parts.handle;
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
                driver: match &parts.budget {
                    Some(member) => driver.with_budget(member),
                    None => driver,
                },
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
    pub fn outcomes(mut self, classify: fn(&Src::Output) -> Outcome) -> Self {
        self.driver.task_fns().set_classify(classify);
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

impl<Src, Rt, Se, L> Stream for Autoscaled<Src, Rt, Se, L>
where
    Src: ItemSource,
    Rt: Runtime + Clone,
    L: Launch<Src::Task>,
    Se: Sensors,
{
    type Item = Src::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin`: the upstream is boxed, and the driver pins its own state.
        let this = Pin::into_inner(self);
        // A result already out is handed over without a trip through the driver: the driver runs once per
        // batch of results, not once per result. The tasks those results ran in have left their slots, so
        // the pool already counts the room they made; it fills it on the poll that finds the buffer empty.
        if let Some(item) = this.driver.task_fns().results().pop_front() {
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
        match this.driver.task_fns().results().pop_front() {
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
impl<Src, Rt, Se, L> Unpin for Autoscaled<Src, Rt, Se, L>
where
    Src: ItemSource,
    Rt: Runtime + Clone,
    L: Launch<Src::Task>,
{
}

/// The driver an [`Autoscaled`] owns.
type ItemDriver<Src, Rt, Se, L> =
    Driver<Owned<Pool<BoxPolicy>>, Owned<Src>, Owned<Rt>, L, Se, Box<dyn EventSink + Send>>;

/// The upstream both item sources poll: the stream, boxed so the source may move, and whether it has ended.
pub(crate) struct Upstream<St> {
    stream: Pin<Box<St>>,
    exhausted: bool,
}

impl<St: Stream> Upstream<St> {
    pub(crate) fn new(stream: St) -> Self {
        Upstream {
            stream: Box::pin(stream),
            exhausted: false,
        }
    }

    /// The next item, or `None` once the stream has ended (it is not polled again after that).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<St::Item>> {
        if self.exhausted {
            return Poll::Ready(None);
        }
        let next = self.stream.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            self.exhausted = true;
        }
        next
    }

    pub(crate) fn is_exhausted(&self) -> bool {
        self.exhausted
    }
}

/// Whether the results the consumer has not taken fill the pool's desired concurrency: they hold slots,
/// so the stream buffers no more than the pool runs.
pub(crate) fn buffer_full(results: usize, handle: &Handle) -> bool {
    results >= handle.desired_concurrency().max(1)
}
