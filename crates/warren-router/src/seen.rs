//! A set for "each at most once" checks on the routing path.
//!
//! Routing usually yields a handful of items (queues, trie states, exchanges), for which a
//! linear scan of a `Vec` beats hashing and allocates once at most. A few cases (a fanout to
//! thousands of queues reached through two exchanges, a pathological topic pattern set) yield
//! many, so the set moves its contents into a `HashSet` past [`SMALL`] items and stays linear
//! in the number of items.

use std::collections::HashSet;
use std::hash::Hash;

/// Items kept in the `Vec` before switching to a `HashSet`.
const SMALL: usize = 16;

/// An insert-only set that starts as a `Vec` and becomes a `HashSet` when it grows.
#[derive(Debug)]
pub(crate) struct SeenSet<T> {
    small: Vec<T>,
    large: Option<HashSet<T>>,
}

impl<T: Eq + Hash> SeenSet<T> {
    /// An empty set; allocates nothing until the first insert.
    pub(crate) fn new() -> Self {
        Self {
            small: Vec::new(),
            large: None,
        }
    }

    /// Adds `item`; returns `true` if it was not already present.
    pub(crate) fn insert(&mut self, item: T) -> bool {
        if let Some(large) = &mut self.large {
            return large.insert(item);
        }
        if self.small.contains(&item) {
            return false;
        }
        if self.small.len() < SMALL {
            self.small.push(item);
        } else {
            let mut large: HashSet<T> = self.small.drain(..).collect();
            large.insert(item);
            self.large = Some(large);
        }
        true
    }

    /// Empties the set, keeping its allocations for reuse.
    pub(crate) fn clear(&mut self) {
        self.small.clear();
        if let Some(large) = &mut self.large {
            large.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_reports_novelty_below_and_above_the_switch() {
        let mut set = SeenSet::new();
        for i in 0..100 {
            assert!(set.insert(i));
            assert!(!set.insert(i));
        }
        for i in 0..100 {
            assert!(!set.insert(i));
        }
        set.clear();
        assert!(set.insert(5));
    }
}
