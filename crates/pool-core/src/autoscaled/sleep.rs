//! [`sleep`]: a wait on the runtime's own timer, for code generic over the runtime.

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::seams::{Runtime, Timer};
use crate::time::Instant;

/// A sleep of `d` on `rt`'s timer: a runtime-neutral way for code generic over the runtime (such as the
/// adapter conformance suite) to wait.
pub fn sleep<Rt: Runtime + Clone>(rt: &Rt, d: Duration) -> Sleep<Rt> {
    let at = rt.now() + d;
    Sleep {
        timer: Box::pin(rt.timer(at)),
        at,
        rt: rt.clone(),
    }
}

/// The future returned by [`sleep`]; expiry is decided by the runtime's clock.
pub struct Sleep<Rt: Runtime> {
    timer: Pin<Box<Rt::Timer>>,
    at: Instant,
    rt: Rt,
}

impl<Rt: Runtime> fmt::Debug for Sleep<Rt> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

// The timer is pinned in its own box and the runtime handle is never pinned, so `Sleep` may move.
impl<Rt: Runtime> Unpin for Sleep<Rt> {}

impl<Rt: Runtime> Future for Sleep<Rt> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.rt.now() >= self.at {
            return Poll::Ready(());
        }
        let _ = self.timer.as_mut().poll_elapsed(cx);
        if self.rt.now() >= self.at {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
