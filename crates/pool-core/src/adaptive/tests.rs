//! Unit tests of the adaptive policy in isolation: the ramp, the hold, cuts and determinism.

use super::*;
use crate::PoolConfig;
use crate::config::ScalingSettings;
use crate::pool::Pool;
use crate::status::SystemInfo;

fn idle() -> SystemInfo {
    Pool::new(PoolConfig::default())
        .unwrap()
        .historical_info(Instant::ZERO)
}

fn input<'a>(
    t: u64,
    current: usize,
    desired: usize,
    info: &'a SystemInfo,
    finished: u64,
    settings: &'a ScalingSettings,
) -> ScaleInput<'a> {
    ScaleInput {
        now: Instant::from_secs(t),
        current,
        desired,
        min: 1,
        max: 200,
        historical: info,
        finished_total: finished,
        succeeded_total: finished,
        throttled_total: 0,
        throttle_level: None,
        succeeded_latency: None,
        cpu_load: None,
        memory_load: None,
        load_running: current,
        settings,
    }
}

fn reason(s: &Scale) -> &'static str {
    match s.reason {
        ScaleReason::Policy(r) => r,
        other => panic!("not a policy reason: {other:?}"),
    }
}

#[test]
fn ramps_geometrically_while_idle_and_busy() {
    let (info, set) = (idle(), ScalingSettings::default());
    let mut p = AdaptivePolicy::default();
    let mut desired = 10;
    for t in 0..4 {
        let s = p.decide(&input(t, desired, desired, &info, 0, &set));
        assert_eq!(reason(&s), why::RAMP);
        assert_eq!(s.desired, ceil_mul(desired, 1.15));
        desired = s.desired;
    }
    assert_eq!(desired, 20);
}

#[test]
fn holds_without_demand() {
    let (info, set) = (idle(), ScalingSettings::default());
    let mut p = AdaptivePolicy::default();
    let s = p.decide(&input(0, 5, 10, &info, 0, &set));
    assert_eq!((s.desired, reason(&s)), (10, why::NO_DEMAND));
}

#[test]
fn rising_memory_overload_cuts_hard_and_never_below_min() {
    let set = ScalingSettings::default();
    let calm = idle();
    let mut hot = idle();
    hot.memory.actual_ratio = 0.033;
    let mut p = AdaptivePolicy::default();
    for t in 0..3 {
        p.decide(&input(t, 40, 40, &calm, 0, &set));
    }
    let s = p.decide(&input(3, 40, 40, &hot, 0, &set));
    assert_eq!(reason(&s), why::CUT_MEMORY);
    assert_eq!(s.desired, 30); // floor(40 × 0.75)
    assert!(s.desired >= 1);

    let mut q = AdaptivePolicy::default();
    let s = q.decide(&ScaleInput {
        min: 5,
        ..input(0, 5, 5, &hot, 0, &set)
    });
    assert_eq!(s.desired, 5);
}

#[test]
fn one_noisy_cpu_reading_does_not_cut_but_a_rising_trend_does() {
    let (set, calm) = (ScalingSettings::default(), idle());
    let mut p = after_a_first_tick_at_40(&calm, &set);
    let mut blip = idle();
    blip.cpu.actual_ratio = 0.033;
    let s = p.decide(&input(1, 46, 46, &blip, 0, &set));
    assert_eq!(reason(&s), why::RAMP);
    let mut more = idle();
    more.cpu.actual_ratio = 0.066;
    let s = p.decide(&input(2, 53, 53, &more, 0, &set));
    assert_eq!(reason(&s), why::CUT_LOCAL);
    assert!(s.desired < 53);
}

#[test]
fn is_deterministic_and_reset_restores_the_start() {
    let (info, set) = (idle(), ScalingSettings::default());
    let run = |p: &mut AdaptivePolicy| {
        (0..40)
            .map(|t| p.decide(&input(t, 30, 30, &info, t * 25, &set)).desired)
            .collect::<heapless::Vec<usize, 64>>()
    };
    let mut a = AdaptivePolicy::default();
    let mut b = AdaptivePolicy::default();
    let first = run(&mut a);
    assert_eq!(first, run(&mut b));
    a.reset(Instant::ZERO);
    assert_eq!(a, AdaptivePolicy::default());
}

/// A default policy that has seen one calm tick with 40 tasks running.
fn after_a_first_tick_at_40(calm: &SystemInfo, set: &ScalingSettings) -> AdaptivePolicy {
    let mut p = AdaptivePolicy::default();
    p.decide(&input(0, 40, 40, calm, 0, set));
    p
}

#[test]
fn a_fresh_throttle_drops_desired_to_the_level_the_service_took_and_holds_there() {
    let (set, calm) = (ScalingSettings::default(), idle());
    let mut p = after_a_first_tick_at_40(&calm, &set);
    // 45 tasks ran when the service throttled one: 44 is what it takes.
    let s = p.decide(&ScaleInput {
        throttled_total: 3,
        throttle_level: Some(45),
        ..input(1, 46, 50, &calm, 100, &set)
    });
    assert_eq!((s.desired, reason(&s)), (44, why::THROTTLED));
    // No fresh throttle, a busy pool and an idle system: the ramp would grow, the ceiling holds.
    for t in 2..11 {
        let s = p.decide(&ScaleInput {
            throttled_total: 3,
            ..input(t, 44, 44, &calm, 100 * t, &set)
        });
        assert_eq!(s.desired, 44, "at {t} s: {}", reason(&s));
    }
}

#[test]
fn a_quiet_throttle_ceiling_is_probed_one_task_higher_and_a_throttle_takes_it_back() {
    let (set, calm) = (ScalingSettings::default(), idle());
    let mut p = after_a_first_tick_at_40(&calm, &set);
    let throttled = |t, total, level, current| ScaleInput {
        throttled_total: total,
        throttle_level: level,
        ..input(t, current, current, &calm, 100 * t, &set)
    };
    assert_eq!(p.decide(&throttled(1, 1, Some(41), 41)).desired, 40);
    // Ten quiet seconds later the ceiling is one task higher.
    assert_eq!(p.decide(&throttled(11, 1, None, 40)).desired, 41);
    // The probe drew a throttle at 41 running: back to 40, not lower, even if the reading says 39.
    let s = p.decide(&throttled(12, 2, Some(39), 41));
    assert_eq!((s.desired, reason(&s)), (40, why::THROTTLED));
}

#[test]
fn the_policy_reacts_to_throttles_within_a_task_latency_and_crawlees_waits_for_its_tick() {
    let p = AdaptivePolicy::default();
    assert_eq!(p.throttle_reaction(), Some(THROTTLE_REACTION));
    assert_eq!(crate::scale::CrawleePolicy.throttle_reaction(), None);
    assert_eq!(crate::scale::CrawleePolicy.next_tick(), None);
}

#[test]
fn the_first_timed_latency_paces_the_ramp_like_slow_start() {
    let (info, set) = (idle(), ScalingSettings::default());
    let mut p = AdaptivePolicy::default();
    // Before any task is timed, the first second ticks every 250 ms, and those ticks hold.
    let s = p.decide(&input(0, 10, 10, &info, 0, &set));
    assert_eq!((s.desired, reason(&s)), (ceil_mul(10, 1.15), why::RAMP));
    assert_eq!(p.next_tick(), Some(RAMP_TICK));
    let mut early = input(0, 12, 12, &info, 0, &set);
    early.now = Instant::ZERO + Duration::from_millis(250);
    assert_eq!(reason(&p.decide(&early)), why::MEASURING_LATENCY);
    // The first successes were timed at 150 ms: the ramp grows by half per tick, a tick per 250 ms.
    let mut timed = input(0, 12, 12, &info, 20, &set);
    timed.now = Instant::ZERO + Duration::from_millis(500);
    timed.succeeded_latency = Some(Duration::from_millis(150));
    let s = p.decide(&timed);
    assert_eq!((s.desired, reason(&s)), (18, why::RAMP));
    assert_eq!(p.latency_estimate(), Some(Duration::from_millis(150)));
    assert_eq!(p.next_tick(), Some(RAMP_TICK));
}

#[test]
fn a_tick_with_far_fewer_successes_than_littles_law_expects_ends_the_ramp_at_the_level_before() {
    let (info, set) = (idle(), ScalingSettings::default());
    let mut p = AdaptivePolicy::default();
    // Tasks timed at 0.6 s; 50 running succeed at about 83 a second, tick after tick.
    let mut tick = |t: u64, current: usize, desired: usize, done: u64, took_ms: u64| {
        let mut i = input(t, current, desired, &info, done, &set);
        i.succeeded_latency = Some(Duration::from_millis(took_ms));
        p.decide(&i)
    };
    assert_eq!(tick(0, 37, 37, 0, 600).desired, 43);
    assert_eq!(tick(1, 43, 43, 62, 600).desired, 50);
    let s = tick(2, 50, 50, 134, 600);
    assert_eq!((s.desired, reason(&s)), (58, why::RAMP));
    // The step to 58 slowed every task: 40 successes in the next second, where the 50 that ran at the
    // step would have brought about 83.
    let s = tick(3, 58, 58, 174, 700);
    assert_eq!((s.desired, reason(&s)), (50, why::LATENCY_KNEE));
}
