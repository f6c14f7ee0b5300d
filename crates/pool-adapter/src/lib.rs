//! What the runtime adapters share, so that each adapter is only its runtime's seams.
//!
//! - [`adapter_api!`] writes an adapter's public surface: the names of [`api`] (one list, so `pool-tokio`,
//!   `pool-smol` and `pool-async-std` cannot drift apart), the `AutoscaledPool` and `Builder` aliases for
//!   the adapter's runtime, and its [`DefaultRuntime`](pool_core::DefaultRuntime) impl with
//!   `pool-sensors`' system sensors.
//! - With the `async-io` feature, `Epoch`, `AsyncIoTimer` and `Join`: the clock, the re-armable timer and
//!   the cancellable join handle of the smol and async-std adapters, which both sit on `async-io`.
//!
//! Users depend on an adapter, never on this crate. Writing an adapter for another runtime means
//! implementing the seams listed in [`pool_core::seams`] and invoking the macro:
//!
//! ```
//! # use pool_core::{Clock, Instant, Runtime, Spawn, TaskPanic, Timer};
//! # use core::{future::Future, pin::Pin, task::{Context, Poll}};
//! # #[derive(Clone, Debug)] pub struct MyRuntime;
//! # impl MyRuntime { pub fn new() -> Self { MyRuntime } }
//! # impl Clock for MyRuntime { fn now(&self) -> Instant { Instant::ZERO } }
//! # pub struct MyTimer;
//! # impl Timer for MyTimer {
//! #     fn reset(self: Pin<&mut Self>, _: Instant) {}
//! #     fn poll_elapsed(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> { Poll::Pending }
//! # }
//! # impl Runtime for MyRuntime { type Timer = MyTimer; fn timer(&self, _: Instant) -> MyTimer { MyTimer } }
//! # impl Spawn for MyRuntime {
//! #     type Handle<T: Send + 'static> = Pin<Box<dyn Future<Output = Result<T, TaskPanic>> + Send>>;
//! #     fn spawn<F>(&self, task: F) -> Self::Handle<F::Output>
//! #     where F: Future + Send + 'static, F::Output: Send + 'static { Box::pin(async { Ok(task.await) }) }
//! #     fn cancel<T: Send + 'static>(&self, _: &mut Self::Handle<T>) {}
//! # }
//! // `MyRuntime` implements `Clock`, `Runtime` and `Spawn`, and has `MyRuntime::new()`.
//! pool_adapter::adapter_api!(MyRuntime, "my runtime");
//!
//! let builder = AutoscaledPool::builder(); // what `pool_tokio::AutoscaledPool::builder()` is on tokio
//! # let _ = builder;
//! ```

#[cfg(feature = "async-io")]
mod async_io;

#[cfg(feature = "async-io")]
pub use async_io::{AsyncIoTimer, Epoch, Join};

/// The names every adapter re-exports, so a user needs one dependency: the adapter for their runtime.
pub mod api {
    #[cfg(feature = "metrics")]
    pub use pool_core::metrics;
    pub use pool_core::{
        AdaptivePolicy, AdaptiveSettings, Autoscaled, AutoscaledStreamExt, BoxTaskFns,
        BudgetMember, ConcurrencySettings, ConfigError, CrawlQueue, CrawlReport, CrawleePolicy,
        Ctx, DrainTimeout, Event, EventSink, FailedItem, FnSink, Handle, MemoryBudget, Outcome,
        PoolConfig, PoolError, Refusal, RetrySettings, RunError, RunReport, ScaleDecision,
        ScalingPolicy, ScalingSettings, SharedBudget, SignalId, SnapshotSettings, StatusRecord,
        StatusSettings, SystemInfo, TaskCounts, TaskMode, TaskPanic, ThrottleSettings,
        TimeoutPolicy, TracingSink,
    };
    pub use pool_sensors::{
        ClientErrors, CpuMode, LoadSignal, SensorSettings, SystemSensors,
        snapshot_settings_from_env,
    };
}

// The macro's paths go through here, so an adapter needs no direct dependency to expand it.
#[doc(hidden)]
pub mod __private {
    pub use pool_core::{AutoscaledPool, BoxTaskFns, Builder, DefaultRuntime};
    pub use pool_sensors::{SensorSettings, SystemSensors};
}

/// Writes an adapter's public surface for `$runtime` (a type with `new()` implementing `pool-core`'s
/// `Runtime`, `Spawn` and `Clone`); `$name` names the runtime in the aliases' docs.
///
/// It expands to `pub use pool_adapter::api::*`, the `AutoscaledPool` and `Builder` aliases, and
/// `impl DefaultRuntime for $runtime` (created with `new()`, sampling `SystemSensors` with default
/// settings). See the [crate docs](crate) for an example.
#[macro_export]
macro_rules! adapter_api {
    ($runtime:ident, $name:literal) => {
        pub use $crate::api::*;

        #[doc = concat!("An autoscaled pool on ", $name, ". Build one with `AutoscaledPool::builder()`.")]
        pub type AutoscaledPool<Fns = (), Se = ()> =
            $crate::__private::AutoscaledPool<$runtime, Fns, Se>;

        #[doc = concat!("A built pool on ", $name, " with the default sensors whose type a struct can name: ")]
        #[doc = "what `Builder::build_boxed` returns, with the task functions' error `E` and success `O`."]
        pub type DynPool<E, O = ()> = $crate::__private::AutoscaledPool<
            $runtime,
            $crate::__private::BoxTaskFns<E, O>,
            $crate::__private::SystemSensors,
        >;

        #[doc = concat!("The builder `AutoscaledPool::builder()` returns on ", $name, ".")]
        pub type Builder<R = (), T = (), F = (), Se = ()> =
            $crate::__private::Builder<$runtime, R, T, F, Se>;

        impl $crate::__private::DefaultRuntime for $runtime {
            type Sensors = $crate::__private::SystemSensors;
            fn create() -> Self {
                <$runtime>::new()
            }
            fn default_sensors(&self) -> Self::Sensors {
                $crate::__private::SystemSensors::new($crate::__private::SensorSettings::default())
            }
        }
    };
}
