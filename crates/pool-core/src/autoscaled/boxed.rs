//! [`BoxTaskFns`]: the three task functions behind boxes, so a built pool has a type a struct can name.

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;

use futures_lite::future::Boxed;

use crate::config::ConfigError;
use crate::outcome::Outcome;
use crate::seams::TaskFns;

use super::{AutoscaledPool, Builder};

/// A boxed closure that makes a boxed future.
type BoxFn<T> = Box<dyn FnMut() -> Boxed<T> + Send>;

/// Task functions whose closures and futures are boxed: what [`Builder::build_boxed`] builds, so that the
/// pool's type is `AutoscaledPool<Rt, BoxTaskFns<E, O>, Se>`, which a struct can hold without generics (each
/// adapter names it `DynPool<E, O>` for its runtime and default sensors).
///
/// The price is one allocation per task (its boxed future) and a virtual call per task function, where
/// [`Builder::build`]'s pool has neither.
pub struct BoxTaskFns<E, O = ()> {
    run: BoxFn<Result<O, E>>,
    ready: BoxFn<Result<bool, E>>,
    finished: BoxFn<Result<bool, E>>,
}

impl<E, O> fmt::Debug for BoxTaskFns<E, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxTaskFns").finish_non_exhaustive()
    }
}

impl<E, O: Into<Outcome>> TaskFns for BoxTaskFns<E, O> {
    type Error = E;
    type Ok = O;
    type Task = Boxed<Result<O, E>>;
    type Ready = Boxed<Result<bool, E>>;
    type Finished = Boxed<Result<bool, E>>;
    fn run_task(&mut self) -> Self::Task {
        (self.run)()
    }
    fn is_task_ready(&mut self) -> Self::Ready {
        (self.ready)()
    }
    fn is_finished(&mut self) -> Self::Finished {
        (self.finished)()
    }
}

/// Boxes a closure and the futures it makes.
fn boxed<T, F, Fut>(mut f: F) -> BoxFn<T>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Box::new(move || Box::pin(f()) as Boxed<T>)
}

impl<Rt, R, T, F, Se, E, O, FR, FT, FF> Builder<Rt, R, T, F, Se>
where
    R: FnMut() -> FR + Send + 'static,
    T: FnMut() -> FT + Send + 'static,
    F: FnMut() -> FF + Send + 'static,
    FR: Future<Output = Result<O, E>> + Send + 'static,
    O: Into<Outcome>,
    FT: Future<Output = Result<bool, E>> + Send + 'static,
    FF: Future<Output = Result<bool, E>> + Send + 'static,
{
    /// Validates the settings and builds a pool whose type can be named: `AutoscaledPool<Rt,
    /// BoxTaskFns<E, O>, Se>`, an adapter's `DynPool<E, O>` with its default sensors.
    ///
    /// # Errors
    ///
    /// The first invalid setting, as a [`ConfigError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::testing::{Sim, TestRuntime};
    /// use pool_core::{AutoscaledPool, BoxTaskFns, Builder};
    ///
    /// /// A service that owns its pool: the field's type is spelled out.
    /// struct Service {
    ///     pool: AutoscaledPool<TestRuntime, BoxTaskFns<std::io::Error>, ()>,
    /// }
    ///
    /// let sim = Sim::new();
    /// let service = Service {
    ///     pool: Builder::new(sim.runtime().clone(), ())
    ///         .run_task(|| async { Ok(()) })
    ///         .is_task_ready(|| async { Ok(false) })
    ///         .is_finished(|| async { Ok(true) })
    ///         .build_boxed()
    ///         .unwrap(),
    /// };
    /// let report = sim.block_on(service.pool.run_local()).unwrap().unwrap();
    /// assert_eq!(report.started, 0);
    /// ```
    pub fn build_boxed(self) -> Result<AutoscaledPool<Rt, BoxTaskFns<E, O>, Se>, ConfigError>
    where
        E: 'static,
        O: 'static,
    {
        let (parts, (run, ready, finished)) = self.into_parts()?;
        let fns = BoxTaskFns {
            run: boxed(run),
            ready: boxed(ready),
            finished: boxed(finished),
        };
        Ok(AutoscaledPool::from_parts(parts, fns))
    }
}
