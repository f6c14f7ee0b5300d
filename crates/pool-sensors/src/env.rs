//! Snapshot settings from Crawlee's environment variables, read only when asked.

use std::fmt;
use std::time::Duration;

use pool_core::{MemoryBudget, SnapshotSettings};

/// `CRAWLEE_MEMORY_MBYTES`: a fixed memory budget in MiB; `0` counts as unset, as in Crawlee.
pub const MEMORY_MBYTES: &str = "CRAWLEE_MEMORY_MBYTES";
/// `CRAWLEE_AVAILABLE_MEMORY_RATIO`: the budget as a share of available memory, in (0, 1].
pub const AVAILABLE_MEMORY_RATIO: &str = "CRAWLEE_AVAILABLE_MEMORY_RATIO";
/// `CRAWLEE_MAX_USED_CPU_RATIO`: a CPU reading above this is overloaded, in (0, 1].
pub const MAX_USED_CPU_RATIO: &str = "CRAWLEE_MAX_USED_CPU_RATIO";
/// `CRAWLEE_MAX_USED_MEMORY_RATIO`: memory above this share of the budget is overloaded, in (0, 1].
pub const MAX_USED_MEMORY_RATIO: &str = "CRAWLEE_MAX_USED_MEMORY_RATIO";
/// `CRAWLEE_MAX_EVENT_LOOP_DELAY_MILLIS`: a scheduler lag above this is overloaded, in whole milliseconds.
pub const MAX_EVENT_LOOP_DELAY_MILLIS: &str = "CRAWLEE_MAX_EVENT_LOOP_DELAY_MILLIS";
/// `CRAWLEE_MAX_CLIENT_ERRORS`: more new rate-limit errors than this per probe is overloaded.
pub const MAX_CLIENT_ERRORS: &str = "CRAWLEE_MAX_CLIENT_ERRORS";
/// `CRAWLEE_SYSTEM_INFO_INTERVAL_MILLIS`: the sensor period, in whole milliseconds above 0.
pub const SYSTEM_INFO_INTERVAL_MILLIS: &str = "CRAWLEE_SYSTEM_INFO_INTERVAL_MILLIS";

/// Every variable [`snapshot_settings_from_env`] reads.
pub const ALL: [&str; 7] = [
    MEMORY_MBYTES,
    AVAILABLE_MEMORY_RATIO,
    MAX_USED_CPU_RATIO,
    MAX_USED_MEMORY_RATIO,
    MAX_EVENT_LOOP_DELAY_MILLIS,
    MAX_CLIENT_ERRORS,
    SYSTEM_INFO_INTERVAL_MILLIS,
];

/// A variable whose value could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    /// The variable's name.
    pub name: &'static str,
    /// Its value (lossily decoded if it was not Unicode).
    pub value: String,
    /// What it should have been.
    pub expected: &'static str,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {}={:?} is not {}",
            self.name, self.value, self.expected
        )
    }
}

impl std::error::Error for EnvError {}

/// [`SnapshotSettings::default`] overridden by whichever of Crawlee's variables ([`ALL`]) are set in the
/// process environment. Unset or empty variables leave the default. Nothing else in this crate reads the
/// environment.
///
/// # Errors
///
/// An [`EnvError`] naming the first variable (in [`ALL`] order) that is not Unicode or not a valid value.
pub fn snapshot_settings_from_env() -> Result<SnapshotSettings, EnvError> {
    snapshot_settings_from(SnapshotSettings::default(), |name| {
        std::env::var_os(name).map(|v| {
            v.into_string()
                .map_err(|v| v.to_string_lossy().into_owned())
        })
    })
}

/// `base` overridden by the variables `lookup` returns: `None` for unset, `Some(Err(lossy))` for a value
/// that is not Unicode. This is how tests (and callers with their own configuration source) feed values
/// without touching the process environment.
///
/// `CRAWLEE_MEMORY_MBYTES` (MiB, 1024² bytes) wins over `CRAWLEE_AVAILABLE_MEMORY_RATIO` when both are set
/// and non-zero, as in Crawlee.
///
/// # Errors
///
/// As [`snapshot_settings_from_env`].
///
/// # Examples
///
/// ```
/// use pool_core::MemoryBudget;
/// let vars = |name: &str| match name {
///     "CRAWLEE_MEMORY_MBYTES" => Some(Ok("512".to_string())),
///     "CRAWLEE_MAX_USED_CPU_RATIO" => Some(Ok("0.8".to_string())),
///     _ => None,
/// };
/// let s = pool_sensors::snapshot_settings_from(Default::default(), vars).unwrap();
/// assert_eq!(s.memory_budget, MemoryBudget::Fixed(512 * 1024 * 1024));
/// assert_eq!(s.max_used_cpu_ratio, 0.8);
/// ```
pub fn snapshot_settings_from(
    base: SnapshotSettings,
    mut lookup: impl FnMut(&str) -> Option<Result<String, String>>,
) -> Result<SnapshotSettings, EnvError> {
    let mut s = base;
    let mut get = |name: &'static str, expected: &'static str| -> Result<Option<Raw>, EnvError> {
        match lookup(name) {
            None => Ok(None),
            Some(Ok(v)) if v.trim().is_empty() => Ok(None),
            Some(Ok(v)) => Ok(Some(Raw {
                name,
                expected,
                value: v.trim().to_owned(),
            })),
            Some(Err(value)) => Err(EnvError {
                name,
                value,
                expected: "valid Unicode",
            }),
        }
    };
    const MIB: &str = "a whole number of MiB";
    const RATIO: &str = "a number greater than 0 and at most 1";
    const MILLIS: &str = "a whole number of milliseconds";
    let mbytes = get(MEMORY_MBYTES, MIB)?.map(|r| r.u64()).transpose()?;
    let ratio = get(AVAILABLE_MEMORY_RATIO, RATIO)?
        .map(|r| r.ratio())
        .transpose()?;
    match (mbytes, ratio) {
        (Some(mb), _) if mb > 0 => {
            let bytes = mb.checked_mul(1024 * 1024).ok_or_else(|| EnvError {
                name: MEMORY_MBYTES,
                value: mb.to_string(),
                expected: "a size that fits in 64 bits of bytes",
            })?;
            s.memory_budget = MemoryBudget::Fixed(bytes);
        }
        (_, Some(r)) => s.memory_budget = MemoryBudget::Ratio(r),
        _ => {}
    }
    if let Some(r) = get(MAX_USED_CPU_RATIO, RATIO)? {
        s.max_used_cpu_ratio = r.ratio()?;
    }
    if let Some(r) = get(MAX_USED_MEMORY_RATIO, RATIO)? {
        s.max_used_memory_ratio = r.ratio()?;
    }
    if let Some(r) = get(MAX_EVENT_LOOP_DELAY_MILLIS, MILLIS)? {
        s.max_event_loop_delay = Duration::from_millis(r.u64()?);
    }
    if let Some(r) = get(MAX_CLIENT_ERRORS, "a whole number up to 4294967295")? {
        s.max_client_errors = u32::try_from(r.u64()?).map_err(|_| r.error())?;
    }
    if let Some(r) = get(
        SYSTEM_INFO_INTERVAL_MILLIS,
        "a whole number of milliseconds above 0",
    )? {
        match r.u64()? {
            0 => return Err(r.error()),
            ms => s.sensor_interval = Duration::from_millis(ms),
        }
    }
    Ok(s)
}

struct Raw {
    name: &'static str,
    expected: &'static str,
    value: String,
}

impl Raw {
    fn error(&self) -> EnvError {
        EnvError {
            name: self.name,
            value: self.value.clone(),
            expected: self.expected,
        }
    }
    fn u64(&self) -> Result<u64, EnvError> {
        self.value.parse().map_err(|_| self.error())
    }
    fn ratio(&self) -> Result<f64, EnvError> {
        match self.value.parse::<f64>() {
            Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
            _ => Err(self.error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<SnapshotSettings, EnvError> {
        snapshot_settings_from(SnapshotSettings::default(), |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| Ok((*v).to_owned()))
        })
    }

    #[test]
    fn unset_and_empty_variables_keep_the_defaults() {
        assert_eq!(with(&[]), Ok(SnapshotSettings::default()));
        assert_eq!(
            with(&[(MAX_USED_CPU_RATIO, " "), (MEMORY_MBYTES, "")]),
            Ok(SnapshotSettings::default())
        );
    }

    #[test]
    fn every_variable_maps_to_its_setting() {
        let s = with(&[
            (AVAILABLE_MEMORY_RATIO, "0.5"),
            (MAX_USED_CPU_RATIO, "0.8"),
            (MAX_USED_MEMORY_RATIO, "0.7"),
            (MAX_EVENT_LOOP_DELAY_MILLIS, "120"),
            (MAX_CLIENT_ERRORS, "3"),
            (SYSTEM_INFO_INTERVAL_MILLIS, "250"),
        ])
        .unwrap();
        assert_eq!(s.memory_budget, MemoryBudget::Ratio(0.5));
        assert_eq!(s.max_used_cpu_ratio, 0.8);
        assert_eq!(s.max_used_memory_ratio, 0.7);
        assert_eq!(s.max_event_loop_delay, Duration::from_millis(120));
        assert_eq!(s.max_client_errors, 3);
        assert_eq!(s.sensor_interval, Duration::from_millis(250));
    }

    #[test]
    fn memory_mbytes_wins_over_the_ratio_and_zero_counts_as_unset() {
        let fixed = with(&[(MEMORY_MBYTES, "256"), (AVAILABLE_MEMORY_RATIO, "0.5")]).unwrap();
        assert_eq!(fixed.memory_budget, MemoryBudget::Fixed(256 << 20));
        let zero = with(&[(MEMORY_MBYTES, "0"), (AVAILABLE_MEMORY_RATIO, "0.5")]).unwrap();
        assert_eq!(zero.memory_budget, MemoryBudget::Ratio(0.5));
    }

    #[test]
    fn garbage_values_are_typed_errors_naming_the_variable() {
        for (name, value) in [
            (MEMORY_MBYTES, "lots"),
            (MEMORY_MBYTES, "-5"),
            (MEMORY_MBYTES, "99999999999999999"),
            (AVAILABLE_MEMORY_RATIO, "0"),
            (AVAILABLE_MEMORY_RATIO, "1.5"),
            (MAX_USED_CPU_RATIO, "NaN"),
            (MAX_USED_MEMORY_RATIO, "abc"),
            (MAX_EVENT_LOOP_DELAY_MILLIS, "1.5"),
            (MAX_CLIENT_ERRORS, "4294967296"),
            (SYSTEM_INFO_INTERVAL_MILLIS, "0"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name, "{value}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_non_unicode_value_is_an_error() {
        let err = snapshot_settings_from(SnapshotSettings::default(), |name| {
            (name == MAX_CLIENT_ERRORS).then(|| Err("\u{fffd}".to_owned()))
        })
        .unwrap_err();
        assert_eq!(err.expected, "valid Unicode");
    }
}
