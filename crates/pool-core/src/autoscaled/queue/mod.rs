//! [`CrawlQueue`]: a work queue that a pool drains and its tasks fill (discovered links), with
//! de-duplication by key, per-item retries and holds, and "finished" meaning empty with nothing in flight.
//!
//! The queue is two halves. What anyone may touch (the [`CrawlQueue`] handle, a task's [`Ctx`]) is an inbox:
//! a lock-free queue plus the waker of the crawl that drains it, so a push from any thread wakes the crawl
//! (automatic notify). Everything else (the ready items, the held ones, the seen keys, the items in flight)
//! belongs to the crawl's driver and is touched only there (`fns.rs`), so it needs no lock.

mod fns;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::time::Duration;
use std::sync::Mutex;

use atomic_waker::AtomicWaker;
use concurrent_queue::ConcurrentQueue;

use self::fns::QueueFns;
use super::Launcher;
use super::builder::{Builder, Parts};
use crate::driver::{Handle, PoolError, Run};
use crate::outcome::Outcome;
use crate::pool::RunReport;
use crate::seams::{Launch, Runtime, Sensors, Spawn};

/// How a [`CrawlQueue`] retries an item whose attempt did not succeed.
///
/// An attempt that returned `Err`, [`Outcome::Failed`], or was cut off by the pool's task timeout is retried
/// after a backoff of `backoff × 2^(retry − 1)`, capped at `max_backoff`, while other items go on. A
/// throttled attempt ([`Outcome::Throttled`]) is retried after its retry-after when it has one, else at once,
/// since the pool itself spaces starts after a throttle. After `max_retries` retries the item is given up
/// and reported (see [`CrawlReport::failed`]).
///
/// Crawlee's `BasicCrawler` retries a failed request at once, up to `maxRequestRetries` (3) times; the
/// backoff is ours, so that a page that failed (a timeout, a reset) is not asked for again in the same
/// instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Retries after the first attempt (Crawlee's `maxRequestRetries`); 0 gives up at the first failure.
    pub max_retries: u32,
    /// The wait before the first retry of a failed attempt; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// End the crawl with the first `Err` a task returns, as the seed's pool does, instead of retrying it.
    pub fail_fast: bool,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            fail_fast: false,
        }
    }
}

impl RetrySettings {
    /// With `n` retries after the first attempt.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// With a first backoff of `first`, doubling up to `max`.
    #[must_use]
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }
    /// With (`true`) or without fail-fast.
    #[must_use]
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }
}

/// What anyone may push to: the items, the attempts that ended without reporting (a timed-out task's), and
/// the crawl's waker.
struct Inbox<T> {
    items: ConcurrentQueue<T>,
    /// Slots of in-flight items whose task was dropped before it ended: a timeout, an abort.
    abandoned: ConcurrentQueue<u32>,
    waker: AtomicWaker,
    /// The handle of the crawl running on this queue, for [`CrawlQueue::handle`]; set and cleared once per
    /// crawl, never on the per-item path.
    crawl: Mutex<Option<Handle>>,
}

/// Publishes a crawl's handle on its queue for the length of the crawl, however it ends.
struct Running<'a, T>(&'a Inbox<T>);

impl<'a, T> Running<'a, T> {
    fn new(inbox: &'a Inbox<T>, handle: &Handle) -> Self {
        *inbox.crawl.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.clone());
        Running(inbox)
    }
}

impl<T> Drop for Running<'_, T> {
    fn drop(&mut self) {
        *self.0.crawl.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl<T> Inbox<T> {
    fn push(&self, item: T) {
        // An unbounded queue is never full; it is closed by nobody.
        let _ = self.items.push(item);
        self.waker.wake();
    }
}

/// A work queue for a pool: items in, tasks run on them, tasks push more.
///
/// Cloning it is cheap and every clone is the same queue. Push before or during a [`crawl`](Self::crawl);
/// the crawl ends when the queue is empty and nothing is in flight.
///
/// # Examples
///
/// In virtual time; on a real runtime the builder is the adapter's `AutoscaledPool::builder()`:
///
/// ```
/// use core::time::Duration;
/// use pool_core::testing::Sim;
/// use pool_core::{Builder, CrawlQueue};
///
/// let sim = Sim::new();
/// // Page n links to 2n + 1 and 2n + 2; 0..100 are on the site. Each page is fetched once.
/// let queue = CrawlQueue::new().dedupe_by(|page: &u32| *page);
/// queue.push(0);
/// let crawl = queue.crawl_local(Builder::new(sim.runtime().clone(), ()), |page, ctx| {
///     let fetched = sim.sleep(Duration::from_millis(50));
///     async move {
///         fetched.await;
///         for link in [2 * page + 1, 2 * page + 2, page] {
///             if link < 100 {
///                 ctx.push(link);
///             }
///         }
///         Ok::<(), std::io::Error>(())
///     }
/// });
/// let report = sim.block_on(crawl).unwrap().unwrap();
/// assert_eq!(report.items_succeeded, 100);
/// assert!(report.duplicates >= 100);
/// ```
pub struct CrawlQueue<T, K = ()> {
    inbox: Arc<Inbox<T>>,
    key: Option<fn(&T) -> K>,
    retry: RetrySettings,
}

impl<T, K> Clone for CrawlQueue<T, K> {
    fn clone(&self) -> Self {
        CrawlQueue {
            inbox: self.inbox.clone(),
            key: self.key,
            retry: self.retry,
        }
    }
}

impl<T, K> fmt::Debug for CrawlQueue<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrawlQueue")
            .field("inbox", &self.inbox.items.len())
            .field("dedupe", &self.key.is_some())
            .field("retry", &self.retry)
            .finish()
    }
}

impl<T> Default for CrawlQueue<T, ()> {
    fn default() -> Self {
        CrawlQueue::new()
    }
}

impl<T> CrawlQueue<T, ()> {
    /// An empty queue without de-duplication, with [`RetrySettings::default`].
    pub fn new() -> Self {
        CrawlQueue {
            inbox: Arc::new(Inbox {
                items: ConcurrentQueue::unbounded(),
                abandoned: ConcurrentQueue::unbounded(),
                waker: AtomicWaker::new(),
                crawl: Mutex::new(None),
            }),
            key: None,
            retry: RetrySettings::default(),
        }
    }
}

impl<T, K> CrawlQueue<T, K> {
    /// Drops every pushed item whose key a crawl has seen before (a URL pushed by two pages is fetched
    /// once). The keys are kept for the length of one crawl; retries are not pushes and are never dropped.
    pub fn dedupe_by<K2: Hash + Eq>(self, key: fn(&T) -> K2) -> CrawlQueue<T, K2> {
        CrawlQueue {
            inbox: self.inbox,
            key: Some(key),
            retry: self.retry,
        }
    }

    /// How items are retried.
    #[must_use]
    pub fn retries(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Adds an item and wakes the crawl, from any thread.
    pub fn push(&self, item: T) {
        self.inbox.push(item);
    }

    /// Items pushed and not yet taken in by a crawl.
    pub fn pending(&self) -> usize {
        self.inbox.items.len()
    }

    /// The pool handle of the crawl running on this queue (pause, resume, abort, setters, counters), from its
    /// first poll to its end; `None` outside a crawl.
    pub fn handle(&self) -> Option<Handle> {
        self.inbox
            .crawl
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<T, K> CrawlQueue<T, K>
where
    T: Clone + Send + 'static,
    K: Hash + Eq,
{
    /// Crawls: runs `task` on each item as a task of a pool built from `builder` (on workers by default), until
    /// the queue is empty and nothing is in flight. `task` gets the item and a [`Ctx`] to push more.
    ///
    /// An attempt's `Ok(())` is a success, `Ok(Outcome)` says otherwise (throttled, failed), `Err(e)` is a
    /// failure that is retried and, after the last retry, reported with `e` (or, with
    /// [`RetrySettings::fail_fast`], ends the crawl). The item is cloned for each attempt, so an item that is
    /// costly to clone is best an `Arc`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] with the first error under fail-fast; [`PoolError::Panicked`] when a task
    /// panicked; [`PoolError::TimedOut`] when a task timed out under
    /// [`TimeoutPolicy::FailPool`](crate::TimeoutPolicy::FailPool); settings that do not validate as
    /// [`PoolError::Config`].
    pub async fn crawl<Rt, Se, F, Fut, O, E>(
        &self,
        builder: Builder<Rt, (), (), (), Se>,
        task: F,
    ) -> Result<CrawlReport<T, E>, PoolError<E>>
    where
        Rt: Runtime + Spawn + Clone,
        Se: Sensors,
        F: FnMut(T, Ctx<T>) -> Fut,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: Into<Outcome> + Send + 'static,
        E: Send + 'static,
    {
        self.crawl_reporting(builder, task, |_| {}).await
    }

    /// [`crawl`](Self::crawl), calling `on_failed` with each item as it is given up.
    ///
    /// # Errors
    ///
    /// As [`crawl`](Self::crawl).
    pub async fn crawl_reporting<Rt, Se, F, Fut, O, E>(
        &self,
        builder: Builder<Rt, (), (), (), Se>,
        task: F,
        on_failed: impl FnMut(&FailedItem<T, E>),
    ) -> Result<CrawlReport<T, E>, PoolError<E>>
    where
        Rt: Runtime + Spawn + Clone,
        Se: Sensors,
        F: FnMut(T, Ctx<T>) -> Fut,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: Into<Outcome> + Send + 'static,
        E: Send + 'static,
    {
        self.crawl_with(builder, task, on_failed, |parts| {
            Launcher::for_mode(parts.mode, parts.runtime.clone())
        })
        .await
    }

    /// [`crawl`](Self::crawl) with every task polled in place, whatever the builder's task mode, so `task`'s
    /// futures need not be `Send` or `'static`.
    ///
    /// # Errors
    ///
    /// As [`crawl`](Self::crawl).
    pub async fn crawl_local<Rt, Se, F, Fut, O, E>(
        &self,
        builder: Builder<Rt, (), (), (), Se>,
        task: F,
    ) -> Result<CrawlReport<T, E>, PoolError<E>>
    where
        Rt: Runtime + Clone,
        Se: Sensors,
        F: FnMut(T, Ctx<T>) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        O: Into<Outcome>,
    {
        self.crawl_with(builder, task, |_| {}, |_| crate::driver::InPlace)
            .await
    }

    /// One crawl, its tasks started by the launcher `launcher` picks from the builder's parts.
    async fn crawl_with<Rt, Se, F, Fut, O, E, L>(
        &self,
        builder: Builder<Rt, (), (), (), Se>,
        task: F,
        on_failed: impl FnMut(&FailedItem<T, E>),
        launcher: impl FnOnce(&Parts<Rt, Se>) -> L,
    ) -> Result<CrawlReport<T, E>, PoolError<E>>
    where
        Rt: Runtime + Clone,
        Se: Sensors,
        F: FnMut(T, Ctx<T>) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        O: Into<Outcome>,
        L: Launch<fns::QueueTask<Fut, T>>,
    {
        let (parts, _) = builder.into_parts().map_err(PoolError::Config)?;
        let launcher = launcher(&parts);
        let (mut pool, handle, rt) = (parts.pool, parts.handle, parts.runtime);
        let (sensors, mut sink, budget) = (parts.sensors, parts.sink, parts.budget);
        let mut fns = QueueFns::new(self, task, on_failed, handle.clone(), rt.clone());
        let _running = Running::new(&self.inbox, &handle);
        let mut run = Run::new(
            &mut pool, &handle, &mut fns, &rt, launcher, sensors, &mut *sink,
        )?;
        if let Some(member) = &budget {
            run = run.with_budget(member);
        }
        let run = rt.drive(run).await?;
        Ok(fns.into_report(run))
    }
}

/// What a task gets besides its item: the queue, to push what it found, and the crawl's pool.
pub struct Ctx<T> {
    inbox: Arc<Inbox<T>>,
    handle: Handle,
    attempt: u32,
}

impl<T> fmt::Debug for Ctx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<T> Ctx<T> {
    /// Adds an item to the queue (de-duplicated if the queue is), waking the crawl.
    pub fn push(&self, item: T) {
        self.inbox.push(item);
    }
    /// The crawl's pool: pause, resume, abort, setters, [`Handle::report_throttle`].
    pub fn pool(&self) -> &Handle {
        &self.handle
    }
    /// Which attempt at this item this is: 1 for the first.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// An item the queue gave up on after its last retry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedItem<T, E> {
    /// The item.
    pub item: T,
    /// How many attempts it had.
    pub attempts: u32,
    /// The last attempt's error, when it returned `Err`; `None` for [`Outcome::Failed`], a throttle or a
    /// timeout.
    pub error: Option<E>,
}

/// How a crawl went: the pool's report (attempts), and what became of the items.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CrawlReport<T, E> {
    /// The pool's report: every attempt is a task there, so its `succeeded`, `throttled` and `failed` count
    /// attempts.
    pub run: RunReport,
    /// Items that succeeded.
    pub items_succeeded: u64,
    /// Retries made (attempts after an item's first).
    pub retries: u64,
    /// Pushes dropped because their key had been seen.
    pub duplicates: u64,
    /// Items given up after their last retry, in the order they were given up.
    pub failed: Vec<FailedItem<T, E>>,
}
