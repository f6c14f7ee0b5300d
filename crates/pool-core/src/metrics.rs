//! Gauges and counters through the [`metrics`] facade (feature `metrics`), for any exporter: Prometheus,
//! StatsD, OpenTelemetry.
//!
//! Three pieces, because the pool reports through three channels:
//! - [`MetricsSink`], an [`EventSink`]: desired and current concurrency and each signal's overloaded ratio at
//!   every scaling decision and status record, and the timed-out, memory-critical and scaling counters.
//! - [`record_handle`]: the same gauges read from a [`Handle`] now, for a scrape or a timer between ticks;
//!   [`record_budget`] the shares of a [`SharedBudget`](crate::SharedBudget), what a replica autoscaler (HPA,
//!   KEDA) reads to tell a saturated budget from a saturated replica.
//! - [`instrument`]: wraps `run_task` to count tasks started, finished (succeeded), throttled, and failed
//!   (returned `Err`, panicked, or reported [`Outcome::Failed`]).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `autoscaled_pool_current_concurrency` | gauge | |
//! | `autoscaled_pool_desired_concurrency` | gauge | |
//! | `autoscaled_pool_min_concurrency`, `autoscaled_pool_max_concurrency` | gauge (from a handle) | |
//! | `autoscaled_pool_signal_ratio` | gauge: overloaded share of the history window | `signal` |
//! | `autoscaled_pool_signal_overloaded` | gauge: 1 when over its threshold | `signal` |
//! | `autoscaled_pool_scale_decisions_total` | counter | `direction` = `up`, `down`, `hold` |
//! | `autoscaled_pool_tasks_started_total` | counter | |
//! | `autoscaled_pool_tasks_finished_total` | counter | |
//! | `autoscaled_pool_tasks_throttled_total` | counter | |
//! | `autoscaled_pool_tasks_failed_total` | counter | |
//! | `autoscaled_pool_throttles_total` | counter: every throttle, from tasks or handles | |
//! | `autoscaled_pool_tasks_timed_out_total` | counter | |
//! | `autoscaled_pool_memory_critical_total` | counter | |
//! | `autoscaled_pool_budget_share`, `autoscaled_pool_budget_held` | gauge (from a budget member) | |
//! | `autoscaled_pool_budget_in_use`, `autoscaled_pool_budget_capacity` | gauge (the whole shared budget) | |
//!
//! `signal` is `cpu`, `memory`, `event_loop`, `client`, or a custom signal's name.
//!
//! # Examples
//!
//! Export to Prometheus (`metrics-exporter-prometheus`; `PrometheusBuilder::install` would also serve the
//! text on a port). The pool runs here in the core's virtual time; on a real runtime the sink and the
//! wrapper are the same (`pool_tokio::metrics`, `pool_smol::metrics`, `pool_async_std::metrics`):
//!
//! ```
//! use std::cell::Cell;
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use pool_core::metrics::{MetricsSink, instrument, record_handle};
//! use pool_core::testing::Sim;
//! use pool_core::{task_fns, Handle, InPlace, Pool, PoolConfig, Run};
//!
//! let recorder = PrometheusBuilder::new().build_recorder();
//! let prometheus = recorder.handle();
//! metrics::set_global_recorder(recorder).unwrap();
//!
//! let sim = Sim::new();
//! let mut pool = Pool::new(PoolConfig::default()).unwrap();
//! let handle = Handle::new(&pool);
//! let left = Cell::new(20);
//! let mut fns = task_fns(
//!     instrument(|| {
//!         let n = left.get();
//!         left.set(n - 1);
//!         async move { if n % 10 == 0 { Err("every tenth job fails") } else { Ok(()) } }
//!     }),
//!     || { let ready = left.get() > 0; async move { Ok(ready) } },
//!     || { let done = left.get() == 0; async move { Ok(done) } },
//! );
//! let run = Run::new(&mut pool, &handle, &mut fns, sim.runtime(), InPlace, (), MetricsSink::new()).unwrap();
//! let _ = sim.block_on(run); // the first failure ends the run
//! record_handle(&handle);
//!
//! let text = prometheus.render();
//! assert!(text.contains("autoscaled_pool_tasks_started_total"));
//! assert!(text.contains("autoscaled_pool_tasks_failed_total 1"));
//! assert!(text.contains("autoscaled_pool_desired_concurrency"));
//! assert!(text.contains("autoscaled_pool_signal_ratio{signal=\"client\"}"));
//! ```

use core::future::Future;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::panic::{catch_unwind, resume_unwind};

use crate::driver::Handle;
use crate::outcome::Outcome;
use crate::pool::Event;
use crate::seams::EventSink;
use crate::status::SystemInfo;
use ::metrics::{counter, gauge};

/// An [`EventSink`] that records gauges and counters through the `metrics` facade.
///
/// To log as well, wrap both in a closure sink: `FnSink(move |e| { metrics.event(e); tracing.event(e) })`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsSink;

impl MetricsSink {
    /// A sink.
    pub fn new() -> Self {
        MetricsSink
    }
}

impl EventSink for MetricsSink {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Scaled(d) => {
                gauge!("autoscaled_pool_desired_concurrency").set(d.new as f64);
                gauge!("autoscaled_pool_current_concurrency").set(d.current as f64);
                let direction = match d.new.cmp(&d.old) {
                    core::cmp::Ordering::Greater => "up",
                    core::cmp::Ordering::Less => "down",
                    core::cmp::Ordering::Equal => "hold",
                };
                counter!("autoscaled_pool_scale_decisions_total", "direction" => direction)
                    .increment(1);
                record_info(&d.info);
            }
            Event::Status(s) => {
                gauge!("autoscaled_pool_desired_concurrency").set(s.desired_concurrency as f64);
                gauge!("autoscaled_pool_current_concurrency").set(s.current_concurrency as f64);
                record_info(&s.info);
            }
            Event::TaskTimedOut { .. } => {
                counter!("autoscaled_pool_tasks_timed_out_total").increment(1);
            }
            Event::Throttled { .. } => {
                counter!("autoscaled_pool_throttles_total").increment(1);
            }
            Event::MemoryCritical { .. } => {
                counter!("autoscaled_pool_memory_critical_total").increment(1);
            }
            _ => {}
        }
    }
}

/// Records the gauges from `handle` now: current, desired, min and max concurrency, and the signals as of
/// the last sensor sample (once a second by default).
pub fn record_handle(handle: &Handle) {
    gauge!("autoscaled_pool_current_concurrency").set(handle.current_concurrency() as f64);
    gauge!("autoscaled_pool_desired_concurrency").set(handle.desired_concurrency() as f64);
    gauge!("autoscaled_pool_min_concurrency").set(handle.min_concurrency() as f64);
    gauge!("autoscaled_pool_max_concurrency").set(handle.max_concurrency() as f64);
    if let Some(info) = handle.historical_system_info() {
        record_info(&info);
    }
}

/// Records a budget member's gauges now: its share and the permits it holds, and the whole budget's permits
/// in use and capacity. A pool at its share while the budget is spent gains nothing from another replica.
pub fn record_budget(member: &crate::budget::BudgetMember) {
    gauge!("autoscaled_pool_budget_share").set(member.share() as f64);
    gauge!("autoscaled_pool_budget_held").set(member.held() as f64);
    gauge!("autoscaled_pool_budget_in_use").set(member.budget_in_use() as f64);
    gauge!("autoscaled_pool_budget_capacity").set(member.budget_capacity() as f64);
}

fn record_info(info: &SystemInfo) {
    let builtin = [
        ("cpu", &info.cpu),
        ("memory", &info.memory),
        ("event_loop", &info.event_loop),
        ("client", &info.client),
    ];
    let custom = info.custom.iter().map(|c| (c.name, &c.info));
    for (name, ratio) in builtin.into_iter().chain(custom) {
        gauge!("autoscaled_pool_signal_ratio", "signal" => name).set(ratio.actual_ratio);
        gauge!("autoscaled_pool_signal_overloaded", "signal" => name)
            .set(f64::from(u8::from(ratio.is_overloaded())));
    }
}

/// Wraps a `run_task` closure to count tasks started, finished (succeeded), throttled, and failed (`Err`,
/// `Ok(Outcome::Failed)`, or a panic, which goes on unwinding). A task cancelled by its timeout or an abort
/// counts only as started; timeouts are counted by [`MetricsSink`].
pub fn instrument<R, Fut, O, E>(mut run_task: R) -> impl FnMut() -> Instrumented<Fut>
where
    R: FnMut() -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Clone + Into<Outcome>,
{
    move || {
        counter!("autoscaled_pool_tasks_started_total").increment(1);
        Instrumented { task: run_task() }
    }
}

pin_project_lite::pin_project! {
    /// A task future wrapped by [`instrument`].
    #[derive(Debug)]
    pub struct Instrumented<F> {
        #[pin]
        task: F,
    }
}

impl<F: Future<Output = Result<O, E>>, O: Clone + Into<Outcome>, E> Future for Instrumented<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let task = self.project().task;
        match catch_unwind(AssertUnwindSafe(|| task.poll(cx))) {
            Ok(Poll::Ready(out)) => {
                let name = match out.as_ref().map(|o| o.clone().into()) {
                    Ok(Outcome::Succeeded) => "autoscaled_pool_tasks_finished_total",
                    Ok(Outcome::Throttled { .. }) => "autoscaled_pool_tasks_throttled_total",
                    Ok(Outcome::Failed) | Err(_) => "autoscaled_pool_tasks_failed_total",
                };
                counter!(name).increment(1);
                Poll::Ready(out)
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                counter!("autoscaled_pool_tasks_failed_total").increment(1);
                resume_unwind(panic)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::record_budget;
    use crate::{Handle, Pool, PoolConfig, SharedBudget};

    #[test]
    fn a_budget_members_share_and_the_budgets_use_are_exported() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let prometheus = recorder.handle();
        let budget = SharedBudget::new(8);
        let member = budget.member(1);
        let handle = Handle::new(&Pool::new(PoolConfig::default()).unwrap());
        member.join(&handle, 5);
        member.try_acquire().unwrap();
        metrics::with_local_recorder(&recorder, || record_budget(&member));
        let text = prometheus.render();
        for line in [
            "autoscaled_pool_budget_share 5",
            "autoscaled_pool_budget_held 1",
            "autoscaled_pool_budget_in_use 1",
            "autoscaled_pool_budget_capacity 8",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
