//! [`Slab`]: the items of running attempts by slot, so a task that ends finds its item by the slot it carries,
//! and freed slots are reused: once the slab has grown to the peak concurrency, a start allocates nothing.

use alloc::vec::Vec;

/// Values by slot, with freed slots reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Keeps `value` in a free slot and returns the slot.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if let Some(slot) = self.free.pop()
            && let Some(place) = self.slots.get_mut(slot as usize)
        {
            *place = Some(value);
            return slot;
        }
        self.slots.push(Some(value));
        u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
    }

    /// Takes the value in `slot` and frees the slot; `None` if it holds none.
    pub(crate) fn take(&mut self, slot: u32) -> Option<T> {
        let value = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(value)
    }

    /// Values held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn a_freed_slot_is_reused_and_a_slot_is_taken_once() {
        let mut s = Slab::default();
        let (a, b) = (s.insert('a'), s.insert('b'));
        assert_eq!((a, b, s.len()), (0, 1, 2));
        assert_eq!(s.take(a), Some('a'));
        assert_eq!(s.take(a), None);
        assert_eq!(s.insert('c'), a);
        assert_eq!((s.take(b), s.take(a), s.len()), (Some('b'), Some('c'), 0));
        assert_eq!(s.take(7), None);
    }
}
