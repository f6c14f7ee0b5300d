//! A manual, single-threaded executor: tasks run only when the test ticks it, in wake order.

use std::prelude::rust_2024::*;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

#[derive(Debug, Default)]
struct Queue {
    ready: Mutex<VecDeque<usize>>,
}

struct TaskWaker {
    id: usize,
    queue: Arc<Queue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let mut q = self.queue.ready.lock().unwrap_or_else(|e| e.into_inner());
        if !q.contains(&self.id) {
            q.push_back(self.id);
        }
    }
}

/// An executor that runs nothing until ticked. No threads, no randomness: every run is the same.
///
/// Tasks may borrow anything that outlives `'a`.
pub struct ManualExecutor<'a> {
    tasks: RefCell<Vec<Option<(BoxFuture<'a>, Waker)>>>,
    queue: Arc<Queue>,
}

impl std::fmt::Debug for ManualExecutor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualExecutor")
            .field("tasks", &self.tasks.borrow().len())
            .finish()
    }
}

impl Default for ManualExecutor<'_> {
    fn default() -> Self {
        ManualExecutor {
            tasks: RefCell::new(Vec::new()),
            queue: Arc::new(Queue::default()),
        }
    }
}

/// A spawned task's output, once it has finished.
#[derive(Debug)]
pub struct Task<T> {
    id: usize,
    out: Rc<RefCell<Option<T>>>,
}

impl<T> Task<T> {
    /// The task's id in its executor, for [`ManualExecutor::cancel`].
    pub fn id(&self) -> usize {
        self.id
    }
    /// Takes the output if the task has finished.
    pub fn try_take(&self) -> Option<T> {
        self.out.borrow_mut().take()
    }
    /// Whether the task has finished (and its output was not taken yet).
    pub fn is_finished(&self) -> bool {
        self.out.borrow().is_some()
    }
}

impl<'a> ManualExecutor<'a> {
    /// An empty executor.
    pub fn new() -> Self {
        ManualExecutor::default()
    }

    /// Queues `fut` to run at the next tick.
    pub fn spawn<T: 'a>(&self, fut: impl Future<Output = T> + 'a) -> Task<T> {
        let out = Rc::new(RefCell::new(None));
        let slot = out.clone();
        let fut: BoxFuture<'a> = Box::pin(async move {
            let v = fut.await;
            *slot.borrow_mut() = Some(v);
        });
        let mut tasks = self.tasks.borrow_mut();
        let id = tasks.len();
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            queue: self.queue.clone(),
        }));
        tasks.push(Some((fut, waker.clone())));
        waker.wake();
        Task { id, out }
    }

    /// Drops a task's future, as a runtime's abort does. Returns whether it was still running.
    pub fn cancel(&self, id: usize) -> bool {
        // Drop the future outside the borrow: its destructor may spawn or cancel other tasks.
        let fut = self.tasks.borrow_mut().get_mut(id).and_then(Option::take);
        fut.is_some()
    }

    /// Polls the next woken task. Returns whether one ran.
    pub fn try_tick(&self) -> bool {
        let next = self
            .queue
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        let Some(id) = next else { return false };
        // Take the task out while it runs, so it can spawn more tasks without a double borrow.
        let Some((mut fut, waker)) = self.tasks.borrow_mut()[id].take() else {
            return true;
        };
        if fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            self.tasks.borrow_mut()[id] = Some((fut, waker));
        }
        true
    }

    /// Ticks until no task is woken. Returns how many polls ran.
    pub fn run_until_stalled(&self) -> usize {
        let mut n = 0;
        while self.try_tick() {
            n += 1;
        }
        n
    }

    /// Whether every spawned task has finished.
    pub fn is_idle(&self) -> bool {
        self.tasks.borrow().iter().all(Option::is_none)
    }
}

/// Polls a future once with a waker that reports whether it was woken.
pub(crate) fn poll_once<F: Future + ?Sized>(
    fut: Pin<&mut F>,
    woken: &Arc<Flag>,
) -> Poll<F::Output> {
    let waker = Waker::from(woken.clone());
    fut.poll(&mut Context::from_waker(&waker))
}

/// A waker that sets a flag.
#[derive(Debug, Default)]
pub(crate) struct Flag(pub(crate) std::sync::atomic::AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}
