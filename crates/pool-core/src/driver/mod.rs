//! The run driver: one hand-polled future that drives a [`Pool`](crate::Pool) over any runtime.
//!
//! [`Run`] owns nothing for longer than a run: it borrows the machine, the user's task functions, the
//! runtime and the sensors. Each poll it applies the [`Handle`]'s requests, runs due ticks, samples sensors,
//! reaps finished tasks, and starts new ones while the gate is open. It sleeps on exactly two things: its
//! one re-armable timer and its waker, which tasks and handles wake. It never polls on an interval of its
//! own.
//!
//! Tasks run either in place ([`InPlace`]: the driver polls the task futures itself, for single-threaded and
//! embedded executors and for the deterministic harness) or on a runtime's executor ([`Spawned`]). Either
//! way each task lives in a slot that is allocated once and reused, so starting and reaping a task
//! allocates nothing in the pool.
//!
//! | module | job |
//! |---|---|
//! | `error` | [`PoolError`] and [`TaskPanic`] |
//! | `launch` | [`InPlace`] and [`Spawned`], with panic capture |
//! | `control` | [`Handle`]: cross-thread control and published counters |
//! | `wake` | the woken-slot bitset |
//! | `patience` | whether lingering pays, and one turn of it |
//! | `sink` | ready-made [`EventSink`]s, [`FnSink`] |
//! | `run` | [`Run`], the driver future: its loop, its task slots, its start path |
//! | `workers` (`std`) | [`Workers`]: long-lived worker tasks, one per core, each polling many slots' tasks |
//!
//! The traits the driver calls ([`Launch`], [`Spawn`], [`EventSink`], ...) live in [`seams`](crate::seams).

mod control;
mod error;
mod launch;
mod patience;
mod run;
mod sink;
mod wake;
#[cfg(feature = "std")]
mod workers;

#[cfg(feature = "std")]
pub(crate) use control::Setter;
pub use control::{Handle, TaskCounts};
pub use error::{PoolError, TaskPanic};
pub use launch::{CatchPanic, InPlace, Spawned};
pub use run::{Driver, FnsPart, Owned, PoolPart, Run, RuntimePart};
pub use sink::FnSink;
#[cfg(feature = "std")]
pub use workers::{Worker, WorkerTask, Workers};
// The seams the driver is generic over, re-exported where the driver's users have always found them.
pub use crate::seams::{EventSink, Launch, Spawn};
