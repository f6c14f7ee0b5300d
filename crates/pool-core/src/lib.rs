//! The sans-IO core of an autoscaled task pool: Crawlee's `AutoscaledPool`, as a deterministic state machine.
//!
//! [`Pool`] decides when a task may start and how many should run. It never reads a clock, performs IO or
//! names a runtime: time, sensor readings and task outcomes are its inputs. With the `alloc` feature,
//! [`driver`] runs a pool as a hand-polled future over any runtime; with `test-util`, [`testing`] drives it in
//! virtual time.
//!
//! # Features
//!
//! - `alloc`: the run driver.
//! - `std` (default, implies `alloc`): panic capture in the driver.
//! - `tracing`: `TracingSink`, events as `tracing` records.
//! - `metrics`: the `metrics` module, gauges and counters through the `metrics` facade.
//! - `test-util`: the deterministic harness (virtual clock, manual executor, scripted sensors, simulator).
//!
//! # Examples
//!
//! The machine alone, in virtual time:
//!
//! ```
//! use core::time::Duration;
//! use pool_core::{ConcurrencySettings, CpuReading, Event, Instant, Pool, PoolConfig, Refusal, SignalId};
//!
//! let mut config = PoolConfig::default();
//! config.concurrency = ConcurrencySettings::default().with_min(1).with_desired(1).with_max(4);
//! let mut pool = Pool::new(config).unwrap();
//!
//! let t0 = Instant::ZERO;
//! pool.start_run(t0).unwrap();
//! // The first autoscale tick runs at once: desired 1 scales to 2 even before any task starts.
//! assert_eq!(pool.desired_concurrency(), 2);
//!
//! // A CPU pinned at 100 % for the current window blocks starts beyond `min`.
//! for s in 0..=5 {
//!     let at = t0 + Duration::from_secs(s);
//!     pool.handle_cpu(at, CpuReading { at, used_ratio: 1.0 }).unwrap();
//! }
//! let now = t0 + Duration::from_secs(5);
//! pool.poll_start(now).unwrap(); // current 0 < min 1: the floor is exempt
//! pool.handle_task_started(now).unwrap();
//! let mut cpu = pool_core::SignalSet::EMPTY;
//! cpu.insert(SignalId::Cpu);
//! assert_eq!(pool.poll_start(now), Err(Refusal::Overloaded(cpu)));
//! while let Some(e) = pool.poll_event() {
//!     if let Event::Scaled(d) = e { println!("{d}"); }
//! }
//! ```
#![no_std]
// The core must stay portable to `no_std`; these keep `std` paths from creeping into code that has a `core`
// or `alloc` equivalent. Tests, examples and the std-only harness are exempt.
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod adaptive;
#[cfg(feature = "std")]
pub mod autoscaled;
#[cfg(feature = "std")]
pub mod budget;
pub mod config;
#[cfg(feature = "alloc")]
pub mod driver;
#[cfg(feature = "metrics")]
pub mod metrics;
mod outcome;
pub mod pool;
pub mod scale;
pub mod seams;
pub mod snapshot;
pub mod status;
#[cfg(feature = "alloc")]
mod sync;
mod tasks;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;
#[cfg(feature = "tracing")]
pub mod trace;

pub use adaptive::{AdaptivePolicy, AdaptiveSettings};
#[cfg(feature = "std")]
pub use autoscaled::{
    Autoscaled, AutoscaledPool, AutoscaledStreamExt, BoxPolicy, BoxTaskFns, Builder, CrawlQueue,
    CrawlReport, Ctx, DrainTimeout, FailedItem, RetrySettings, TaskMode, sleep,
};
#[cfg(feature = "std")]
pub use budget::{BudgetMember, SharedBudget};
pub use config::{
    ConcurrencySettings, ConfigError, MemoryBudget, PoolConfig, ScalingSettings, SnapshotSettings,
    StatusSettings, ThrottleSettings, TimeoutPolicy,
};
#[cfg(feature = "alloc")]
pub use driver::{FnSink, Handle, InPlace, PoolError, Run, Spawned, TaskCounts, TaskPanic};
#[cfg(feature = "std")]
pub use driver::{Worker, WorkerTask, Workers};
pub use outcome::Outcome;
pub use pool::{
    Action, BudgetRefusal, Event, Pool, Refusal, RunError, RunReport, ScaleDecision, StatusRecord,
    TaskOutcome, Verdict,
};
pub use scale::{CrawleePolicy, Scale, ScaleInput, ScaleReason, ScalingPolicy};
#[cfg(feature = "std")]
pub use seams::DefaultRuntime;
pub use seams::{Clock, EventSink, Runtime, Sensors, TaskFns, Timer};
#[cfg(feature = "alloc")]
pub use seams::{Launch, Spawn};
pub use status::{
    CpuReading, CustomLoadInfo, LoadRatioInfo, MemoryReading, ReadingError, SignalError, SignalId,
    SignalSet, SystemInfo,
};
pub use tasks::{FnTasks, task_fns};
pub use time::Instant;
#[cfg(feature = "tracing")]
pub use trace::TracingSink;
