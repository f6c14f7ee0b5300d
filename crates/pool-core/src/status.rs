//! Load signals, their readings, and the [`SystemInfo`] verdict built from them.
//!
//! Four built-in signals (CPU, memory, event loop, client) and up to [`MAX_CUSTOM_SIGNALS`] custom ones each
//! keep a [`History`]. A verdict is the time-weighted share of overloaded time in a window that ends at
//! `now`: anchoring at `now` rather than at the newest snapshot means a sensor that stopped reporting loses
//! its verdict instead of freezing it, and [`LoadRatioInfo::stale`] says so.

use core::fmt;
use core::time::Duration;

use crate::config::{MemoryBudget, SnapshotSettings, StatusSettings};
use crate::snapshot::{History, Snapshot, overload_ratio};
use crate::time::Instant;

/// How many custom load signals a pool can carry besides the four built-in ones.
pub const MAX_CUSTOM_SIGNALS: usize = 4;

/// Names a load signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalId {
    /// Host or cgroup CPU utilisation.
    Cpu,
    /// Memory used against the budget, with a system-wide failsafe.
    Memory,
    /// Scheduler lag, measured by the machine's own probe.
    EventLoop,
    /// Rate-limit errors reported by downstream clients.
    Client,
    /// A custom signal, by registration order.
    Custom(u8),
}

impl SignalId {
    const fn bit(self) -> u8 {
        match self {
            SignalId::Cpu => 0,
            SignalId::Memory => 1,
            SignalId::EventLoop => 2,
            SignalId::Client => 3,
            SignalId::Custom(i) => 4 + (i & 3),
        }
    }
}

/// A set of signals, such as the ones overloaded at a decision. `Copy` and one byte, so refusals carry it for
/// free.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SignalSet(u8);

impl SignalSet {
    /// The empty set.
    pub const EMPTY: SignalSet = SignalSet(0);

    /// Adds a signal.
    pub fn insert(&mut self, id: SignalId) {
        self.0 |= 1 << id.bit();
    }
    /// Whether a signal is in the set.
    pub fn contains(self, id: SignalId) -> bool {
        self.0 & (1 << id.bit()) != 0
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The signals in the set, built-ins first.
    pub fn iter(self) -> impl Iterator<Item = SignalId> {
        [
            SignalId::Cpu,
            SignalId::Memory,
            SignalId::EventLoop,
            SignalId::Client,
        ]
        .into_iter()
        .chain((0..MAX_CUSTOM_SIGNALS as u8).map(SignalId::Custom))
        .filter(move |id| self.contains(*id))
    }
}

/// Lists the members as `cpu, memory`; custom signals print as `custom#N` (the [`SystemInfo`] of the same
/// decision has their names).
impl fmt::Display for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match id {
                SignalId::Cpu => f.write_str("cpu")?,
                SignalId::Memory => f.write_str("memory")?,
                SignalId::EventLoop => f.write_str("event_loop")?,
                SignalId::Client => f.write_str("client")?,
                SignalId::Custom(n) => write!(f, "custom#{n}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// One signal's verdict over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadRatioInfo {
    /// The share of overloaded time above which the signal is overloaded.
    pub limit_ratio: f64,
    /// The share of overloaded time in the window, rounded to 3 decimals.
    pub actual_ratio: f64,
    /// How many snapshots the window held.
    pub samples: usize,
    /// When the newest snapshot of this signal was taken, in or out of the window.
    pub newest: Option<Instant>,
    /// True when the signal has reported before but not within the current window: its sensor has stopped or
    /// fallen behind, and its verdict no longer says anything.
    pub stale: bool,
}

impl LoadRatioInfo {
    /// Overloaded when the actual ratio is strictly greater than the limit.
    pub fn is_overloaded(&self) -> bool {
        self.actual_ratio > self.limit_ratio
    }
}

/// A custom signal's verdict, with its name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CustomLoadInfo {
    /// The name the signal was registered with.
    pub name: &'static str,
    /// Its verdict.
    pub info: LoadRatioInfo,
}

/// Every signal's verdict over one window, at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemInfo {
    /// When the verdict was made.
    pub created_at: Instant,
    /// CPU.
    pub cpu: LoadRatioInfo,
    /// Memory.
    pub memory: LoadRatioInfo,
    /// Event loop (scheduler lag).
    pub event_loop: LoadRatioInfo,
    /// Downstream client rate-limit errors.
    pub client: LoadRatioInfo,
    /// Custom signals, in registration order.
    pub custom: heapless::Vec<CustomLoadInfo, MAX_CUSTOM_SIGNALS>,
}

impl SystemInfo {
    /// True when no signal is overloaded.
    pub fn is_system_idle(&self) -> bool {
        self.overloaded().is_empty()
    }

    /// The overloaded signals.
    pub fn overloaded(&self) -> SignalSet {
        self.select(LoadRatioInfo::is_overloaded)
    }

    /// The signals whose sensors have gone quiet.
    pub fn stale(&self) -> SignalSet {
        self.select(|info| info.stale)
    }

    /// Every signal's verdict with its id: the four built-ins, then the custom ones in registration order.
    pub fn signals(&self) -> impl Iterator<Item = (SignalId, &LoadRatioInfo)> {
        let builtin = [
            (SignalId::Cpu, &self.cpu),
            (SignalId::Memory, &self.memory),
            (SignalId::EventLoop, &self.event_loop),
            (SignalId::Client, &self.client),
        ];
        let custom =
            (self.custom.iter().enumerate()).map(|(i, c)| (SignalId::Custom(i as u8), &c.info));
        builtin.into_iter().chain(custom)
    }

    fn select(&self, pick: impl Fn(&LoadRatioInfo) -> bool) -> SignalSet {
        let mut set = SignalSet::EMPTY;
        for (id, _) in self.signals().filter(|(_, info)| pick(info)) {
            set.insert(id);
        }
        set
    }
}

/// Prints Crawlee's status fields: `cpu 0.000 mem 0.000 event_loop 0.000 client 0.000`, then custom signals,
/// with `!` after an overloaded ratio and `(stale)` after a quiet one.
impl fmt::Display for SystemInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |f: &mut fmt::Formatter<'_>, name: &str, i: &LoadRatioInfo| {
            write!(f, "{name} {:.3}", i.actual_ratio)?;
            if i.is_overloaded() {
                f.write_str("!")?;
            }
            if i.stale {
                f.write_str("(stale)")?;
            }
            Ok(())
        };
        one(f, "cpu", &self.cpu)?;
        f.write_str(" ")?;
        one(f, "mem", &self.memory)?;
        f.write_str(" ")?;
        one(f, "event_loop", &self.event_loop)?;
        f.write_str(" ")?;
        one(f, "client", &self.client)?;
        for c in &self.custom {
            f.write_str(" ")?;
            one(f, c.name, &c.info)?;
        }
        Ok(())
    }
}

/// A CPU reading: utilisation of the CPU the process may use, in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuReading {
    /// When it was measured.
    pub at: Instant,
    /// Busy share, 0 to 1.
    pub used_ratio: f64,
}

/// A memory reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryReading {
    /// When it was measured.
    pub at: Instant,
    /// Bytes used by the process (and its children).
    pub used_bytes: u64,
    /// Bytes available to the process: the tightest cgroup limit, or physical memory.
    pub total_bytes: u64,
    /// Bytes used by everyone within `total_bytes`, if known; feeds the system-wide failsafe.
    pub system_used_bytes: Option<u64>,
}

/// A reading the machine cannot use. `Display` says why; the reading is dropped and the pool goes on.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReadingError {
    /// A CPU ratio that was NaN, infinite or negative.
    InvalidCpuRatio(f64),
    /// A memory reading whose total was 0 while the budget is a share of it.
    ZeroMemoryTotal,
    /// A custom signal index that was never registered.
    UnknownSignal(u8),
}

impl fmt::Display for ReadingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadingError::InvalidCpuRatio(r) => {
                write!(f, "a CPU reading must be a finite ratio of at least 0, got {r}")
            }
            ReadingError::ZeroMemoryTotal => {
                f.write_str("a memory reading reported 0 total bytes, so a budget ratio has nothing to apply to")
            }
            ReadingError::UnknownSignal(i) => write!(f, "no custom load signal #{i} is registered"),
        }
    }
}

impl core::error::Error for ReadingError {}

/// Why a custom signal could not be registered.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum SignalError {
    /// All [`MAX_CUSTOM_SIGNALS`] slots are taken.
    TooMany,
    /// Another signal has the same name.
    DuplicateName(&'static str),
    /// The threshold was NaN or outside [0, 1].
    InvalidThreshold(f64),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::TooMany => write!(
                f,
                "a pool carries at most {MAX_CUSTOM_SIGNALS} custom load signals"
            ),
            SignalError::DuplicateName(n) => {
                write!(f, "duplicate load signal name \"{n}\": rename one of them")
            }
            SignalError::InvalidThreshold(t) => {
                write!(
                    f,
                    "a load signal's overload threshold must be between 0 and 1, got {t}"
                )
            }
        }
    }
}

impl core::error::Error for SignalError {}

/// A memory snapshot's flag and whether it crossed the critical line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemoryVerdict {
    pub(crate) overloaded: bool,
    pub(crate) critical: bool,
    pub(crate) budget: u64,
}

#[derive(Clone, Debug)]
struct CustomSignal {
    name: &'static str,
    threshold: f64,
    history: History,
}

/// The histories of every signal and the rules that turn readings into snapshots.
#[derive(Clone, Debug)]
pub(crate) struct Signals {
    status: StatusSettings,
    rules: SnapshotSettings,
    cpu: History,
    memory: History,
    event_loop: History,
    client: History,
    custom: heapless::Vec<CustomSignal, MAX_CUSTOM_SIGNALS>,
}

const BUILTIN_NAMES: [&str; 4] = ["cpu", "memory", "event_loop", "client"];

impl Signals {
    pub(crate) fn new(status: StatusSettings, rules: SnapshotSettings) -> Self {
        Signals {
            status,
            rules,
            cpu: History::new(),
            memory: History::new(),
            event_loop: History::new(),
            client: History::new(),
            custom: heapless::Vec::new(),
        }
    }

    pub(crate) fn add_custom(
        &mut self,
        name: &'static str,
        threshold: f64,
    ) -> Result<SignalId, SignalError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(SignalError::InvalidThreshold(threshold));
        }
        if BUILTIN_NAMES.contains(&name) || self.custom.iter().any(|c| c.name == name) {
            return Err(SignalError::DuplicateName(name));
        }
        let idx = self.custom.len() as u8;
        self.custom
            .push(CustomSignal {
                name,
                threshold,
                history: History::new(),
            })
            .map_err(|_| SignalError::TooMany)?;
        Ok(SignalId::Custom(idx))
    }

    pub(crate) fn custom_count(&self) -> usize {
        self.custom.len()
    }

    fn history_mut(&mut self, id: SignalId) -> Option<&mut History> {
        match id {
            SignalId::Cpu => Some(&mut self.cpu),
            SignalId::Memory => Some(&mut self.memory),
            SignalId::EventLoop => Some(&mut self.event_loop),
            SignalId::Client => Some(&mut self.client),
            SignalId::Custom(i) => self.custom.get_mut(usize::from(i)).map(|c| &mut c.history),
        }
    }

    /// Records a snapshot for any signal.
    pub(crate) fn record(
        &mut self,
        id: SignalId,
        at: Instant,
        overloaded: bool,
        now: Instant,
    ) -> Result<(), ReadingError> {
        let keep = self.status.history;
        let h = self.history_mut(id).ok_or(match id {
            SignalId::Custom(i) => ReadingError::UnknownSignal(i),
            _ => ReadingError::UnknownSignal(u8::MAX),
        })?;
        h.insert(Snapshot::new(at, overloaded), now, keep);
        Ok(())
    }

    pub(crate) fn cpu_overloaded(&self, r: &CpuReading) -> Result<bool, ReadingError> {
        if !(r.used_ratio >= 0.0 && r.used_ratio.is_finite()) {
            return Err(ReadingError::InvalidCpuRatio(r.used_ratio));
        }
        Ok(r.used_ratio > self.rules.max_used_cpu_ratio)
    }

    pub(crate) fn memory_verdict(&self, r: &MemoryReading) -> Result<MemoryVerdict, ReadingError> {
        let budget = match self.rules.memory_budget {
            MemoryBudget::Fixed(b) => b,
            MemoryBudget::Ratio(_) if r.total_bytes == 0 => {
                return Err(ReadingError::ZeroMemoryTotal);
            }
            MemoryBudget::Ratio(ratio) => trunc_mul(r.total_bytes, ratio),
        };
        let system_wide = match r.system_used_bytes {
            Some(used) if r.total_bytes > 0 => {
                used as f64 / r.total_bytes as f64 > self.rules.system_wide_memory_ratio
            }
            _ => false,
        };
        let max_used = self.rules.max_used_memory_ratio;
        let over_budget = budget == 0 || r.used_bytes as f64 / budget as f64 > max_used;
        // Crawlee's critical line sits halfway between the overload line and the budget, computed with
        // truncation at each product so the boundary matches it to the byte.
        let critical_line =
            trunc_mul(budget, max_used) + trunc_mul(trunc_mul(budget, 1.0 - max_used), 0.5);
        Ok(MemoryVerdict {
            overloaded: system_wide || over_budget,
            critical: r.used_bytes > critical_line,
            budget,
        })
    }

    pub(crate) fn event_loop_overloaded(&self, delay: Duration) -> bool {
        delay > self.rules.max_event_loop_delay
    }

    pub(crate) fn client_overloaded(&self, new_errors: u64) -> bool {
        new_errors > u64::from(self.rules.max_client_errors)
    }

    /// Verdicts over the window of length `window` ending at `now`.
    pub(crate) fn info(&self, now: Instant, window: Duration) -> SystemInfo {
        let current = self.status.current_window;
        let eval = |h: &History, limit: f64| {
            let sample = h.window(now, window);
            let newest = h.newest();
            LoadRatioInfo {
                limit_ratio: limit,
                actual_ratio: overload_ratio(sample),
                samples: sample.len(),
                newest,
                stale: newest.is_some_and(|t| now.saturating_duration_since(t) > current),
            }
        };
        let st = &self.status;
        let mut custom = heapless::Vec::new();
        for c in &self.custom {
            let _ = custom.push(CustomLoadInfo {
                name: c.name,
                info: eval(&c.history, c.threshold),
            });
        }
        SystemInfo {
            created_at: now,
            cpu: eval(&self.cpu, st.cpu_overload_threshold),
            memory: eval(&self.memory, st.memory_overload_threshold),
            event_loop: eval(&self.event_loop, st.event_loop_overload_threshold),
            client: eval(&self.client, st.client_overload_threshold),
            custom,
        }
    }

    /// The overloaded signals over the current window, without building a full [`SystemInfo`]: this runs on
    /// every start attempt.
    pub(crate) fn overloaded_now(&self, now: Instant) -> SignalSet {
        let w = self.status.current_window;
        let st = &self.status;
        let mut set = SignalSet::EMPTY;
        for (id, h, limit) in [
            (SignalId::Cpu, &self.cpu, st.cpu_overload_threshold),
            (SignalId::Memory, &self.memory, st.memory_overload_threshold),
            (
                SignalId::EventLoop,
                &self.event_loop,
                st.event_loop_overload_threshold,
            ),
            (SignalId::Client, &self.client, st.client_overload_threshold),
        ] {
            if overload_ratio(h.window(now, w)) > limit {
                set.insert(id);
            }
        }
        for (i, c) in self.custom.iter().enumerate() {
            if overload_ratio(c.history.window(now, w)) > c.threshold {
                set.insert(SignalId::Custom(i as u8));
            }
        }
        set
    }

    /// The earliest instant after `now` at which the current-window verdict can change without a new
    /// snapshot: when the oldest snapshot in some window slides out of it.
    pub(crate) fn current_verdict_expiry(&self, now: Instant) -> Instant {
        let w = self.status.current_window;
        let mut expiry = Instant::FAR_FUTURE;
        let mut consider = |h: &History| {
            if let Some(first) = h.window(now, w).first() {
                expiry = expiry.min(
                    first
                        .at()
                        .saturating_add(w)
                        .saturating_add(Duration::from_nanos(1)),
                );
            }
        };
        consider(&self.cpu);
        consider(&self.memory);
        consider(&self.event_loop);
        consider(&self.client);
        for c in &self.custom {
            consider(&c.history);
        }
        expiry
    }

    pub(crate) fn history(&self, id: SignalId) -> Option<&History> {
        match id {
            SignalId::Cpu => Some(&self.cpu),
            SignalId::Memory => Some(&self.memory),
            SignalId::EventLoop => Some(&self.event_loop),
            SignalId::Client => Some(&self.client),
            SignalId::Custom(i) => self.custom.get(usize::from(i)).map(|c| &c.history),
        }
    }
}

/// `trunc(bytes × ratio)`, as Crawlee's `ByteSize` multiplies. Saturates for absurd inputs instead of
/// overflowing.
fn trunc_mul(bytes: u64, ratio: f64) -> u64 {
    // `as` from f64 saturates and maps NaN to 0, which is the safe side for a budget.
    (bytes as f64 * ratio) as u64
}
