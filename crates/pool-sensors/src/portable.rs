//! Memory and CPU on macOS, Windows and other non-Linux systems, through `sysinfo`: RSS of the process tree,
//! physical memory, and this process's CPU over every core (by default), host-wide, or over one core. No
//! cgroups there, so no limits to follow.

use pool_core::Instant;
use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::SensorSettings;
use crate::cpu::CpuMode;
use crate::memory::{MemorySample, TotalSource};
use crate::warn::Warnings;

#[derive(Debug)]
pub(crate) struct Backend {
    sys: System,
    pid: Pid,
    mode: CpuMode,
    cpu_primed: bool,
}

impl Backend {
    /// The same signature as the Linux backend's, so that `SystemSensors::new` builds either; the settings'
    /// root is for the Linux readers and unused here.
    pub(crate) fn new(s: &SensorSettings, pid: u32) -> Self {
        Backend {
            sys: System::new(),
            pid: Pid::from_u32(pid),
            mode: s.cpu,
            cpu_primed: false,
        }
    }

    pub(crate) fn cpu(&mut self, _now: Instant, w: &mut Warnings) -> Option<f64> {
        let ratio = match self.mode {
            CpuMode::Process | CpuMode::Auto => {
                self.sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[self.pid]),
                    true,
                    ProcessRefreshKind::nothing().with_cpu(),
                );
                // sysinfo gives a share of one core; Auto spreads it over every core, so that, as on Linux,
                // other processes on the host do not count (children are not counted here).
                let cores = match self.mode {
                    CpuMode::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
                    _ => 1,
                };
                match self.sys.process(self.pid) {
                    Some(p) => f64::from(p.cpu_usage()) / 100.0 / cores as f64,
                    None => {
                        w.warn("cpu.process_unreadable", || {
                            "sysinfo cannot see this process; no process CPU reading".into()
                        });
                        return None;
                    }
                }
            }
            CpuMode::Host => {
                self.sys.refresh_cpu_usage();
                f64::from(self.sys.global_cpu_usage()) / 100.0
            }
        };
        // sysinfo measures between refreshes: the first one only sets the baseline.
        if !std::mem::replace(&mut self.cpu_primed, true) {
            return None;
        }
        ratio.is_finite().then(|| ratio.clamp(0.0, 1.0))
    }

    pub(crate) fn memory(&mut self, _now: Instant, w: &mut Warnings) -> Option<MemorySample> {
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        let Some(me) = self.sys.process(self.pid) else {
            w.warn("memory.self_unreadable", || {
                "sysinfo cannot see this process; no memory reading".into()
            });
            return None;
        };
        let mut used = me.memory();
        for p in self.sys.processes().values() {
            if p.pid() != self.pid && self.descends(p.pid()) {
                used = used.saturating_add(p.memory());
            }
        }
        let total = self.sys.total_memory();
        let (total_bytes, system_used_bytes, source) = if total > 0 {
            let used = total.saturating_sub(self.sys.available_memory());
            (Some(total), Some(used), TotalSource::Physical)
        } else {
            (None, None, TotalSource::Unknown)
        };
        Some(MemorySample {
            used_bytes: used,
            total_bytes,
            system_used_bytes,
            source,
        })
    }

    fn descends(&self, mut pid: Pid) -> bool {
        // Bounded walk: a parent cycle (pid reuse) cannot loop forever.
        for _ in 0..64 {
            match self.sys.process(pid).and_then(|p| p.parent()) {
                Some(parent) if parent == self.pid => return true,
                Some(parent) if parent != pid => pid = parent,
                _ => return false,
            }
        }
        false
    }
}
