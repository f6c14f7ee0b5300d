//! What a `Handle` reads from inside the task functions, where a user's code asks it (issue 12's review).

mod common;

use std::cell::RefCell;

use common::*;
use pool_core::task_fns;

#[test]
fn inside_is_finished_the_handle_reads_no_task_running() {
    // Tasks end in a burst, then `is_finished` is asked with nothing running: the handle's count must say
    // so, not the count before the last reap.
    let case = Case::new(config(1, 3, 3));
    let c = Counters::default();
    let seen = RefCell::new(Vec::new());
    let handle = case.handle.clone();
    let sim = &case.sim;
    let mut fns = task_fns(
        || {
            bump(&c.started);
            let s = sim.sleep(ms(10));
            async {
                s.await;
                bump(&c.done);
                Ok::<(), Boom>(())
            }
        },
        answers(|| c.started.get() < 6),
        answers(|| {
            seen.borrow_mut().push(handle.current_concurrency());
            c.done.get() >= 6
        }),
    );
    case.run(&mut fns).unwrap();
    drop(fns);
    let seen = seen.into_inner();
    assert!(!seen.is_empty(), "is_finished was asked");
    assert!(
        seen.iter().all(|&n| n == 0),
        "read inside is_finished: {seen:?}"
    );
}

#[test]
fn a_run_polled_again_after_it_completed_answers_run_ended() {
    let case = Case::new(config(1, 2, 2));
    let c = Counters::default();
    let mut fns = queue_tasks(&case.sim, &c, 3, ms(5));
    let (first, again) = case.with_run(&mut fns, |mut run| {
        let first = case.sim.block_on(&mut run).unwrap();
        let again = futures_lite::future::block_on(futures_lite::future::poll_once(&mut run));
        (first, again)
    });
    assert_eq!(first.unwrap().succeeded, 3);
    assert!(
        matches!(again, Some(Err(pool_core::PoolError::RunEnded))),
        "{again:?}"
    );
    assert_eq!(
        pool_core::PoolError::<Boom>::RunEnded.to_string(),
        "the run already ended; the poll that ended it returned its result"
    );
}

#[test]
fn a_pause_requested_by_a_starting_task_binds_the_next_start_not_the_next_batch() {
    // Eight slots free and readiness always yes: the driver starts in batches, and the fourth start pauses
    // the pool from inside `run_task`. Nothing may start after it.
    let case = Case::new(config(1, 8, 8));
    let c = Counters::default();
    let handle = case.handle.clone();
    let sim = &case.sim;
    let mut fns = task_fns(
        || {
            bump(&c.started);
            if c.started.get() == 4 {
                handle.pause();
            }
            let s = sim.sleep(ms(10));
            async {
                s.await;
                bump(&c.done);
                Ok::<(), Boom>(())
            }
        },
        answers(|| true),
        answers(|| c.done.get() >= 4),
    );
    case.run(&mut fns).unwrap();
    drop(fns);
    assert_eq!(c.started.get(), 4);
}
