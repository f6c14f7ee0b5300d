//! Scenarios: the system a policy is tested against, read from small TOML files.
//!
//! One file per scenario in `crates/pool-sim/scenarios/`, named `<name>.toml`, whose keys are [`Scenario`]'s
//! fields; a missing key keeps [`Scenario::default`]'s value. Numbers must be non-negative;
//! `capacity_steps` is a list of `[time_s, factor]` pairs and `supply_off` a list of `[from_s, to_s]` spans.
//! Unknown keys are errors (`deny_unknown_fields`), so a typo cannot silently fall back to a default.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer};

/// One scenario: the run, the tasks, and the system they run on.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// The file's stem.
    #[serde(skip)]
    pub name: String,
    /// One line for the table and the docs.
    pub description: String,
    /// Simulated run length, seconds.
    #[serde(deserialize_with = "non_negative")]
    pub duration_s: f64,
    /// The seed of every random draw.
    pub seed: u64,
    /// Pool floor.
    pub min_concurrency: usize,
    /// Pool ceiling (also the top of the oracle sweep).
    pub max_concurrency: usize,
    /// Desired concurrency at start.
    pub initial_desired: usize,
    /// Steady state starts here (seconds); oscillation is measured from here to the end. `None` is the
    /// last third of the run ([`Scenario::steady_from`]).
    #[serde(deserialize_with = "non_negative_opt")]
    pub steady_from_s: Option<f64>,
    /// Task latency with nothing else running, seconds.
    #[serde(deserialize_with = "non_negative")]
    pub task_s: f64,
    /// Log-sd of the per-task latency factor.
    #[serde(deserialize_with = "non_negative")]
    pub task_jitter: f64,
    /// CPU capacity, cores.
    #[serde(deserialize_with = "non_negative")]
    pub cpu_cores: f64,
    /// Cores one running task wants.
    #[serde(deserialize_with = "non_negative")]
    pub cpu_per_task: f64,
    /// Queueing slowdown as utilisation nears 1: latency × (1 + q·u⁶).
    #[serde(deserialize_with = "non_negative")]
    pub cpu_queueing: f64,
    /// Extra slowdown per unit of demand beyond capacity (context switches, cache thrash).
    #[serde(deserialize_with = "non_negative")]
    pub cpu_contention: f64,
    /// Standard deviation of additive noise on CPU readings.
    #[serde(deserialize_with = "non_negative")]
    pub cpu_noise: f64,
    /// Memory budget, MB: reaching it is an OOM that ends the run.
    #[serde(deserialize_with = "non_negative")]
    pub mem_budget_mb: f64,
    /// Memory used with no task running, MB.
    #[serde(deserialize_with = "non_negative")]
    pub mem_base_mb: f64,
    /// Memory one running task holds, MB (mean).
    #[serde(deserialize_with = "non_negative")]
    pub mem_per_task_mb: f64,
    /// Relative spread of a task's memory (uniform ±).
    #[serde(deserialize_with = "non_negative")]
    pub mem_task_jitter: f64,
    /// Swap/GC slowdown above 80 % of the budget: latency × (1 + p·((m − 0.8)/0.2)²).
    #[serde(deserialize_with = "non_negative")]
    pub mem_pressure: f64,
    /// Standard deviation of additive noise on memory readings, MB.
    #[serde(deserialize_with = "non_negative")]
    pub mem_noise_mb: f64,
    /// Downstream latency added per task in flight, seconds.
    #[serde(deserialize_with = "non_negative")]
    pub ds_linear_s: f64,
    /// Downstream knee: past this many in flight, latency grows exponentially (0 = no knee).
    #[serde(deserialize_with = "non_negative")]
    pub ds_knee: f64,
    /// Scale of the exponential past the knee, tasks.
    #[serde(deserialize_with = "non_negative")]
    pub ds_knee_scale: f64,
    /// Coefficient of the exponential term, seconds.
    #[serde(deserialize_with = "non_negative")]
    pub ds_knee_s: f64,
    /// Downstream answers 429 above this many accepted requests in flight (0 = no limit).
    pub ds_conc_limit: usize,
    /// Downstream answers 429 above this many accepted requests per second (0 = no limit), as a leaky bucket.
    #[serde(deserialize_with = "non_negative")]
    pub ds_rate_limit: f64,
    /// Requests the rate limit lets through above its rate at once (nginx's `burst`).
    #[serde(deserialize_with = "non_negative")]
    pub ds_rate_burst: f64,
    /// How long a 429 takes, seconds.
    #[serde(deserialize_with = "non_negative")]
    pub ds_reject_s: f64,
    /// Scheduler lag with the CPU below capacity, ms.
    #[serde(deserialize_with = "non_negative")]
    pub lag_base_ms: f64,
    /// Scheduler lag per unit of CPU demand beyond capacity, ms.
    #[serde(deserialize_with = "non_negative")]
    pub lag_per_overload_ms: f64,
    /// Uniform random extra lag on every timer wake, ms.
    #[serde(deserialize_with = "non_negative")]
    pub timer_jitter_ms: f64,
    /// `(time_s, factor)`: from `time_s`, CPU capacity is `cpu_cores × factor`.
    pub capacity_steps: Vec<(f64, f64)>,
    /// `(from_s, to_s)`: spans in which no task is ready.
    pub supply_off: Vec<(f64, f64)>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: String::new(),
            description: String::new(),
            duration_s: 300.0,
            seed: 1,
            min_concurrency: 1,
            max_concurrency: 200,
            initial_desired: 10,
            steady_from_s: None,
            task_s: 1.0,
            task_jitter: 0.2,
            cpu_cores: 1000.0,
            cpu_per_task: 0.01,
            cpu_queueing: 0.15,
            cpu_contention: 0.5,
            cpu_noise: 0.0,
            mem_budget_mb: 4096.0,
            mem_base_mb: 256.0,
            mem_per_task_mb: 4.0,
            mem_task_jitter: 0.3,
            mem_pressure: 0.0,
            mem_noise_mb: 0.0,
            ds_linear_s: 0.0,
            ds_knee: 0.0,
            ds_knee_scale: 10.0,
            ds_knee_s: 0.0,
            ds_conc_limit: 0,
            ds_rate_limit: 0.0,
            ds_rate_burst: 0.0,
            ds_reject_s: 0.05,
            lag_base_ms: 1.0,
            lag_per_overload_ms: 200.0,
            timer_jitter_ms: 0.0,
            capacity_steps: Vec::new(),
            supply_off: Vec::new(),
        }
    }
}

/// A scenario file that could not be read: not TOML, an unknown key, a bad value, or inconsistent settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the offending key or value, 0 for the whole file.
    pub line: usize,
    /// That line's text, trimmed, so that the message shows the key it is about (empty for the whole file).
    pub text: String,
    /// What is wrong, as a sentence.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {} (`{}`): {}", self.line, self.text, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// A number that must be finite and non-negative: a latency, a share, a size or a time.
fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "needs a non-negative number, got {v}"
        )))
    }
}

/// [`non_negative`], for a setting that may be left out.
fn non_negative_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    non_negative(d).map(Some)
}

impl Scenario {
    /// Parses a scenario's TOML text; `name` is usually the file stem.
    ///
    /// # Errors
    ///
    /// Text that is not TOML, an unknown key, a value of the wrong type or a negative number (with its line),
    /// or settings that contradict each other (line 0).
    pub fn parse(name: &str, text: &str) -> Result<Scenario, ParseError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| {
            // The error's span points at the offending key or value; its line is what an editor jumps to.
            let line = e
                .span()
                .map_or(0, |span| text[..span.start].matches('\n').count() + 1);
            ParseError {
                line,
                text: line
                    .checked_sub(1)
                    .and_then(|i| text.lines().nth(i))
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
                message: e.message().trim_end().to_owned(),
            }
        })?;
        s.name = name.to_owned();
        s.check().map_err(|message| ParseError {
            line: 0,
            text: String::new(),
            message,
        })?;
        Ok(s)
    }

    /// The directory of the scenarios that ship with this crate (`crates/pool-sim/scenarios`).
    pub const BUNDLED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

    /// The bundled scenario called `name`.
    ///
    /// # Errors
    ///
    /// What [`Scenario::load_dir`] reports, or a sentence saying no bundled scenario has that name.
    pub fn bundled(name: &str) -> Result<Scenario, String> {
        Scenario::load_dir(Path::new(Self::BUNDLED_DIR))?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no bundled scenario is called `{name}`"))
    }

    /// Reads `<dir>/<name>.toml` for every scenario file in `dir`, sorted by name.
    ///
    /// # Errors
    ///
    /// An IO error, or the first file that does not parse (with its path).
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
            out.push(Scenario::parse(name, &text).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        Ok(out)
    }

    /// Where the steady state starts, seconds: `steady_from_s`, or the last third of the run.
    pub fn steady_from(&self) -> f64 {
        self.steady_from_s.unwrap_or(self.duration_s * 2.0 / 3.0)
    }

    fn check(&self) -> Result<(), String> {
        if self.min_concurrency < 1 || self.min_concurrency > self.initial_desired {
            return Err("need 1 <= min_concurrency <= initial_desired".into());
        }
        if self.initial_desired > self.max_concurrency {
            return Err("need initial_desired <= max_concurrency".into());
        }
        if self.duration_s <= 0.0 || self.task_s <= 0.0 || self.cpu_cores <= 0.0 {
            return Err("duration_s, task_s and cpu_cores must be positive".into());
        }
        if self.mem_budget_mb <= self.mem_base_mb {
            return Err("mem_budget_mb must exceed mem_base_mb".into());
        }
        if self.steady_from() >= self.duration_s {
            return Err("steady_from_s must be before the end of the run".into());
        }
        Ok(())
    }

    /// CPU capacity at `t` seconds, after the scripted steps.
    pub fn cores_at(&self, t: f64) -> f64 {
        let factor = self
            .capacity_steps
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map_or(1.0, |(_, f)| *f);
        self.cpu_cores * factor
    }

    /// Whether a task is ready at `t` seconds.
    pub fn supply_at(&self, t: f64) -> bool {
        !self.supply_off.iter().any(|(a, b)| (*a..*b).contains(&t))
    }

    /// The capacity drop this scenario scripts, if any: `(drop_at, restore_at)`.
    pub fn capacity_drop(&self) -> Option<(f64, Option<f64>)> {
        let drop = self.capacity_steps.iter().find(|(_, f)| *f < 1.0)?;
        let restore = self
            .capacity_steps
            .iter()
            .find(|(at, f)| *at > drop.0 && *f >= 1.0)
            .map(|(at, _)| *at);
        Some((drop.0, restore))
    }

    /// The same scenario without its capacity steps, at a constant capacity factor.
    pub fn at_capacity(&self, factor: f64) -> Scenario {
        Scenario {
            capacity_steps: vec![(0.0, factor)],
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_lists_and_comments() {
        let s = Scenario::parse(
            "x",
            "description = \"a # b\"\n# comment\nduration_s = 60 # trailing\n\
             capacity_steps = [[10, 0.5], [20, 1]]\nsupply_off = [[5, 6]]\n",
        )
        .unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.description, "a # b");
        assert_eq!(s.duration_s, 60.0);
        assert_eq!(s.steady_from(), 40.0);
        assert_eq!(s.capacity_steps, vec![(10.0, 0.5), (20.0, 1.0)]);
        assert_eq!(s.cores_at(15.0), s.cpu_cores * 0.5);
        assert_eq!(s.capacity_drop(), Some((10.0, Some(20.0))));
        assert!(!s.supply_at(5.5));
        assert!(s.supply_at(6.0));
    }

    #[test]
    fn an_unknown_key_is_rejected_with_its_line_and_name() {
        let err = Scenario::parse("x", "task_s = 1\ntsak_s = 1\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown field `tsak_s`"), "{err}");
        assert!(
            err.message.contains("`task_s`"),
            "the message lists the known keys: {err}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_rejected_with_its_line() {
        let err = Scenario::parse("x", "\ntask_s = \"fast\"").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("invalid type: string \"fast\""),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("line 2 (`task_s = \"fast\"`): "),
            "{err}"
        );
    }

    #[test]
    fn a_negative_number_is_rejected_with_a_sentence() {
        let err = Scenario::parse("x", "cpu_cores = -4").unwrap_err();
        assert_eq!(err.line, 1);
        assert_eq!(err.message, "needs a non-negative number, got -4");
        let err = Scenario::parse("x", "min_concurrency = -1").unwrap_err();
        assert!(err.message.contains("invalid value: integer `-1`"), "{err}");
    }

    #[test]
    fn inconsistent_settings_are_rejected_for_the_whole_file() {
        let err = Scenario::parse("x", "initial_desired = 500").unwrap_err();
        assert_eq!(err.line, 0);
        assert_eq!(err.to_string(), "need initial_desired <= max_concurrency");
        let err = Scenario::parse("x", "duration_s = 60\nsteady_from_s = 90").unwrap_err();
        assert_eq!(
            err.message,
            "steady_from_s must be before the end of the run"
        );
    }
}
