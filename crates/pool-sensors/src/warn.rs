//! One-time warnings: every fault a sensor meets is logged once per kind through `tracing`, counted every
//! time, and kept so that callers (and tests) can see what went wrong.

use std::fmt;

/// One kind of fault, as first met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// A stable code such as `memory.limit.garbage`; `docs/sensors.md` lists them all.
    pub code: &'static str,
    /// The message logged the first time, with the path and the cause.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

/// The faults met so far. Each code is logged at WARN once; later occurrences are only counted.
#[derive(Clone, Debug, Default)]
pub struct Warnings {
    seen: Vec<Warning>,
    last: Option<usize>,
    occurrences: u64,
}

impl Warnings {
    /// No warnings yet.
    pub fn new() -> Self {
        Warnings::default()
    }

    /// Records a fault. The message is built (and logged) only the first time `code` is met.
    pub(crate) fn warn(&mut self, code: &'static str, message: impl FnOnce() -> String) {
        self.occurrences = self.occurrences.saturating_add(1);
        if let Some(i) = self.seen.iter().position(|w| w.code == code) {
            self.last = Some(i);
            return;
        }
        let message = message();
        tracing::warn!(code, "{message}");
        self.seen.push(Warning { code, message });
        self.last = Some(self.seen.len() - 1);
    }

    /// Every kind of fault met, in the order first met.
    pub fn all(&self) -> &[Warning] {
        &self.seen
    }

    /// The kind of fault met most recently (logged or not).
    pub fn last(&self) -> Option<&Warning> {
        self.last.map(|i| &self.seen[i])
    }

    /// Whether a fault with this code was met.
    pub fn contains(&self, code: &str) -> bool {
        self.seen.iter().any(|w| w.code == code)
    }

    /// How many faults were met in all, counting repeats that were not logged again.
    pub fn occurrences(&self) -> u64 {
        self.occurrences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_fault_is_kept_once_but_counted_every_time() {
        let mut w = Warnings::new();
        w.warn("a", || "first".into());
        w.warn("b", || "second".into());
        w.warn("a", || {
            unreachable!("the message of a known code is never built")
        });
        assert_eq!(w.all().len(), 2);
        assert_eq!(w.occurrences(), 3);
        assert_eq!(w.last().map(|w| w.code), Some("a"));
        assert_eq!(w.last().map(|w| w.message.as_str()), Some("first"));
        assert!(w.contains("b") && !w.contains("c"));
    }
}
