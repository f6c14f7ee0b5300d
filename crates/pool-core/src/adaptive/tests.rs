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
        cpu_load: None,
        memory_load: None,
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
    let set = ScalingSettings::default();
    let calm = idle();
    let mut p = AdaptivePolicy::default();
    p.decide(&input(0, 40, 40, &calm, 0, &set));
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
