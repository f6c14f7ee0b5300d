//! A budget shared by several pools (issue 14): never over-admitted, shares weighted and max-min fair, each
//! pool autoscaling inside its share, refusals with their reason, and one pool's throttles relayed to the
//! others.

use core::time::Duration;
use std::cell::Cell;
use std::rc::Rc;

use futures_lite::future::{Ready, ready, zip};
use pool_core::budget::water_fill;
use pool_core::testing::Sim;
use pool_core::{Builder, ConcurrencySettings, Event, FnSink, Outcome, Refusal, SharedBudget};
use proptest::prelude::*;

/// `n` jobs shared by one pool's three task functions: `run_task` takes one, `is_task_ready` says whether
/// any is left, `is_finished` whether none is.
#[derive(Clone)]
struct Jobs(Rc<Cell<u32>>);

impl Jobs {
    fn new(n: u32) -> Self {
        Jobs(Rc::new(Cell::new(n)))
    }
    /// Takes a job; returns how many were left before it.
    fn take(&self) -> u32 {
        let n = self.0.get();
        self.0.set(n - 1);
        n
    }
    fn ready(&self) -> impl FnMut() -> Ready<Result<bool, ()>> + use<> {
        let j = self.clone();
        move || ready(Ok(j.0.get() > 0))
    }
    fn finished(&self) -> impl FnMut() -> Ready<Result<bool, ()>> + use<> {
        let j = self.clone();
        move || ready(Ok(j.0.get() == 0))
    }
}

/// Tasks in flight across every pool, as the tasks count them, and the most seen at once.
#[derive(Default)]
struct InFlight {
    now: Cell<usize>,
    peak: Cell<usize>,
}

impl InFlight {
    fn enter(&self) {
        self.now.set(self.now.get() + 1);
        self.peak.set(self.peak.get().max(self.now.get()));
    }
    fn exit(&self) {
        self.now.set(self.now.get() - 1);
    }
}

#[test]
fn two_pools_on_one_budget_never_run_more_than_it_and_split_it_by_weight() {
    let sim = Sim::new();
    let budget = SharedBudget::new(12);
    let flight = InFlight::default();
    // Both want 30 at once; the first weighs 2, the second 1.
    let per_pool = [Cell::new(0usize), Cell::new(0usize)];
    let peaks = [Cell::new(0usize), Cell::new(0usize)];
    let pool = |i: usize, weight: usize| {
        let (flight, running, peak, sim) = (&flight, &per_pool[i], &peaks[i], &sim);
        let jobs = Jobs::new(300);
        let l1 = jobs.clone();
        Builder::new(sim.runtime().clone(), ())
            .concurrency_settings(ConcurrencySettings::new(30, 30, 30))
            .budget(budget.member(weight))
            .run_task(move || {
                l1.take();
                flight.enter();
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                let slept = sim.sleep(Duration::from_millis(20));
                async move {
                    slept.await;
                    flight.exit();
                    running.set(running.get() - 1);
                    Ok::<(), ()>(())
                }
            })
            .is_task_ready(jobs.ready())
            .is_finished(jobs.finished())
            .build()
            .unwrap()
    };
    let (a, b) = (pool(0, 2), pool(1, 1));
    let (ra, rb) = sim.block_on(zip(a.run_local(), b.run_local())).unwrap();
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.succeeded, rb.succeeded), (300, 300));
    assert_eq!(flight.peak.get(), 12, "the budget, and never above it");
    // Shares of 12 by weight 2:1 while both run: 8 and 4 (and all 12 for the one left).
    assert!(
        peaks[1].get() >= 4,
        "the lighter pool got its share: {}",
        peaks[1].get()
    );
    assert!(
        peaks[0].get() >= 8,
        "the heavier pool got its share: {}",
        peaks[0].get()
    );
    // While both ran, the first ran twice as many at a time: it finished first.
    assert!(
        ra.duration < rb.duration,
        "{:?} vs {:?}",
        ra.duration,
        rb.duration
    );
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn a_start_without_a_permit_is_refused_with_the_budget_as_its_reason() {
    let sim = Sim::new();
    let budget = SharedBudget::new(2);
    let refusals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = refusals.clone();
    let jobs = Jobs::new(6);
    let l1 = jobs.clone();
    let sim = &sim;
    let pool = Builder::new(sim.runtime().clone(), ())
        .concurrency_settings(ConcurrencySettings::new(5, 5, 5))
        .budget(budget.member(1))
        .events(FnSink(move |e: &Event| {
            if let Event::Refused { refusal, .. } = e {
                seen.lock().unwrap().push(*refusal);
            }
        }))
        .run_task(move || {
            l1.take();
            let slept = sim.sleep(Duration::from_millis(10));
            async move {
                slept.await;
                Ok::<(), ()>(())
            }
        })
        .is_task_ready(jobs.ready())
        .is_finished(jobs.finished())
        .build()
        .unwrap();
    let report = sim.block_on(pool.run_local()).unwrap().unwrap();
    assert_eq!((report.succeeded, report.peak_concurrency), (6, 2));
    assert!(
        refusals
            .lock()
            .unwrap()
            .contains(&Refusal::Budget { held: 2, share: 2 }),
        "{:?}",
        refusals.lock().unwrap()
    );
}

#[test]
fn a_throttle_in_one_pool_is_relayed_to_the_other_pools_on_the_budget() {
    let sim = Sim::new();
    let budget = SharedBudget::new(10);
    let make = |throttle: bool, weight: usize| {
        let jobs = Jobs::new(20);
        let l1 = jobs.clone();
        let sim = &sim;
        Builder::new(sim.runtime().clone(), ())
            .concurrency_settings(ConcurrencySettings::new(2, 2, 2))
            .budget(budget.member(weight))
            .run_task(move || {
                let n = l1.take();
                let slept = sim.sleep(Duration::from_millis(10));
                async move {
                    slept.await;
                    Ok::<_, ()>(if throttle && n == 20 {
                        Outcome::throttled()
                    } else {
                        Outcome::Succeeded
                    })
                }
            })
            .is_task_ready(jobs.ready())
            .is_finished(jobs.finished())
            .build()
            .unwrap()
    };
    let (noisy, quiet) = (make(true, 1), make(false, 1));
    let (rn, rq) = sim
        .block_on(zip(noisy.run_local(), quiet.run_local()))
        .unwrap();
    let (rn, rq) = (rn.unwrap(), rq.unwrap());
    assert_eq!(rn.throttled, 1);
    assert_eq!(rq.throttled, 0);
    assert_eq!(rq.throttles_reported, 1, "the other pool heard of the 429");
    assert_eq!(
        budget.throttles(),
        (1, None),
        "counted once, for a keeper to share"
    );
}

#[test]
fn a_capacity_raised_during_a_run_wakes_the_pool_waiting_on_the_spent_budget() {
    let sim = Sim::new();
    let budget = SharedBudget::new(2);
    let flight = InFlight::default();
    let demand_seen = Cell::new(0usize);
    let jobs = Jobs::new(60);
    let l1 = jobs.clone();
    let (sim_ref, flight_ref, budget_ref, demand_ref) = (&sim, &flight, &budget, &demand_seen);
    let pool = Builder::new(sim.runtime().clone(), ())
        .concurrency_settings(ConcurrencySettings::new(8, 8, 8))
        .budget(budget.member(1))
        .run_task(move || {
            l1.take();
            flight_ref.enter();
            demand_ref.set(budget_ref.demand());
            let slept = sim_ref.sleep(Duration::from_millis(10));
            async move {
                slept.await;
                flight_ref.exit();
                Ok::<(), ()>(())
            }
        })
        .is_task_ready(jobs.ready())
        .is_finished(jobs.finished())
        .build()
        .unwrap();
    let peak_before = Cell::new(0usize);
    let raise = async {
        sim.sleep(Duration::from_millis(55)).await;
        peak_before.set(flight.peak.get());
        budget.set_capacity(6);
    };
    let (report, ()) = sim.block_on(zip(pool.run_local(), raise)).unwrap();
    let report = report.unwrap();
    assert_eq!(report.succeeded, 60);
    assert_eq!(peak_before.get(), 2, "the first capacity held");
    assert_eq!(
        flight.peak.get(),
        6,
        "the raised capacity was used, and never crossed"
    );
    assert_eq!(
        demand_seen.get(),
        8,
        "the pool's desired concurrency is the budget's demand"
    );
    assert_eq!(budget.demand(), 0, "nobody runs now");
}

#[test]
fn a_capacity_lowered_below_the_permits_in_use_admits_nothing_until_the_use_is_below_it() {
    let sim = Sim::new();
    let budget = SharedBudget::new(6);
    let flight = InFlight::default();
    let lowered = Cell::new(false);
    let peak_after = Cell::new(0usize);
    let jobs = Jobs::new(60);
    let l1 = jobs.clone();
    let (sim_ref, flight_ref, lowered_ref, after_ref) = (&sim, &flight, &lowered, &peak_after);
    let pool = Builder::new(sim.runtime().clone(), ())
        .concurrency_settings(ConcurrencySettings::new(8, 8, 8))
        .budget(budget.member(1))
        .run_task(move || {
            l1.take();
            flight_ref.enter();
            if lowered_ref.get() {
                after_ref.set(after_ref.get().max(flight_ref.now.get()));
            }
            let slept = sim_ref.sleep(Duration::from_millis(10));
            async move {
                slept.await;
                flight_ref.exit();
                Ok::<(), ()>(())
            }
        })
        .is_task_ready(jobs.ready())
        .is_finished(jobs.finished())
        .build()
        .unwrap();
    let lower = async {
        sim.sleep(Duration::from_millis(25)).await;
        budget.set_capacity(2);
        lowered.set(true);
    };
    let (report, ()) = sim.block_on(zip(pool.run_local(), lower)).unwrap();
    assert_eq!(report.unwrap().succeeded, 60);
    assert_eq!(flight.peak.get(), 6);
    assert_eq!(
        peak_after.get(),
        2,
        "every start after the lowering found at most the new capacity in flight"
    );
}

#[test]
fn water_fill_gives_small_demands_in_full_and_splits_the_rest_by_weight() {
    assert_eq!(water_fill(12, &[(2, 30), (1, 30)]), vec![8, 4]);
    assert_eq!(water_fill(12, &[(1, 3), (1, 30), (1, 30)]), vec![3, 5, 4]);
    assert_eq!(water_fill(10, &[(1, 2), (1, 3)]), vec![2, 3]);
    assert_eq!(water_fill(0, &[(1, 5)]), vec![0]);
    assert_eq!(water_fill(5, &[]), Vec::<usize>::new());
}

proptest! {
    #[test]
    fn water_fill_never_exceeds_the_capacity_or_a_demand_and_is_max_min_fair(
        capacity in 0usize..200,
        members in proptest::collection::vec((1usize..6, 0usize..80), 0..8),
    ) {
        let shares = water_fill(capacity, &members);
        prop_assert_eq!(shares.len(), members.len());
        let total: usize = shares.iter().sum();
        prop_assert!(total <= capacity);
        for (s, (_, d)) in shares.iter().zip(&members) {
            prop_assert!(s <= d);
        }
        let demand: usize = members.iter().map(|m| m.1).sum();
        // Work-conserving: what is left over is only what nobody wants.
        prop_assert_eq!(total, capacity.min(demand));
        // Max-min fair by weight: a member short of its demand has, per unit of weight, no less than any
        // other member has per unit of weight, to within one permit each for rounding:
        // s_j <= (s_i + 1) * w_j / w_i + 1.
        for (i, (si, (wi, di))) in shares.iter().zip(&members).enumerate() {
            if si < di {
                for (j, (sj, (wj, _))) in shares.iter().zip(&members).enumerate() {
                    if i != j {
                        prop_assert!(sj * wi <= (si + 1) * wj + wi, "{i}: {si}/{wi} vs {j}: {sj}/{wj}");
                    }
                }
            }
        }
    }

    #[test]
    fn permits_across_members_never_exceed_the_budget_or_a_members_share(
        capacity in 1usize..20,
        ops in proptest::collection::vec((0usize..3, any::<bool>()), 0..300),
    ) {
        let budget = SharedBudget::new(capacity);
        let sim = Sim::new();
        let pool = pool_core::Pool::new(pool_core::PoolConfig::default()).unwrap();
        let handle = pool_core::Handle::new(&pool);
        let members: Vec<_> = (1..=3).map(|w| budget.member(w)).collect();
        for m in &members {
            m.join(&handle, 1000);
        }
        let mut held = [0usize; 3];
        for (who, take) in ops {
            let m = &members[who];
            if take {
                if m.try_acquire().is_ok() {
                    held[who] += 1;
                    prop_assert!(held[who] <= m.share());
                }
            } else if held[who] > 0 {
                m.release();
                held[who] -= 1;
            }
            prop_assert_eq!(budget.in_use(), held.iter().sum::<usize>());
            prop_assert!(budget.in_use() <= capacity);
        }
        drop(sim);
    }
}

#[test]
fn a_start_rate_cap_admits_only_the_starts_it_holds_and_a_refill_wakes_the_pool() {
    let sim = Sim::new();
    let budget = SharedBudget::new(10);
    budget.set_start_tokens(Some(5));
    let refusals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = refusals.clone();
    let jobs = Jobs::new(20);
    let started = Cell::new(0u32);
    let started_before = Cell::new(0u32);
    let l1 = jobs.clone();
    let (sim_ref, started_ref) = (&sim, &started);
    let pool = Builder::new(sim.runtime().clone(), ())
        .concurrency_settings(ConcurrencySettings::new(4, 4, 4))
        .budget(budget.member(1))
        .events(FnSink(move |e: &Event| {
            if let Event::Refused { refusal, .. } = e {
                seen.lock().unwrap().push(*refusal);
            }
        }))
        .run_task(move || {
            l1.take();
            started_ref.set(started_ref.get() + 1);
            let slept = sim_ref.sleep(Duration::from_millis(10));
            async move {
                slept.await;
                Ok::<(), ()>(())
            }
        })
        .is_task_ready(jobs.ready())
        .is_finished(jobs.finished())
        .build()
        .unwrap();
    let refill = async {
        sim.sleep(Duration::from_millis(100)).await;
        started_before.set(started.get());
        budget.add_start_tokens(15);
    };
    let (report, ()) = sim.block_on(zip(pool.run_local(), refill)).unwrap();
    assert_eq!(report.unwrap().succeeded, 20);
    assert_eq!(started_before.get(), 5, "only the starts it held");
    assert_eq!(budget.start_tokens(), Some(0));
    assert!(refusals.lock().unwrap().contains(&Refusal::BudgetRate));
    assert_eq!(budget.in_use(), 0, "a refused start gave its permit back");
}
