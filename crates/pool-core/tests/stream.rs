//! The stream combinator in virtual time: results in completion order, backpressure, cancellation on drop,
//! panics, outcomes, aborts and bad settings.

use core::time::Duration;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};

use futures_lite::{StreamExt, stream};
use pool_core::testing::Sim;
use pool_core::{
    AutoscaledStreamExt, Builder, ConcurrencySettings, ConfigError, Outcome, PoolError,
};

fn builder(
    sim: &Sim,
    min: usize,
    desired: usize,
    max: usize,
) -> Builder<pool_core::testing::TestRuntime, (), (), (), ()> {
    Builder::new(sim.runtime().clone(), ()).concurrency_settings(
        ConcurrencySettings::default()
            .with_max(max)
            .with_min(min)
            .with_desired(desired),
    )
}

#[test]
fn results_come_out_in_completion_order_not_input_order() {
    let sim = Sim::new();
    let delays = [50u64, 10, 30, 20, 40];
    let items = stream::iter(delays).map(|ms| {
        let slept = sim.sleep(Duration::from_millis(ms));
        async move {
            slept.await;
            ms
        }
    });
    let out: Vec<u64> = sim
        .block_on(
            items
                .autoscaled_local(builder(&sim, 5, 5, 5))
                .unwrap()
                .collect(),
        )
        .unwrap();
    assert_eq!(out, vec![10, 20, 30, 40, 50]);
}

#[test]
fn every_item_is_run_once_and_the_report_counts_them() {
    let sim = Sim::new();
    let started = Cell::new(0u32);
    let items = stream::iter(0..500u32).map(|n| {
        started.set(started.get() + 1);
        let slept = sim.sleep(Duration::from_millis(u64::from(n % 7) * 10));
        async move {
            slept.await;
            n
        }
    });
    let mut results = items.autoscaled_local(builder(&sim, 1, 4, 50)).unwrap();
    let mut seen = sim
        .block_on(async {
            let mut seen = Vec::new();
            while let Some(n) = results.next().await {
                seen.push(n);
            }
            seen
        })
        .unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..500).collect::<Vec<_>>());
    assert_eq!(started.get(), 500);
    let report = results.report().unwrap().as_ref().unwrap();
    assert_eq!((report.started, report.succeeded), (500, 500));
    assert!(report.peak_concurrency <= 50);
}

#[test]
fn a_consumer_that_stops_polling_stops_new_starts() {
    let sim = Sim::new();
    let started = Cell::new(0u32);
    let items = stream::iter(0..100u32).map(|n| {
        started.set(started.get() + 1);
        async move { n }
    });
    let mut results = items.autoscaled_local(builder(&sim, 3, 3, 3)).unwrap();
    let first = sim.block_on(results.next()).unwrap();
    assert_eq!(first, Some(0));
    let after_first = started.get();
    // Results the consumer has not taken count against desired concurrency: at most 3 futures were made.
    assert!(
        after_first <= 3,
        "{after_first} futures made for one result taken"
    );
    // Ten seconds pass with nobody polling the stream: nothing more starts.
    sim.block_on(sim.sleep(Duration::from_secs(10))).unwrap();
    assert_eq!(started.get(), after_first);
    let rest: Vec<u32> = sim.block_on(results.collect()).unwrap();
    assert_eq!(rest.len(), 99);
}

#[test]
fn nothing_is_buffered_beyond_the_desired_concurrency() {
    let sim = Sim::new();
    let started = Cell::new(0u32);
    let items = stream::iter(0..1000u32).map(|n| {
        started.set(started.get() + 1);
        async move { n }
    });
    let mut results = items.autoscaled_local(builder(&sim, 10, 10, 10)).unwrap();
    let mut taken = 0u32;
    sim.block_on(async {
        for _ in 0..50 {
            results.next().await;
            taken += 1;
            assert!(
                started.get() <= taken + 10,
                "{} made, {taken} taken",
                started.get()
            );
        }
    })
    .unwrap();
}

struct Guard<'a>(&'a Cell<u32>);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_the_stream_cancels_every_running_future() {
    let sim = Sim::new();
    let (started, dropped, completed) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let items = stream::iter(0..100u32).map(|n| {
        started.set(started.get() + 1);
        let guard = Guard(&dropped);
        let slept = sim.sleep(Duration::from_millis(if n == 0 { 1 } else { 10_000 }));
        let completed = &completed;
        async move {
            let _guard = guard;
            slept.await;
            completed.set(completed.get() + 1);
            n
        }
    });
    let mut results = items.autoscaled_local(builder(&sim, 8, 8, 8)).unwrap();
    assert_eq!(sim.block_on(results.next()).unwrap(), Some(0));
    let running = started.get() - 1;
    assert!(running >= 7, "{running} running");
    drop(results);
    assert_eq!(dropped.get(), started.get());
    assert_eq!(completed.get(), 1);
}

#[test]
fn a_panicking_future_panics_the_consumer_with_its_message() {
    let sim = Sim::new();
    let items = stream::iter(0..10u32).map(|n| async move {
        assert!(n != 3, "item three is broken");
        n
    });
    let mut results = items.autoscaled_local(builder(&sim, 1, 1, 1)).unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        sim.block_on(async { while results.next().await.is_some() {} })
    }));
    let payload = caught.unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("item three is broken"), "{message}");
}

#[test]
fn throttled_results_are_yielded_counted_and_back_the_pool_off() {
    let sim = Sim::new();
    let items = stream::iter(0..40u32).map(|n| {
        let slept = sim.sleep(Duration::from_millis(20));
        async move {
            slept.await;
            if n % 4 == 0 { 429u16 } else { 200 }
        }
    });
    let mut results = items
        .autoscaled_local(builder(&sim, 1, 4, 4))
        .unwrap()
        .outcomes(|s| {
            if *s == 429 {
                Outcome::throttled()
            } else {
                Outcome::Succeeded
            }
        });
    let t0 = sim.now();
    let out: Vec<u16> = sim
        .block_on(async {
            let mut out = Vec::new();
            while let Some(s) = results.next().await {
                out.push(s);
            }
            out
        })
        .unwrap();
    assert_eq!(out.iter().filter(|s| **s == 429).count(), 10);
    let report = results.report().unwrap().as_ref().unwrap();
    assert_eq!((report.succeeded, report.throttled), (30, 10));
    // Without backoff 40 tasks of 20 ms at 4 at a time take 200 ms; the throttles spaced the starts.
    assert!(
        sim.now() - t0 > Duration::from_millis(400),
        "{:?}",
        sim.now() - t0
    );
}

#[test]
fn aborting_through_the_handle_ends_the_stream_with_an_aborted_report() {
    let sim = Sim::new();
    let items = stream::iter(0..1000u32).map(|n| {
        let slept = sim.sleep(Duration::from_millis(100));
        async move {
            slept.await;
            n
        }
    });
    let mut results = items.autoscaled_local(builder(&sim, 5, 5, 5)).unwrap();
    let handle = results.handle();
    let taken = sim
        .block_on(async {
            let mut taken = 0;
            while results.next().await.is_some() {
                taken += 1;
                if taken == 12 {
                    // Awaiting `abort` here would wait for this loop; the request ends the stream's run.
                    handle.request_abort().unwrap();
                }
            }
            taken
        })
        .unwrap();
    assert!(taken < 30, "{taken} results after an abort at 12");
    let report = results.report().unwrap().as_ref().unwrap();
    assert!(report.aborted);
    assert!(report.started < 30, "{} started", report.started);
}

#[test]
fn invalid_settings_are_refused_before_anything_runs() {
    let sim = Sim::new();
    let made = Cell::new(false);
    let items = stream::iter([()]).map(|()| {
        made.set(true);
        async {}
    });
    let err = items
        .autoscaled_local(
            builder(&sim, 5, 5, 2).concurrency_settings(ConcurrencySettings::new(5, 2, 2)),
        )
        .unwrap_err();
    assert!(matches!(err, ConfigError::MaxBelowMin), "{err:?}");
    assert!(!made.get());
}

#[test]
fn the_default_policy_scales_the_stream_up_from_its_desired_concurrency() {
    let sim = Sim::new();
    let items = stream::iter(0..3000u32).map(|n| {
        let slept = sim.sleep(Duration::from_millis(50));
        async move {
            slept.await;
            n
        }
    });
    let mut results = items.autoscaled_local(builder(&sim, 1, 2, 100)).unwrap();
    let count = sim
        .block_on(async {
            let mut count = 0;
            while results.next().await.is_some() {
                count += 1;
            }
            count
        })
        .unwrap();
    assert_eq!(count, 3000);
    let report = results.report().unwrap().as_ref().unwrap();
    assert!(
        report.peak_concurrency > 20,
        "peak {}",
        report.peak_concurrency
    );
    assert!(
        matches!(results.report(), Some(Ok(_))),
        "{:?}",
        results
            .report()
            .map(|r| r.as_ref().map_err(|e: &PoolError<_>| e.to_string()))
    );
}

#[test]
fn throttled_attempts_are_retried_up_to_the_limit_and_only_each_items_last_result_comes_out() {
    let sim = Sim::new();
    let attempts = RefCell::new(std::collections::HashMap::<u32, u32>::new());
    // Item 0 is throttled on every attempt; odd items on their first; the rest are served at once.
    let results = stream::iter(0..20u32)
        .autoscaled_retrying(
            Builder::new(&sim, ()).concurrency_settings(
                ConcurrencySettings::default()
                    .with_max(4)
                    .with_min(4)
                    .with_desired(4),
            ),
            2,
            |(_, status): &(u32, u16)| {
                if *status == 429 {
                    Outcome::throttled()
                } else {
                    Outcome::Succeeded
                }
            },
            |n| {
                let attempt = {
                    let mut a = attempts.borrow_mut();
                    let k = a.entry(n).or_insert(0);
                    *k += 1;
                    *k
                };
                let throttled = n == 0 || (n % 2 == 1 && attempt == 1);
                async move { (n, if throttled { 429u16 } else { 200 }) }
            },
        )
        .unwrap();
    let mut out: Vec<(u32, u16)> = sim.block_on(results.collect()).unwrap();
    out.sort_unstable();
    let expected: Vec<(u32, u16)> = (0..20)
        .map(|n| (n, if n == 0 { 429 } else { 200 }))
        .collect();
    assert_eq!(out, expected, "one result per item, the last attempt's");
    let attempts = attempts.into_inner();
    assert_eq!(attempts[&0], 3, "1 + max_retries attempts");
    assert!((1..20).step_by(2).all(|n| attempts[&n] == 2));
    assert!((2..20).step_by(2).all(|n| attempts[&n] == 1));
}
