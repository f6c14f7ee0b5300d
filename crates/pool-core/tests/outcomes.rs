//! Task outcomes: what a task reports beyond `Ok(())` (succeeded, throttled with or without a retry-after,
//! failed without ending the run), what the pool does with each (counts, events, the client signal, the wait
//! before the next start), and the same reported through a `Handle`. All in virtual time.

mod common;

use std::cell::RefCell;

use common::*;
use pool_core::testing::Sim;
use pool_core::{
    ConfigError, Event, Handle, Instant, Outcome, Pool, PoolConfig, Refusal, TaskFns,
    ThrottleSettings, task_fns,
};

/// `n` tasks run one at a time (concurrency 1), each for `d`, returning `script(i)` for task `i` (from 1);
/// `starts` records when each began. One at a time makes the wait before each start visible.
fn scripted<'a>(
    sim: &'a Sim,
    c: &'a Counters,
    starts: &'a RefCell<Vec<Instant>>,
    n: u32,
    d: std::time::Duration,
    script: impl Fn(u32) -> Outcome + 'a,
) -> impl TaskFns<Error = Boom> + 'a {
    task_fns(
        move || {
            let i = bump(&c.started);
            starts.borrow_mut().push(sim.now());
            let outcome = script(i);
            let s = sim.sleep(d);
            async move {
                s.await;
                bump(&c.done);
                Ok::<Outcome, Boom>(outcome)
            }
        },
        answers(move || c.started.get() < n),
        answers(move || c.done.get() >= n),
    )
}

/// Task `k` ends with `outcome`, every other one succeeds.
fn only(k: u32, outcome: Outcome) -> impl Fn(u32) -> Outcome {
    move |i| if i == k { outcome } else { Outcome::Succeeded }
}

fn one_at_a_time() -> PoolConfig {
    config(1, 1, 1)
}

fn gaps(starts: &RefCell<Vec<Instant>>) -> Vec<u64> {
    let s = starts.borrow();
    s.windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]).as_millis() as u64)
        .collect()
}

#[test]
fn throttled_and_failed_outcomes_are_counted_apart_and_the_run_goes_on() {
    let case = Case::new(config(1, 4, 4));
    let (c, starts) = (Counters::default(), RefCell::new(Vec::new()));
    let mut fns = scripted(&case.sim, &c, &starts, 9, ms(10), |i| match i % 3 {
        0 => Outcome::Failed,
        1 => Outcome::Succeeded,
        _ => Outcome::retry_after(ms(1)),
    });
    let report = case.run(&mut fns).unwrap();
    assert_eq!(
        (report.succeeded, report.throttled, report.failed),
        (3, 3, 3)
    );
    assert_eq!(report.finished(), 9);
    let counts = case.handle.counts();
    assert_eq!(
        (counts.succeeded, counts.throttled, counts.failed),
        (3, 3, 3),
        "the handle shows the same counts"
    );
}

#[test]
fn an_ok_unit_task_is_a_success_as_before() {
    let case = Case::new(config(1, 2, 2));
    let c = Counters::default();
    let mut fns = queue_tasks(&case.sim, &c, 5, ms(10));
    let report = case.run(&mut fns).unwrap();
    assert_eq!(
        (report.succeeded, report.throttled, report.failed),
        (5, 0, 0)
    );
}

#[test]
fn a_retry_after_holds_the_next_start_until_it_has_passed() {
    let case = Case::new(one_at_a_time()).traced();
    let (c, starts) = (Counters::default(), RefCell::new(Vec::new()));
    let mut fns = scripted(
        &case.sim,
        &c,
        &starts,
        3,
        ms(10),
        only(1, Outcome::retry_after(secs(2))),
    );
    case.run(&mut fns).unwrap();
    // Task 1 ends at 10 ms and asks for 2 s: task 2 starts at 2.010 s, task 3 right after task 2.
    assert_eq!(gaps(&starts), [2010, 10]);
    let events = case.trace().events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Throttled { retry_after: Some(d), until, .. } if *d == secs(2) && *until == at_ms(2010)
    )));
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Refused { refusal: Refusal::Throttled { until }, .. } if *until == at_ms(2010)
        )),
        "the wait is a refusal with its reason"
    );
}

#[test]
fn starts_after_throttles_are_spaced_with_growing_backoff_until_a_success() {
    let mut cfg = one_at_a_time();
    cfg.throttle = ThrottleSettings::default()
        .with_backoff_base(ms(100))
        .with_backoff_max(ms(1000))
        .with_seed(1);
    let case = Case::new(cfg);
    let (c, starts) = (Counters::default(), RefCell::new(Vec::new()));
    // Four throttles in a row, then successes.
    let mut fns = scripted(&case.sim, &c, &starts, 8, ms(10), |i| {
        if i <= 4 {
            Outcome::throttled()
        } else {
            Outcome::Succeeded
        }
    });
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.throttled, report.succeeded), (4, 4));
    let gaps = gaps(&starts);
    // After throttle k the next start waits at least half of 100 ms × 2^(k−1), capped at 1 s, beyond the
    // 10 ms the task ran; once task 5 succeeds, starts follow each other at once.
    for (k, gap) in gaps[..4].iter().enumerate() {
        let nominal = (100u64 << k).min(1000);
        assert!(
            *gap >= 10 + nominal / 2 && *gap <= 10 + nominal,
            "gap {k}: {gap} ms, nominal backoff {nominal} ms"
        );
    }
    assert!(
        gaps[1] > gaps[0] && gaps[3] > gaps[1],
        "the backoff grows: {gaps:?}"
    );
    assert_eq!(gaps[4..], [10, 10, 10], "a success ends the spacing");
}

#[test]
fn a_failed_outcome_is_reported_as_an_event_and_does_not_end_the_run() {
    let case = Case::new(one_at_a_time()).traced();
    let (c, starts) = (Counters::default(), RefCell::new(Vec::new()));
    let mut fns = scripted(&case.sim, &c, &starts, 4, ms(10), only(2, Outcome::Failed));
    let report = case.run(&mut fns).unwrap();
    assert_eq!((report.succeeded, report.failed), (3, 1));
    let failed: Vec<_> = case
        .trace()
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::TaskFailed { .. }))
        .collect();
    assert_eq!(failed, [Event::TaskFailed { at: at_ms(20) }]);
    assert_eq!(gaps(&starts), [10, 10, 10], "a failure imposes no wait");
}

#[test]
fn a_throttle_reported_through_the_handle_holds_starts_and_is_counted_apart() {
    let case = Case::new(one_at_a_time());
    let (sim, handle): (&Sim, &Handle) = (&case.sim, &case.handle);
    let (c, starts) = (&Counters::default(), &RefCell::new(Vec::new()));
    let mut fns = task_fns(
        move || {
            let i = bump(&c.started);
            starts.borrow_mut().push(sim.now());
            let s = sim.sleep(ms(10));
            async move {
                s.await;
                if i == 1 {
                    // A middleware saw a 429 and retried on its own: the task itself succeeds.
                    handle.report_throttle(Some(secs(1)));
                }
                bump(&c.done);
                Ok::<(), Boom>(())
            }
        },
        answers(move || c.started.get() < 3),
        answers(move || c.done.get() >= 3),
    );
    let report = case.run(&mut fns).unwrap();
    assert_eq!(
        (
            report.succeeded,
            report.throttled,
            report.throttles_reported
        ),
        (3, 0, 1)
    );
    assert_eq!(gaps(starts), [1010, 10]);
}

#[test]
fn a_throttled_task_counts_as_a_client_error_at_the_next_client_probe() {
    let mut pool = Pool::new(PoolConfig::default()).unwrap();
    let t0 = Instant::ZERO;
    pool.start_run(t0).unwrap();
    pool.handle_timeout(t0);
    for _ in 0..3 {
        pool.poll_start(t0).unwrap();
        pool.handle_task_started(t0).unwrap();
    }
    // Crawlee's rule: more than `max_client_errors` (1) new errors since the last probe overloads the probe.
    let at = t0 + ms(10);
    for _ in 0..3 {
        pool.handle_task_finished(at, pool_core::TaskOutcome::Throttled { retry_after: None });
    }
    let probe = t0 + pool.config().snapshot.client_probe_interval;
    pool.handle_timeout(probe);
    assert!(
        pool.current_info(probe).client.is_overloaded(),
        "{}",
        pool.current_info(probe)
    );
}

#[test]
fn backoff_settings_are_validated_with_typed_errors() {
    let mut cfg = PoolConfig::default();
    cfg.throttle.backoff_base = ms(0);
    assert_eq!(
        cfg.validate(),
        Err(ConfigError::ZeroDuration {
            name: "backoff_base"
        })
    );
    cfg.throttle.backoff_base = secs(2);
    cfg.throttle.backoff_max = secs(1);
    assert_eq!(cfg.validate(), Err(ConfigError::BackoffMaxBelowBase));
    assert_eq!(
        ConfigError::BackoffMaxBelowBase.to_string(),
        "backoff_max cannot be shorter than backoff_base"
    );
}

/// A sensor that drains `n` client errors (say, 429s counted by an HTTP client) at its sample at `at`.
struct ClientErrorsAt {
    at: Instant,
    n: u64,
}

impl pool_core::Sensors for ClientErrorsAt {
    fn sample<P: pool_core::ScalingPolicy>(&mut self, now: Instant, pool: &mut Pool<P>) {
        if now == self.at {
            pool.handle_client_errors(self.n);
        }
    }
}

#[test]
fn client_errors_a_sensor_drains_reach_the_probe_due_at_the_same_instant() {
    // The sample, the client probe and the tick are all due at 1 s: the driver samples first, so the probe at
    // 1 s (and the tick after it) sees the errors drained at 1 s, not a second later.
    let mut cfg = config(1, 1, 1);
    cfg.scaling.autoscale_interval = secs(1);
    let case = Case::new(cfg).sensors(ClientErrorsAt {
        at: at_ms(1000),
        n: 5,
    });
    let c = Counters::default();
    let mut fns = queue_tasks(&case.sim, &c, 1, ms(1500));
    case.run(&mut fns).unwrap();
    let pool = case.pool();
    let client = pool.history(pool_core::SignalId::Client).unwrap();
    let at_1s = client.as_slice().iter().find(|s| s.at() == at_ms(1000));
    assert!(
        at_1s.is_some_and(|s| s.is_overloaded()),
        "client snapshots: {:?}",
        client.as_slice()
    );
}

fn throttled_at_45_running<P: pool_core::ScalingPolicy>(mut pool: Pool<P>) -> (Pool<P>, Instant) {
    let t0 = Instant::ZERO;
    pool.start_run(t0).unwrap();
    while pool.poll_event().is_some() {}
    for _ in 0..45 {
        pool.poll_start(t0).unwrap();
        pool.handle_task_started(t0).unwrap();
    }
    let at = t0 + ms(300);
    pool.handle_task_finished(at, pool_core::TaskOutcome::Throttled { retry_after: None });
    (pool, at)
}

fn pool_config_for_throttles() -> PoolConfig {
    let mut cfg = config(1, 50, 100);
    cfg.scaling.autoscale_interval = secs(1);
    cfg
}

#[test]
fn a_throttle_brings_the_adaptive_policys_tick_forward_and_desired_drops_to_the_level_served() {
    let pool = Pool::with_policy(
        pool_config_for_throttles(),
        pool_core::AdaptivePolicy::default(),
    );
    let (mut pool, at) = throttled_at_45_running(pool.unwrap());
    assert!(
        pool.poll_timeout().is_some_and(|t| t <= at),
        "the tick is due now, not at 1 s: {:?}",
        pool.poll_timeout()
    );
    pool.handle_timeout(at);
    let scaled: Vec<_> = std::iter::from_fn(|| pool.poll_event())
        .filter_map(|e| match e {
            Event::Scaled(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(scaled.len(), 1);
    assert_eq!((scaled[0].at, scaled[0].new), (at, 44), "{}", scaled[0]);
}

#[test]
fn crawlees_policy_waits_for_its_regular_tick_after_a_throttle() {
    let (pool, at) = throttled_at_45_running(Pool::new(pool_config_for_throttles()).unwrap());
    assert!(pool.poll_timeout().unwrap() > at);
}

/// What [`Recorder`] keeps of each tick: the mean timed latency and the tasks running at the load reading.
type Seen = (Option<std::time::Duration>, usize);

/// A policy that keeps the inputs of its ticks and never moves desired.
#[derive(Default)]
struct Recorder(std::rc::Rc<RefCell<Vec<Seen>>>);

impl pool_core::ScalingPolicy for Recorder {
    fn decide(&mut self, i: &pool_core::ScaleInput<'_>) -> pool_core::Scale {
        self.0
            .borrow_mut()
            .push((i.succeeded_latency, i.load_running));
        pool_core::Scale {
            desired: i.desired,
            reason: pool_core::ScaleReason::Policy("record"),
        }
    }
}

/// A pool of `max` with a [`Recorder`], its first tick at 0 done and `started` tasks started then.
fn recorded(max: usize, started: usize) -> (Pool<Recorder>, std::rc::Rc<RefCell<Vec<Seen>>>) {
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let mut pool = Pool::with_policy(config(1, max, max), Recorder(seen.clone())).unwrap();
    pool.start_run(Instant::ZERO).unwrap();
    pool.handle_timeout(Instant::ZERO);
    for _ in 0..started {
        pool.poll_start(Instant::ZERO).unwrap();
        pool.handle_task_started(Instant::ZERO).unwrap();
    }
    (pool, seen)
}

#[test]
fn the_mean_latency_of_timed_successes_reaches_the_next_tick_and_only_that_one() {
    let (mut pool, seen) = recorded(4, 4);
    let t0 = Instant::ZERO;
    pool.handle_task_finished_since(t0 + ms(100), t0, pool_core::TaskOutcome::Succeeded);
    pool.handle_task_finished_since(t0 + ms(300), t0, pool_core::TaskOutcome::Succeeded);
    // Neither a throttled task nor an untimed success counts toward the mean.
    pool.handle_task_finished_since(
        t0 + ms(400),
        t0,
        pool_core::TaskOutcome::Throttled { retry_after: None },
    );
    pool.handle_task_finished(t0 + ms(500), pool_core::TaskOutcome::Succeeded);
    let interval = pool.config().scaling.autoscale_interval;
    pool.handle_timeout(t0 + interval);
    pool.handle_timeout(t0 + interval * 2);
    let seen = seen.borrow();
    assert_eq!(seen[0].0, None, "the tick at the start saw no task end");
    assert_eq!(seen[1].0, Some(ms(200)));
    assert_eq!(seen[2].0, None, "the mean starts again at every tick");
}

#[test]
fn a_policy_sees_how_many_tasks_ran_when_the_cpu_reading_arrived() {
    let (mut pool, seen) = recorded(8, 3);
    let t0 = Instant::ZERO;
    let at = t0 + ms(900);
    pool.handle_cpu(
        at,
        pool_core::CpuReading {
            at,
            used_ratio: 0.3,
        },
    )
    .unwrap();
    for _ in 0..5 {
        pool.poll_start(at).unwrap();
        pool.handle_task_started(at).unwrap();
    }
    pool.handle_timeout(t0 + pool.config().scaling.autoscale_interval);
    assert_eq!(
        seen.borrow().last().unwrap().1,
        3,
        "not the 8 running at the tick"
    );
}

/// The next sample after a tick at `at` on a pool that had nothing ready, and after a start then.
fn idle_then_start<P: pool_core::ScalingPolicy>(policy: P) -> (Instant, Instant) {
    let mut pool = Pool::with_policy(config(1, 4, 4), policy).unwrap();
    let t0 = Instant::ZERO;
    pool.start_run(t0).unwrap();
    pool.poll_start(t0).unwrap();
    pool.handle_no_task_ready(t0);
    let at = t0 + secs(1);
    pool.handle_timeout(t0);
    pool.handle_timeout(at);
    let idle = pool.poll_timeout().unwrap();
    pool.poll_start(at).unwrap();
    pool.handle_task_started(at).unwrap();
    (idle, pool.poll_timeout().unwrap())
}

#[test]
fn an_idle_adaptive_pool_wakes_every_five_seconds_and_a_start_brings_its_sample_back_at_once() {
    let (idle, after_start) = idle_then_start(pool_core::AdaptivePolicy::default());
    assert!(
        idle >= Instant::ZERO + secs(5),
        "nothing due for seconds after the wake at 1 s: {idle:?}"
    );
    assert_eq!(
        after_start,
        Instant::ZERO + secs(1),
        "the sample is due at the start"
    );
    // Crawlee's policy keeps every job at its own interval (the event-loop probe every 500 ms).
    let (idle, _) = idle_then_start(pool_core::CrawleePolicy);
    assert_eq!(idle, Instant::ZERO + ms(1500));
}
