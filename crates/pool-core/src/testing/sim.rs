//! The simulator: runs futures until they stall, then jumps virtual time to the next deadline.

use std::prelude::rust_2024::*;

use core::time::Duration;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::clock::{Sleep, TestRuntime, VirtualClock};
use super::executor::{Flag, ManualExecutor, Task, poll_once};
use crate::driver::{EventSink, InPlace, Launch, Spawn, TaskPanic};
use crate::pool::Event;
use crate::seams::{Clock, Runtime};
use crate::time::Instant;

/// The simulation stalled: nothing could run and no timer was armed, or the time limit passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stalled {
    /// Virtual time when it stalled.
    pub at: Instant,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the simulation stalled at {}: nothing can run and no timer is armed, or the limit passed",
            self.at
        )
    }
}

impl std::error::Error for Stalled {}

/// A virtual clock, its runtime, and a manual executor, stepped together.
///
/// `block_on` polls its future and the spawned tasks until nothing is woken, then advances the clock to the
/// earliest timer, and repeats. Every run is identical.
#[derive(Debug)]
pub struct Sim {
    runtime: TestRuntime,
    executor: ManualExecutor<'static>,
    limit: Duration,
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new()
    }
}

impl Sim {
    /// A simulation at time zero, giving up after one virtual day.
    pub fn new() -> Self {
        Sim {
            runtime: TestRuntime::default(),
            executor: ManualExecutor::new(),
            limit: Duration::from_secs(86_400),
        }
    }

    /// Sets how much virtual time `block_on` may spend before giving up with [`Stalled`].
    #[must_use]
    pub fn with_limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &VirtualClock {
        self.runtime.clock()
    }
    /// The runtime to hand to [`crate::Run::new`].
    pub fn runtime(&self) -> &TestRuntime {
        &self.runtime
    }
    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.clock().now()
    }
    /// Virtual time since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.now() - Instant::ZERO
    }
    /// A future that completes `d` of virtual time from now.
    pub fn sleep(&self, d: Duration) -> Sleep {
        self.clock().sleep(d)
    }

    /// Whether every task spawned on the simulation (helpers, spawned tasks, workers) has finished: what a test
    /// checks to see that nothing a run started outlives it.
    pub fn is_idle(&self) -> bool {
        self.executor.is_idle()
    }

    /// Spawns a `'static` helper task, run alongside `block_on`'s future.
    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> Task<T> {
        self.executor.spawn(fut)
    }

    /// Runs `fut` to completion in virtual time.
    ///
    /// # Errors
    ///
    /// [`Stalled`] if nothing can make progress (a deadlock) or the time limit passes first.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, Stalled> {
        let limit = self.now() + self.limit;
        let mut fut = pin!(fut);
        let woken = Arc::new(Flag::default());
        woken.0.store(true, Ordering::Release);
        loop {
            if woken.0.swap(false, Ordering::AcqRel)
                && let std::task::Poll::Ready(v) = poll_once(fut.as_mut(), &woken)
            {
                return Ok(v);
            }
            let ran = self.executor.run_until_stalled();
            if ran > 0 || woken.0.load(Ordering::Acquire) {
                continue;
            }
            match self.clock().next_deadline() {
                Some(t) if t <= limit => self.clock().advance_to(t),
                _ => return Err(Stalled { at: self.now() }),
            }
        }
    }

    /// Runs `fut` for `d` of virtual time, or until it completes.
    ///
    /// # Errors
    ///
    /// [`Stalled`] if nothing can make progress before `d` passes.
    pub fn run_for<F: Future>(&self, d: Duration, fut: F) -> Result<Option<F::Output>, Stalled> {
        let end = self.now() + d;
        let timeout = self.clock().sleep(d);
        let out = self.block_on(futures_lite::future::or(async { Some(fut.await) }, async {
            timeout.await;
            None
        }))?;
        debug_assert!(out.is_some() || self.now() >= end);
        Ok(out)
    }
}

/// The state a [`SimJoin`] shares with its task.
#[derive(Debug)]
struct JoinState<T> {
    out: Option<Result<T, TaskPanic>>,
    waker: Option<std::task::Waker>,
}

/// The join handle of a task spawned through `Spawned(&sim)`.
#[derive(Debug)]
pub struct SimJoin<T> {
    id: usize,
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for SimJoin<T> {
    type Output = Result<T, TaskPanic>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let mut s = self.state.borrow_mut();
        match s.out.take() {
            Some(out) => std::task::Poll::Ready(out),
            None => {
                s.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

fn finish<T>(state: &Rc<RefCell<JoinState<T>>>, out: Result<T, TaskPanic>) {
    let waker = {
        let mut s = state.borrow_mut();
        s.out = Some(out);
        s.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// The simulation's clock, so `&Sim` is a whole runtime (clock, timers and spawner): what
/// `Builder::new(&sim, ())` needs for `AutoscaledPool::run` in virtual time.
impl Clock for &Sim {
    fn now(&self) -> Instant {
        self.runtime.now()
    }
}

/// The simulation's timers.
impl Runtime for &Sim {
    type Timer = <TestRuntime as Runtime>::Timer;
    fn timer(&self, at: Instant) -> Self::Timer {
        self.runtime.timer(at)
    }
}

/// Spawns tasks on the simulation's executor, so `Spawned(&sim)` exercises the driver's spawned mode in
/// virtual time.
impl Spawn for &Sim {
    type Handle<T: Send + 'static> = SimJoin<T>;

    fn spawn<F>(&self, task: F) -> SimJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let state = Rc::new(RefCell::new(JoinState {
            out: None,
            waker: None,
        }));
        let shared = state.clone();
        let caught = InPlace.launch(task);
        let spawned = self
            .executor
            .spawn(async move { finish(&shared, caught.await) });
        SimJoin {
            id: spawned.id(),
            state,
        }
    }

    fn cancel<T: Send + 'static>(&self, handle: &mut SimJoin<T>) {
        if self.executor.cancel(handle.id) {
            let message = String::from("cancelled");
            finish(&handle.state, Err(TaskPanic { message }));
        }
    }
}

/// An event sink that keeps one line per event, for assertions and for eyes: decisions look like
/// `+10.000s desired 10->11 (idle: cpu 0.000 mem 0.000 event_loop 0.000 client 0.000)`.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    lines: Rc<RefCell<Vec<String>>>,
    events: Rc<RefCell<Vec<Event>>>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace::default()
    }
    /// The scaling decisions, one line each.
    pub fn decisions(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
    /// Every event, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }
    /// The desired concurrency after each decision.
    pub fn desired_history(&self) -> Vec<usize> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Event::Scaled(d) => Some(d.new),
                _ => None,
            })
            .collect()
    }
}

impl EventSink for Trace {
    fn event(&mut self, event: &Event) {
        if let Event::Scaled(d) = event {
            self.lines.borrow_mut().push(d.to_string());
        }
        self.events.borrow_mut().push(event.clone());
    }
}
