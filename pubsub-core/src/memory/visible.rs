//! The visible messages of a queue: an ordered set of their sequence numbers, made for the
//! common case, where messages become visible in the order they arrived and the oldest is
//! taken next.

use std::collections::{BTreeSet, VecDeque};

use rustc_hash::FxHashSet;

/// The sequence numbers of a queue's visible messages, oldest first.
///
/// A message that arrives (its number above every number before) goes to the back of a
/// queue, and the oldest leaves from its front, each in constant time, where a tree's insert
/// and removal were a tenth of the embedded queue's work for each message. A message that is
/// visible again (a number below the queue's last) goes to an ordered set beside the queue.
/// One taken out of the middle of the queue (a FIFO group's, a deleted one) is marked gone,
/// and leaves the queue when it reaches the front.
#[derive(Debug, Default)]
pub(crate) struct VisibleSet {
    /// Numbers in increasing order; the front is never gone.
    arrived: VecDeque<u64>,
    returned: BTreeSet<u64>,
    /// Numbers still in `arrived`, but no longer visible.
    gone: FxHashSet<u64>,
    len: usize,
}

impl VisibleSet {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The oldest visible message.
    pub(crate) fn first(&self) -> Option<u64> {
        match (self.arrived.front(), self.returned.first()) {
            (Some(arrived), Some(returned)) => Some(*arrived.min(returned)),
            (arrived, returned) => arrived.or(returned).copied(),
        }
    }

    /// Adds `sequence`; whether it was not visible.
    pub(crate) fn insert(&mut self, sequence: u64) -> bool {
        let added = match self.arrived.back() {
            Some(last) if sequence <= *last => match self.arrived.binary_search(&sequence) {
                // Still in the queue: visible again if it was gone.
                Ok(_) => self.gone.remove(&sequence),
                Err(_) => self.returned.insert(sequence),
            },
            _ => {
                self.arrived.push_back(sequence);
                true
            }
        };
        self.len += usize::from(added);
        added
    }

    /// Takes `sequence` out; whether it was visible.
    pub(crate) fn remove(&mut self, sequence: u64) -> bool {
        let removed = if self.returned.remove(&sequence) {
            true
        } else if self.arrived.front() == Some(&sequence) {
            self.arrived.pop_front();
            // Keep the front a visible one.
            while let Some(&front) = self.arrived.front() {
                if !self.gone.remove(&front) {
                    break;
                }
                self.arrived.pop_front();
            }
            true
        } else {
            self.arrived.binary_search(&sequence).is_ok() && self.gone.insert(sequence)
        };
        self.len -= usize::from(removed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Random inserts (new numbers, old ones, numbers already in) and removals (the first,
    /// any, absent ones), against an ordered set.
    #[test]
    fn it_is_the_ordered_set_it_stands_for() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let (mut set, mut model) = (VisibleSet::default(), BTreeSet::new());
            let mut next = 0u64;
            for _ in 0..300 {
                match rng.u8(0..6) {
                    0 | 1 => {
                        let sequence = next;
                        next += rng.u64(1..3);
                        assert_eq!(set.insert(sequence), model.insert(sequence));
                    }
                    2 => {
                        let sequence = rng.u64(0..next.max(1));
                        assert_eq!(set.insert(sequence), model.insert(sequence), "insert {sequence}");
                    }
                    3 => {
                        if let Some(first) = model.first().copied() {
                            assert!(set.remove(first));
                            model.remove(&first);
                        }
                    }
                    _ => {
                        let sequence = rng.u64(0..next.max(1) + 2);
                        assert_eq!(set.remove(sequence), model.remove(&sequence), "remove {sequence}");
                    }
                }
                assert_eq!(set.first(), model.first().copied());
                assert_eq!(set.len(), model.len());
            }
        }
    }
}
