//! The `with_<field>` setters of the `#[non_exhaustive]` settings structs, written by [`with_setters!`].

use core::time::Duration;

use super::{
    ConcurrencySettings, MemoryBudget, PoolConfig, ScalingSettings, SnapshotSettings,
    StatusSettings, ThrottleSettings, TimeoutPolicy,
};

/// Writes a `with_<field>` setter per listed field, so a `#[non_exhaustive]` settings struct, which other
/// crates cannot build with a struct literal, is built as `Default::default().with_x(..).with_y(..)`.
macro_rules! with_setters {
    ($ty:ident { $($with:ident => $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("With `", stringify!($field), "` set to `value`.")]
                #[must_use]
                pub const fn $with(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
pub(crate) use with_setters;

with_setters!(ScalingSettings {
    with_autoscale_interval => autoscale_interval: Duration,
    with_desired_concurrency_ratio => desired_concurrency_ratio: f64,
    with_scale_up_step_ratio => scale_up_step_ratio: f64,
    with_scale_down_step_ratio => scale_down_step_ratio: f64,
    with_status_log_interval => status_log_interval: Option<Duration>,
});

with_setters!(StatusSettings {
    with_current_window => current_window: Duration,
    with_history => history: Duration,
    with_cpu_overload_threshold => cpu_overload_threshold: f64,
    with_memory_overload_threshold => memory_overload_threshold: f64,
    with_event_loop_overload_threshold => event_loop_overload_threshold: f64,
    with_client_overload_threshold => client_overload_threshold: f64,
});

with_setters!(SnapshotSettings {
    with_max_used_cpu_ratio => max_used_cpu_ratio: f64,
    with_max_used_memory_ratio => max_used_memory_ratio: f64,
    with_memory_budget => memory_budget: MemoryBudget,
    with_system_wide_memory_ratio => system_wide_memory_ratio: f64,
    with_max_event_loop_delay => max_event_loop_delay: Duration,
    with_event_loop_probe_interval => event_loop_probe_interval: Duration,
    with_max_client_errors => max_client_errors: u32,
    with_client_probe_interval => client_probe_interval: Duration,
    with_sensor_interval => sensor_interval: Duration,
    with_memory_warning_cooldown => memory_warning_cooldown: Duration,
});

with_setters!(ThrottleSettings {
    with_backoff_base => backoff_base: Duration,
    with_backoff_max => backoff_max: Duration,
    with_seed => seed: u64,
});

with_setters!(PoolConfig {
    with_concurrency => concurrency: ConcurrencySettings,
    with_scaling => scaling: ScalingSettings,
    with_status => status: StatusSettings,
    with_snapshot => snapshot: SnapshotSettings,
    with_task_timeout => task_timeout: Option<Duration>,
    with_timeout_policy => timeout_policy: TimeoutPolicy,
    with_throttle => throttle: ThrottleSettings,
});
