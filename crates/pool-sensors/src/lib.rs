//! System sensors for an autoscaled task pool, shared by the runtime adapters. std-only, no async runtime.
//!
//! [`SystemSensors`] implements [`pool_core::Sensors`]: on every sample it reports CPU and memory readings,
//! drains the [`ClientErrors`] counter, and reads any custom [`LoadSignal`]s. It only *measures*: the memory
//! budget, the overload lines and every other rule are pool-core's [`SnapshotSettings`].
//!
//! On Linux everything is read from `/proc` and `/sys` under a configurable [`SensorRoot`], so tests run on
//! fixture trees:
//!
//! - **memory used**: this process plus its descendants, PSS from `/proc/PID/smaps_rollup` with RSS from
//!   `/proc/PID/status` as the fallback ([`MemorySensor`]);
//! - **memory total**: the tightest cgroup v2 `memory.max` or v1 `memory.limit_in_bytes` along the process's
//!   own cgroup path, or `MemTotal`; the use within it is the cgroup charge less reclaimable cache, or
//!   `MemTotal − MemAvailable`;
//! - **CPU**: a delta between samples, never a sleep: the binding cgroup quota or cpuset's usage, else this
//!   process tree's CPU time over the cores it may run on, so other processes on the host do not count; or,
//!   chosen explicitly, the whole host or one core ([`CpuMode`], [`CpuSensor`]).
//!
//! Every fault degrades to a documented fallback with a one-time warning ([`Warnings`]), never a panic.
//! Elsewhere, `sysinfo` supplies RSS, physical memory and CPU. `docs/sensors.md` has the details.
//!
//! # Examples
//!
//! ```
//! use pool_core::{Instant, Pool, PoolConfig, Sensors};
//! use pool_sensors::{SensorSettings, SystemSensors};
//!
//! let mut pool = Pool::new(PoolConfig::default()).unwrap();
//! let mut sensors = SystemSensors::new(SensorSettings::default());
//! let errors = sensors.client_errors(); // hand clones to tasks
//! errors.report();
//! sensors.sample(Instant::ZERO, &mut pool);
//! ```
//!
//! [`SnapshotSettings`]: pool_core::SnapshotSettings

mod cgroup;
mod client;
mod cpu;
mod env;
mod memory;
mod parse;
#[cfg(not(target_os = "linux"))]
mod portable;
mod root;
mod signal;
mod tree;
mod warn;

use std::path::PathBuf;
use std::time::Duration;

use pool_core::{
    CpuReading, Instant, MemoryBudget, MemoryReading, Pool, ScalingPolicy, Sensors, SignalError,
    SignalId,
};

pub use client::ClientErrors;
pub use cpu::{CpuMode, CpuSensor, CpuSource};
pub use env::{EnvError, snapshot_settings_from, snapshot_settings_from_env};
pub use memory::{MemorySample, MemorySensor, TotalSource};
pub use root::SensorRoot;
pub use signal::LoadSignal;
pub use warn::{Warning, Warnings};

/// How often the sensors look up again what rarely changes: the cgroup layout and limits, the online CPUs
/// and the process's affinity, and, where the kernel has no `children` files, the process's descendants.
/// Those lookups are most of a sample's cost; a resized container or a new child process is followed
/// within this long of the pool's clock. Usage counters are read on every sample.
pub const LAYOUT_RECHECK: Duration = Duration::from_secs(30);

pub use tree::CHILDLESS_RELIST;

/// Crawlee's environment variable names, as read by [`snapshot_settings_from_env`].
pub mod vars {
    pub use crate::env::{
        ALL, AVAILABLE_MEMORY_RATIO, MAX_CLIENT_ERRORS, MAX_EVENT_LOOP_DELAY_MILLIS,
        MAX_USED_CPU_RATIO, MAX_USED_MEMORY_RATIO, MEMORY_MBYTES, SYSTEM_INFO_INTERVAL_MILLIS,
    };
}

/// How the sensors measure: where `/` is, which process, what CPU means.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SensorSettings {
    /// The directory read as `/` on Linux (`/` by default; a fixture tree in tests). Ignored elsewhere.
    pub root: PathBuf,
    /// The process whose tree is measured; `None` (the default) for this process.
    pub pid: Option<u32>,
    /// What CPU utilisation means; [`CpuMode::Auto`] by default.
    pub cpu: CpuMode,
}

impl Default for SensorSettings {
    fn default() -> Self {
        SensorSettings {
            root: PathBuf::from("/"),
            pid: None,
            cpu: CpuMode::Auto,
        }
    }
}

impl SensorSettings {
    /// Sets the root.
    #[must_use]
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }
    /// Sets the process.
    #[must_use]
    pub fn with_pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }
    /// Sets the CPU mode.
    #[must_use]
    pub fn with_cpu(mut self, mode: CpuMode) -> Self {
        self.cpu = mode;
        self
    }
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
struct Backend {
    memory: MemorySensor,
    cpu: CpuSensor,
}

#[cfg(target_os = "linux")]
impl Backend {
    fn new(s: &SensorSettings, pid: u32) -> Self {
        let root = SensorRoot::new(s.root.clone());
        Backend {
            memory: MemorySensor::new(root.clone(), pid),
            cpu: CpuSensor::new(root, pid, s.cpu),
        }
    }
    fn cpu(&mut self, now: Instant, w: &mut Warnings) -> Option<f64> {
        self.cpu.read(now, w)
    }
    fn memory(&mut self, now: Instant, w: &mut Warnings) -> Option<MemorySample> {
        self.memory.read_at(now, w)
    }
}

#[cfg(not(target_os = "linux"))]
use portable::Backend;

/// The default sensor set: CPU, memory, client errors and custom signals, implementing
/// [`pool_core::Sensors`].
///
/// Readings are stamped with the `now` the pool passes in, and CPU windows are measured on it too, so the
/// pool's clock must run in real time when these sensors are used.
#[derive(Debug)]
pub struct SystemSensors {
    backend: Backend,
    client: ClientErrors,
    signals: signal::CustomSignals,
    warnings: Warnings,
}

impl SystemSensors {
    /// Sensors measuring as `settings` say.
    pub fn new(settings: SensorSettings) -> Self {
        let pid = settings.pid.unwrap_or_else(std::process::id);
        SystemSensors {
            backend: Backend::new(&settings, pid),
            client: ClientErrors::new(),
            signals: signal::CustomSignals::default(),
            warnings: Warnings::new(),
        }
    }

    /// The counter tasks report rate-limit errors to; clones share it.
    pub fn client_errors(&self) -> ClientErrors {
        self.client.clone()
    }

    /// Uses `errors` as the client-error counter, so one counter can be created before the sensors.
    #[must_use]
    pub fn with_client_errors(mut self, errors: ClientErrors) -> Self {
        self.client = errors;
        self
    }

    /// Adds a custom signal, registered on the pool at the first sample. A registration that fails (too
    /// many signals, a duplicate name, a bad threshold) drops the signal with a `signal.rejected` warning;
    /// use [`SystemSensors::register_signal`] to see the error instead.
    #[must_use]
    pub fn with_signal(mut self, signal: impl LoadSignal + Send + 'static) -> Self {
        self.signals.push(Box::new(signal));
        self
    }

    /// Registers a custom signal on `pool` now.
    ///
    /// # Errors
    ///
    /// The pool's [`SignalError`]; the signal is dropped.
    pub fn register_signal<P: ScalingPolicy>(
        &mut self,
        pool: &mut Pool<P>,
        signal: impl LoadSignal + Send + 'static,
    ) -> Result<SignalId, SignalError> {
        self.signals.register(pool, Box::new(signal))
    }

    /// The faults met so far, each logged once.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }
}

impl Sensors for SystemSensors {
    fn sample<P: ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>) {
        let w = &mut self.warnings;
        if let Some(used_ratio) = self.backend.cpu(now, w) {
            // A rejected reading is queued by the pool as an event.
            let _ = pool.handle_cpu(
                now,
                CpuReading {
                    at: now,
                    used_ratio,
                },
            );
        }
        if let Some(m) = self.backend.memory(now, w) {
            let fixed = matches!(pool.config().snapshot.memory_budget, MemoryBudget::Fixed(_));
            match m.total_bytes {
                Some(total_bytes) => {
                    let _ = pool.handle_memory(
                        now,
                        MemoryReading {
                            at: now,
                            used_bytes: m.used_bytes,
                            total_bytes,
                            system_used_bytes: m.system_used_bytes,
                        },
                    );
                }
                // A fixed budget needs no total; a ratio of an unknown total means nothing.
                None if fixed => {
                    let _ = pool.handle_memory(
                        now,
                        MemoryReading {
                            at: now,
                            used_bytes: m.used_bytes,
                            total_bytes: 0,
                            system_used_bytes: None,
                        },
                    );
                }
                None => w.warn("memory.total_unknown", || {
                    "the memory available to the process is unknown and the budget is a ratio of it; \
                     no memory readings (set a fixed budget to keep the memory signal)"
                        .into()
                }),
            }
        }
        let errors = self.client.take();
        if errors > 0 {
            pool.handle_client_errors(errors);
        }
        for (name, e) in self.signals.sample(now, pool) {
            w.warn("signal.rejected", || {
                format!("custom load signal {name:?} could not be registered: {e}")
            });
        }
    }
}
