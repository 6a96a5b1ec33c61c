//! Length limits: `x-max-length` (ready messages) and `x-max-length-bytes` (body bytes of
//! ready messages), as RabbitMQ 3.10's classic queues count them: messages delivered and
//! not yet acknowledged do not count.
//!
//! `x-overflow` decides what gives:
//! - `drop-head` (default): the new message is enqueued (or delivered at once to a waiting
//!   consumer), then the oldest ready messages are dropped, dead-lettered with reason
//!   `maxlen` when the queue has a dead-letter exchange, until the queue is within its
//!   limits again. Requeues can push a queue over its limit too; the same trim follows.
//! - `reject-publish`: a message that would take the queue past a limit is refused before
//!   anything else (even with a consumer waiting): the publisher gets `basic.nack` in confirm
//!   mode, nothing otherwise.
//! - `reject-publish-dlx`: refused the same way, and dead-lettered (reason `maxlen`).
//!
//! A queue without limits pays one branch on the publish path (`QueueState::limited`).
//! Limits come from the queue's arguments and its policies (`crate::policy`); a policy that
//! lowers a limit trims a live queue at once (`Queue::apply_policy`).

use super::{DeathReason, Queue, QueueState};
use crate::arguments::Overflow;

impl Queue {
    /// reject-publish(-dlx): whether a new message with `body_len` body bytes would take
    /// the queue past a limit (argument or policy). A quorum queue's dead letters awaiting
    /// dead-lettering count as ready messages, as in RabbitMQ 3.10's `rabbit_fifo`.
    pub(super) fn would_overflow(&self, st: &QueueState, body_len: u64) -> bool {
        let (discards, discard_bytes) = (st.discards.len() as u64, st.discards.bytes());
        st.settings.overflow != Overflow::DropHead
            && (st
                .settings
                .max_length
                .is_some_and(|max| st.ready.len() as u64 + discards + 1 > max)
                || st
                    .settings
                    .max_length_bytes
                    .is_some_and(|max| st.ready.body_bytes() + discard_bytes + body_len > max))
    }

    fn over_limit(&self, st: &QueueState) -> bool {
        st.settings
            .max_length
            .is_some_and(|max| st.ready.len() as u64 > max)
            || st
                .settings
                .max_length_bytes
                .is_some_and(|max| st.ready.body_bytes() > max)
    }

    /// drop-head: drop (or dead-letter, reason `maxlen`) the oldest ready messages while
    /// the queue is over a limit.
    pub(super) fn trim_to_limits(&self, st: &mut QueueState) {
        if !st.limited || st.settings.overflow != Overflow::DropHead {
            return;
        }
        let dead_letter = st.settings.dead_letter.is_some();
        while self.over_limit(st) {
            if dead_letter && st.ready.front().is_some_and(|e| e.message.is_none()) {
                self.page_in(st);
            }
            let Some(entry) = st.ready.pop_front() else {
                return;
            };
            self.account_out(st, &entry);
            self.let_go(
                st,
                entry.message.as_ref(),
                entry.stored,
                DeathReason::MaxLen,
            );
        }
    }
}
