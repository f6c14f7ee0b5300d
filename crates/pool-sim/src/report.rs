//! The suite: every scenario under every policy, the table, `summary.json`, and the target check.

use std::fmt::Write as _;

use pool_core::{AdaptivePolicy, CrawleePolicy};

use crate::metrics::{Metrics, Oracles, Sweep, misses, oracles, score};
use crate::model::RunResult;
use crate::scenario::Scenario;

/// The policies the suite compares, by the names the table and JSON use.
pub const POLICIES: [&str; 2] = ["crawlee", "adaptive"];

/// The policy the suite holds to the targets (the one proposed as the pool's default).
pub const DEFAULT_POLICY: &str = "adaptive";

/// One scenario's results.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// Its oracles.
    pub oracles: Oracles,
    /// `(policy name, run, figures)`, in [`POLICIES`] order.
    pub runs: Vec<(&'static str, RunResult, Metrics)>,
}

impl ScenarioResult {
    /// The figures of one policy.
    pub fn metrics(&self, policy: &str) -> &Metrics {
        &self
            .runs
            .iter()
            .find(|(p, _, _)| *p == policy)
            .expect("every policy runs on every scenario")
            .2
    }

    /// The targets the default policy misses here, as `(target, sentence)`.
    pub fn misses(&self) -> Vec<(&'static str, String)> {
        misses(self.metrics(DEFAULT_POLICY), self.metrics("crawlee"))
    }
}

/// Runs one scenario under every policy.
pub fn run_scenario(sc: &Scenario, sweep: Sweep) -> ScenarioResult {
    let o = oracles(sc, sweep);
    let (cr, cm) = score(sc, &o, CrawleePolicy);
    let (ar, am) = score(sc, &o, AdaptivePolicy::default());
    ScenarioResult {
        scenario: sc.clone(),
        oracles: o,
        runs: vec![("crawlee", cr, cm), ("adaptive", ar, am)],
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// The table: one row per scenario and policy.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<9} {:>7} {:>6} {:>8} {:>8} {:>7} {:>4} {:>6} {:>8} {:>6}  429",
        "scenario",
        "policy",
        "oracle",
        "c*",
        "goodput",
        "vs_orcl",
        "t90_s",
        "oom",
        "peakM",
        "recov_s",
        "osc",
    );
    for r in results {
        for (name, _, m) in &r.runs {
            let _ = writeln!(
                out,
                "{:<14} {:<9} {:>7.2} {:>6} {:>8.2} {:>8.3} {:>7.1} {:>4} {:>6.3} {:>8} {:>6.3}  {}",
                r.scenario.name,
                name,
                r.oracles.run.goodput,
                r.oracles.run.concurrency,
                m.goodput,
                m.goodput_vs_oracle,
                m.time_to_90_s,
                m.ooms,
                m.peak_memory_vs_budget,
                opt(m.recovery_s, 1),
                m.oscillation,
                opt(m.share_429, 3),
            );
        }
    }
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        "null".to_owned()
    }
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_owned(), json_num)
}

/// `summary.json`: `{"scenarios": [{"name", "policy", "default", "goodput_vs_oracle", ...}, ...]}`.
pub fn summary_json(results: &[ScenarioResult]) -> String {
    let mut rows = Vec::new();
    for r in results {
        for (name, _, m) in &r.runs {
            rows.push(format!(
                "    {{\"name\": \"{}\", \"policy\": \"{}\", \"default\": {}, \"goodput_vs_oracle\": {}, \
                 \"time_to_90_s\": {}, \"peak_memory_vs_budget\": {}, \"ooms\": {}, \"recovery_s\": {}, \
                 \"oscillation\": {}, \"share_429\": {}, \"restore_s\": {}, \"goodput\": {}, \"oracle_goodput\": {}, \
                 \"oracle_concurrency\": {}}}",
                r.scenario.name,
                name,
                *name == DEFAULT_POLICY,
                json_num(m.goodput_vs_oracle),
                json_num(m.time_to_90_s),
                json_num(m.peak_memory_vs_budget),
                m.ooms,
                json_opt(m.recovery_s),
                json_num(m.oscillation),
                json_opt(m.share_429),
                json_opt(m.restore_s),
                json_num(m.goodput),
                json_num(r.oracles.run.goodput),
                r.oracles.run.concurrency,
            ));
        }
    }
    format!("{{\"scenarios\": [\n{}\n]}}\n", rows.join(",\n"))
}
