//! The simulator is deterministic: one seed gives one trace, and another seed gives another.

use pool_core::{AdaptivePolicy, CrawleePolicy};
use pool_sim::model::{Control, run};
use pool_sim::scenario::Scenario;

#[test]
fn same_seed_gives_an_identical_trace() {
    // Noisy sensors, jittered timers and task jitter: every random stream is exercised.
    let sc = Scenario::bundled("noisy-sensors").unwrap();
    let a = run(&sc, Control::Policy(AdaptivePolicy::default()));
    let b = run(&sc, Control::Policy(AdaptivePolicy::default()));
    assert!(!a.decisions.is_empty());
    assert_eq!(a.trace(), b.trace());
    assert_eq!(a, b);
    let c = run(&sc, Control::Policy(CrawleePolicy));
    let d = run(&sc, Control::Policy(CrawleePolicy));
    assert_eq!(c, d);
}

#[test]
fn another_seed_gives_another_trace() {
    let sc = Scenario::bundled("noisy-sensors").unwrap();
    let other = Scenario {
        seed: sc.seed + 1,
        ..sc.clone()
    };
    let a = run(&sc, Control::Policy(AdaptivePolicy::default()));
    let b = run(&other, Control::Policy(AdaptivePolicy::default()));
    assert_ne!(a.series, b.series);
}

#[test]
fn every_scenario_file_parses_and_the_required_ones_exist() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let names: Vec<String> = Scenario::load_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    for want in [
        "cpu-knee",
        "memory-cap",
        "downstream-429",
        "latency-knee",
        "capacity-step",
        "bursty-supply",
        "noisy-sensors",
        "slow-tasks",
        "tiny-tasks",
    ] {
        assert!(names.iter().any(|n| n == want), "missing scenario {want}");
    }
}
