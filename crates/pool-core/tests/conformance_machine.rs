//! Conformance ports of Crawlee's pool-level behaviour: settings validation, the autoscale controller and its
//! exact sequences, the start gate (minimum under overload, desired, pause, rate cap), runtime tuning, custom
//! load signals, and typed errors for invalid input.
//!
//! Every test runs in virtual time: the pool is driven through `poll_timeout`/`handle_timeout` with instants
//! built from numbers, never a clock or a sleep.

use core::time::Duration;

use pool_core::status::MAX_CUSTOM_SIGNALS;
use pool_core::{
    Action, ConcurrencySettings, ConfigError, CpuReading, CrawleePolicy, Event, Instant,
    MemoryBudget, MemoryReading, Pool, PoolConfig, ReadingError, Refusal, ScaleDecision,
    ScaleInput, ScaleReason, ScalingPolicy, ScalingSettings, SignalError, SignalId, SignalSet,
    SystemInfo, TaskOutcome,
};

const T0: Instant = Instant::from_secs(1_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Exactly these bounds (as Crawlee's constructors take them; `with_max` would bring desired down).
fn config(min: usize, desired: usize, max: usize) -> PoolConfig {
    PoolConfig::default().with_concurrency(ConcurrencySettings::new(min, desired, max))
}

fn pool(min: usize, desired: usize, max: usize) -> Pool {
    Pool::new(config(min, desired, max)).unwrap()
}

fn set(ids: &[SignalId]) -> SignalSet {
    let mut s = SignalSet::EMPTY;
    for id in ids {
        s.insert(*id);
    }
    s
}

fn cpu_set() -> SignalSet {
    set(&[SignalId::Cpu])
}

fn cpu(pool: &mut Pool, at: Instant, used_ratio: f64) {
    pool.handle_cpu(at, CpuReading { at, used_ratio }).unwrap();
}

/// Feeds CPU readings of `used_ratio`, one a second, from `from` to `to` inclusive.
fn cpu_each_second(pool: &mut Pool, from: Instant, to: Instant, used_ratio: f64) {
    let mut t = from;
    while t <= to {
        cpu(pool, t, used_ratio);
        t = t + secs(1);
    }
}

/// The gate twice, as a driver does: `poll_start`, then (is_task_ready said yes) `handle_task_started`.
fn book(pool: &mut Pool, now: Instant) -> Result<(), Refusal> {
    pool.poll_start(now)?;
    pool.handle_task_started(now)
}

/// Starts tasks until `current == desired`.
fn fill(pool: &mut Pool, now: Instant) {
    while pool.current_concurrency() < pool.desired_concurrency() {
        book(pool, now).unwrap();
    }
}

type Sensors<'a> = &'a mut dyn FnMut(&mut Pool, Instant);

fn no_sensors(_: &mut Pool, _: Instant) {}

fn service(pool: &mut Pool, now: Instant, sensors: Sensors<'_>, events: &mut Vec<Event>) {
    while let Some(a) = pool.poll_action() {
        if a == Action::SampleSensors {
            sensors(pool, now);
        }
    }
    events.extend(core::iter::from_fn(|| pool.poll_event()));
}

fn start(pool: &mut Pool, now: Instant, sensors: Sensors<'_>, events: &mut Vec<Event>) {
    pool.start_run(now).unwrap();
    service(pool, now, sensors, events);
}

/// A driver loop in virtual time: every deadline up to `until` is handled exactly when due, so the
/// event-loop probe never sees lag, and sensors are read whenever the machine asks.
fn drive(pool: &mut Pool, until: Instant, sensors: Sensors<'_>, events: &mut Vec<Event>) {
    for _ in 0..100_000 {
        let Some(t) = pool.poll_timeout() else {
            return;
        };
        if t > until {
            return;
        }
        pool.handle_timeout(t);
        service(pool, t, sensors, events);
    }
    panic!("the pool kept asking for wake-ups before {until}");
}

fn ticks(events: &[Event]) -> Vec<ScaleDecision> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Scaled(d) if d.reason != ScaleReason::Setter => Some(d.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// crawlee-python ConcurrencySettings validation (crawlee-python.md §2)
// ---------------------------------------------------------------------------------------------------------

fn rule(settings: ConcurrencySettings, expected: ConfigError, message: &str) {
    assert_eq!(settings.validate(), Err(expected));
    assert_eq!(expected.to_string(), message);
    let mut c = PoolConfig::default();
    c.concurrency = settings;
    assert_eq!(Pool::new(c).err(), Some(expected));
}

#[test]
fn py_concurrency_settings_rule_1_min_concurrency_must_be_1_or_larger() {
    rule(
        ConcurrencySettings::default().with_min(0),
        ConfigError::MinTooSmall,
        "min_concurrency must be 1 or larger",
    );
}

#[test]
fn py_concurrency_settings_rule_2_max_below_min() {
    rule(
        ConcurrencySettings::new(5, 5, 4),
        ConfigError::MaxBelowMin,
        "max_concurrency cannot be less than min_concurrency",
    );
}

#[test]
fn py_concurrency_settings_rule_3_desired_below_min() {
    // Python's quirk: desired stays 10 unless set, so `min_concurrency=20` alone breaks rule 3.
    rule(
        ConcurrencySettings::default().with_min(20),
        ConfigError::DesiredBelowMin,
        "desired_concurrency cannot be less than min_concurrency",
    );
}

#[test]
fn py_concurrency_settings_rule_4_desired_above_max() {
    // Likewise `max_concurrency=4` alone breaks rule 4. Python's keyword constructor is our field
    // assignment: `with_max` brings desired down with it instead (issue 12's review).
    let mut max_only = ConcurrencySettings::default();
    max_only.max_concurrency = 4;
    rule(
        max_only,
        ConfigError::DesiredAboveMax,
        "desired_concurrency cannot be greater than max_concurrency",
    );
}

#[test]
fn py_concurrency_settings_rule_5_max_tasks_per_minute_positive() {
    rule(
        ConcurrencySettings::default().with_max_tasks_per_minute(Some(0)),
        ConfigError::MaxTasksPerMinuteNotPositive,
        "max_tasks_per_minute must be positive",
    );
}

#[test]
fn py_concurrency_settings_rules_checked_in_order() {
    // min 0, max below min, desired above max and a zero rate: rule 1 is reported first.
    let all_bad = ConcurrencySettings::new(0, 3, 0).with_max_tasks_per_minute(Some(0));
    assert_eq!(all_bad.validate(), Err(ConfigError::MinTooSmall));
    let rules_2_to_5 = ConcurrencySettings::new(5, 9, 4).with_max_tasks_per_minute(Some(0));
    assert_eq!(rules_2_to_5.validate(), Err(ConfigError::MaxBelowMin));
    assert_eq!(ConcurrencySettings::default().validate(), Ok(()));
}

// ---------------------------------------------------------------------------------------------------------
// Invalid input: typed errors with a sentence, never a panic
// ---------------------------------------------------------------------------------------------------------

fn config_error(edit: impl FnOnce(&mut PoolConfig)) -> ConfigError {
    let mut c = PoolConfig::default();
    edit(&mut c);
    let err = Pool::new(c).expect_err("the config should be rejected");
    // Compared through `Debug`: a NaN payload is never equal to itself.
    assert_eq!(
        format!("{:?}", c.validate()),
        format!("{:?}", Err::<(), _>(err))
    );
    let text = err.to_string();
    assert!(
        text.len() > 20 && text.contains(' ') && !text.starts_with(' '),
        "{text:?} is not a sentence"
    );
    err
}

#[test]
fn invalid_ratios_are_typed_errors() {
    let err = config_error(|c| c.scaling.desired_concurrency_ratio = f64::NAN);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange { name: "desired_concurrency_ratio", value, zero_allowed: false }
            if value.is_nan()
    ));
    assert_eq!(
        err.to_string(),
        "desired_concurrency_ratio must be greater than 0 and at most 1, got NaN"
    );

    let err = config_error(|c| c.scaling.scale_up_step_ratio = 0.0);
    assert_eq!(
        err,
        ConfigError::RatioOutOfRange {
            name: "scale_up_step_ratio",
            value: 0.0,
            zero_allowed: false
        }
    );
    let err = config_error(|c| c.scaling.scale_down_step_ratio = 1.5);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "scale_down_step_ratio",
            ..
        }
    ));

    // Thresholds may be 0 but not negative, infinite or NaN.
    let err = config_error(|c| c.status.cpu_overload_threshold = -0.1);
    assert_eq!(
        err.to_string(),
        "cpu_overload_threshold must be between 0 and 1, got -0.1"
    );
    let err = config_error(|c| c.status.memory_overload_threshold = f64::INFINITY);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "memory_overload_threshold",
            zero_allowed: true,
            ..
        }
    ));
    let err = config_error(|c| c.status.client_overload_threshold = f64::NAN);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "client_overload_threshold",
            ..
        }
    ));
    let mut zero_threshold = PoolConfig::default();
    zero_threshold.status.event_loop_overload_threshold = 0.0;
    assert_eq!(zero_threshold.validate(), Ok(()));

    let err = config_error(|c| c.snapshot.max_used_cpu_ratio = 0.0);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "max_used_cpu_ratio",
            ..
        }
    ));
    let err = config_error(|c| c.snapshot.max_used_memory_ratio = f64::NEG_INFINITY);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "max_used_memory_ratio",
            ..
        }
    ));
    let err = config_error(|c| c.snapshot.system_wide_memory_ratio = 1.01);
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "system_wide_memory_ratio",
            ..
        }
    ));
}

#[test]
fn invalid_memory_budget_is_a_typed_error() {
    let err = config_error(|c| c.snapshot.memory_budget = MemoryBudget::Fixed(0));
    assert_eq!(err, ConfigError::ZeroMemoryBudget);
    assert_eq!(
        err.to_string(),
        "a fixed memory budget must be larger than 0 bytes"
    );
    let err = config_error(|c| c.snapshot.memory_budget = MemoryBudget::Ratio(f64::NAN));
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "memory_budget ratio",
            ..
        }
    ));
    let err = config_error(|c| c.snapshot.memory_budget = MemoryBudget::Ratio(0.0));
    assert!(matches!(
        err,
        ConfigError::RatioOutOfRange {
            name: "memory_budget ratio",
            ..
        }
    ));
}

#[test]
fn invalid_durations_are_typed_errors() {
    let err = config_error(|c| c.scaling.autoscale_interval = Duration::ZERO);
    assert_eq!(
        err,
        ConfigError::ZeroDuration {
            name: "autoscale_interval"
        }
    );
    assert_eq!(
        err.to_string(),
        "autoscale_interval must be longer than zero"
    );
    assert_eq!(
        config_error(|c| c.scaling.status_log_interval = Some(Duration::ZERO)),
        ConfigError::ZeroDuration {
            name: "status_log_interval"
        }
    );
    assert_eq!(
        config_error(|c| c.status.current_window = Duration::ZERO),
        ConfigError::ZeroDuration {
            name: "current_window"
        }
    );
    assert_eq!(
        config_error(|c| c.snapshot.client_probe_interval = Duration::ZERO),
        ConfigError::ZeroDuration {
            name: "client_probe_interval"
        }
    );
    assert_eq!(
        config_error(|c| c.task_timeout = Some(Duration::ZERO)),
        ConfigError::ZeroDuration {
            name: "task_timeout"
        }
    );
    assert_eq!(
        config_error(|c| c.status.current_window = secs(31)),
        ConfigError::WindowLongerThanHistory
    );
}

#[test]
fn invalid_history_longer_than_capacity_is_a_typed_error() {
    // An hour of 500 ms event-loop probes needs 7202 snapshots; a history holds 128.
    let err = config_error(|c| c.status.history = secs(3600));
    assert_eq!(
        err,
        ConfigError::HistoryTooLong {
            name: "event_loop_probe_interval",
            needed: 7202,
            capacity: 128
        }
    );
    assert!(
        err.to_string()
            .contains("lengthen event_loop_probe_interval or shorten the history"),
        "{err}"
    );
    // The boundary: 63 s / 0.5 s + 2 = 128 fits, and the 1 s periods need only 65.
    let mut c = PoolConfig::default();
    c.status.history = secs(63);
    assert_eq!(c.validate(), Ok(()));
    c.status.history = Duration::from_millis(63_500);
    assert!(matches!(
        c.validate(),
        Err(ConfigError::HistoryTooLong { needed: 129, .. })
    ));
}

#[test]
fn invalid_cpu_reading_is_a_reading_error() {
    let mut pool = pool(1, 1, 10);
    for bad in [f64::NAN, f64::INFINITY, -0.1] {
        let err = pool
            .handle_cpu(
                T0,
                CpuReading {
                    at: T0,
                    used_ratio: bad,
                },
            )
            .unwrap_err();
        assert!(
            matches!(err, ReadingError::InvalidCpuRatio(r) if r.to_bits() == bad.to_bits()),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("a CPU reading must be a finite ratio")
        );
        // The reading is dropped and reported as an event.
        assert!(matches!(
            pool.poll_event(),
            Some(Event::ReadingRejected {
                at: T0,
                error: ReadingError::InvalidCpuRatio(_)
            })
        ));
    }
    assert_eq!(pool.history(SignalId::Cpu).unwrap().len(), 0);
    // Above 1 is a valid (if odd) reading: JS's ratio can exceed 1.
    pool.handle_cpu(
        T0,
        CpuReading {
            at: T0,
            used_ratio: 1.5,
        },
    )
    .unwrap();
    assert_eq!(pool.history(SignalId::Cpu).unwrap().len(), 1);
}

#[test]
fn invalid_memory_and_signal_readings_are_reading_errors() {
    let mut pool = pool(1, 1, 10);
    let zero_total = MemoryReading {
        at: T0,
        used_bytes: 1,
        total_bytes: 0,
        system_used_bytes: None,
    };
    assert_eq!(
        pool.handle_memory(T0, zero_total),
        Err(ReadingError::ZeroMemoryTotal)
    );
    assert_eq!(pool.history(SignalId::Memory).unwrap().len(), 0);
    assert_eq!(
        pool.handle_signal(T0, SignalId::Custom(0), T0, true),
        Err(ReadingError::UnknownSignal(0))
    );
    assert_eq!(
        ReadingError::UnknownSignal(0).to_string(),
        "no custom load signal #0 is registered"
    );
    // A built-in id cannot be fed as a custom signal.
    assert!(pool.handle_signal(T0, SignalId::Cpu, T0, true).is_err());
    assert_eq!(pool.history(SignalId::Cpu).unwrap().len(), 0);
}

// ---------------------------------------------------------------------------------------------------------
// The autoscale controller (crawlee-python.md §1.7, crawlee-js.md §2.4, JS cases 4, 5, 14)
// ---------------------------------------------------------------------------------------------------------

fn idle_info() -> SystemInfo {
    let info = pool(1, 1, 10).historical_info(T0);
    assert!(info.is_system_idle());
    info
}

fn cpu_overloaded_info() -> SystemInfo {
    let mut info = idle_info();
    info.cpu.actual_ratio = 1.0;
    assert!(!info.is_system_idle());
    info
}

fn decide(
    current: usize,
    desired: usize,
    min: usize,
    max: usize,
    info: &SystemInfo,
) -> (usize, ScaleReason) {
    let settings = ScalingSettings::default();
    let input = ScaleInput {
        now: T0,
        current,
        desired,
        min,
        max,
        historical: info,
        finished_total: 0,
        succeeded_total: 0,
        throttled_total: 0,
        throttle_level: None,
        succeeded_latency: None,
        cpu_load: None,
        memory_load: None,
        load_running: current,
        settings: &settings,
    };
    let s = CrawleePolicy.decide(&input);
    (s.desired, s.reason)
}

#[test]
fn js_works_with_low_values() {
    let (idle, over) = (idle_info(), cpu_overloaded_info());
    // desired 1, nothing running: floor(0.9) = 0, so it scales up at once.
    assert_eq!(decide(0, 1, 1, 100, &idle), (2, ScaleReason::Idle));
    assert_eq!(
        decide(0, 2, 1, 100, &idle),
        (
            2,
            ScaleReason::Underused {
                current: 0,
                required: 1
            }
        )
    );
    assert_eq!(decide(2, 2, 1, 100, &idle), (3, ScaleReason::Idle));
    // "okNow = false" cannot reach the policy at all: it sees only the historical verdict.
    assert_eq!(decide(3, 3, 1, 100, &idle), (4, ScaleReason::Idle));
    assert_eq!(
        decide(3, 4, 1, 100, &over),
        (3, ScaleReason::Overloaded(cpu_set()))
    );
}

#[test]
fn js_works_with_high_values() {
    let (idle, over) = (idle_info(), cpu_overloaded_info());
    assert_eq!(
        decide(44, 50, 1, 100, &idle),
        (
            50,
            ScaleReason::Underused {
                current: 44,
                required: 45
            }
        )
    );
    assert_eq!(decide(45, 50, 1, 100, &idle), (53, ScaleReason::Idle));
    assert_eq!(
        decide(45, 53, 1, 100, &over),
        (50, ScaleReason::Overloaded(cpu_set()))
    );
    // The clamps: never above max, never below min, and reasons say so.
    assert_eq!(decide(100, 99, 1, 100, &idle), (100, ScaleReason::Idle));
    assert_eq!(decide(100, 100, 1, 100, &idle), (100, ScaleReason::AtMax));
    assert_eq!(
        decide(0, 1, 1, 100, &over),
        (1, ScaleReason::AtMin(cpu_set()))
    );
}

#[test]
fn js_works_with_low_values_through_the_machine() {
    let mut pool = pool(1, 1, 100);
    let mut ev = Vec::new();
    // CPU idle until 25 s, then pinned.
    let over_from = T0 + secs(26);
    let mut sensors = |p: &mut Pool, t: Instant| cpu(p, t, if t >= over_from { 1.0 } else { 0.0 });
    start(&mut pool, T0, &mut sensors, &mut ev);
    assert_eq!(pool.desired_concurrency(), 2);

    drive(&mut pool, T0 + secs(10), &mut sensors, &mut ev);
    assert_eq!(pool.desired_concurrency(), 2);

    book(&mut pool, T0 + secs(10)).unwrap();
    book(&mut pool, T0 + secs(10)).unwrap();
    drive(&mut pool, T0 + secs(20), &mut sensors, &mut ev);
    assert_eq!(pool.desired_concurrency(), 3);

    book(&mut pool, T0 + secs(20)).unwrap();
    drive(&mut pool, T0 + secs(30), &mut sensors, &mut ev);
    // "okNow = false": the current window is overloaded, the history is not; the autoscaler still scales up.
    assert!(!pool.current_info(T0 + secs(30)).is_system_idle());
    assert_eq!(pool.desired_concurrency(), 4);

    // "okLately = false": by 40 s, 14 of the history's 29 s were overloaded.
    drive(&mut pool, T0 + secs(40), &mut sensors, &mut ev);
    assert_eq!(pool.desired_concurrency(), 3);

    let news: Vec<(usize, usize)> = ticks(&ev).iter().map(|d| (d.current, d.new)).collect();
    assert_eq!(news, [(0, 2), (0, 2), (2, 3), (3, 4), (3, 3)]);
}

/// crawlee-python.md §1.7: the measured growth from 1 with max 200 and an always idle system.
const GROWTH: [usize; 60] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 25, 27, 29, 31,
    33, 35, 37, 39, 41, 44, 47, 50, 53, 56, 59, 62, 66, 70, 74, 78, 82, 87, 92, 97, 102, 108, 114,
    120, 126, 133, 140, 147, 155, 163, 172, 181, 191, 200,
];

#[test]
fn py_autoscale_growth_sequence_from_1_to_200() {
    let mut pool = pool(1, 1, 200);
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    fill(&mut pool, T0);
    for k in 1..=59 {
        let at = T0 + secs(10 * k);
        drive(&mut pool, at, &mut no_sensors, &mut ev);
        fill(&mut pool, at);
    }
    let ticks = ticks(&ev);
    // One tick at start and one every 10 s.
    assert_eq!(ticks.len(), 60);
    for (k, d) in ticks.iter().enumerate() {
        assert_eq!(d.at, T0 + secs(10 * k as u64));
    }
    let mut seq = vec![ticks[0].old];
    seq.extend(ticks.iter().map(|d| d.new).take(59));
    assert_eq!(seq, GROWTH);
    // 59 steps: max is reached at the tick at 580 s; the next tick holds at max.
    assert_eq!(ticks[58].at, T0 + secs(580));
    assert_eq!(ticks[59].new, 200);
    assert_eq!(ticks[59].reason, ScaleReason::AtMax);
    assert_eq!(pool.current_concurrency(), 200);
}

/// crawlee-python.md §1.7 lists the scale-down from 200 through 36; the rest follows the same rule
/// (`desired − ceil(0.05 × desired)`), 57 ticks in all as crawlee-js.md §2.4 says.
const SHRINK: [usize; 57] = [
    190, 180, 171, 162, 153, 145, 137, 130, 123, 116, 110, 104, 98, 93, 88, 83, 78, 74, 70, 66, 62,
    58, 55, 52, 49, 46, 43, 40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 19, 18, 17, 16, 15, 14, 13,
    12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
];

#[test]
fn py_scale_down_sequence_from_200() {
    let mut pool = pool(1, 200, 200);
    let mut ev = Vec::new();
    let mut pinned = |p: &mut Pool, t: Instant| cpu(p, t, 1.0);
    start(&mut pool, T0, &mut pinned, &mut ev);
    drive(&mut pool, T0 + secs(580), &mut pinned, &mut ev);
    let ticks = ticks(&ev);
    assert_eq!(ticks.len(), 59);
    // At start no CPU reading has arrived yet: idle, and already at max.
    assert_eq!(ticks[0].reason, ScaleReason::AtMax);
    let seq: Vec<usize> = ticks[1..58].iter().map(|d| d.new).collect();
    assert_eq!(seq, SHRINK);
    for d in &ticks[1..58] {
        assert_eq!(d.reason, ScaleReason::Overloaded(cpu_set()));
    }
    assert_eq!(ticks[58].new, 1);
    assert_eq!(ticks[58].reason, ScaleReason::AtMin(cpu_set()));
}

#[test]
fn py_autoscales() {
    // min 1, desired 1, max 4: idle grows to 4, then an overloaded CPU brings it back to 1.
    let mut pool = pool(1, 1, 4);
    let mut ev = Vec::new();
    let over_from = T0 + secs(30);
    let mut sensors = |p: &mut Pool, t: Instant| cpu(p, t, if t >= over_from { 1.0 } else { 0.0 });
    start(&mut pool, T0, &mut sensors, &mut ev);
    fill(&mut pool, T0);
    for k in 1..=8 {
        let at = T0 + secs(10 * k);
        drive(&mut pool, at, &mut sensors, &mut ev);
        fill(&mut pool, at);
    }
    let seq: Vec<usize> = ticks(&ev).iter().map(|d| d.new).collect();
    // At 40 s only 10 of the history's 29 s were overloaded (0.345 ≤ 0.4): still idle.
    assert_eq!(seq, [2, 3, 4, 4, 4, 3, 2, 1, 1]);
    // Scaling down never cancels: the four tasks still run.
    assert_eq!(pool.current_concurrency(), 4);
}

#[test]
fn py_autoscales_uses_desired_concurrency_ratio() {
    let mut c = config(2, 2, 4);
    c.scaling.desired_concurrency_ratio = 1.0;
    let mut pool = Pool::new(c).unwrap();
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    // is_task_ready says yes once, then no.
    book(&mut pool, T0).unwrap();
    pool.poll_start(T0).unwrap();
    pool.handle_no_task_ready(T0);
    drive(&mut pool, T0 + secs(40), &mut no_sensors, &mut ev);
    let ticks = ticks(&ev);
    assert_eq!(ticks.len(), 5);
    for d in &ticks[1..] {
        assert_eq!(d.new, 2);
        assert_eq!(
            d.reason,
            ScaleReason::Underused {
                current: 1,
                required: 2
            }
        );
    }
    assert_eq!(pool.desired_concurrency(), 2);
}

#[test]
fn py_autoscaler_scales_down_at_t0_when_history_overloaded() {
    // Edge case 11: the first tick runs at once with whatever history exists (histories outlive runs).
    let mut pool = pool(1, 3, 10);
    cpu(&mut pool, T0 - secs(2), 1.0);
    cpu(&mut pool, T0 - secs(1), 1.0);
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    let ticks = ticks(&ev);
    assert_eq!(ticks.len(), 1);
    assert_eq!((ticks[0].old, ticks[0].new, ticks[0].current), (3, 2, 0));
    assert_eq!(ticks[0].reason, ScaleReason::Overloaded(cpu_set()));
    assert_eq!(pool.report().started, 0);
}

#[test]
fn js_should_work_with_logging_interval_null() {
    let mut c = config(1, 1, 10);
    c.scaling.status_log_interval = None;
    let mut pool = Pool::new(c).unwrap();
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    assert_eq!(pool.desired_concurrency(), 2);
    drive(&mut pool, T0 + secs(130), &mut no_sensors, &mut ev);
    assert!(!ev.iter().any(|e| matches!(e, Event::Status(_))));
    assert_eq!(ticks(&ev).len(), 14);
}

#[test]
fn py_status_log_at_start_and_every_60s() {
    let mut pool = pool(1, 1, 10);
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    drive(&mut pool, T0 + secs(130), &mut no_sensors, &mut ev);
    let records: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Status(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let at: Vec<Instant> = records.iter().map(|r| r.at).collect();
    assert_eq!(at, [T0, T0 + secs(60), T0 + secs(120)]);
    // The record at start comes after the first tick, so it already shows desired 2.
    assert_eq!(records[0].desired_concurrency, 2);
    let line = records[0].to_string();
    assert!(
        line.starts_with("current_concurrency = 0; desired_concurrency = 2; cpu = "),
        "{line}"
    );
    assert!(line.contains("; client_info = "), "{line}");
}

// ---------------------------------------------------------------------------------------------------------
// The start gate
// ---------------------------------------------------------------------------------------------------------

/// A pool whose CPU has been pinned for the 5 s before `T0`.
fn overloaded_pool(min: usize, desired: usize, max: usize) -> Pool {
    let mut pool = pool(min, desired, max);
    cpu_each_second(&mut pool, T0 - secs(5), T0, 1.0);
    pool
}

fn admit_all(pool: &mut Pool, now: Instant) -> Refusal {
    for _ in 0..1000 {
        if let Err(r) = book(pool, now) {
            return r;
        }
    }
    panic!("the gate never closed");
}

#[test]
fn py_keeps_min_concurrency_when_overloaded() {
    // Edge case 10 (#2235): min 3, desired 8, overloaded: exactly 3 run, never more.
    let mut pool = overloaded_pool(3, 8, 10);
    pool.start_run(T0).unwrap();
    assert_eq!(admit_all(&mut pool, T0), Refusal::Overloaded(cpu_set()));
    assert_eq!(pool.current_concurrency(), 3);

    cpu_each_second(&mut pool, T0 + secs(1), T0 + secs(3), 1.0);
    assert_eq!(
        admit_all(&mut pool, T0 + secs(3)),
        Refusal::Overloaded(cpu_set())
    );
    assert_eq!(pool.current_concurrency(), 3);

    // One finishes: the floor lets exactly one more in.
    pool.handle_task_finished(T0 + secs(3), TaskOutcome::Succeeded);
    assert_eq!(
        admit_all(&mut pool, T0 + secs(3)),
        Refusal::Overloaded(cpu_set())
    );
    assert_eq!(pool.current_concurrency(), 3);
    assert_eq!(pool.report().started, 4);
}

#[test]
fn py_keeps_min_concurrency_still_honours_pause_and_readiness() {
    // Below min the overload is ignored, but pause and task readiness still apply (edge case 10).
    let mut pool = overloaded_pool(3, 8, 10);
    pool.start_run(T0).unwrap();
    pool.pause();
    assert_eq!(pool.poll_start(T0), Err(Refusal::Paused));
    assert_eq!(pool.current_concurrency(), 0);
    pool.resume();
    assert_eq!(pool.poll_start(T0), Ok(()));
    pool.handle_no_task_ready(T0);
    assert_eq!(pool.last_refusal(), Some(Refusal::NoTaskReady));
    assert_eq!(pool.current_concurrency(), 0);
    assert_eq!(admit_all(&mut pool, T0), Refusal::Overloaded(cpu_set()));
    assert_eq!(pool.current_concurrency(), 3);
}

#[test]
fn js_works_at_min_concurrency_when_currently_overloaded() {
    let mut pool = overloaded_pool(1, 10, 10);
    pool.start_run(T0).unwrap();
    assert_eq!(admit_all(&mut pool, T0), Refusal::Overloaded(cpu_set()));
    assert_eq!(pool.current_concurrency(), 1);
    pool.set_min_concurrency(T0, 5).unwrap();
    assert_eq!(admit_all(&mut pool, T0), Refusal::Overloaded(cpu_set()));
    assert_eq!(pool.current_concurrency(), 5);
}

#[test]
fn py_desired_below_current_waits_for_tasks_to_finish() {
    // Edge case 9: a lower desired cancels nothing; starts wait until current < desired.
    let mut pool = pool(1, 5, 10);
    pool.start_run(T0).unwrap();
    fill(&mut pool, T0);
    pool.set_desired_concurrency(T0, 3).unwrap();
    assert_eq!(pool.current_concurrency(), 5);
    assert_eq!(
        pool.poll_start(T0),
        Err(Refusal::AtDesired {
            current: 5,
            desired: 3
        })
    );
    pool.handle_task_finished(T0, TaskOutcome::Succeeded);
    pool.handle_task_finished(T0, TaskOutcome::Succeeded);
    assert_eq!(
        pool.poll_start(T0),
        Err(Refusal::AtDesired {
            current: 3,
            desired: 3
        })
    );
    pool.handle_task_finished(T0, TaskOutcome::Succeeded);
    assert_eq!(pool.poll_start(T0), Ok(()));
}

#[test]
fn py_pause_blocks_new_starts_only() {
    // Edge case 8: running tasks go on, new starts wait, the autoscaler keeps ticking.
    let mut pool = pool(1, 2, 10);
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    book(&mut pool, T0).unwrap();
    pool.pause();
    assert!(pool.is_paused());
    assert_eq!(pool.poll_start(T0), Err(Refusal::Paused));
    ev.clear();
    drive(&mut pool, T0 + secs(10), &mut no_sensors, &mut ev);
    assert_eq!(ticks(&ev).len(), 1);
    assert_eq!(pool.current_concurrency(), 1);
    assert_eq!(
        pool.handle_task_finished(T0 + secs(10), TaskOutcome::Succeeded),
        pool_core::Verdict::Continue
    );
    assert_eq!(pool.poll_start(T0 + secs(10)), Err(Refusal::Paused));
    pool.resume();
    assert_eq!(pool.poll_start(T0 + secs(10)), Ok(()));
}

#[test]
fn py_allows_multiple_run_calls_and_keeps_desired() {
    // Edge case 16: desired is not reset between runs, and snapshot histories carry over.
    let mut pool = pool(1, 1, 10);
    pool.start_run(T0).unwrap();
    assert_eq!(pool.desired_concurrency(), 2);
    cpu(&mut pool, T0, 0.1);
    fill(&mut pool, T0);
    assert_eq!(
        pool.end_run(T0).err(),
        Some(pool_core::RunError::TasksInFlight(2))
    );
    pool.handle_task_finished(T0 + secs(1), TaskOutcome::Succeeded);
    pool.handle_task_finished(T0 + secs(1), TaskOutcome::Succeeded);
    let first = pool.end_run(T0 + secs(1)).unwrap();
    assert_eq!(first.started, 2);
    assert_eq!(first.succeeded, 2);
    assert_eq!(pool.current_concurrency(), 0);

    pool.start_run(T0 + secs(2)).unwrap();
    // The start tick sees desired 2 with nothing running: floor(1.8) = 1 > 0, so it holds at 2.
    assert_eq!(pool.desired_concurrency(), 2);
    assert_eq!(pool.history(SignalId::Cpu).unwrap().len(), 1);
    fill(&mut pool, T0 + secs(2));
    assert_eq!(pool.report().started, 2);
}

// ---------------------------------------------------------------------------------------------------------
// crawlee JS v4 concurrency_system.test.ts: Runtime tuning (and JS case 3)
// ---------------------------------------------------------------------------------------------------------

fn setter_events(pool: &mut Pool) -> Vec<(usize, usize)> {
    core::iter::from_fn(|| pool.poll_event())
        .filter_map(|e| match e {
            Event::Scaled(d) if d.reason == ScaleReason::Setter => Some((d.old, d.new)),
            _ => None,
        })
        .collect()
}

#[test]
fn js_runtime_tuning_max_lowers_desired() {
    let mut pool = pool(1, 50, 100);
    pool.start_run(T0).unwrap();
    assert_eq!(pool.desired_concurrency(), 50);
    let _ = setter_events(&mut pool);
    pool.set_max_concurrency(T0, 10).unwrap();
    assert_eq!(pool.desired_concurrency(), 10);
    assert_eq!(pool.max_concurrency(), 10);
    assert_eq!(setter_events(&mut pool), [(50, 10)]);
    for _ in 0..10 {
        book(&mut pool, T0).unwrap();
    }
    assert_eq!(
        book(&mut pool, T0),
        Err(Refusal::AtDesired {
            current: 10,
            desired: 10
        })
    );
}

#[test]
fn js_runtime_tuning_min_raises_desired() {
    let mut pool = pool(1, 5, 100);
    pool.set_min_concurrency(T0, 20).unwrap();
    assert_eq!(pool.min_concurrency(), 20);
    assert_eq!(pool.desired_concurrency(), 20);
    assert_eq!(setter_events(&mut pool), [(5, 20)]);
}

#[test]
fn js_runtime_tuning_desired_clamps() {
    let mut pool = pool(5, 10, 50);
    pool.set_desired_concurrency(T0, 500).unwrap();
    assert_eq!(pool.desired_concurrency(), 50);
    pool.set_desired_concurrency(T0, 1).unwrap();
    assert_eq!(pool.desired_concurrency(), 5);
    assert_eq!(setter_events(&mut pool), [(10, 50), (50, 5)]);
    // Setting the same value again is no change and no event.
    pool.set_desired_concurrency(T0, 5).unwrap();
    assert!(setter_events(&mut pool).is_empty());
    assert_eq!(
        pool.set_desired_concurrency(T0, 0),
        Err(ConfigError::MinTooSmall)
    );
    assert_eq!(pool.desired_concurrency(), 5);
}

#[test]
fn js_runtime_tuning_max_wins() {
    let mut pool = pool(10, 50, 100);
    pool.set_max_concurrency(T0, 4).unwrap();
    assert_eq!(
        (
            pool.min_concurrency(),
            pool.desired_concurrency(),
            pool.max_concurrency()
        ),
        (4, 4, 4)
    );
    assert_eq!(
        pool.set_max_concurrency(T0, 0),
        Err(ConfigError::MinTooSmall)
    );
}

#[test]
fn js_runtime_tuning_min_above_max_is_an_error() {
    // Deliberate divergence: JS lets a setter move max up to a new min; ours never raises the safety ceiling
    // implicitly and returns a typed error instead, changing nothing.
    let mut pool = pool(1, 10, 100);
    let err = pool.set_min_concurrency(T0, 200).unwrap_err();
    assert_eq!(err, ConfigError::MinAboveMax { min: 200, max: 100 });
    assert_eq!(
        err.to_string(),
        "min_concurrency 200 cannot be greater than max_concurrency 100; raise max_concurrency first"
    );
    assert_eq!(
        (
            pool.min_concurrency(),
            pool.desired_concurrency(),
            pool.max_concurrency()
        ),
        (1, 10, 100)
    );
    assert_eq!(
        pool.set_min_concurrency(T0, 0),
        Err(ConfigError::MinTooSmall)
    );
    assert!(setter_events(&mut pool).is_empty());
}

#[test]
fn js_runtime_tuning_constructor_rejects_instead_of_clamping() {
    // Deliberate divergence: JS v4 clamps {max 3, desired 10} to 3 and {min 10, desired 3} to 10; we follow
    // Python's ConcurrencySettings validation and reject both.
    assert_eq!(
        Pool::new(config(1, 10, 3)).err(),
        Some(ConfigError::DesiredAboveMax)
    );
    assert_eq!(
        Pool::new(config(10, 3, 100)).err(),
        Some(ConfigError::DesiredBelowMin)
    );
}

#[test]
fn js_enables_setting_concurrency() {
    let mut pool = pool(3, 9, 13);
    assert_eq!(
        (
            pool.min_concurrency(),
            pool.max_concurrency(),
            pool.desired_concurrency()
        ),
        (3, 13, 9)
    );
    pool.start_run(T0).unwrap();
    pool.set_min_concurrency(T0, 4).unwrap();
    pool.set_max_concurrency(T0, 14).unwrap();
    pool.set_desired_concurrency(T0, 7).unwrap();
    assert_eq!(
        (
            pool.min_concurrency(),
            pool.max_concurrency(),
            pool.desired_concurrency()
        ),
        (4, 14, 7)
    );
}

// ---------------------------------------------------------------------------------------------------------
// crawlee JS v4 concurrency_system.test.ts: Budget, and Python's test_max_tasks_per_minute_works
// ---------------------------------------------------------------------------------------------------------

#[test]
fn js_budget_at_desired_refusal() {
    let mut pool = pool(1, 2, 2);
    pool.start_run(T0).unwrap();
    assert_eq!(pool.poll_start(T0), Ok(()));
    book(&mut pool, T0).unwrap();
    book(&mut pool, T0).unwrap();
    assert_eq!(
        pool.poll_start(T0),
        Err(Refusal::AtDesired {
            current: 2,
            desired: 2
        })
    );
    pool.handle_task_finished(T0, TaskOutcome::Succeeded);
    assert_eq!(pool.poll_start(T0), Ok(()));
}

#[test]
fn js_budget_desired_1_second_start_refused() {
    let mut pool = pool(1, 1, 1);
    pool.start_run(T0).unwrap();
    pool.poll_start(T0).unwrap();
    pool.handle_task_started(T0).unwrap();
    // The second confirmation re-checks the gate and fails; the count does not move.
    assert_eq!(
        pool.handle_task_started(T0),
        Err(Refusal::AtDesired {
            current: 1,
            desired: 1
        })
    );
    assert_eq!(pool.current_concurrency(), 1);
    assert_eq!(pool.report().started, 1);
}

#[test]
fn js_budget_max_tasks_per_minute() {
    // JS counts starts in a sliding minute (2 per minute: book, book, refuse); we follow Python and space
    // starts evenly, 60 s / 2 = 30 s apart.
    let mut c = config(5, 5, 5);
    c.concurrency.max_tasks_per_minute = Some(2);
    let mut pool = Pool::new(c).unwrap();
    pool.start_run(T0).unwrap();
    book(&mut pool, T0).unwrap();
    let until = T0 + secs(30);
    assert_eq!(book(&mut pool, T0), Err(Refusal::RateLimited { until }));
    // Ending a task does not refund the start.
    pool.handle_task_finished(T0 + secs(1), TaskOutcome::Succeeded);
    assert_eq!(
        pool.poll_start(T0 + secs(1)),
        Err(Refusal::RateLimited { until })
    );
    assert!(pool.poll_timeout().unwrap() <= until);
    assert_eq!(
        pool.poll_start(T0 + secs(30) - Duration::from_nanos(1)),
        Err(Refusal::RateLimited { until })
    );
    book(&mut pool, until).unwrap();
    assert_eq!(
        pool.poll_start(until),
        Err(Refusal::RateLimited {
            until: until + secs(30)
        })
    );
    assert_eq!(pool.current_concurrency(), 1);
}

#[test]
fn js_budget_unlimited_rate() {
    let mut pool =
        Pool::new(PoolConfig::default().with_concurrency(ConcurrencySettings::fixed(1000)))
            .unwrap();
    pool.start_run(T0).unwrap();
    for _ in 0..1000 {
        book(&mut pool, T0).unwrap();
    }
    assert_eq!(pool.current_concurrency(), 1000);
    assert_eq!(
        book(&mut pool, T0),
        Err(Refusal::AtDesired {
            current: 1000,
            desired: 1000
        })
    );
}

#[test]
fn py_max_tasks_per_minute_works() {
    // 1/1/1 at 120 per minute, tasks of 0.1 s: within the first 0.5 s only one task runs.
    let mut c = config(1, 1, 1);
    c.concurrency.max_tasks_per_minute = Some(120);
    let mut pool = Pool::new(c).unwrap();
    let mut ev = Vec::new();
    start(&mut pool, T0, &mut no_sensors, &mut ev);
    book(&mut pool, T0).unwrap();
    pool.handle_task_finished(T0 + ms(100), TaskOutcome::Succeeded);
    let until = T0 + ms(500);
    assert_eq!(
        pool.poll_start(T0 + ms(100)),
        Err(Refusal::RateLimited { until })
    );
    assert_eq!(pool.poll_timeout(), Some(until));
    assert_eq!(
        pool.poll_start(T0 + ms(499)),
        Err(Refusal::RateLimited { until })
    );
    assert_eq!(pool.report().started, 1);
    book(&mut pool, until).unwrap();
    assert_eq!(pool.report().started, 2);
}

// ---------------------------------------------------------------------------------------------------------
// Custom load signals (JS §3.4/§3.6, case 20, v4 "Signals")
// ---------------------------------------------------------------------------------------------------------

#[test]
fn js_duplicate_signal_names() {
    let mut pool = pool(1, 1, 10);
    let id = pool.add_signal("proxyHealth", 0.3).unwrap();
    assert_eq!(id, SignalId::Custom(0));
    let err = pool.add_signal("proxyHealth", 0.5).unwrap_err();
    assert_eq!(err, SignalError::DuplicateName("proxyHealth"));
    assert_eq!(
        err.to_string(),
        "duplicate load signal name \"proxyHealth\": rename one of them"
    );
    // Built-in names are taken too.
    for builtin in ["cpu", "memory", "event_loop", "client"] {
        assert_eq!(
            pool.add_signal(builtin, 0.5),
            Err(SignalError::DuplicateName(builtin))
        );
    }
    assert_eq!(pool.custom_signal_count(), 1);
}

#[test]
fn js_custom_signal_registration_limits() {
    let mut pool = pool(1, 1, 10);
    assert!(matches!(
        pool.add_signal("nan", f64::NAN),
        Err(SignalError::InvalidThreshold(t)) if t.is_nan()
    ));
    assert_eq!(
        pool.add_signal("big", 1.5),
        Err(SignalError::InvalidThreshold(1.5))
    );
    let names = ["a", "b", "c", "d", "e", "f"];
    for (i, name) in names.iter().take(MAX_CUSTOM_SIGNALS).enumerate() {
        assert_eq!(pool.add_signal(name, 0.5), Ok(SignalId::Custom(i as u8)));
    }
    assert_eq!(
        pool.add_signal(names[MAX_CUSTOM_SIGNALS], 0.5),
        Err(SignalError::TooMany)
    );
    assert_eq!(pool.custom_signal_count(), MAX_CUSTOM_SIGNALS);
}

#[test]
fn js_custom_load_signal_overloads_status() {
    // JS case 20: `proxyHealth`, 5 overloaded snapshots 100 ms apart, ratio 0.3; min 1, max 10. Desired never
    // leaves 1 and only the floor's one task runs.
    let mut pool = pool(1, 1, 10);
    let proxy = pool.add_signal("proxyHealth", 0.3).unwrap();
    for k in 0..5 {
        pool.handle_signal(T0, proxy, T0 - ms(400) + ms(100 * k), true)
            .unwrap();
    }
    let mut ev = Vec::new();
    let mut sensors = |p: &mut Pool, t: Instant| p.handle_signal(t, proxy, t, true).unwrap();
    start(&mut pool, T0, &mut sensors, &mut ev);
    assert_eq!(
        admit_all(&mut pool, T0),
        Refusal::Overloaded(set(&[SignalId::Custom(0)]))
    );
    drive(&mut pool, T0 + secs(60), &mut sensors, &mut ev);
    assert_eq!(pool.desired_concurrency(), 1);
    let ticks = ticks(&ev);
    assert_eq!(ticks.len(), 7);
    for d in &ticks {
        assert_eq!(d.new, 1);
        assert_eq!(d.reason, ScaleReason::AtMin(set(&[SignalId::Custom(0)])));
        assert_eq!(d.info.custom[0].name, "proxyHealth");
    }
    assert_eq!(pool.report().started, 1);
}

#[test]
fn js_custom_load_signal_reported_in_current_status() {
    // JS case 20's second half: `navTimeout` (ratio 0.2, overloaded) shows in the current status by name.
    let mut pool = pool(1, 1, 10);
    let proxy = pool.add_signal("proxyHealth", 0.3).unwrap();
    let nav = pool.add_signal("navTimeout", 0.2).unwrap();
    for k in 0..5 {
        let at = T0 + ms(100 * k);
        pool.handle_signal(at, proxy, at, false).unwrap();
        pool.handle_signal(at, nav, at, true).unwrap();
    }
    let now = T0 + ms(400);
    let info = pool.current_info(now);
    assert_eq!(info.custom.len(), 2);
    assert_eq!(info.custom[1].name, "navTimeout");
    assert_eq!(info.custom[1].info.limit_ratio, 0.2);
    assert_eq!(info.custom[1].info.actual_ratio, 1.0);
    assert!(info.custom[1].info.is_overloaded());
    assert!(!info.custom[0].info.is_overloaded());
    assert_eq!(info.overloaded(), set(&[nav]));
    let line = info.to_string();
    assert!(line.contains("navTimeout 1.000!"), "{line}");
}
