//! Scores: the oracle (best fixed concurrency, by sweep), the per-run figures, and the targets.

use pool_core::ScalingPolicy;

use crate::model::{Control, RunResult, run};
use crate::scenario::Scenario;

/// The best fixed concurrency for a scenario, found by a sweep in the same simulator.
#[derive(Clone, Debug, PartialEq)]
pub struct Oracle {
    /// The smallest concurrency whose goodput is within 1 % of the best (the plateau's left edge).
    pub concurrency: usize,
    /// The best goodput of the sweep, tasks/s.
    pub goodput: f64,
    /// Every level tried, with its goodput, ascending.
    pub sweep: Vec<(usize, f64)>,
}

/// How thorough the oracle sweep is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// A geometric grid, then every level around the best: the published numbers.
    Full,
    /// A coarser grid and refinement: for CI.
    Fast,
}

/// Sweeps fixed concurrencies `1..=max` and returns the best.
pub fn oracle(sc: &Scenario, sweep: Sweep) -> Oracle {
    let ratio = match sweep {
        Sweep::Full => 1.15,
        Sweep::Fast => 1.3,
    };
    let mut levels = Vec::new();
    let mut x = 1.0f64;
    while (x as usize) < sc.max_concurrency {
        let n = x as usize;
        if levels.last() != Some(&n) {
            levels.push(n);
        }
        x = (x * ratio).max(x + 1.0);
    }
    levels.push(sc.max_concurrency);
    let mut tried: Vec<(usize, f64)> = Vec::new();
    let try_level = |n: usize, tried: &mut Vec<(usize, f64)>| {
        if !tried.iter().any(|(m, _)| *m == n) {
            let g = run::<pool_core::CrawleePolicy>(sc, Control::Fixed(n)).goodput();
            tried.push((n, g));
        }
    };
    for &n in &levels {
        try_level(n, &mut tried);
    }
    // Refine between the best level's neighbours.
    tried.sort_by_key(|(n, _)| *n);
    let best = best_index(&tried);
    let lo = tried[best.saturating_sub(1)].0;
    let hi = tried[(best + 1).min(tried.len() - 1)].0;
    let steps = match sweep {
        Sweep::Full => 12,
        Sweep::Fast => 6,
    };
    let stride = ((hi - lo) / steps).max(1);
    let mut n = lo;
    while n <= hi {
        try_level(n, &mut tried);
        n += stride;
    }
    tried.sort_by_key(|(n, _)| *n);
    let goodput = tried.iter().map(|(_, g)| *g).fold(0.0, f64::max);
    let concurrency = tried
        .iter()
        .find(|(_, g)| *g >= 0.99 * goodput)
        .map_or(1, |(n, _)| *n);
    Oracle {
        concurrency,
        goodput,
        sweep: tried,
    }
}

fn best_index(tried: &[(usize, f64)]) -> usize {
    let mut best = 0;
    for (i, (_, g)) in tried.iter().enumerate() {
        if *g > tried[best].1 {
            best = i;
        }
    }
    best
}

/// Oracles for a scenario: the whole run, and (for a capacity step) each capacity on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Oracles {
    /// The best fixed concurrency over the scripted run.
    pub run: Oracle,
    /// `(at reduced capacity, at full capacity)`, for scenarios with a capacity drop.
    pub phases: Option<(Oracle, Oracle)>,
}

/// Computes every oracle a scenario needs.
pub fn oracles(sc: &Scenario, sweep: Sweep) -> Oracles {
    let run = oracle(sc, sweep);
    let phases = sc.capacity_drop().map(|(at, _)| {
        let factor = sc.cores_at(at) / sc.cpu_cores;
        (
            oracle(&sc.at_capacity(factor), sweep),
            oracle(&sc.at_capacity(1.0), sweep),
        )
    });
    Oracles { run, phases }
}

/// One policy's figures on one scenario. A figure that does not apply is `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Completed tasks per second.
    pub goodput: f64,
    /// Goodput over the oracle's.
    pub goodput_vs_oracle: f64,
    /// Seconds until running concurrency first reached 90 % of the oracle's (the run's length if never).
    pub time_to_90_s: f64,
    /// Highest memory use over the budget.
    pub peak_memory_vs_budget: f64,
    /// OOM events (a run ends at its first).
    pub ooms: u32,
    /// 429 answers over finished tasks, for scenarios whose downstream has a limit.
    pub share_429: Option<f64>,
    /// For a capacity drop: seconds from the drop until a 5 s window completes at least 90 % of the reduced
    /// capacity's oracle goodput (the phase's length if never).
    pub recovery_s: Option<f64>,
    /// For a capacity restore (informational, no target): seconds from the restore until running concurrency
    /// is at least 90 % of the full capacity's oracle.
    pub restore_s: Option<f64>,
    /// Standard deviation of desired concurrency over the steady state, over the oracle's concurrency.
    pub oscillation: f64,
}

/// Scores a run.
pub fn measure(sc: &Scenario, o: &Oracles, r: &RunResult) -> Metrics {
    let c90 = (0.9 * o.run.concurrency as f64).ceil() as usize;
    let time_to_90_s = r.time_to_reach(c90).unwrap_or(sc.duration_s);
    let has_limit = sc.ds_conc_limit > 0 || sc.ds_rate_limit > 0.0;
    let finished = r.completed + r.rejected;
    let share_429 = has_limit.then(|| {
        if finished == 0 {
            0.0
        } else {
            r.rejected as f64 / finished as f64
        }
    });
    let (recovery_s, restore_s) = match (sc.capacity_drop(), &o.phases) {
        (Some((drop, restore)), Some((lo, hi))) => {
            let phase_end = restore.unwrap_or(sc.duration_s);
            // Recovered once a 5 s window starting then completes at least 90 % of the reduced oracle's rate.
            let want = 0.9 * lo.goodput;
            let down = first_window(r, drop, phase_end, 5, |c| c >= want) - drop;
            let up = restore.map(|at| {
                let want = 0.9 * hi.concurrency as f64;
                r.series
                    .iter()
                    .find(|s| s.t >= at && s.running as f64 >= want)
                    .map_or(sc.duration_s, |s| s.t)
                    - at
            });
            (Some(down), up)
        }
        _ => (None, None),
    };
    let steady: Vec<f64> = r
        .series
        .iter()
        .filter(|s| s.t > sc.steady_from())
        .map(|s| s.desired as f64)
        .collect();
    let oscillation = std_dev(&steady) / o.run.concurrency.max(1) as f64;
    Metrics {
        goodput: r.goodput(),
        goodput_vs_oracle: r.goodput() / o.run.goodput.max(f64::MIN_POSITIVE),
        time_to_90_s,
        peak_memory_vs_budget: r.peak_memory,
        ooms: u32::from(r.oom_at.is_some()),
        share_429,
        recovery_s,
        restore_s,
        oscillation,
    }
}

/// The first second `t` in `[from, to)` whose `n`-second window `[t, t + n)` has a mean completion rate that
/// satisfies `ok`, or `to`.
fn first_window(r: &RunResult, from: f64, to: f64, n: usize, ok: impl Fn(f64) -> bool) -> f64 {
    let s = &r.series;
    for (k, x) in s.iter().enumerate() {
        if x.t <= from || x.t > to || k + n > s.len() {
            continue;
        }
        // Sample `k` covers the second ending at `x.t`, so the window starts at `x.t - 1`.
        let mean = s[k..k + n].iter().map(|y| y.completed as f64).sum::<f64>() / n as f64;
        if ok(mean) {
            return x.t - 1.0;
        }
    }
    to
}

fn std_dev(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// The default policy's targets, from the issue.
pub mod targets {
    /// Goodput at least this share of the oracle's.
    pub const GOODPUT_VS_ORACLE: f64 = 0.95;
    /// Time to 90 % of the oracle's concurrency, at most this many seconds.
    pub const TIME_TO_90_S: f64 = 30.0;
    /// Recovery after a capacity step, at most this many seconds.
    pub const RECOVERY_S: f64 = 15.0;
    /// Steady-state oscillation at most this share of the oracle's concurrency.
    pub const OSCILLATION: f64 = 0.10;
}

/// How a target bounds its figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// The figure must be at least this: a known miss of it names a floor (`>=`).
    AtLeast(f64),
    /// The figure must be at most this: a known miss of it names a ceiling (`<=`).
    AtMost(f64),
}

impl Bound {
    /// Whether `v` meets the bound.
    pub fn holds(self, v: f64) -> bool {
        match self {
            Bound::AtLeast(b) => v >= b,
            Bound::AtMost(b) => v <= b,
        }
    }
}

/// One of the default policy's targets: a named bound on one figure.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The name `known-misses.txt` and the reports use.
    pub name: &'static str,
    /// The figure, for sentences.
    pub figure_name: &'static str,
    /// The bound the figure must meet.
    pub bound: Bound,
    figure: fn(&Metrics, &Metrics) -> Option<f64>,
}

impl Target {
    /// The figure this target bounds, for `m` against `baseline` (the Crawlee policy's figures on the same
    /// scenario); `None` where the target does not apply (recovery without a capacity step).
    pub fn figure(&self, m: &Metrics, baseline: &Metrics) -> Option<f64> {
        (self.figure)(m, baseline)
    }
}

/// The default policy's targets: goodput, ooms, time_to_90, recovery, oscillation and vs_crawlee.
pub const TARGETS: [Target; 6] = [
    Target {
        name: "goodput",
        figure_name: "goodput over the oracle's",
        bound: Bound::AtLeast(targets::GOODPUT_VS_ORACLE),
        figure: |m, _| Some(m.goodput_vs_oracle),
    },
    Target {
        name: "ooms",
        figure_name: "OOMs",
        bound: Bound::AtMost(0.0),
        figure: |m, _| Some(f64::from(m.ooms)),
    },
    Target {
        name: "time_to_90",
        figure_name: "time to 90 % of the oracle's concurrency, s,",
        bound: Bound::AtMost(targets::TIME_TO_90_S),
        figure: |m, _| Some(m.time_to_90_s),
    },
    Target {
        name: "recovery",
        figure_name: "recovery after the capacity drop, s,",
        bound: Bound::AtMost(targets::RECOVERY_S),
        figure: |m, _| m.recovery_s,
    },
    Target {
        name: "oscillation",
        figure_name: "oscillation",
        bound: Bound::AtMost(targets::OSCILLATION),
        figure: |m, _| Some(m.oscillation),
    },
    Target {
        name: "vs_crawlee",
        figure_name: "goodput over the Crawlee policy's",
        bound: Bound::AtLeast(1.0),
        // Against a Crawlee policy that completed nothing, any goodput is at least as good.
        figure: |m, b| (b.goodput > 0.0).then(|| m.goodput / b.goodput),
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Every target `m` misses, as `(target, sentence)`; `baseline` is the Crawlee policy's figures on the same
/// scenario.
pub fn misses(m: &Metrics, baseline: &Metrics) -> Vec<(&'static str, String)> {
    TARGETS
        .iter()
        .filter_map(|t| {
            let v = t.figure(m, baseline)?;
            let (op, bound) = match t.bound {
                Bound::AtLeast(b) => ("<", b),
                Bound::AtMost(b) => (">", b),
            };
            (!t.bound.holds(v)).then(|| (t.name, format!("{} {v:.3} {op} {bound}", t.figure_name)))
        })
        .collect()
}

/// Runs `policy` on a scenario and scores it.
pub fn score<P: ScalingPolicy>(sc: &Scenario, o: &Oracles, policy: P) -> (RunResult, Metrics) {
    let r = run(sc, Control::Policy(policy));
    let m = measure(sc, o, &r);
    (r, m)
}
