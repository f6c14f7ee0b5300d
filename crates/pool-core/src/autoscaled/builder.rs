//! [`Builder`]: settings, policy, sensors, event sink, task mode and the three task functions, checked at
//! `build`.

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;
use core::time::Duration;
use std::sync::Mutex;

use crate::adaptive::AdaptivePolicy;
use crate::budget::BudgetMember;
use crate::config::{
    ConcurrencySettings, ConfigError, PoolConfig, ScalingSettings, SnapshotSettings, StatusSettings,
};
use crate::driver::Handle;
use crate::outcome::Outcome;
use crate::pool::Pool;
use crate::scale::{CrawleePolicy, ScalingPolicy};
use crate::seams::{DefaultRuntime, EventSink};
use crate::tasks::FnTasks;

use super::{AutoscaledPool, BoxPolicy, Inner, TaskMode};

impl<Rt: DefaultRuntime> AutoscaledPool<Rt, (), ()> {
    /// A builder with default settings and the runtime's default sensors.
    ///
    /// # Examples
    ///
    /// Each adapter (`pool-tokio`, `pool-smol`, `pool-async-std`) exports this type for its runtime, so on
    /// tokio it is `pool_tokio::AutoscaledPool::builder()`. The same builder on the virtual-time harness's
    /// runtime, which has no spawner, runs in place:
    ///
    /// ```
    /// use std::cell::Cell;
    /// use pool_core::testing::Sim;
    /// use pool_core::{Builder, ConcurrencySettings};
    ///
    /// let sim = Sim::new();
    /// let left = Cell::new(100);
    /// let pool = Builder::new(sim.runtime().clone(), ())
    ///     .concurrency_settings(ConcurrencySettings::default().with_max(20))
    ///     .run_task(|| { left.set(left.get() - 1); async { Ok::<(), ()>(()) } })
    ///     .is_task_ready(|| { let r = left.get() > 0; async move { Ok(r) } })
    ///     .is_finished(|| { let f = left.get() == 0; async move { Ok(f) } })
    ///     .build()
    ///     .unwrap();
    /// let report = sim.block_on(pool.run_local()).unwrap().unwrap();
    /// assert_eq!(report.succeeded, 100);
    /// ```
    pub fn builder() -> Builder<Rt, (), (), (), Rt::Sensors> {
        let rt = Rt::create();
        let sensors = rt.default_sensors();
        Builder::new(rt, sensors)
    }
}

/// Builds an [`AutoscaledPool`]. `build` exists only once all three task functions are set.
pub struct Builder<Rt, R, T, F, Se> {
    runtime: Rt,
    config: PoolConfig,
    policy: BoxPolicy,
    sensors: Se,
    sink: Box<dyn EventSink + Send>,
    mode: TaskMode,
    /// The autoscale interval the user set with [`Builder::autoscale_interval`], if any.
    tick: Option<Duration>,
    budget: Option<BudgetMember>,
    run_task: R,
    is_task_ready: T,
    is_finished: F,
}

impl<Rt, R, T, F, Se> fmt::Debug for Builder<Rt, R, T, F, Se> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<Rt, Se> Builder<Rt, (), (), (), Se> {
    /// A builder on `runtime` with `sensors` and default settings; adapters call this.
    ///
    /// The default policy is [`AdaptivePolicy`] with the 1 s autoscale tick it asks for, the policy that won
    /// the simulator suite (`docs/algorithm.md`); [`Builder::crawlee_parity`] selects Crawlee's controller and
    /// its 10 s tick instead. The tick belongs with the policy: scaling settings or a whole configuration that
    /// leave the interval at Crawlee's default keep the policy's own
    /// ([`ScalingPolicy::preferred_interval`]); [`Builder::autoscale_interval`] sets one that always holds.
    pub fn new(runtime: Rt, sensors: Se) -> Self {
        Builder {
            runtime,
            config: PoolConfig::default(),
            policy: Box::new(AdaptivePolicy::default()),
            sensors,
            #[cfg(feature = "tracing")]
            sink: Box::new(crate::trace::TracingSink),
            #[cfg(not(feature = "tracing"))]
            sink: Box::new(()),
            mode: TaskMode::default(),
            tick: None,
            budget: None,
            run_task: (),
            is_task_ready: (),
            is_finished: (),
        }
    }
}

impl<Rt, R, T, F, Se> Builder<Rt, R, T, F, Se> {
    /// Concurrency bounds and the rate cap.
    #[must_use]
    pub fn concurrency_settings(mut self, s: ConcurrencySettings) -> Self {
        self.config.concurrency = s;
        self
    }
    /// Autoscaling cadence and steps.
    #[must_use]
    pub fn scaling_settings(mut self, s: ScalingSettings) -> Self {
        self.config.scaling = s;
        self
    }
    /// Load windows and thresholds.
    #[must_use]
    pub fn status_settings(mut self, s: StatusSettings) -> Self {
        self.config.status = s;
        self
    }
    /// Snapshot rules, the memory budget and the sensor cadence.
    #[must_use]
    pub fn snapshot_settings(mut self, s: SnapshotSettings) -> Self {
        self.config.snapshot = s;
        self
    }
    /// Every setting at once.
    #[must_use]
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }
    /// The autoscale tick, whatever the policy prefers and whatever scaling settings come before or after.
    #[must_use]
    pub fn autoscale_interval(mut self, every: Duration) -> Self {
        self.tick = Some(every);
        self
    }
    /// A per-task timeout; see [`PoolConfig::timeout_policy`] for what it does.
    #[must_use]
    pub fn task_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.task_timeout = timeout;
        self
    }
    /// The scaling policy ([`AdaptivePolicy`] by default). Its preferred tick applies unless one is set
    /// ([`Builder::autoscale_interval`], or scaling settings with an interval other than 10 s).
    #[must_use]
    pub fn policy(mut self, policy: impl ScalingPolicy + Send + 'static) -> Self {
        self.policy = Box::new(policy);
        self
    }
    /// Crawlee's behaviour, exactly: [`CrawleePolicy`] with Crawlee's scaling settings (a 10 s tick, steps of
    /// 5 %). Call it before any other scaling setting you want to keep.
    #[must_use]
    pub fn crawlee_parity(mut self) -> Self {
        self.policy = Box::new(CrawleePolicy);
        self.config.scaling = ScalingSettings::default();
        self
    }
    /// Where events go (decisions, refusals, status records).
    #[must_use]
    pub fn events(mut self, sink: impl EventSink + Send + 'static) -> Self {
        self.sink = Box::new(sink);
        self
    }
    /// Draws the pool's permits from a budget shared with other pools ([`SharedBudget::member`]): the pool
    /// keeps autoscaling inside its share, and a start without a permit is [`Refusal::Budget`].
    ///
    /// [`SharedBudget::member`]: crate::SharedBudget::member
    /// [`Refusal::Budget`]: crate::Refusal::Budget
    #[must_use]
    pub fn budget(mut self, member: BudgetMember) -> Self {
        self.budget = Some(member);
        self
    }
    /// Tasks on workers (the default), spawned one by one, or in place.
    #[must_use]
    pub fn task_mode(mut self, mode: TaskMode) -> Self {
        self.mode = mode;
        self
    }
    /// Replaces the sensors.
    pub fn sensors<Se2>(self, sensors: Se2) -> Builder<Rt, R, T, F, Se2> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors,
            sink: self.sink,
            mode: self.mode,
            tick: self.tick,
            budget: self.budget,
            run_task: self.run_task,
            is_task_ready: self.is_task_ready,
            is_finished: self.is_finished,
        }
    }
    /// The task: an async closure returning `Result<T, E>` with `T: Into<Outcome>`: `Ok(())` for a success, or
    /// an [`Outcome`](crate::Outcome) (throttled, failed without ending the run).
    pub fn run_task<R2>(self, f: R2) -> Builder<Rt, R2, T, F, Se> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            tick: self.tick,
            budget: self.budget,
            run_task: f,
            is_task_ready: self.is_task_ready,
            is_finished: self.is_finished,
        }
    }
    /// Whether a task should start: an async closure returning `Result<bool, E>`, asked only when there is
    /// capacity.
    pub fn is_task_ready<T2>(self, f: T2) -> Builder<Rt, R, T2, F, Se> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            tick: self.tick,
            budget: self.budget,
            run_task: self.run_task,
            is_task_ready: f,
            is_finished: self.is_finished,
        }
    }
    /// Whether the run is over: an async closure returning `Result<bool, E>`, asked only when no task is ready
    /// and none runs.
    pub fn is_finished<F2>(self, f: F2) -> Builder<Rt, R, T, F2, Se> {
        Builder {
            runtime: self.runtime,
            config: self.config,
            policy: self.policy,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            tick: self.tick,
            budget: self.budget,
            run_task: self.run_task,
            is_task_ready: self.is_task_ready,
            is_finished: f,
        }
    }
}

impl<Rt, R, T, F, Se, E, O, FR, FT, FF> Builder<Rt, R, T, F, Se>
where
    R: FnMut() -> FR,
    T: FnMut() -> FT,
    F: FnMut() -> FF,
    FR: Future<Output = Result<O, E>>,
    O: Into<Outcome>,
    FT: Future<Output = Result<bool, E>>,
    FF: Future<Output = Result<bool, E>>,
{
    /// Validates the settings and builds the pool.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as a [`ConfigError`].
    pub fn build(self) -> Result<BuiltPool<Rt, R, T, F, Se>, ConfigError> {
        let (parts, (run_task, is_task_ready, is_finished)) = self.into_parts()?;
        let fns = crate::tasks::task_fns(run_task, is_task_ready, is_finished);
        Ok(AutoscaledPool::from_parts(parts, fns))
    }
}

impl<Rt, Fns, Se> AutoscaledPool<Rt, Fns, Se> {
    /// A pool of the checked parts a builder made, running `fns`.
    pub(super) fn from_parts(parts: Parts<Rt, Se>, fns: Fns) -> Self {
        AutoscaledPool {
            config: parts.config,
            runtime: parts.runtime,
            handle: parts.handle,
            mode: parts.mode,
            inner: Mutex::new(Some(Inner {
                pool: parts.pool,
                fns,
                sensors: parts.sensors,
                sink: parts.sink,
                budget: parts.budget,
            })),
        }
    }
}

/// A builder taken apart: its [`Parts`], and its task functions as given.
pub(super) type Split<Rt, Se, R, T, F> = (Parts<Rt, Se>, (R, T, F));

/// What a [`Builder`] makes besides the task functions: the checked machine and what runs it.
pub(super) struct Parts<Rt, Se> {
    pub(super) runtime: Rt,
    pub(super) config: PoolConfig,
    pub(super) pool: Pool<BoxPolicy>,
    pub(super) handle: Handle,
    pub(super) sensors: Se,
    pub(super) sink: Box<dyn EventSink + Send>,
    pub(super) mode: TaskMode,
    pub(super) budget: Option<BudgetMember>,
}

impl<Rt, R, T, F, Se> Builder<Rt, R, T, F, Se> {
    /// Resolves the tick, checks the settings and builds the machine; the task functions come back as given.
    pub(super) fn into_parts(mut self) -> Result<Split<Rt, Se, R, T, F>, ConfigError> {
        let crawlee_tick = ScalingSettings::default().autoscale_interval;
        let preferred = (self.config.scaling.autoscale_interval == crawlee_tick)
            .then(|| self.policy.preferred_interval())
            .flatten();
        if let Some(every) = self.tick.or(preferred) {
            self.config.scaling.autoscale_interval = every;
        }
        let config = self.config;
        let pool = Pool::with_policy(config, self.policy)?;
        let handle = Handle::new(&pool);
        let parts = Parts {
            runtime: self.runtime,
            config,
            pool,
            handle,
            sensors: self.sensors,
            sink: self.sink,
            mode: self.mode,
            budget: self.budget,
        };
        Ok((parts, (self.run_task, self.is_task_ready, self.is_finished)))
    }
}

/// The pool a [`Builder`] builds from three closures.
pub type BuiltPool<Rt, R, T, F, Se> = AutoscaledPool<Rt, FnTasks<R, T, F>, Se>;
