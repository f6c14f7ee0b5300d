//! The lease as gauges through the `metrics` facade (feature `metrics`): what a replica autoscaler (HPA,
//! KEDA) reads beside the pools' own gauges (`pool_core::metrics`).
//!
//! | gauge | value |
//! |---|---|
//! | `autoscaled_pool_lease_demand` | what this process's pools want (their summed desired concurrency) |
//! | `autoscaled_pool_lease_leased` | permits on record in Redis for this process |
//! | `autoscaled_pool_lease_share` | this process's fair share of the budget |
//! | `autoscaled_pool_lease_ceiling` | the budget's ceiling (its capacity, or lower after a throttle) |
//! | `autoscaled_pool_lease_capacity` | the budget's capacity |
//! | `autoscaled_pool_lease_processes` | processes with a live lease |
//! | `autoscaled_pool_lease_outage` | 1 while Redis does not answer |
//!
//! Summed over replicas, `demand` above `capacity` means the budget is the limit: another replica adds
//! nothing. `demand` near `share` in every replica with `ceiling` at `capacity` means the replicas are the
//! limit: add one.

use metrics::gauge;

use crate::RedisBudget;

/// Records `budget`'s lease gauges now (call it on the cadence of your scrape).
pub fn record_lease(budget: &RedisBudget) {
    let s = budget.stats();
    gauge!("autoscaled_pool_lease_demand").set(budget.local().demand() as f64);
    gauge!("autoscaled_pool_lease_leased").set(s.leased as f64);
    gauge!("autoscaled_pool_lease_share").set(s.share as f64);
    gauge!("autoscaled_pool_lease_ceiling").set(s.ceiling as f64);
    gauge!("autoscaled_pool_lease_capacity").set(budget.capacity() as f64);
    gauge!("autoscaled_pool_lease_processes").set(s.processes as f64);
    gauge!("autoscaled_pool_lease_outage").set(if s.outage { 1.0 } else { 0.0 });
}
