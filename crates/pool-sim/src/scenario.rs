//! Scenarios: the system a policy is tested against, read from small `key = value` files.
//!
//! One file per scenario in `crates/pool-sim/scenarios/`, named `<name>.scenario`. Lines are `key = value`;
//! `#` starts a comment. Values are numbers, except `description` (free text), `capacity_steps` (`time:factor`
//! pairs, e.g. `120:0.5 240:1`) and `supply_off` (`from-to` spans in seconds, e.g. `30-45 90-120`). Unknown
//! keys are errors, so a typo cannot silently fall back to a default.

use std::fmt;
use std::path::Path;

/// One scenario: the run, the tasks, and the system they run on.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file's stem.
    pub name: String,
    /// One line for the table and the docs.
    pub description: String,
    /// Simulated run length, seconds.
    pub duration_s: f64,
    /// The seed of every random draw.
    pub seed: u64,
    /// Pool floor.
    pub min_concurrency: usize,
    /// Pool ceiling (also the top of the oracle sweep).
    pub max_concurrency: usize,
    /// Desired concurrency at start.
    pub initial_desired: usize,
    /// Steady state starts here (seconds); oscillation is measured from here to the end.
    pub steady_from_s: f64,
    /// Task latency with nothing else running, seconds.
    pub task_s: f64,
    /// Log-sd of the per-task latency factor.
    pub task_jitter: f64,
    /// CPU capacity, cores.
    pub cpu_cores: f64,
    /// Cores one running task wants.
    pub cpu_per_task: f64,
    /// Queueing slowdown as utilisation nears 1: latency × (1 + q·u⁶).
    pub cpu_queueing: f64,
    /// Extra slowdown per unit of demand beyond capacity (context switches, cache thrash).
    pub cpu_contention: f64,
    /// Standard deviation of additive noise on CPU readings.
    pub cpu_noise: f64,
    /// Memory budget, MB: reaching it is an OOM that ends the run.
    pub mem_budget_mb: f64,
    /// Memory used with no task running, MB.
    pub mem_base_mb: f64,
    /// Memory one running task holds, MB (mean).
    pub mem_per_task_mb: f64,
    /// Relative spread of a task's memory (uniform ±).
    pub mem_task_jitter: f64,
    /// Swap/GC slowdown above 80 % of the budget: latency × (1 + p·((m − 0.8)/0.2)²).
    pub mem_pressure: f64,
    /// Standard deviation of additive noise on memory readings, MB.
    pub mem_noise_mb: f64,
    /// Downstream latency added per task in flight, seconds.
    pub ds_linear_s: f64,
    /// Downstream knee: past this many in flight, latency grows exponentially (0 = no knee).
    pub ds_knee: f64,
    /// Scale of the exponential past the knee, tasks.
    pub ds_knee_scale: f64,
    /// Coefficient of the exponential term, seconds.
    pub ds_knee_s: f64,
    /// Downstream answers 429 above this many accepted requests in flight (0 = no limit).
    pub ds_conc_limit: usize,
    /// Downstream answers 429 above this many accepted requests per second (0 = no limit).
    pub ds_rate_limit: f64,
    /// How long a 429 takes, seconds.
    pub ds_reject_s: f64,
    /// Scheduler lag with the CPU below capacity, ms.
    pub lag_base_ms: f64,
    /// Scheduler lag per unit of CPU demand beyond capacity, ms.
    pub lag_per_overload_ms: f64,
    /// Uniform random extra lag on every timer wake, ms.
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
            steady_from_s: 200.0,
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
            ds_reject_s: 0.05,
            lag_base_ms: 1.0,
            lag_per_overload_ms: 200.0,
            timer_jitter_ms: 0.0,
            capacity_steps: Vec::new(),
            supply_off: Vec::new(),
        }
    }
}

/// A scenario file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line, 0 for the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Scenario {
    /// Parses a scenario's text; `name` is usually the file stem.
    ///
    /// # Errors
    ///
    /// The first bad line: no `=`, an unknown key, a value that is not a number, or an inconsistent setting.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, ParseError> {
        let mut s = Scenario {
            name: name.to_owned(),
            ..Scenario::default()
        };
        let mut steady_set = false;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let err = |message: String| ParseError {
                line: line_no,
                message,
            };
            let line = match raw.split_once('#') {
                Some((before, _)) if !raw.trim_start().starts_with("description") => before,
                _ => raw,
            }
            .trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err(format!("expected `key = value`, got `{line}`")))?;
            let (key, value) = (key.trim(), value.trim());
            let num = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        err(format!(
                            "`{key}` needs a non-negative number, got `{value}`"
                        ))
                    })
            };
            let int = || {
                value
                    .parse::<usize>()
                    .map_err(|_| err(format!("`{key}` needs a whole number, got `{value}`")))
            };
            match key {
                "description" => s.description = value.to_owned(),
                "duration_s" => s.duration_s = num()?,
                "seed" => {
                    s.seed = value
                        .parse()
                        .map_err(|_| err(format!("`seed` needs a whole number, got `{value}`")))?;
                }
                "min_concurrency" => s.min_concurrency = int()?,
                "max_concurrency" => s.max_concurrency = int()?,
                "initial_desired" => s.initial_desired = int()?,
                "steady_from_s" => {
                    s.steady_from_s = num()?;
                    steady_set = true;
                }
                "task_s" => s.task_s = num()?,
                "task_jitter" => s.task_jitter = num()?,
                "cpu_cores" => s.cpu_cores = num()?,
                "cpu_per_task" => s.cpu_per_task = num()?,
                "cpu_queueing" => s.cpu_queueing = num()?,
                "cpu_contention" => s.cpu_contention = num()?,
                "cpu_noise" => s.cpu_noise = num()?,
                "mem_budget_mb" => s.mem_budget_mb = num()?,
                "mem_base_mb" => s.mem_base_mb = num()?,
                "mem_per_task_mb" => s.mem_per_task_mb = num()?,
                "mem_task_jitter" => s.mem_task_jitter = num()?,
                "mem_pressure" => s.mem_pressure = num()?,
                "mem_noise_mb" => s.mem_noise_mb = num()?,
                "ds_linear_s" => s.ds_linear_s = num()?,
                "ds_knee" => s.ds_knee = num()?,
                "ds_knee_scale" => s.ds_knee_scale = num()?,
                "ds_knee_s" => s.ds_knee_s = num()?,
                "ds_conc_limit" => s.ds_conc_limit = int()?,
                "ds_rate_limit" => s.ds_rate_limit = num()?,
                "ds_reject_s" => s.ds_reject_s = num()?,
                "lag_base_ms" => s.lag_base_ms = num()?,
                "lag_per_overload_ms" => s.lag_per_overload_ms = num()?,
                "timer_jitter_ms" => s.timer_jitter_ms = num()?,
                "capacity_steps" => s.capacity_steps = pairs(value, ':').map_err(err)?,
                "supply_off" => s.supply_off = pairs(value, '-').map_err(err)?,
                other => return Err(err(format!("unknown key `{other}`"))),
            }
        }
        if !steady_set {
            s.steady_from_s = s.duration_s * 2.0 / 3.0;
        }
        s.check()
            .map_err(|message| ParseError { line: 0, message })?;
        Ok(s)
    }

    /// Reads `<dir>/<name>.scenario` for every scenario file in `dir`, sorted by name.
    ///
    /// # Errors
    ///
    /// An IO error, or the first file that does not parse (with its path).
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "scenario"))
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
        if self.steady_from_s >= self.duration_s {
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

fn pairs(value: &str, sep: char) -> Result<Vec<(f64, f64)>, String> {
    value
        .split_whitespace()
        .map(|item| {
            let (a, b) = item
                .split_once(sep)
                .ok_or_else(|| format!("expected `a{sep}b`, got `{item}`"))?;
            let a: f64 = a.parse().map_err(|_| format!("bad number `{a}`"))?;
            let b: f64 = b.parse().map_err(|_| format!("bad number `{b}`"))?;
            Ok((a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_lists_and_comments() {
        let s = Scenario::parse(
            "x",
            "description = a # b\n# comment\nduration_s = 60 # trailing\ncapacity_steps = 10:0.5 20:1\nsupply_off = 5-6\n",
        )
        .unwrap();
        assert_eq!(s.description, "a # b");
        assert_eq!(s.duration_s, 60.0);
        assert_eq!(s.steady_from_s, 40.0);
        assert_eq!(s.capacity_steps, vec![(10.0, 0.5), (20.0, 1.0)]);
        assert_eq!(s.cores_at(15.0), s.cpu_cores * 0.5);
        assert_eq!(s.capacity_drop(), Some((10.0, Some(20.0))));
        assert!(!s.supply_at(5.5));
        assert!(s.supply_at(6.0));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert_eq!(Scenario::parse("x", "tsak_s = 1").unwrap_err().line, 1);
        assert!(
            Scenario::parse("x", "\ntask_s = fast")
                .unwrap_err()
                .message
                .contains("task_s")
        );
        assert!(Scenario::parse("x", "initial_desired = 500").is_err());
    }
}
