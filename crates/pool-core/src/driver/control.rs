//! [`Handle`]: cross-thread control of a pool (pause, resume, abort, notify, setters) and its published
//! counters, through atomics and wait queues only, so no task start or finish takes a lock.

use alloc::sync::Arc;

use crate::config::ConfigError;
use crate::pool::{Pool, RunError};
use crate::scale::ScalingPolicy;
#[cfg(feature = "std")]
use crate::status::SystemInfo;
use crate::sync::{AtomicBool, AtomicUsize, AtomicWaker, Notify, Ordering, raise};

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) waker: AtomicWaker,
    /// The active run's number, or 0 when none is active. Numbering runs lets an abort name the run it is
    /// meant for, so it can never be lost in a race with a run's start nor leak into the next run.
    pub(super) running: AtomicUsize,
    /// Run numbers handed out so far.
    pub(super) runs: AtomicUsize,
    pub(super) paused: AtomicBool,
    /// The number of the run an abort was requested for (0: none).
    pub(super) abort: AtomicUsize,
    pub(super) slot_woken: AtomicBool,
    /// Set by every handle request (pause, resume, setters, abort), so the driver's per-iteration check is
    /// one load when nothing changed.
    pub(super) dirty: AtomicBool,
    pub(super) set_min: AtomicUsize,
    pub(super) set_max: AtomicUsize,
    pub(super) set_desired: AtomicUsize,
    pub(super) current: AtomicUsize,
    pub(super) desired: AtomicUsize,
    pub(super) min: AtomicUsize,
    pub(super) max: AtomicUsize,
    /// Throttles reported through [`Handle::report_throttle`] since the driver last looked: without a
    /// retry-after, with one, and the longest retry-after among them in milliseconds.
    pub(super) throttles: AtomicUsize,
    /// The active or last run's task counts by outcome, as of the driver's last poll.
    pub(super) succeeded: AtomicUsize,
    pub(super) throttled: AtomicUsize,
    pub(super) failed: AtomicUsize,
    pub(super) timed_throttles: AtomicUsize,
    pub(super) retry_after_ms: AtomicUsize,
    pub(super) drained: Notify,
    pub(super) ended: Notify,
    /// The latest current and historical verdicts, refreshed at every sensor sample (once a second by
    /// default), so handles can show them without touching the machine.
    #[cfg(feature = "std")]
    pub(super) info: std::sync::Mutex<Option<(SystemInfo, SystemInfo)>>,
}

/// A run's tasks by how they ended, as a [`Handle`] shows them while the run goes on. The counts wrap past
/// `usize::MAX`; the run's [`RunReport`](crate::RunReport) has the exact `u64`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Tasks that succeeded.
    pub succeeded: usize,
    /// Tasks that ended throttled.
    pub throttled: usize,
    /// Tasks that failed: an error, a panic, or `Outcome::Failed`.
    pub failed: usize,
}

/// A cloneable, thread-safe handle to a pool: pause, resume, abort, notify, setters and counters, usable
/// from inside tasks and from other threads.
///
/// # Examples
///
/// A task that lowers the ceiling and then pauses the pool, in virtual time:
///
/// ```
/// use core::time::Duration;
/// use std::cell::Cell;
/// use pool_core::testing::Sim;
/// use pool_core::{task_fns, ConcurrencySettings, Handle, InPlace, Pool, PoolConfig, Run};
///
/// let sim = Sim::new();
/// let config = PoolConfig::default().with_concurrency(ConcurrencySettings::new(1, 8, 8));
/// let mut pool = Pool::new(config).unwrap();
/// let handle = Handle::new(&pool);
/// let started = Cell::new(0);
/// let mut fns = task_fns(
///     || {
///         started.set(started.get() + 1);
///         if started.get() == 20 {
///             handle.set_max_concurrency(2).unwrap();
///             handle.pause();
///         }
///         let slept = sim.sleep(Duration::from_millis(10));
///         async move { slept.await; Ok::<(), ()>(()) }
///     },
///     || async { Ok(true) },
///     || async { Ok(false) },
/// );
/// let run = Run::new(&mut pool, &handle, &mut fns, sim.runtime(), InPlace, (), ()).unwrap();
/// let stop = async {
///     sim.sleep(Duration::from_secs(1)).await;
///     // Paused since the 20th start; a request from outside ends the run.
///     assert!(handle.is_paused());
///     assert_eq!(handle.max_concurrency(), 2);
///     handle.abort().await.unwrap();
/// };
/// let (report, ()) = sim.block_on(futures_lite::future::zip(run, stop)).unwrap();
/// let report = report.unwrap();
/// assert!(report.aborted);
/// assert_eq!(report.started, 20);
/// ```
#[derive(Clone, Debug)]
pub struct Handle {
    pub(super) shared: Arc<Shared>,
}

/// Which concurrency setter a call was, for [`Handle::supersede`].
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Setter {
    Desired,
    Min,
    Max,
}

impl Handle {
    /// A handle for a pool built with these bounds.
    pub fn new<P: ScalingPolicy>(pool: &Pool<P>) -> Self {
        let shared = Shared {
            waker: AtomicWaker::new(),
            running: AtomicUsize::new(0),
            runs: AtomicUsize::new(0),
            paused: AtomicBool::new(pool.is_paused()),
            abort: AtomicUsize::new(0),
            slot_woken: AtomicBool::new(false),
            dirty: AtomicBool::new(true),
            set_min: AtomicUsize::new(0),
            set_max: AtomicUsize::new(0),
            set_desired: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
            desired: AtomicUsize::new(pool.desired_concurrency()),
            min: AtomicUsize::new(pool.min_concurrency()),
            max: AtomicUsize::new(pool.max_concurrency()),
            throttles: AtomicUsize::new(0),
            succeeded: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            timed_throttles: AtomicUsize::new(0),
            retry_after_ms: AtomicUsize::new(0),
            drained: Notify::new(),
            ended: Notify::new(),
            #[cfg(feature = "std")]
            info: std::sync::Mutex::new(None),
        };
        Handle {
            shared: Arc::new(shared),
        }
    }

    /// Tasks running now (0 outside a run).
    pub fn current_concurrency(&self) -> usize {
        self.shared.current.load(Ordering::Acquire)
    }
    /// Desired concurrency, as of the driver's last poll.
    pub fn desired_concurrency(&self) -> usize {
        self.shared.desired.load(Ordering::Acquire)
    }
    /// The floor, as of the driver's last poll.
    pub fn min_concurrency(&self) -> usize {
        self.shared.min.load(Ordering::Acquire)
    }
    /// The ceiling, as of the driver's last poll.
    pub fn max_concurrency(&self) -> usize {
        self.shared.max.load(Ordering::Acquire)
    }
    /// The active or last run's tasks by how they ended, as of the driver's last poll.
    pub fn counts(&self) -> TaskCounts {
        let sh = &self.shared;
        TaskCounts {
            succeeded: sh.succeeded.load(Ordering::Acquire),
            throttled: sh.throttled.load(Ordering::Acquire),
            failed: sh.failed.load(Ordering::Acquire),
        }
    }
    /// Whether a run is active.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire) != 0
    }
    /// Whether the pool is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::Acquire)
    }

    /// The verdicts over the current window (gating starts) as of the last sensor sample of the active or
    /// last run; `None` before the first run.
    #[cfg(feature = "std")]
    pub fn current_system_info(&self) -> Option<SystemInfo> {
        self.info().map(|i| i.0)
    }

    /// The verdicts over the whole history (driving autoscaling) as of the last sensor sample.
    #[cfg(feature = "std")]
    pub fn historical_system_info(&self) -> Option<SystemInfo> {
        self.info().map(|i| i.1)
    }

    #[cfg(feature = "std")]
    fn info(&self) -> Option<(SystemInfo, SystemInfo)> {
        // A panic while holding this lock cannot leave a half-written pair: the value is replaced whole.
        self.shared
            .info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Copies the machine's counters into the handle, for setters applied while no run is active.
    pub fn sync_from<P: ScalingPolicy>(&self, pool: &Pool<P>) {
        let sh = &self.shared;
        sh.desired
            .store(pool.desired_concurrency(), Ordering::Release);
        sh.min.store(pool.min_concurrency(), Ordering::Release);
        sh.max.store(pool.max_concurrency(), Ordering::Release);
    }

    /// Stops new starts; running tasks go on. Takes effect at the driver's next poll, which this triggers.
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Lets the pool start tasks again, at once.
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Reports that the service behind a task throttled it (an HTTP 429 or 503), for code that cannot return
    /// [`Outcome::Throttled`](crate::Outcome::Throttled) from the task itself, such as a middleware or a
    /// callback. It has the same effect on starts and on the client signal as a task ending throttled, and is
    /// counted in [`RunReport::throttles_reported`](crate::RunReport::throttles_reported); the task itself ends
    /// however it returns. Outside a run it does nothing.
    pub fn report_throttle(&self, retry_after: Option<core::time::Duration>) {
        if !self.is_running() {
            return;
        }
        match retry_after {
            Some(wait) => {
                let ms = usize::try_from(wait.as_millis()).unwrap_or(usize::MAX);
                self.shared.retry_after_ms.fetch_max(ms, Ordering::AcqRel);
                self.shared.timed_throttles.fetch_add(1, Ordering::AcqRel);
            }
            None => {
                self.shared.throttles.fetch_add(1, Ordering::AcqRel);
            }
        }
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Wakes the driver so it asks `is_task_ready` again now, for example after new work was queued.
    pub fn notify(&self) {
        self.shared.waker.wake();
    }

    /// Sets desired concurrency; the driver clamps it into `[min, max]`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_desired_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::MinTooSmall);
        }
        self.request(&self.shared.set_desired, n);
        Ok(())
    }

    /// Sets the floor.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0; [`ConfigError::MinAboveMax`] above the ceiling in force.
    pub fn set_min_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::MinTooSmall);
        }
        let max = self.max_concurrency();
        if n > max {
            return Err(ConfigError::MinAboveMax { min: n, max });
        }
        self.request(&self.shared.set_min, n);
        Ok(())
    }

    /// Sets the ceiling; desired and min follow it down.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MinTooSmall`] for 0.
    pub fn set_max_concurrency(&self, n: usize) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::MinTooSmall);
        }
        self.request(&self.shared.set_max, n);
        Ok(())
    }

    /// A setter applied directly to an idle pool supersedes the same setter requested earlier through a
    /// handle, which would otherwise be applied when the next run starts: the later call wins, whichever way
    /// each was made.
    #[cfg(feature = "std")]
    pub(crate) fn supersede(&self, setter: Setter) {
        let slot = match setter {
            Setter::Desired => &self.shared.set_desired,
            Setter::Min => &self.shared.set_min,
            Setter::Max => &self.shared.set_max,
        };
        slot.store(0, Ordering::Release);
    }

    fn request(&self, slot: &AtomicUsize, n: usize) {
        slot.store(n, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
    }

    /// Asks the active run to abort and returns at once; the run cancels its tasks and ends on its next poll.
    ///
    /// This is the form for code the run's end waits on: a consumer of an autoscaled stream (which drives
    /// the run by polling it) or a task of the run itself. Awaiting [`Handle::abort`] there would wait for
    /// itself.
    ///
    /// # Errors
    ///
    /// [`RunError::NotRunning`] when no run is active.
    pub fn request_abort(&self) -> Result<(), RunError> {
        self.request_abort_of_run().map(drop)
    }

    /// Marks the active run aborted and wakes it; returns its number.
    fn request_abort_of_run(&self) -> Result<usize, RunError> {
        // One load both checks that a run is active and names it.
        let run = self.shared.running.load(Ordering::Acquire);
        if run == 0 {
            return Err(RunError::NotRunning);
        }
        self.shared.abort.store(run, Ordering::Release);
        raise(&self.shared.dirty);
        self.shared.waker.wake();
        Ok(run)
    }

    /// Aborts the active run and waits until it has cancelled its tasks and ended. The run then returns
    /// `Ok` with `aborted` set in its report.
    ///
    /// # Errors
    ///
    /// [`RunError::NotRunning`] when no run is active.
    pub async fn abort(&self) -> Result<(), RunError> {
        let run = self.request_abort_of_run()?;
        // Wait for *that* run to end; a run started after it is not this abort's business.
        let ended = || self.shared.running.load(Ordering::Acquire) != run;
        loop {
            if ended() {
                return Ok(());
            }
            let listener = self.shared.ended.listen();
            if ended() {
                return Ok(());
            }
            listener.await;
        }
    }

    /// Waits until no task is running (at once if none is). With [`Handle::pause`] first, this is "pause and
    /// drain"; adapters add a timeout.
    pub async fn drained(&self) {
        loop {
            if self.current_concurrency() == 0 {
                return;
            }
            let listener = self.shared.drained.listen();
            if self.current_concurrency() == 0 {
                return;
            }
            listener.await;
        }
    }
}
