//! Ready-made [`EventSink`]s: none (`()`), borrowed, boxed, and [`FnSink`] from a closure.

use alloc::boxed::Box;

use crate::pool::Event;
use crate::seams::EventSink;

/// Drops events.
impl EventSink for () {
    fn event(&mut self, _event: &Event) {}
}

impl<S: EventSink + ?Sized> EventSink for &mut S {
    fn event(&mut self, event: &Event) {
        (**self).event(event)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn event(&mut self, event: &Event) {
        (**self).event(event)
    }
}

/// An [`EventSink`] from a closure.
#[derive(Clone, Copy, Debug, Default)]
pub struct FnSink<F>(pub F);

impl<F: FnMut(&Event)> EventSink for FnSink<F> {
    fn event(&mut self, event: &Event) {
        (self.0)(event)
    }
}
