//! The system model and the event loop that drives a `pool-core` machine through it in virtual time.
//!
//! The machine is driven sans-IO (`start_run`, `poll_timeout`, `handle_timeout`, `poll_start`,
//! `handle_task_started`, `handle_task_finished`, sensor inputs), which is the harness's fast form: a
//! discrete-event loop that jumps from one event to the next. Every random draw comes from [`Rng`] streams
//! seeded by the scenario, so one seed gives one trace.
//!
//! A task's latency is fixed when it starts, from the state it starts into:
//! `(task_s × cpu_slowdown × memory_slowdown + downstream) × jitter`, where
//! - the CPU slowdown is `1 + q·u⁶` below capacity and `u·(1 + q)·(1 + k·(u − 1))` above it, with
//!   `u = running × cpu_per_task / cores`;
//! - the memory slowdown is `1 + p·((m − 0.8)/0.2)²` above 80 % of the budget (swap, GC);
//! - downstream latency is `linear·n + knee_s·(exp((n − knee)/scale) − 1)` past the knee;
//! - a request over the downstream's concurrency or rate limit is answered 429 after `ds_reject_s`; the task
//!   ends throttled (`TaskOutcome::Throttled`), which is not goodput, feeds the client signal and starts the
//!   pool's backoff.
//!
//! Memory is `base + Σ task memory`; reaching the budget is an OOM that ends the run. Scheduler lag (how late
//! the machine's timer fires) is `lag_base + lag_per_overload·max(0, u − 1)` plus jitter, which is what the
//! machine's event-loop probe measures.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use pool_core::{
    Action, ConcurrencySettings, CpuReading, Event, Instant, MemoryBudget, MemoryReading, Pool,
    PoolConfig, ScaleDecision, ScalingPolicy, TaskOutcome,
};

use crate::rng::Rng;
use crate::scenario::Scenario;

const MB: f64 = 1024.0 * 1024.0;

/// The autoscale interval the simulator uses for every policy.
pub const AUTOSCALE_INTERVAL: Duration = Duration::from_secs(1);

/// One second of a run.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Sample {
    /// End of the second, seconds.
    pub t: f64,
    /// Desired concurrency at the end of the second.
    pub desired: usize,
    /// Running tasks at the end of the second.
    pub running: usize,
    /// Tasks that succeeded during the second.
    pub completed: u64,
    /// Tasks answered 429 during the second.
    pub rejected: u64,
    /// True CPU demand / capacity at the end of the second (can exceed 1).
    pub cpu: f64,
    /// True memory / budget at the end of the second.
    pub memory: f64,
    /// Scheduler lag at the end of the second, ms.
    pub lag_ms: f64,
}

/// What one run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// One sample per simulated second.
    pub series: Vec<Sample>,
    /// Every scaling decision, as the machine reported it.
    pub decisions: Vec<ScaleDecision>,
    /// Tasks that succeeded.
    pub completed: u64,
    /// Tasks answered 429.
    pub rejected: u64,
    /// When memory reached the budget, if it did (the run ended there).
    pub oom_at: Option<f64>,
    /// Highest true memory / budget.
    pub peak_memory: f64,
    /// `first_reach[n]`: when `n` tasks first ran at once, seconds.
    pub first_reach: Vec<Option<f64>>,
    /// The scenario's length, seconds.
    pub duration_s: f64,
}

impl RunResult {
    /// Completed tasks per second over the whole scenario (an OOM ends completions early).
    pub fn goodput(&self) -> f64 {
        self.completed as f64 / self.duration_s
    }

    /// When running concurrency first reached `n`.
    pub fn time_to_reach(&self, n: usize) -> Option<f64> {
        self.first_reach.get(n.max(1)).copied().flatten()
    }

    /// The decisions, one line each: a reproducible trace.
    pub fn trace(&self) -> Vec<String> {
        self.decisions.iter().map(ToString::to_string).collect()
    }
}

/// How desired concurrency is governed in a run.
#[derive(Debug)]
pub enum Control<P> {
    /// A scaling policy with the scenario's bounds.
    Policy(P),
    /// A fixed concurrency (min = desired = max), as the oracle sweep uses.
    Fixed(usize),
}

struct Task {
    started_ns: u64,
    cpu: f64,
    mem: f64,
    downstream: bool,
    rejected: bool,
}

struct State<'a> {
    sc: &'a Scenario,
    tasks: Vec<Option<Task>>,
    free: Vec<usize>,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    seq: u64,
    running: usize,
    cpu_demand: f64,
    mem_tasks: f64,
    ds_inflight: usize,
    /// The downstream's leaky bucket: requests in excess of its rate, and when that was last updated.
    ds_excess: f64,
    ds_excess_at: u64,
    task_rng: Rng,
    sensor_rng: Rng,
    lag_rng: Rng,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn ns(s: f64) -> u64 {
    (s * 1e9).round().max(0.0) as u64
}

impl State<'_> {
    fn cpu_util(&self, t: f64) -> f64 {
        self.cpu_demand / self.sc.cores_at(t)
    }

    fn mem_used_mb(&self) -> f64 {
        self.sc.mem_base_mb + self.mem_tasks
    }

    fn lag_ms(&mut self, t: f64) -> f64 {
        let over = (self.cpu_util(t) - 1.0).max(0.0);
        let jitter = self.sc.timer_jitter_ms * self.lag_rng.uniform();
        self.sc.lag_base_ms + self.sc.lag_per_overload_ms * over + jitter
    }

    /// Starts a task at `now_ns`; returns its end time.
    fn start(&mut self, now_ns: u64) -> u64 {
        let sc = self.sc;
        let t = secs(now_ns);
        let cpu = sc.cpu_per_task;
        let mem =
            sc.mem_per_task_mb * (1.0 + sc.mem_task_jitter * (2.0 * self.task_rng.uniform() - 1.0));
        let jitter = self.task_rng.lognormal(sc.task_jitter);
        self.running += 1;
        self.cpu_demand += cpu;
        self.mem_tasks += mem;

        // Downstream admission: concurrency limit, then a rate limit as nginx's `limit_req` keeps it: a leaky
        // bucket draining at the rate, refusing a request while the excess is above the burst.
        let uses_ds = sc.ds_conc_limit > 0 || sc.ds_rate_limit > 0.0;
        if sc.ds_rate_limit > 0.0 {
            let drained = secs(now_ns.saturating_sub(self.ds_excess_at)) * sc.ds_rate_limit;
            self.ds_excess = (self.ds_excess - drained).max(0.0);
            self.ds_excess_at = now_ns;
        }
        let over_conc = sc.ds_conc_limit > 0 && self.ds_inflight >= sc.ds_conc_limit;
        let over_rate = sc.ds_rate_limit > 0.0 && self.ds_excess + 1.0 > sc.ds_rate_burst;
        let rejected = uses_ds && (over_conc || over_rate);
        let latency = if rejected {
            sc.ds_reject_s * jitter
        } else {
            if uses_ds {
                self.ds_inflight += 1;
                self.ds_excess += 1.0;
            }
            let u = self.cpu_util(t);
            let q = sc.cpu_queueing;
            let cpu_slow = if u <= 1.0 {
                1.0 + q * u.powi(6)
            } else {
                u * (1.0 + q) * (1.0 + sc.cpu_contention * (u - 1.0))
            };
            let m = self.mem_used_mb() / sc.mem_budget_mb;
            let mem_slow = 1.0 + sc.mem_pressure * ((m - 0.8) / 0.2).max(0.0).powi(2);
            let n = self.running as f64;
            let mut ds = sc.ds_linear_s * n;
            if sc.ds_knee > 0.0 && n > sc.ds_knee {
                ds += sc.ds_knee_s * (((n - sc.ds_knee) / sc.ds_knee_scale).exp() - 1.0);
            }
            (sc.task_s * cpu_slow * mem_slow + ds) * jitter
        };
        let task = Task {
            started_ns: now_ns,
            cpu,
            mem,
            downstream: uses_ds && !rejected,
            rejected,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.tasks[i] = Some(task);
                i
            }
            None => {
                self.tasks.push(Some(task));
                self.tasks.len() - 1
            }
        };
        let end = now_ns + ns(latency).max(1);
        self.seq += 1;
        self.heap.push(Reverse((end, self.seq, idx)));
        end
    }

    /// Reads the sensors into `pool` at `now` (`t` in seconds), with the scenario's noise.
    fn sample<P: ScalingPolicy>(&mut self, pool: &mut Pool<P>, now: Instant, t: f64) {
        let sc = self.sc;
        let noise = sc.cpu_noise * self.sensor_rng.normal();
        let used_ratio = (self.cpu_util(t).min(1.0) + noise).max(0.0);
        let _ = pool.handle_cpu(
            now,
            CpuReading {
                at: now,
                used_ratio,
            },
        );
        let mem_noise = sc.mem_noise_mb * self.sensor_rng.normal();
        let used = ((self.mem_used_mb() + mem_noise).max(0.0) * MB) as u64;
        let reading = MemoryReading {
            at: now,
            used_bytes: used,
            total_bytes: (sc.mem_budget_mb * 4.0 * MB) as u64,
            system_used_bytes: None,
        };
        let _ = pool.handle_memory(now, reading);
    }

    /// Ends task `idx`; returns whether the service rejected it, and when it started.
    fn finish(&mut self, idx: usize) -> (bool, u64) {
        let task = self.tasks[idx].take().expect("a finished task was running");
        self.free.push(idx);
        self.running -= 1;
        self.cpu_demand = (self.cpu_demand - task.cpu).max(0.0);
        self.mem_tasks = (self.mem_tasks - task.mem).max(0.0);
        if task.downstream {
            self.ds_inflight -= 1;
        }
        (task.rejected, task.started_ns)
    }
}

/// The pool configuration a scenario runs with: library defaults, except the bounds, the autoscale interval
/// ([`AUTOSCALE_INTERVAL`] for every policy), no status records, and a fixed memory budget.
pub fn pool_config(sc: &Scenario, fixed: Option<usize>) -> PoolConfig {
    let mut config = PoolConfig::default();
    config.concurrency = match fixed {
        Some(n) => ConcurrencySettings::fixed(n),
        None => ConcurrencySettings::default()
            .with_min(sc.min_concurrency)
            .with_max(sc.max_concurrency)
            .with_desired(sc.initial_desired),
    };
    config.scaling.autoscale_interval = AUTOSCALE_INTERVAL;
    config.scaling.status_log_interval = None;
    config.snapshot.memory_budget = MemoryBudget::Fixed((sc.mem_budget_mb * MB) as u64);
    config
}

/// Runs one scenario under one control and returns what happened.
///
/// # Panics
///
/// If the scenario's bounds make an invalid pool configuration (a scenario file bug).
pub fn run<P: ScalingPolicy>(sc: &Scenario, control: Control<P>) -> RunResult {
    match control {
        Control::Policy(p) => {
            let pool = Pool::with_policy(pool_config(sc, None), p).expect("valid scenario bounds");
            drive(sc, pool)
        }
        Control::Fixed(n) => {
            let pool = Pool::new(pool_config(sc, Some(n))).expect("valid fixed concurrency");
            drive(sc, pool)
        }
    }
}

fn drive<P: ScalingPolicy>(sc: &Scenario, mut pool: Pool<P>) -> RunResult {
    let end_ns = ns(sc.duration_s);
    let mut st = State {
        sc,
        tasks: Vec::new(),
        free: Vec::new(),
        heap: BinaryHeap::new(),
        seq: 0,
        running: 0,
        cpu_demand: 0.0,
        mem_tasks: 0.0,
        ds_inflight: 0,
        ds_excess: 0.0,
        ds_excess_at: 0,
        task_rng: Rng::new(sc.seed, 1),
        sensor_rng: Rng::new(sc.seed, 2),
        lag_rng: Rng::new(sc.seed, 3),
    };
    let mut out = RunResult {
        series: Vec::with_capacity(sc.duration_s as usize + 1),
        decisions: Vec::new(),
        completed: 0,
        rejected: 0,
        oom_at: None,
        peak_memory: sc.mem_base_mb / sc.mem_budget_mb,
        first_reach: vec![None; sc.max_concurrency.max(pool.max_concurrency()) + 2],
        duration_s: sc.duration_s,
    };
    let mut sec = Sample::default();
    let mut next_sample_ns = 1_000_000_000u64;
    let mut max_running = 0usize;
    // The machine's timer: the deadline it asked for and when the (lagging) scheduler delivers it.
    let mut timer: Option<(Instant, u64)> = None;
    // Supply changes are events too, so a pool refused for "no task ready" retries when work appears.
    let mut supply_edges: Vec<u64> = sc
        .supply_off
        .iter()
        .flat_map(|(a, b)| [ns(*a), ns(*b)])
        .filter(|&t| t > 0)
        .collect();
    supply_edges.sort_unstable();
    supply_edges.reverse();

    let mut now_ns = 0u64;
    let at = |t: u64| Instant::ZERO + Duration::from_nanos(t);
    pool.start_run(at(0)).expect("a fresh pool starts");
    loop {
        let now = at(now_ns);
        // Drain what the machine wants.
        while let Some(action) = pool.poll_action() {
            if action == Action::SampleSensors {
                st.sample(&mut pool, now, secs(now_ns));
            }
        }
        while let Some(e) = pool.poll_event() {
            if let Event::Scaled(d) = e {
                out.decisions.push(d);
            }
        }
        // Start what the gate admits.
        if out.oom_at.is_none() {
            while pool.poll_start(now).is_ok() {
                if !sc.supply_at(secs(now_ns)) {
                    pool.handle_no_task_ready(now);
                    break;
                }
                if pool.handle_task_started(now).is_err() {
                    break;
                }
                st.start(now_ns);
                if st.running > max_running {
                    for n in max_running + 1..=st.running.min(out.first_reach.len() - 1) {
                        out.first_reach[n] = Some(secs(now_ns));
                    }
                    max_running = st.running;
                }
                let m = st.mem_used_mb() / sc.mem_budget_mb;
                out.peak_memory = out.peak_memory.max(m);
                if m >= 1.0 {
                    out.oom_at = Some(secs(now_ns));
                    break;
                }
            }
        }
        // Pick the next event.
        let deadline = pool.poll_timeout();
        let wake = match (deadline, timer) {
            (Some(d), Some((td, w))) if td == d => Some(w),
            (Some(d), _) => {
                let d_ns = (d - Instant::ZERO).as_nanos() as u64;
                let lag = st.lag_ms(secs(d_ns.max(now_ns)));
                // At least a microsecond, so a deadline already due cannot spin the loop in place.
                let w = d_ns.max(now_ns) + ns(lag / 1000.0).max(1_000);
                timer = Some((d, w));
                Some(w)
            }
            (None, _) => None,
        };
        let next_task = if out.oom_at.is_some() {
            None
        } else {
            st.heap.peek().map(|Reverse((t, _, _))| *t)
        };
        let next_edge = supply_edges.last().copied();
        let next = [wake, next_task, next_edge, Some(next_sample_ns)]
            .into_iter()
            .flatten()
            .min()
            .expect("the sampler always has a next second");
        if next > end_ns {
            break;
        }
        now_ns = next.max(now_ns);
        let now = at(now_ns);
        if next_sample_ns <= now_ns {
            let t = secs(next_sample_ns);
            sec.t = t;
            sec.desired = pool.desired_concurrency();
            sec.running = st.running;
            sec.cpu = st.cpu_util(t);
            sec.memory = st.mem_used_mb() / sc.mem_budget_mb;
            sec.lag_ms = st.lag_ms(t);
            out.series.push(sec);
            sec = Sample::default();
            next_sample_ns += 1_000_000_000;
        }
        while supply_edges.last().is_some_and(|&e| e <= now_ns) {
            supply_edges.pop();
        }
        if out.oom_at.is_none() {
            let mut rejected = 0u64;
            while let Some(&Reverse((t, _, idx))) = st.heap.peek() {
                if t > now_ns {
                    break;
                }
                st.heap.pop();
                // A 429 is reported the way a user's task reports it: as a throttled outcome, which the machine
                // counts as a client error and backs off from.
                let (rejected_task, started_ns) = st.finish(idx);
                let outcome = if rejected_task {
                    rejected += 1;
                    TaskOutcome::Throttled { retry_after: None }
                } else {
                    out.completed += 1;
                    sec.completed += 1;
                    TaskOutcome::Succeeded
                };
                pool.handle_task_finished_since(now, at(started_ns), outcome);
            }
            out.rejected += rejected;
            sec.rejected += rejected;
        }
        if let Some((_, w)) = timer
            && w <= now_ns
        {
            timer = None;
            // As the library's driver does: sensors first, so a tick due now decides on readings of now.
            if pool.poll_sample(now) {
                st.sample(&mut pool, now, secs(now_ns));
            }
            pool.handle_timeout(now);
        }
    }
    out
}
