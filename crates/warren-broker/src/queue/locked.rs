//! The queue's lock guard. [`Locked`] derefs to the locked `QueueState`; when it is
//! dropped it releases the lock first and then dead-letters what the operation let go
//! (`QueueState::dead_letters`), so a dead-letter target's lock is never taken while this
//! queue's is held (two queues dead-lettering into each other cannot deadlock). A queue
//! without a dead-letter exchange pays one `is_empty` check per operation.

use std::ops::{Deref, DerefMut};

use parking_lot::MutexGuard;

use super::{Queue, QueueState};

/// The locked state of a queue; see the module docs.
pub(super) struct Locked<'a> {
    queue: &'a Queue,
    guard: Option<MutexGuard<'a, QueueState>>,
}

impl Queue {
    /// Lock the queue's state.
    pub(super) fn lock(&self) -> Locked<'_> {
        Locked {
            queue: self,
            guard: Some(self.state.lock()),
        }
    }
}

impl Deref for Locked<'_> {
    type Target = QueueState;

    fn deref(&self) -> &QueueState {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut QueueState {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if guard.dead_letters.is_empty() {
            return;
        }
        let dead = std::mem::take(&mut guard.dead_letters);
        // The target as it is now (a policy may change it once the lock is released).
        let target = guard.settings.dead_letter.clone();
        let at_least_once = self.queue.is_quorum() && guard.settings.at_least_once();
        drop(guard);
        self.queue.dead_letter(dead, target, at_least_once);
    }
}
