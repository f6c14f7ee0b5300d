//! [`Permits`]: the run's membership of a shared budget, if it has one (`std`), as the driver uses it:
//! one permit per start, given back at each end, the pool's desired concurrency as its demand, throttles
//! relayed. Without a budget, or without `std`, every call is a no-op.

#[cfg(feature = "std")]
use crate::budget::BudgetMember;
use crate::pool::BudgetRefusal;
use crate::pool::TaskOutcome;

/// A run's permits from a [`SharedBudget`](crate::SharedBudget), or none.
#[derive(Debug, Default)]
pub(super) struct Permits {
    #[cfg(feature = "std")]
    member: Option<BudgetMember>,
}

impl Permits {
    /// Permits from `member`'s budget, for a run with `handle` that starts at `desired`.
    #[cfg(feature = "std")]
    pub(super) fn new(
        member: BudgetMember,
        handle: &crate::driver::Handle,
        desired: usize,
    ) -> Self {
        member.join(handle, desired);
        Permits {
            member: Some(member),
        }
    }

    /// Takes a permit for a start, or says why there is none.
    #[inline]
    pub(super) fn acquire(&self) -> Result<(), BudgetRefusal> {
        #[cfg(feature = "std")]
        if let Some(m) = &self.member {
            return m.try_acquire();
        }
        Ok(())
    }

    /// Gives back the permit of a task that ended with `outcome`, relaying a throttle to the other members.
    #[inline]
    pub(super) fn release(&self, outcome: TaskOutcome) {
        #[cfg(feature = "std")]
        if let Some(m) = &self.member {
            m.release();
            if let TaskOutcome::Throttled { retry_after } = outcome {
                m.relay_throttle(retry_after);
            }
        }
        #[cfg(not(feature = "std"))]
        let _ = outcome;
    }

    /// Publishes the pool's desired concurrency as its demand.
    #[inline]
    pub(super) fn demand(&self, desired: usize) {
        #[cfg(feature = "std")]
        if let Some(m) = &self.member {
            m.set_demand(desired);
        }
        #[cfg(not(feature = "std"))]
        let _ = desired;
    }

    /// The run ended: its share goes back to the other members.
    pub(super) fn leave(&self) {
        #[cfg(feature = "std")]
        if let Some(m) = &self.member {
            m.leave();
        }
    }
}
