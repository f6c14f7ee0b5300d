//! The suite: every scenario under every policy, the table, `summary.json`, and the target check.

use std::fmt::Write as _;

use pool_core::{AdaptivePolicy, CrawleePolicy};
use serde::Serialize;

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

/// Rounds a figure to 4 decimals, so that `summary.json` diffs show real changes rather than float noise.
fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// One row of `summary.json`: one policy on one scenario. Non-finite figures serialise as `null`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryRow {
    /// The scenario.
    pub name: String,
    /// The policy, one of [`POLICIES`].
    pub policy: String,
    /// Whether this is [`DEFAULT_POLICY`].
    pub default: bool,
    /// [`Metrics::goodput_vs_oracle`].
    pub goodput_vs_oracle: f64,
    /// [`Metrics::time_to_90_s`].
    pub time_to_90_s: f64,
    /// [`Metrics::peak_memory_vs_budget`].
    pub peak_memory_vs_budget: f64,
    /// [`Metrics::ooms`].
    pub ooms: u32,
    /// [`Metrics::recovery_s`].
    pub recovery_s: Option<f64>,
    /// [`Metrics::oscillation`].
    pub oscillation: f64,
    /// [`Metrics::share_429`].
    pub share_429: Option<f64>,
    /// [`Metrics::restore_s`].
    pub restore_s: Option<f64>,
    /// [`Metrics::goodput`], tasks/s.
    pub goodput: f64,
    /// The oracle's goodput, tasks/s.
    pub oracle_goodput: f64,
    /// The oracle's concurrency.
    pub oracle_concurrency: usize,
}

/// `summary.json`'s whole document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Every scenario under every policy, in the table's order.
    pub scenarios: Vec<SummaryRow>,
}

/// The summary of a suite run, figures rounded to 4 decimals.
pub fn summary(results: &[ScenarioResult]) -> Summary {
    let mut scenarios = Vec::new();
    for r in results {
        for (name, _, m) in &r.runs {
            scenarios.push(SummaryRow {
                name: r.scenario.name.clone(),
                policy: (*name).to_owned(),
                default: *name == DEFAULT_POLICY,
                goodput_vs_oracle: round4(m.goodput_vs_oracle),
                time_to_90_s: round4(m.time_to_90_s),
                peak_memory_vs_budget: round4(m.peak_memory_vs_budget),
                ooms: m.ooms,
                recovery_s: m.recovery_s.map(round4),
                oscillation: round4(m.oscillation),
                share_429: m.share_429.map(round4),
                restore_s: m.restore_s.map(round4),
                goodput: round4(m.goodput),
                oracle_goodput: round4(r.oracles.run.goodput),
                oracle_concurrency: r.oracles.run.concurrency,
            });
        }
    }
    Summary { scenarios }
}

/// `summary.json`: `{"scenarios": [{"name", "policy", "default", "goodput_vs_oracle", ...}, ...]}`.
pub fn summary_json(results: &[ScenarioResult]) -> String {
    // Serialising plain numbers, strings and options cannot fail.
    let mut text = serde_json::to_string_pretty(&summary(results)).expect("the summary serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_rows_round_to_four_decimals_and_write_missing_figures_as_null() {
        let row = SummaryRow {
            name: "x".into(),
            policy: "adaptive".into(),
            default: true,
            goodput_vs_oracle: round4(0.123_456),
            time_to_90_s: f64::NAN,
            peak_memory_vs_budget: 0.5,
            ooms: 0,
            recovery_s: None,
            oscillation: 0.0,
            share_429: Some(0.25),
            restore_s: None,
            goodput: 1.0,
            oracle_goodput: 2.0,
            oracle_concurrency: 3,
        };
        let json: serde_json::Value = serde_json::to_value(&row).unwrap();
        assert_eq!(json["goodput_vs_oracle"], 0.1235);
        assert!(json["time_to_90_s"].is_null());
        assert!(json["recovery_s"].is_null());
        assert_eq!(json["default"], true);
        assert_eq!(json["share_429"], 0.25);
    }
}
