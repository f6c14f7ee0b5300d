//! [`TracingSink`]: events as `tracing` records, at the levels Crawlee logs them.

use crate::pool::Event;
use crate::seams::EventSink;

/// Sends events to `tracing`: the periodic status line at INFO (Crawlee's fields), scaling decisions and
/// refusals at DEBUG (a refusal is an event only when its reason changes, so this never floods), throttles
/// and tolerated task failures at DEBUG, critical
/// memory, timeouts and rejected readings at WARN.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Status(s) => tracing::info!(target: "autoscaled_pool", "{s}"),
            Event::Scaled(d) => tracing::debug!(
                target: "autoscaled_pool",
                old = d.old,
                new = d.new,
                current = d.current,
                "scaling: {d}"
            ),
            Event::Refused { at, refusal } => {
                tracing::debug!(target: "autoscaled_pool", "{at} not starting tasks: {refusal}")
            }
            Event::MemoryCritical {
                used_bytes,
                budget_bytes,
                ..
            } => {
                let pct = if *budget_bytes == 0 {
                    100
                } else {
                    used_bytes.saturating_mul(100) / budget_bytes
                };
                tracing::warn!(
                    target: "autoscaled_pool",
                    "Memory is critically overloaded. Using {} MB of {} MB ({pct}%). Consider increasing available memory.",
                    used_bytes / (1024 * 1024),
                    budget_bytes / (1024 * 1024)
                )
            }
            Event::TaskTimedOut { timeout, .. } => tracing::warn!(
                target: "autoscaled_pool",
                "Task timed out after {:.3} seconds",
                timeout.as_secs_f64()
            ),
            // One per throttled request or failed task, so DEBUG: the status line carries the client signal.
            Event::Throttled { at, until, .. } => {
                tracing::debug!(target: "autoscaled_pool", "{at} throttled downstream; starts wait until {until}")
            }
            Event::TaskFailed { at } => {
                tracing::debug!(target: "autoscaled_pool", "{at} a task failed; the run goes on")
            }
            Event::ReadingRejected { error, .. } => {
                tracing::warn!(target: "autoscaled_pool", "sensor reading dropped: {error}")
            }
        }
    }
}
