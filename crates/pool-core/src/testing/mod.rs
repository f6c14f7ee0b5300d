//! The deterministic harness: a virtual clock, a manual executor, scripted sensors and a simulator.
//!
//! Everything here runs in virtual time on one thread, so a test's outcome depends only on its inputs.
//! Users get the same tools to unit-test their own pool configurations.
//!
//! # Examples
//!
//! A pool of 10 running 100 tasks of 100 ms each takes exactly one virtual second:
//!
//! ```
//! use core::time::Duration;
//! use std::cell::Cell;
//! use pool_core::testing::Sim;
//! use pool_core::{task_fns, ConcurrencySettings, Handle, InPlace, Pool, PoolConfig, Run};
//!
//! let sim = Sim::new();
//! let mut config = PoolConfig::default();
//! config.concurrency = ConcurrencySettings::fixed(10);
//! let mut pool = Pool::new(config).unwrap();
//! let handle = Handle::new(&pool);
//! let (started, done) = (Cell::new(0), Cell::new(0));
//! let mut fns = task_fns(
//!     || { started.set(started.get() + 1); let s = sim.sleep(Duration::from_millis(100));
//!          async { s.await; done.set(done.get() + 1); Ok::<(), ()>(()) } },
//!     || { let ready = started.get() < 100; async move { Ok(ready) } },
//!     || { let finished = done.get() == 100; async move { Ok(finished) } },
//! );
//! let run = Run::new(&mut pool, &handle, &mut fns, sim.runtime(), InPlace, (), ()).unwrap();
//! let report = sim.block_on(run).unwrap().unwrap();
//! assert_eq!(report.succeeded, 100);
//! assert_eq!(report.peak_concurrency, 10);
//! assert_eq!(sim.elapsed(), Duration::from_secs(1));
//! ```

// The harness is std-only by design (it needs `Mutex`, `Rc` and a prelude), so `std` paths are the right ones
// here even where `core` has the same item.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod clock;
pub mod conformance;
mod executor;
mod sensor;
mod sim;

pub use clock::{Sleep, TestRuntime, VirtualClock, VirtualTimer};
pub use executor::{ManualExecutor, Task};
pub use sensor::ScriptedSensors;
pub use sim::{Sim, SimJoin, Stalled, Trace};
