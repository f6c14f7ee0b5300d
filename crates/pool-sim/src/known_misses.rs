//! `known-misses.txt`: the targets the default policy is known to miss, each with the floor (or ceiling) its
//! figure must not fall past, so that CI catches a regression inside a known miss as well as a new miss.
//!
//! One entry a line, `scenario target >= floor` (or `<= ceiling` for a target that is an upper bound, such as
//! `time_to_90`), optionally followed by `fast-only` for a miss that only the CI's fast sweep shows; `#`
//! starts a comment. [`check`] compares a suite run with the entries: a figure past its floor, a listed target
//! that is now met (its line must go), and an entry that names no scenario or target all fail, as does any
//! miss that no entry lists.

use std::fmt;

use crate::metrics::{Bound, Metrics, Sweep, TARGETS, Target, misses, target};
use crate::report::{DEFAULT_POLICY, ScenarioResult};
use crate::scenario::ParseError;

/// One line of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownMiss {
    /// 1-based line in the file, for messages.
    pub line: usize,
    /// The scenario's name.
    pub scenario: String,
    /// The target's name, one of [`TARGETS`].
    pub target: &'static str,
    /// The figure must not fall past this: at least it for an [`Bound::AtLeast`] target, at most for
    /// [`Bound::AtMost`].
    pub limit: f64,
    /// The miss shows only against the fast sweep's oracle; the full sweep holds the target as usual.
    pub fast_only: bool,
}

impl KnownMiss {
    /// Whether this entry applies to a run with `sweep`.
    pub fn applies(&self, sweep: Sweep) -> bool {
        !self.fast_only || sweep == Sweep::Fast
    }

    fn target(&self) -> &'static Target {
        target(self.target).expect("parse only accepts known targets")
    }

    /// Whether `v` is within this entry's limit.
    fn within(&self, v: f64) -> bool {
        match self.target().bound {
            Bound::AtLeast(_) => v >= self.limit,
            Bound::AtMost(_) => v <= self.limit,
        }
    }

    fn op(&self) -> &'static str {
        match self.target().bound {
            Bound::AtLeast(_) => ">=",
            Bound::AtMost(_) => "<=",
        }
    }
}

/// Reads the file's text.
///
/// # Errors
///
/// The first bad line: not `scenario target >= number [fast-only]`, an unknown target, the wrong comparison
/// for the target (a floor for an upper bound, or a ceiling for a lower one), or a second entry for the same
/// scenario and target.
pub fn parse(text: &str) -> Result<Vec<KnownMiss>, ParseError> {
    let mut out: Vec<KnownMiss> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let err = |message: String| ParseError {
            line,
            text: content.to_owned(),
            message,
        };
        let words: Vec<&str> = content.split_whitespace().collect();
        let (scenario, name, op, limit, fast_only) = match words[..] {
            [s, t, op, v] => (s, t, op, v, false),
            [s, t, op, v, "fast-only"] => (s, t, op, v, true),
            _ => {
                return Err(err(
                    "expected `scenario target >= figure`, optionally followed by `fast-only`"
                        .into(),
                ));
            }
        };
        let Some(t) = target(name) else {
            let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
            return Err(err(format!(
                "unknown target `{name}`; the targets are {}",
                names.join(", ")
            )));
        };
        let want = match t.bound {
            Bound::AtLeast(_) => ">=",
            Bound::AtMost(_) => "<=",
        };
        if op != want {
            return Err(err(format!(
                "`{name}` is bounded {}, so its known miss needs `{want}`, not `{op}`",
                if want == ">=" { "below" } else { "above" }
            )));
        }
        let limit: f64 = limit
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| err(format!("`{limit}` is not a number")))?;
        if let Some(first) = out
            .iter()
            .find(|k| k.scenario == scenario && k.target == t.name)
        {
            return Err(err(format!(
                "`{scenario} {name}` is already listed on line {}",
                first.line
            )));
        }
        out.push(KnownMiss {
            line,
            scenario: scenario.to_owned(),
            target: t.name,
            limit,
            fast_only,
        });
    }
    Ok(out)
}

/// What [`check`] found for one target or entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// A listed miss whose figure is within its limit: reported, and not a failure.
    Known {
        /// The entry.
        entry: KnownMiss,
        /// The figure today.
        figure: f64,
    },
    /// A listed miss whose figure fell past its limit.
    PastLimit {
        /// The entry.
        entry: KnownMiss,
        /// The figure today.
        figure: f64,
    },
    /// A listed target that the default policy now meets.
    NowMet {
        /// The entry.
        entry: KnownMiss,
        /// The figure today.
        figure: f64,
    },
    /// An entry whose target has no figure on its scenario (recovery without a capacity step).
    NotApplicable(KnownMiss),
    /// An entry that names no scenario of the suite.
    UnknownScenario(KnownMiss),
    /// A miss that no entry lists.
    Unlisted {
        /// The scenario.
        scenario: String,
        /// The target.
        target: &'static str,
        /// Why it is missed.
        sentence: String,
    },
}

impl Finding {
    /// Whether this finding fails the run.
    pub fn fails(&self) -> bool {
        !matches!(self, Finding::Known { .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Known { entry: e, figure } => write!(
                f,
                "KNOWN MISS {} ({DEFAULT_POLICY}) {}: {figure:.4}, within its limit {} {}",
                e.scenario,
                e.target,
                e.op(),
                e.limit
            ),
            Finding::PastLimit { entry: e, figure } => write!(
                f,
                "REGRESSION {} ({DEFAULT_POLICY}) {}: {figure:.4} {} {} on line {} of known-misses.txt",
                e.scenario,
                e.target,
                if e.op() == ">=" {
                    "fell below its floor"
                } else {
                    "rose above its ceiling"
                },
                e.limit,
                e.line
            ),
            Finding::NowMet { entry: e, figure } => write!(
                f,
                "NOW MET {} ({DEFAULT_POLICY}) {}: {figure:.4} meets the target; delete line {} of \
                 known-misses.txt",
                e.scenario, e.target, e.line
            ),
            Finding::NotApplicable(e) => write!(
                f,
                "line {} of known-misses.txt: the target `{}` does not apply to scenario `{}`",
                e.line, e.target, e.scenario
            ),
            Finding::UnknownScenario(e) => write!(
                f,
                "line {} of known-misses.txt names no scenario `{}` (misspelt, or the scenario was removed)",
                e.line, e.scenario
            ),
            Finding::Unlisted {
                scenario,
                target,
                sentence,
            } => write!(f, "MISS {scenario} ({DEFAULT_POLICY}) {target}: {sentence}"),
        }
    }
}

/// One scenario's figures, as [`check`] needs them.
#[derive(Clone, Copy, Debug)]
pub struct Scored<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// The default policy's figures.
    pub default: &'a Metrics,
    /// The Crawlee policy's figures, the `vs_crawlee` baseline.
    pub crawlee: &'a Metrics,
}

impl<'a> From<&'a ScenarioResult> for Scored<'a> {
    fn from(r: &'a ScenarioResult) -> Self {
        Scored {
            scenario: &r.scenario.name,
            default: r.metrics(DEFAULT_POLICY),
            crawlee: r.metrics("crawlee"),
        }
    }
}

/// Compares a suite run with the entries that apply to its `sweep`. `scenarios` names every scenario of the
/// suite, so that an entry for one left out of this run (by `--only`) is neither checked nor an error.
pub fn check(
    known: &[KnownMiss],
    scenarios: &[&str],
    results: &[Scored<'_>],
    sweep: Sweep,
) -> Vec<Finding> {
    let known: Vec<&KnownMiss> = known.iter().filter(|k| k.applies(sweep)).collect();
    let mut out = Vec::new();
    for k in &known {
        if !scenarios.contains(&k.scenario.as_str()) {
            out.push(Finding::UnknownScenario((*k).clone()));
            continue;
        }
        let Some(r) = results.iter().find(|r| r.scenario == k.scenario) else {
            continue;
        };
        let t = k.target();
        let entry = (*k).clone();
        out.push(match t.figure(r.default, r.crawlee) {
            None => Finding::NotApplicable(entry),
            Some(figure) if t.bound.holds(figure) => Finding::NowMet { entry, figure },
            Some(figure) if k.within(figure) => Finding::Known { entry, figure },
            Some(figure) => Finding::PastLimit { entry, figure },
        });
    }
    for r in results {
        for (target, sentence) in misses(r.default, r.crawlee) {
            let listed = known
                .iter()
                .any(|k| k.scenario == r.scenario && k.target == target);
            if !listed {
                out.push(Finding::Unlisted {
                    scenario: r.scenario.to_owned(),
                    target,
                    sentence,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Figures that meet every target.
    fn good() -> Metrics {
        Metrics {
            goodput: 10.0,
            goodput_vs_oracle: 0.97,
            time_to_90_s: 12.0,
            peak_memory_vs_budget: 0.5,
            ooms: 0,
            share_429: None,
            recovery_s: None,
            restore_s: None,
            oscillation: 0.01,
        }
    }

    fn crawlee() -> Metrics {
        Metrics {
            goodput: 5.0,
            ..good()
        }
    }

    const SCENARIOS: &[&str] = &["latency-knee", "slow-tasks", "cpu-knee"];

    fn run(known: &str, default: &Metrics, sweep: Sweep) -> Vec<Finding> {
        let known = parse(known).unwrap();
        let baseline = crawlee();
        let scored = [Scored {
            scenario: "latency-knee",
            default,
            crawlee: &baseline,
        }];
        check(&known, SCENARIOS, &scored, sweep)
    }

    #[test]
    fn entries_parse_with_comments_floors_ceilings_and_fast_only() {
        let known = parse(
            "# header\n\nlatency-knee goodput >= 0.91  # why\nslow-tasks time_to_90 <= 35 fast-only\n",
        )
        .unwrap();
        assert_eq!(
            known,
            [
                KnownMiss {
                    line: 3,
                    scenario: "latency-knee".into(),
                    target: "goodput",
                    limit: 0.91,
                    fast_only: false,
                },
                KnownMiss {
                    line: 4,
                    scenario: "slow-tasks".into(),
                    target: "time_to_90",
                    limit: 35.0,
                    fast_only: true,
                },
            ]
        );
    }

    #[test]
    fn a_bad_line_is_rejected_with_its_number_and_a_sentence() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            err("\nlatency-knee goodput"),
            "line 2 (`latency-knee goodput`): expected `scenario target >= figure`, optionally followed by \
             `fast-only`"
        );
        assert!(
            err("x goodpt >= 0.9")
                .contains("unknown target `goodpt`; the targets are goodput, ooms")
        );
        assert!(
            err("x goodput <= 0.9")
                .contains("`goodput` is bounded below, so its known miss needs `>=`")
        );
        assert!(err("x time_to_90 >= 40").contains("needs `<=`, not `>=`"));
        assert!(err("x goodput >= high").contains("`high` is not a number"));
        assert!(err("x goodput >= 0.9\nx goodput >= 0.8").contains("already listed on line 1"));
        assert!(err("x goodput >= 0.9 slow-only").starts_with("line 1 "));
    }

    #[test]
    fn a_known_miss_within_its_floor_passes_and_is_reported() {
        let m = Metrics {
            goodput_vs_oracle: 0.916,
            ..good()
        };
        let found = run("latency-knee goodput >= 0.91", &m, Sweep::Full);
        assert_eq!(found.len(), 1);
        assert!(matches!(found[0], Finding::Known { figure, .. } if figure == 0.916));
        assert!(!found[0].fails());
        assert!(
            found[0]
                .to_string()
                .starts_with("KNOWN MISS latency-knee (adaptive) goodput: 0.9160")
        );
    }

    #[test]
    fn a_figure_below_its_floor_fails() {
        let m = Metrics {
            goodput_vs_oracle: 0.905,
            ..good()
        };
        let found = run("latency-knee goodput >= 0.91", &m, Sweep::Full);
        assert!(matches!(found[..], [Finding::PastLimit { .. }]));
        assert!(found[0].fails());
        assert!(
            found[0]
                .to_string()
                .contains("0.9050 fell below its floor 0.91 on line 1")
        );
    }

    #[test]
    fn a_figure_above_its_ceiling_fails() {
        let m = Metrics {
            time_to_90_s: 41.0,
            ..good()
        };
        let found = run("latency-knee time_to_90 <= 40", &m, Sweep::Full);
        assert!(matches!(
            found[..],
            [Finding::PastLimit { figure: 41.0, .. }]
        ));
    }

    #[test]
    fn a_listed_target_that_is_now_met_fails_until_its_line_is_removed() {
        let found = run("latency-knee goodput >= 0.91", &good(), Sweep::Full);
        assert!(matches!(found[..], [Finding::NowMet { .. }]));
        assert!(found[0].fails());
        assert!(
            found[0]
                .to_string()
                .contains("meets the target; delete line 1 of known-misses.txt")
        );
    }

    #[test]
    fn an_entry_naming_no_scenario_fails() {
        let found = run("latency-kne goodput >= 0.91", &good(), Sweep::Full);
        assert!(matches!(&found[..], [Finding::UnknownScenario(e)] if e.scenario == "latency-kne"));
        assert!(
            found[0]
                .to_string()
                .contains("names no scenario `latency-kne`")
        );
    }

    #[test]
    fn an_entry_for_a_scenario_left_out_of_the_run_is_not_checked() {
        assert!(run("cpu-knee goodput >= 0.91", &good(), Sweep::Full).is_empty());
    }

    #[test]
    fn an_entry_whose_target_does_not_apply_fails() {
        let found = run("latency-knee recovery <= 20", &good(), Sweep::Full);
        assert!(matches!(found[..], [Finding::NotApplicable(_)]));
        assert!(found[0].fails());
    }

    #[test]
    fn an_unlisted_miss_fails() {
        let m = Metrics {
            oscillation: 0.2,
            ..good()
        };
        let found = run("", &m, Sweep::Full);
        assert!(matches!(
            &found[..],
            [Finding::Unlisted {
                target: "oscillation",
                ..
            }]
        ));
        assert_eq!(
            found[0].to_string(),
            "MISS latency-knee (adaptive) oscillation: oscillation 0.200 > 0.1"
        );
    }

    #[test]
    fn a_fast_only_entry_holds_the_target_in_the_full_sweep() {
        let m = Metrics {
            goodput_vs_oracle: 0.948,
            ..good()
        };
        let known = "latency-knee goodput >= 0.945 fast-only";
        assert!(matches!(
            run(known, &m, Sweep::Fast)[..],
            [Finding::Known { .. }]
        ));
        assert!(matches!(
            run(known, &m, Sweep::Full)[..],
            [Finding::Unlisted { .. }]
        ));
        // And where the full sweep meets the target, the fast-only entry is simply not consulted.
        assert!(run(known, &good(), Sweep::Full).is_empty());
    }

    #[test]
    fn the_repository_file_parses_and_names_existing_scenarios() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/known-misses.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let known = parse(&text).unwrap();
        assert!(
            !known.is_empty(),
            "an empty file should be deleted along with this test"
        );
    }
}
