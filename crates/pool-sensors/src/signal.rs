//! [`LoadSignal`]: user-defined load signals (a queue depth, a downstream latency, a GPU) sampled with the
//! built-in sensors.

use pool_core::{Instant, Pool, ScalingPolicy, SignalError, SignalId};

/// A custom load signal, registered on a pool with [`Pool::add_signal`] and fed with
/// [`Pool::handle_signal`] on every sensor sample.
///
/// # Examples
///
/// ```
/// use pool_core::Instant;
/// use pool_sensors::LoadSignal;
///
/// struct QueueDepth(std::sync::Arc<std::sync::atomic::AtomicUsize>);
///
/// impl LoadSignal for QueueDepth {
///     fn name(&self) -> &'static str { "queue" }
///     fn overload_threshold(&self) -> f64 { 0.5 }
///     fn is_overloaded(&mut self, _now: Instant) -> Option<bool> {
///         Some(self.0.load(std::sync::atomic::Ordering::Relaxed) > 1000)
///     }
/// }
/// ```
pub trait LoadSignal {
    /// A unique name, shown in status lines; `cpu`, `memory`, `event_loop` and `client` are taken.
    fn name(&self) -> &'static str;
    /// The share of overloaded time in a window above which the signal is overloaded; in [0, 1].
    fn overload_threshold(&self) -> f64;
    /// Whether the signal is overloaded now; `None` for "no reading this time". Must be cheap and must not
    /// block: it runs inside the pool's driver.
    fn is_overloaded(&mut self, now: Instant) -> Option<bool>;
}

/// Custom signals and their pool ids. Signals added before a pool is known are registered on the first
/// sample.
#[derive(Default)]
pub(crate) struct CustomSignals {
    pending: Vec<Box<dyn LoadSignal + Send>>,
    registered: Vec<(SignalId, Box<dyn LoadSignal + Send>)>,
}

impl std::fmt::Debug for CustomSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &mut dyn Iterator<Item = &'static str>| v.collect::<Vec<_>>();
        f.debug_struct("CustomSignals")
            .field(
                "pending",
                &names(&mut self.pending.iter().map(|s| s.name())),
            )
            .field(
                "registered",
                &names(&mut self.registered.iter().map(|(_, s)| s.name())),
            )
            .finish()
    }
}

impl CustomSignals {
    pub(crate) fn push(&mut self, s: Box<dyn LoadSignal + Send>) {
        self.pending.push(s);
    }

    pub(crate) fn register<P: ScalingPolicy>(
        &mut self,
        pool: &mut Pool<P>,
        s: Box<dyn LoadSignal + Send>,
    ) -> Result<SignalId, SignalError> {
        let id = pool.add_signal(s.name(), s.overload_threshold())?;
        self.registered.push((id, s));
        Ok(id)
    }

    /// Registers pending signals (a failure is returned with the signal's name, and the signal dropped),
    /// then reads every registered one.
    pub(crate) fn sample<P: ScalingPolicy>(
        &mut self,
        now: Instant,
        pool: &mut Pool<P>,
    ) -> Vec<(&'static str, SignalError)> {
        let mut failed = Vec::new();
        for s in std::mem::take(&mut self.pending) {
            let name = s.name();
            if let Err(e) = self.register(pool, s) {
                failed.push((name, e));
            }
        }
        for (id, s) in &mut self.registered {
            if let Some(over) = s.is_overloaded(now) {
                // A rejected reading is queued by the pool as an event; nothing more to do here.
                let _ = pool.handle_signal(now, *id, now, over);
            }
        }
        failed
    }
}
