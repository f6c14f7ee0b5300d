//! A per-instance virtual clock with timers, never a global one.

use std::prelude::rust_2024::*;

use core::time::Duration;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::seams::{Clock, Runtime, Timer};
use crate::time::Instant;

#[derive(Debug, Default)]
struct State {
    now: Instant,
    seq: u64,
    timers: BTreeMap<(Instant, u64), Waker>,
}

/// A clock that moves only when told to. Clones share the same time.
///
/// It is `Send + Sync` to meet the seams' bounds, but meant to be driven from one thread.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock {
    state: Arc<Mutex<State>>,
}

impl VirtualClock {
    /// A clock at [`Instant::ZERO`].
    pub fn new() -> Self {
        VirtualClock::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; keep the state readable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.lock().now
    }

    /// Moves time forward by `d`, waking timers that come due, in deadline order.
    pub fn advance(&self, d: Duration) {
        let to = self.now() + d;
        self.advance_to(to);
    }

    /// Moves time forward to `t` (never backwards), waking timers that come due, in deadline order.
    pub fn advance_to(&self, t: Instant) {
        let due = {
            let mut s = self.lock();
            s.now = s.now.max(t);
            let now = s.now;
            let later = s.timers.split_off(&(now, u64::MAX));
            core::mem::replace(&mut s.timers, later)
        };
        for (_, waker) in due {
            waker.wake();
        }
    }

    /// The earliest armed timer's deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().timers.keys().next().map(|k| k.0)
    }

    /// A timer armed for `at`.
    pub fn timer(&self, at: Instant) -> VirtualTimer {
        VirtualTimer {
            clock: self.clone(),
            deadline: at,
            key: None,
        }
    }

    /// A future that completes `d` from now.
    pub fn sleep(&self, d: Duration) -> Sleep {
        Sleep {
            timer: self.timer(self.now() + d),
        }
    }
}

/// A re-armable timer on a [`VirtualClock`].
#[derive(Debug)]
pub struct VirtualTimer {
    clock: VirtualClock,
    deadline: Instant,
    key: Option<(Instant, u64)>,
}

impl VirtualTimer {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            self.clock.lock().timers.remove(&key);
        }
    }
}

impl Timer for VirtualTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        self.unregister();
        self.deadline = at;
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let mut s = self.clock.lock();
        if s.now >= deadline {
            drop(s);
            self.unregister();
            return Poll::Ready(());
        }
        if deadline == Instant::FAR_FUTURE {
            drop(s);
            self.unregister();
            return Poll::Pending;
        }
        if let Some(key) = self.key {
            s.timers.remove(&key);
        }
        s.seq += 1;
        let key = (deadline, s.seq);
        s.timers.insert(key, cx.waker().clone());
        drop(s);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for VirtualTimer {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The future returned by [`VirtualClock::sleep`].
#[derive(Debug)]
pub struct Sleep {
    timer: VirtualTimer,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll_elapsed(cx)
    }
}

/// The harness's [`Runtime`]: a [`VirtualClock`] and its timers.
#[derive(Clone, Debug, Default)]
pub struct TestRuntime {
    clock: VirtualClock,
}

impl TestRuntime {
    /// A runtime on `clock`.
    pub fn new(clock: VirtualClock) -> Self {
        TestRuntime { clock }
    }
    /// Its clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }
}

impl Clock for TestRuntime {
    fn now(&self) -> Instant {
        self.clock.now()
    }
}

impl Runtime for TestRuntime {
    type Timer = VirtualTimer;
    fn timer(&self, at: Instant) -> VirtualTimer {
        self.clock.timer(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_not_early() {
        let clock = VirtualClock::new();
        let woke = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u32>>>, u32);
        impl std::task::Wake for W {
            fn wake(self: Arc<Self>) {
                self.0.lock().unwrap().push(self.1);
            }
        }
        let mut timers: Vec<_> = [30u64, 10, 20]
            .iter()
            .map(|ms| clock.timer(Instant::from_millis(*ms)))
            .collect();
        for (i, t) in timers.iter_mut().enumerate() {
            let waker = Waker::from(Arc::new(W(woke.clone(), i as u32)));
            assert!(
                Pin::new(t)
                    .poll_elapsed(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        clock.advance(Duration::from_millis(15));
        assert_eq!(*woke.lock().unwrap(), vec![1]);
        clock.advance_to(Instant::from_millis(30));
        assert_eq!(*woke.lock().unwrap(), vec![1, 2, 0]);
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn reset_rearms_and_drop_unregisters() {
        let clock = VirtualClock::new();
        let mut t = clock.timer(Instant::from_millis(10));
        let waker = Waker::noop();
        assert!(
            Pin::new(&mut t)
                .poll_elapsed(&mut Context::from_waker(waker))
                .is_pending()
        );
        Pin::new(&mut t).reset(Instant::from_millis(50));
        assert!(
            Pin::new(&mut t)
                .poll_elapsed(&mut Context::from_waker(waker))
                .is_pending()
        );
        assert_eq!(clock.next_deadline(), Some(Instant::from_millis(50)));
        drop(t);
        assert_eq!(clock.next_deadline(), None);
    }
}
