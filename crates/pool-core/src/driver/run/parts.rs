//! The parts a [`Driver`](super::Driver) borrows or owns: the machine, the task functions and the runtime.
//!
//! Each is a trait with the part's type as an associated type, implemented for a borrow (what [`Run`](super::Run)
//! holds) and for [`Owned`] (what a value that outlives its caller's frame holds, such as the autoscaled
//! stream). They are not `DerefMut<Target = ..>` bounds on purpose: a bound that equates two types makes rustc
//! fail to prove an `async` caller's future `Send` when a part is a borrow ("implementation is not general
//! enough"), because it erases the lifetimes inside each type separately.

use crate::driver::{CatchPanic, TaskPanic};
use crate::pool::Pool;
use crate::scale::ScalingPolicy;
use crate::seams::{Runtime, TaskFns};

/// A part the driver owns.
#[derive(Debug, Default)]
pub struct Owned<T>(pub T);

/// The machine a driver runs: `&mut Pool<P>` or `Owned<Pool<P>>`.
pub trait PoolPart {
    /// The machine's scaling policy.
    type Policy: ScalingPolicy;
    /// The machine.
    fn part(&mut self) -> &mut Pool<Self::Policy>;
    /// The machine, shared.
    fn part_ref(&self) -> &Pool<Self::Policy>;
}

/// The task functions a driver calls: `&mut F` or `Owned<F>`.
pub trait FnsPart {
    /// The task functions.
    type Fns: TaskFns;
    /// The task functions.
    fn part(&mut self) -> &mut Self::Fns;
}

/// The runtime a driver keeps time with: `&Rt` or `Owned<Rt>`.
pub trait RuntimePart {
    /// The runtime.
    type Rt: Runtime;
    /// The runtime.
    fn part_ref(&self) -> &Self::Rt;
}

impl<P: ScalingPolicy> PoolPart for &mut Pool<P> {
    type Policy = P;
    #[inline]
    fn part(&mut self) -> &mut Pool<P> {
        self
    }
    #[inline]
    fn part_ref(&self) -> &Pool<P> {
        self
    }
}

impl<P: ScalingPolicy> PoolPart for Owned<Pool<P>> {
    type Policy = P;
    #[inline]
    fn part(&mut self) -> &mut Pool<P> {
        &mut self.0
    }
    #[inline]
    fn part_ref(&self) -> &Pool<P> {
        &self.0
    }
}

impl<F: TaskFns> FnsPart for &mut F {
    type Fns = F;
    #[inline]
    fn part(&mut self) -> &mut F {
        self
    }
}

impl<F: TaskFns> FnsPart for Owned<F> {
    type Fns = F;
    #[inline]
    fn part(&mut self) -> &mut F {
        &mut self.0
    }
}

impl<R: Runtime> RuntimePart for &R {
    type Rt = R;
    #[inline]
    fn part_ref(&self) -> &R {
        self
    }
}

impl<R: Runtime> RuntimePart for Owned<R> {
    type Rt = R;
    #[inline]
    fn part_ref(&self) -> &R {
        &self.0
    }
}

/// The task functions of `Fs`.
pub(crate) type Fns<Fs> = <Fs as FnsPart>::Fns;
/// The task future of `Fs`.
pub(crate) type Task<Fs> = <<Fs as FnsPart>::Fns as TaskFns>::Task;
/// A readiness check of `Fs`, as the driver keeps it.
pub(crate) type ReadyCheck<Fs> = Option<CatchPanic<<Fns<Fs> as TaskFns>::Ready>>;
/// A finish check of `Fs`, as the driver keeps it.
pub(crate) type FinishedCheck<Fs> = Option<CatchPanic<<Fns<Fs> as TaskFns>::Finished>>;
/// What a task of `F` resolves to in its slot.
pub(crate) type TaskResult<F> =
    Result<Result<<F as TaskFns>::Ok, <F as TaskFns>::Error>, TaskPanic>;
/// The runtime of `Rb`.
pub(crate) type Rt<Rb> = <Rb as RuntimePart>::Rt;
