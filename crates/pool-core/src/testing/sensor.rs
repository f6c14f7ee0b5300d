//! Scripted sensors: readings as functions of virtual time.

use std::prelude::rust_2024::*;

use crate::pool::Pool;
use crate::scale::ScalingPolicy;
use crate::seams::Sensors;
use crate::status::{CpuReading, MemoryReading, SignalId};
use crate::time::Instant;

type Script<T> = Box<dyn FnMut(Instant) -> Option<T>>;

/// Sensors whose readings come from closures of time; `None` from a closure means "no reading now", which
/// is how a test makes a sensor go quiet.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use pool_core::testing::ScriptedSensors;
/// use pool_core::Instant;
///
/// // CPU saturated between 60 s and 120 s, idle otherwise.
/// let sensors = ScriptedSensors::new().cpu(|t| {
///     let busy = (Instant::from_secs(60)..Instant::from_secs(120)).contains(&t);
///     Some(if busy { 1.0 } else { 0.1 })
/// });
/// # let _ = sensors;
/// ```
#[derive(Default)]
pub struct ScriptedSensors {
    cpu: Option<Script<f64>>,
    memory: Option<Script<(u64, u64, Option<u64>)>>,
    custom: Vec<(SignalId, Script<bool>)>,
    samples: u64,
}

impl std::fmt::Debug for ScriptedSensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedSensors")
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

impl ScriptedSensors {
    /// No scripts: nothing is reported.
    pub fn new() -> Self {
        ScriptedSensors::default()
    }
    /// CPU utilisation as a function of time.
    #[must_use]
    pub fn cpu(mut self, f: impl FnMut(Instant) -> Option<f64> + 'static) -> Self {
        self.cpu = Some(Box::new(f));
        self
    }
    /// Memory `(used, total, system_used)` bytes as a function of time.
    #[must_use]
    pub fn memory(
        mut self,
        f: impl FnMut(Instant) -> Option<(u64, u64, Option<u64>)> + 'static,
    ) -> Self {
        self.memory = Some(Box::new(f));
        self
    }
    /// A custom signal's overload flag as a function of time.
    #[must_use]
    pub fn signal(
        mut self,
        id: SignalId,
        f: impl FnMut(Instant) -> Option<bool> + 'static,
    ) -> Self {
        self.custom.push((id, Box::new(f)));
        self
    }
    /// How many times the pool sampled these sensors.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

impl Sensors for ScriptedSensors {
    fn sample<P: ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>) {
        self.samples += 1;
        // Rejected readings surface as pool events; the script need not handle them.
        if let Some(ratio) = self.cpu.as_mut().and_then(|f| f(now)) {
            let _ = pool.handle_cpu(
                now,
                CpuReading {
                    at: now,
                    used_ratio: ratio,
                },
            );
        }
        if let Some((used, total, system)) = self.memory.as_mut().and_then(|f| f(now)) {
            let reading = MemoryReading {
                at: now,
                used_bytes: used,
                total_bytes: total,
                system_used_bytes: system,
            };
            let _ = pool.handle_memory(now, reading);
        }
        for (id, f) in &mut self.custom {
            if let Some(over) = f(now) {
                let _ = pool.handle_signal(now, *id, now, over);
            }
        }
    }
}
