//! Taking a message that moves here from somewhere else in the store, in one batch with
//! the write that removes it from there: a delayed exchange's due message (`delayed/`).
//!
//! Two steps, as dead lettering's one-batch move (`dead_letter/`):
//!
//! 1. [`Queue::reserve_moved_in`]: a place (seq) as a publish would get one (a full
//!    `reject-publish` queue refuses it, `reject-publish-dlx` dead-letters it, as for a
//!    publish), and the `Put` to add to the caller's batch when the queue stores it.
//! 2. The caller submits its batch (`WriteOp::Group`: these puts and its own delete), then
//!    [`Queue::accept_moved_in`] inserts the message at its reserved seq. An ack of the new
//!    copy is submitted after the batch, so the store never sees it before the put.

use std::sync::Arc;

use bytes::Bytes;
use warren_store::{Ticket, WriteOp};

use super::dead_letter::DeathReason;
use super::{Queue, Room, StoreKey};
use crate::arguments::Overflow;
use crate::message::Message;
use crate::stats::Counter;

/// A place reserved for a message moving in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MovedIn {
    seq: u64,
    stored: Option<StoreKey>,
}

impl Queue {
    /// Reserves a place for `message` as a publish would, pushing its `Put` to `ops` when
    /// this queue stores it (`encoded` caches the stored form across queues). `None`: the
    /// queue was deleted, or refused the message at its length limit.
    pub(crate) fn reserve_moved_in(
        self: &Arc<Self>,
        message: &Arc<Message>,
        encoded: &mut Option<Bytes>,
        ops: &mut Vec<WriteOp>,
    ) -> Option<MovedIn> {
        let seq = match self.reserve_room(message) {
            Room::Seq(seq) => seq,
            Room::Deleted => return None,
            Room::Full => {
                let mut st = self.lock();
                if !st.deleted && st.settings.overflow == Overflow::RejectPublishDlx {
                    self.let_go(&mut st, Some(message), None, DeathReason::MaxLen);
                }
                return None;
            }
        };
        let stored = self.stage_put(message, seq, encoded, ops);
        Some(MovedIn { seq, stored })
    }

    /// The `Put` of `message` at the reserved `seq`, pushed to the caller's batch `ops`
    /// when this queue stores it (`encoded` caches the stored form across queues); its
    /// store key. Shared by every one-batch move into a queue (dead letters, due delayed
    /// messages).
    pub(super) fn stage_put(
        &self,
        message: &Message,
        seq: u64,
        encoded: &mut Option<Bytes>,
        ops: &mut Vec<WriteOp>,
    ) -> Option<StoreKey> {
        self.persists(message).then(|| {
            ops.push(WriteOp::Put {
                queue_id: self.store_id,
                seq,
                value: encoded.get_or_insert_with(|| message.encode()).clone(),
                index: self.index_entry(message),
            });
            StoreKey {
                id: self.store_id,
                seq,
                persistent: true,
            }
        })
    }

    /// Takes `message` at the place reserved for it, once the batch with its put (if any)
    /// was submitted as `ticket`.
    pub(crate) fn accept_moved_in(
        self: &Arc<Self>,
        message: &Arc<Message>,
        place: MovedIn,
        ticket: Option<Ticket>,
    ) {
        self.stats.add(Counter::Publish, 1);
        self.accept_dead_letter(message, place.seq, place.stored, ticket, true);
    }
}
