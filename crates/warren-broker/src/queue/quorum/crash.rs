//! After a crash, a quorum queue counts the messages that may have been out with
//! consumers as returned, as RabbitMQ does when its node comes back (the consumers of the
//! last run are gone: `rabbit_fifo` returns their checked-out messages, delivery count + 1).
//!
//! Warren does not store which messages are out with consumers (a delivery writes nothing
//! but, once per lease, the delivered watermark: `queue/mod.rs`). What it knows after a
//! crash is the watermark: every stored message at or below it *may* have been out. So
//! recovery counts all of them as returned ([`Queue::count_crash_returns`]): conservative,
//! never short. It counts exactly the messages that were out, plus (a) up to
//! `DELIVERED_LEASE` (256) messages per queue that were never delivered and that the
//! lease covered, and (b) messages that were returned before the crash and were waiting
//! in the queue. A message whose delivery crashes the broker is therefore counted at
//! every crash and reaches the delivery limit (dead-lettered with reason
//! `delivery_limit`, or dropped) instead of looping for ever.
//!
//! - Only after a crash: a clean stop first closes the connections, so every message out
//!   with a consumer comes back as a counted return, and the store's delivered log says
//!   the stop was clean (`Store::last_stop_was_clean`); nothing is counted twice.
//! - The new counts are stored (`SetIndex`, one synced group) so they add up across
//!   crashes. Once they are on disk the queue lowers its watermark to what this run
//!   delivered (`Queue::settle_delivered_mark`), so a second crash does not count again
//!   the messages this run did not deliver.
//! - A count past the limit is acted on once the bindings are restored
//!   ([`Queue::enforce_delivery_limit`]), so that the dead letter has somewhere to go.

use std::sync::Arc;

use warren_store::{IndexEntry, Ticket, TicketStatus, WriteOp};

use super::super::{DeathReason, Queue, QueueState};
use crate::message::Message;

impl Queue {
    /// Whether recovery counts stored messages up to `delivered_mark` as returned.
    pub(in crate::queue) fn counts_crash_returns(&self, delivered_mark: u64) -> bool {
        self.is_quorum() && delivered_mark > 0 && !self.store.last_stop_was_clean()
    }

    /// Recovery (under the lock): `bumped` are the new index entries of the messages
    /// counted as returned. Stores them and, once they are synced, lowers the watermark.
    /// Returns whether some message is now past the delivery limit.
    pub(in crate::queue) fn count_crash_returns(
        self: &Arc<Self>,
        st: &mut QueueState,
        bumped: Vec<(u64, IndexEntry)>,
    ) -> bool {
        let limit = st.settings.effective_delivery_limit();
        let over_limit = limit.is_some_and(|limit| {
            bumped
                .iter()
                .any(|(_, index)| u64::from(index.delivery_count) > limit)
        });
        tracing::info!(queue = %self.spec.name, vhost = %self.vhost, messages = bumped.len(), "after a crash: counting messages that may have been out with consumers as returned (delivery count + 1)");
        let ops = bumped
            .into_iter()
            .map(|(seq, index)| WriteOp::SetIndex {
                queue_id: self.store_id,
                seq,
                index,
            })
            .collect();
        let ticket = self.store.submit(WriteOp::Group(ops));
        // This run's own deliveries, from now on.
        st.delivered_max = 0;
        self.lower_mark_when_durable(ticket);
        over_limit
    }

    /// Once `ticket` is synced: set the watermark to what this run delivered.
    fn lower_mark_when_durable(self: &Arc<Self>, ticket: Ticket) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime: the watermark stays (a later crash counts again)
        };
        let queue = Arc::downgrade(self);
        let mut durability = self.store.durability();
        runtime.spawn(async move {
            loop {
                match durability.borrow_and_update().status(ticket) {
                    TicketStatus::Synced => break,
                    TicketStatus::Failed => return,
                    TicketStatus::Pending => {}
                }
                if durability.changed().await.is_err() {
                    return;
                }
            }
            if let Some(queue) = queue.upgrade() {
                queue.settle_delivered_mark();
            }
        });
    }

    /// After recovery, with the bindings restored: let go (dead-letter with reason
    /// `delivery_limit`, or drop) the ready messages whose count passed the limit.
    pub(in crate::queue) fn enforce_delivery_limit(self: &Arc<Self>) {
        let mut st = self.lock();
        let Some(limit) = st.settings.effective_delivery_limit() else {
            return;
        };
        let over: Vec<u64> = st
            .ready
            .iter()
            .filter(|e| u64::from(e.delivery_count) > limit)
            .map(|e| e.seq)
            .collect();
        for seq in over {
            let Some(mut entry) = st.ready.remove(seq) else {
                continue;
            };
            self.account_out(&mut st, &entry);
            if entry.message.is_none()
                && let Some(key) = entry.stored
            {
                match self.store.read_message(key.id, key.seq) {
                    Ok(Some(bytes)) => match Message::decode(bytes) {
                        Ok(message) => entry.message = Some(Arc::new(message)),
                        Err(error) => {
                            tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq, %error, "unreadable stored message past the delivery limit");
                        }
                    },
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq, %error, "cannot read a message past the delivery limit");
                    }
                }
            }
            self.let_go(
                &mut st,
                entry.message.as_ref(),
                entry.stored,
                DeathReason::DeliveryLimit,
            );
        }
    }
}
