//! [`SharedBudget`]: one concurrency ceiling and one throttle state for several pools in a process, on any
//! runtimes.
//!
//! Each pool joins with a weight ([`SharedBudget::member`]) and takes a permit for every task it starts,
//! giving it back when the task ends. Two rules decide a permit:
//!
//! - **The ceiling, never crossed.** Permits in use across all members never exceed the capacity: a permit
//!   is one compare-and-swap on a shared counter, so no interleaving over-admits.
//! - **Weighted max-min shares.** Each running member publishes its demand (its desired concurrency, which
//!   its own policy keeps autoscaling) and the capacity is water-filled by weight: a member that wants less
//!   than its weighted part gets what it wants, and the rest is split among the others by weight. A member
//!   holding its share is refused until its own tasks end; a member refused by the spent ceiling is woken
//!   when another member gives a permit back.
//!
//! Shares are recomputed when a member's demand changes (at most once per tick of its policy) or a member
//! starts or ends a run, under the registry's lock. Taking and giving back a permit is one read-modify-write
//! of one word and takes no lock, except that a release wakes waiting members under it when a member refused
//! by the spent ceiling waits for a permit (the word's low bit says so).
//!
//! A throttle one member's task reports ([`Outcome::Throttled`](crate::Outcome)) is relayed to every other
//! running member as [`Handle::report_throttle`], so one member's 429 slows them all.
//!
//! The capacity may move ([`SharedBudget::set_capacity`]), and the budget tells what its members want
//! ([`SharedBudget::demand`]) and how many throttles they saw ([`SharedBudget::throttles`]): that is all a
//! keeper of a budget that spans processes (`pool-redis`) needs to lease permits for the process and to share
//! its throttles with the others ([`SharedBudget::report_throttle`]).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::driver::Handle;
pub use crate::pool::BudgetRefusal;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};

/// A concurrency budget shared by several pools. Cheap to clone; every clone is the same budget.
///
/// # Examples
///
/// ```
/// use pool_core::SharedBudget;
///
/// let budget = SharedBudget::new(10);
/// let (crawler, indexer) = (budget.member(2), budget.member(1));
/// // Give each pool its member with `Builder::budget(crawler)` and `Builder::budget(indexer)`: together
/// // they never run more than 10 tasks, and when both want more, the crawler gets two thirds.
/// # drop((crawler, indexer));
/// ```
#[derive(Clone)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

struct Inner {
    /// Starts left under a start-rate cap that a keeper refills, or [`UNLIMITED`] without one.
    tokens: AtomicUsize,
    /// The ceiling; a keeper that leases permits from elsewhere moves it.
    capacity: AtomicUsize,
    /// Permits in use, shifted left by one, and in the low bit whether a member refused by the spent
    /// ceiling waits for a release. One word, so that a waiter's mark and a release are read-modify-writes of
    /// the same location and cannot miss each other.
    state: AtomicUsize,
    members: Mutex<Vec<Arc<Member>>>,
    /// Throttles the members' tasks reported, and the last one's retry-after: what a keeper shares.
    throttles: Mutex<(u64, Option<Duration>)>,
}

/// No start-rate cap in [`Inner::tokens`].
const UNLIMITED: usize = usize::MAX;

/// The waiter mark in [`Inner::state`].
const WAITING: usize = 1;
/// One permit in [`Inner::state`].
const PERMIT: usize = 2;

/// One pool's place in a budget.
struct Member {
    weight: usize,
    held: AtomicUsize,
    share: AtomicUsize,
    demand: AtomicUsize,
    running: AtomicBool,
    waiting: AtomicBool,
    /// The running pool's handle: woken when a permit comes free, told of other members' throttles.
    handle: Mutex<Option<Handle>>,
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget")
            .field("capacity", &self.capacity())
            .field("in_use", &self.in_use())
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    /// A budget of `capacity` permits (tasks running at once, across every member). A capacity of 0 admits
    /// nothing.
    pub fn new(capacity: usize) -> Self {
        SharedBudget {
            inner: Arc::new(Inner {
                tokens: AtomicUsize::new(UNLIMITED),
                capacity: AtomicUsize::new(capacity),
                state: AtomicUsize::new(0),
                members: Mutex::new(Vec::new()),
                throttles: Mutex::new((0, None)),
            }),
        }
    }

    /// A new member with `weight` (at least 1): hand it to one pool's builder.
    pub fn member(&self, weight: usize) -> BudgetMember {
        let member = Arc::new(Member {
            weight: weight.max(1),
            held: AtomicUsize::new(0),
            share: AtomicUsize::new(0),
            demand: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            handle: Mutex::new(None),
        });
        lock(&self.inner.members).push(member.clone());
        BudgetMember {
            budget: self.inner.clone(),
            member,
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.inner.capacity.load(Ordering::Acquire)
    }

    /// Moves the capacity. Permits in use above a lower capacity stay with their tasks, and no member gets
    /// another until the use is below it; a higher capacity wakes members waiting for a permit. The shares
    /// are recomputed.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::SharedBudget;
    ///
    /// let budget = SharedBudget::new(2);
    /// budget.set_capacity(8);
    /// assert_eq!(budget.capacity(), 8);
    /// ```
    pub fn set_capacity(&self, capacity: usize) {
        let before = self.inner.capacity.swap(capacity, Ordering::AcqRel);
        if before != capacity {
            rebalance(&self.inner);
        }
        if capacity > before {
            wake_waiters(&self.inner);
        }
    }

    /// Permits in use now, across every member.
    pub fn in_use(&self) -> usize {
        self.inner.state.load(Ordering::Acquire) / PERMIT
    }

    /// Caps the members' starts: from now each start also takes one of `tokens` starts, and a start without one
    /// is [`Refusal::BudgetRate`](crate::Refusal::BudgetRate). `None` lifts the cap. A keeper that holds a
    /// rate cap shared with other processes (`pool-redis`) sets it and refills it
    /// ([`add_start_tokens`](Self::add_start_tokens)).
    pub fn set_start_tokens(&self, tokens: Option<usize>) {
        let n = tokens.map_or(UNLIMITED, |n| n.min(UNLIMITED - 1));
        self.inner.tokens.store(n, Ordering::Release);
        if n > 0 {
            notify_running(&self.inner);
        }
    }

    /// Adds `n` starts under the start-rate cap (nothing without one), and wakes the running members, so a
    /// member refused for want of a start tries again.
    pub fn add_start_tokens(&self, n: usize) {
        let added = self
            .inner
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                (t != UNLIMITED).then(|| t.saturating_add(n).min(UNLIMITED - 1))
            });
        if added.is_ok() && n > 0 {
            notify_running(&self.inner);
        }
    }

    /// Starts left under the start-rate cap, or `None` without one.
    pub fn start_tokens(&self) -> Option<usize> {
        let t = self.inner.tokens.load(Ordering::Acquire);
        (t != UNLIMITED).then_some(t)
    }

    /// What the running members want together: the sum of their demands (each its desired concurrency).
    pub fn demand(&self) -> usize {
        lock(&self.inner.members)
            .iter()
            .filter(|m| m.running.load(Ordering::Acquire))
            .map(|m| m.demand.load(Ordering::Acquire).max(1))
            .fold(0usize, usize::saturating_add)
    }

    /// How many throttles the members' tasks reported since the budget was made, and the last one's
    /// retry-after.
    pub fn throttles(&self) -> (u64, Option<Duration>) {
        *lock(&self.inner.throttles)
    }

    /// Tells every running member that the service behind the tasks throttled, as if one of its own tasks had
    /// been: a keeper calls this for a throttle another process saw. It is not counted in
    /// [`throttles`](Self::throttles).
    pub fn report_throttle(&self, retry_after: Option<Duration>) {
        for m in lock(&self.inner.members).iter() {
            if let Some(h) = lock(&m.handle).as_ref() {
                h.report_throttle(retry_after);
            }
        }
    }
}

/// One pool's membership of a [`SharedBudget`]: what the pool's driver takes permits through.
pub struct BudgetMember {
    budget: Arc<Inner>,
    member: Arc<Member>,
}

impl fmt::Debug for BudgetMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetMember")
            .field("weight", &self.member.weight)
            .field("held", &self.held())
            .field("share", &self.share())
            .finish_non_exhaustive()
    }
}

impl BudgetMember {
    /// The same membership, for one run of the pool that owns it.
    pub(crate) fn for_run(&self) -> BudgetMember {
        BudgetMember {
            budget: self.budget.clone(),
            member: self.member.clone(),
        }
    }

    /// Permits this member holds.
    pub fn held(&self) -> usize {
        self.member.held.load(Ordering::Acquire)
    }

    /// Permits in use across the whole budget.
    pub fn budget_in_use(&self) -> usize {
        self.budget.state.load(Ordering::Acquire) / PERMIT
    }

    /// The whole budget's capacity.
    pub fn budget_capacity(&self) -> usize {
        self.budget.capacity.load(Ordering::Acquire)
    }

    /// This member's share now (0 while it does not run).
    pub fn share(&self) -> usize {
        self.member.share.load(Ordering::Acquire)
    }

    /// The member's run started: it takes part in the shares from now, with `demand`, and `handle` is
    /// woken when a permit comes free and told of the other members' throttles.
    pub fn join(&self, handle: &Handle, demand: usize) {
        *lock(&self.member.handle) = Some(handle.clone());
        self.member.demand.store(demand, Ordering::Release);
        self.member.running.store(true, Ordering::Release);
        rebalance(&self.budget);
    }

    /// The member's run ended: its share goes to the others. Permits it still holds are its to give back.
    pub fn leave(&self) {
        self.member.running.store(false, Ordering::Release);
        self.member.waiting.store(false, Ordering::Release);
        *lock(&self.member.handle) = None;
        rebalance(&self.budget);
        wake_waiters(&self.budget);
    }

    /// Publishes the member's demand (its desired concurrency); shares are recomputed if it changed.
    pub fn set_demand(&self, demand: usize) {
        if self.member.demand.swap(demand, Ordering::AcqRel) != demand {
            rebalance(&self.budget);
        }
    }

    /// Takes a permit, or says why not.
    ///
    /// # Errors
    ///
    /// [`BudgetRefusal::Spent`] when the member holds its share or the budget is spent,
    /// [`BudgetRefusal::Rate`] when a start-rate cap has no start left.
    pub fn try_acquire(&self) -> Result<(), BudgetRefusal> {
        let (held, share) = (self.held(), self.share());
        if held >= share {
            return Err(BudgetRefusal::Spent { held, share });
        }
        let inner = &self.budget;
        // A start under a rate cap is taken before the permit and given back if there is no permit, so a
        // permit is never held for a start that cannot happen. Without a cap this is one load.
        let capped = inner.tokens.load(Ordering::Acquire) != UNLIMITED;
        if capped
            && inner
                .tokens
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                    (t != UNLIMITED && t > 0).then(|| t - 1)
                })
                .is_err_and(|t| t != UNLIMITED)
        {
            return Err(BudgetRefusal::Rate);
        }
        let spent = self.take_permit(held, share);
        if spent.is_err() && capped {
            inner
                .tokens
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                    (t != UNLIMITED).then(|| t + 1)
                })
                .ok();
        }
        spent
    }

    fn take_permit(&self, held: usize, share: usize) -> Result<(), BudgetRefusal> {
        let inner = &self.budget;
        let mut state = inner.state.load(Ordering::Acquire);
        loop {
            let next = if state / PERMIT < inner.capacity.load(Ordering::Acquire) {
                state + PERMIT
            } else {
                // Spent: mark this member, then the word. If a release changes the word first, the exchange
                // fails and the loop sees the permit it freed; if the mark lands first, that release sees it
                // and wakes the marked members.
                self.member.waiting.store(true, Ordering::Release);
                state | WAITING
            };
            match inner.state.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if next & !WAITING == state & !WAITING => {
                    return Err(BudgetRefusal::Spent { held, share });
                }
                Ok(_) => {
                    self.member.held.fetch_add(1, Ordering::AcqRel);
                    return Ok(());
                }
                Err(now) => state = now,
            }
        }
    }

    /// Gives a permit back, waking members that wait for one.
    pub fn release(&self) {
        self.member.held.fetch_sub(1, Ordering::AcqRel);
        let before = self.budget.state.fetch_sub(PERMIT, Ordering::AcqRel);
        if before & WAITING != 0 {
            self.budget.state.fetch_and(!WAITING, Ordering::AcqRel);
            wake_waiters(&self.budget);
        }
    }

    /// Tells every other running member that the service behind the tasks throttled one of this member's.
    pub fn relay_throttle(&self, retry_after: Option<Duration>) {
        {
            let mut seen = lock(&self.budget.throttles);
            *seen = (seen.0 + 1, retry_after);
        }
        for other in lock(&self.budget.members).iter() {
            if !Arc::ptr_eq(other, &self.member)
                && let Some(h) = lock(&other.handle).as_ref()
            {
                h.report_throttle(retry_after);
            }
        }
    }
}

/// Wakes every running member (a start-rate cap was refilled).
fn notify_running(budget: &Inner) {
    for m in lock(&budget.members).iter() {
        if let Some(h) = lock(&m.handle).as_ref() {
            h.notify();
        }
    }
}

/// Wakes the members marked as waiting for a permit.
fn wake_waiters(budget: &Inner) {
    for m in lock(&budget.members).iter() {
        if m.waiting.swap(false, Ordering::AcqRel)
            && let Some(h) = lock(&m.handle).as_ref()
        {
            h.notify();
        }
    }
}

/// Recomputes every running member's share: the capacity water-filled by weight, each member capped at its
/// demand (at least 1, so a member that runs can always start one task when permits are free).
fn rebalance(budget: &Inner) {
    let members = lock(&budget.members);
    let running: Vec<&Arc<Member>> = members
        .iter()
        .filter(|m| m.running.load(Ordering::Acquire))
        .collect();
    let demands: Vec<(usize, usize)> = running
        .iter()
        .map(|m| (m.weight, m.demand.load(Ordering::Acquire).max(1)))
        .collect();
    let shares = water_fill(budget.capacity.load(Ordering::Acquire), &demands);
    for (m, share) in running.iter().zip(shares) {
        // A member whose share grew may be waiting on its old one: wake it to take the new.
        if m.share.swap(share, Ordering::AcqRel) < share
            && let Some(h) = lock(&m.handle).as_ref()
        {
            h.notify();
        }
    }
    for m in members
        .iter()
        .filter(|m| !m.running.load(Ordering::Acquire))
    {
        m.share.store(0, Ordering::Release);
    }
}

/// Max-min fair shares of `capacity` for `(weight, demand)` pairs: no share exceeds its demand, and the
/// shares of members that want more than they get are in proportion to their weights (to within one
/// permit, handed out by largest remainder). The shares sum to at most `capacity`.
pub fn water_fill(capacity: usize, members: &[(usize, usize)]) -> Vec<usize> {
    let mut shares = alloc::vec![0usize; members.len()];
    let mut left = capacity;
    let mut open: Vec<usize> = (0..members.len()).collect();
    while left > 0 && !open.is_empty() {
        let weights: usize = open.iter().map(|&i| members[i].0).sum();
        // Each open member's part of what is left, by weight; members whose demand it covers are done.
        let mut capped = false;
        for &i in &open {
            let part = left * members[i].0 / weights.max(1);
            if shares[i] + part >= members[i].1 {
                capped = true;
            }
        }
        if capped {
            let mut next = Vec::with_capacity(open.len());
            for &i in &open {
                let part = left * members[i].0 / weights.max(1);
                if shares[i] + part >= members[i].1 {
                    let give = members[i].1 - shares[i];
                    shares[i] += give;
                    left -= give;
                } else {
                    next.push(i);
                }
            }
            open = next;
            continue;
        }
        // Nobody is capped: hand out the weighted parts, then what rounding left over one permit each to the
        // largest remainders (the heavier member first on a tie), so rounding favours who was owed most.
        let mut given = 0;
        for &i in &open {
            let part = left * members[i].0 / weights.max(1);
            shares[i] += part;
            given += part;
        }
        let mut by_remainder = open.clone();
        by_remainder.sort_by_key(|&i| {
            let rem = left * members[i].0 % weights.max(1);
            (core::cmp::Reverse(rem), core::cmp::Reverse(members[i].0), i)
        });
        left -= given;
        for i in by_remainder {
            if left == 0 {
                break;
            }
            if shares[i] < members[i].1 {
                shares[i] += 1;
                left -= 1;
            }
        }
        break;
    }
    shares
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}
