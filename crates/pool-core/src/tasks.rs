//! [`FnTasks`] and [`task_fns`]: the three user functions as closures, the usual way to make [`TaskFns`].

use core::future::Future;

use crate::outcome::Outcome;
use crate::seams::TaskFns;

/// [`TaskFns`] from three closures.
#[derive(Clone, Debug)]
pub struct FnTasks<R, T, F> {
    run: R,
    ready: T,
    finished: F,
}

/// Bundles `run_task`, `is_task_ready` and `is_finished` closures.
///
/// # Examples
///
/// ```
/// let fns = pool_core::task_fns(
///     || async { Ok::<(), std::io::Error>(()) },
///     || async { Ok(true) },
///     || async { Ok(false) },
/// );
/// # let _ = fns;
/// ```
pub fn task_fns<R, T, F, E, O, FR, FT, FF>(
    run_task: R,
    is_task_ready: T,
    is_finished: F,
) -> FnTasks<R, T, F>
where
    R: FnMut() -> FR,
    T: FnMut() -> FT,
    F: FnMut() -> FF,
    FR: Future<Output = Result<O, E>>,
    O: Into<Outcome>,
    FT: Future<Output = Result<bool, E>>,
    FF: Future<Output = Result<bool, E>>,
{
    FnTasks {
        run: run_task,
        ready: is_task_ready,
        finished: is_finished,
    }
}

impl<R, T, F, E, O, FR, FT, FF> TaskFns for FnTasks<R, T, F>
where
    R: FnMut() -> FR,
    T: FnMut() -> FT,
    F: FnMut() -> FF,
    FR: Future<Output = Result<O, E>>,
    O: Into<Outcome>,
    FT: Future<Output = Result<bool, E>>,
    FF: Future<Output = Result<bool, E>>,
{
    type Error = E;
    type Ok = O;
    type Task = FR;
    type Ready = FT;
    type Finished = FF;
    fn run_task(&mut self) -> FR {
        (self.run)()
    }
    fn is_task_ready(&mut self) -> FT {
        (self.ready)()
    }
    fn is_finished(&mut self) -> FF {
        (self.finished)()
    }
}
