//! What comes back from consumers: acks settle a message for good (its stored copy is
//! deleted), rejects too unless the queue dead-letters them (`dead_letter.rs`); nacks with
//! requeue, `basic.recover` and closed channels put it back at
//! its original position, flagged `redelivered`; a delivery that never reached its consumer
//! goes back unflagged. A quorum queue counts each return and delivers returned messages
//! first (`quorum/`).

use std::sync::Arc;

use warren_store::WriteOp;

use super::{DeathReason, Entry, Queue, QueueState};
use crate::stats::Counter;

impl Queue {
    /// Settle delivered messages for good (ack, or reject without requeue).
    pub fn settle<'a>(self: &Arc<Self>, entries: impl IntoIterator<Item = &'a Entry>) {
        let mut st = self.lock();
        let mut n = 0;
        for entry in entries {
            n += 1;
            if !st.deleted {
                self.forget(entry);
            }
        }
        st.unacked = st.unacked.saturating_sub(n);
        self.stats.add(Counter::Ack, n as u64);
        self.dispatch(&mut st);
    }

    /// Delivered messages rejected or nacked without requeue: dead-lettered (reason
    /// `rejected`) when the queue has a dead-letter exchange, otherwise settled for good.
    pub fn reject<'a>(self: &Arc<Self>, entries: impl IntoIterator<Item = &'a Entry>) {
        let mut st = self.lock();
        let mut n = 0;
        for entry in entries {
            n += 1;
            if !st.deleted {
                self.let_go(
                    &mut st,
                    entry.message.as_ref(),
                    entry.stored,
                    DeathReason::Rejected,
                );
            }
        }
        st.unacked = st.unacked.saturating_sub(n);
        self.dispatch(&mut st);
    }

    /// Put delivered messages back (nack or reject with requeue, `basic.recover`) at their
    /// original positions, marked redelivered; a quorum queue returns them (`quorum/`).
    pub fn requeue(self: &Arc<Self>, entries: impl IntoIterator<Item = Entry>) {
        self.requeue_as(entries, false);
    }

    /// Put back the deliveries of a consumer that went away (its channel or connection
    /// closed): as [`Queue::requeue`], except that a quorum queue always delivers them
    /// first (RabbitMQ 3.10's `return_all`).
    pub fn requeue_lost(self: &Arc<Self>, entries: impl IntoIterator<Item = Entry>) {
        self.requeue_as(entries, true);
    }

    fn requeue_as(self: &Arc<Self>, entries: impl IntoIterator<Item = Entry>, lost: bool) {
        let mut st = self.lock();
        for mut entry in entries {
            st.unacked = st.unacked.saturating_sub(1);
            if st.deleted {
                continue;
            }
            if self.is_quorum() {
                self.quorum_return(&mut st, entry, lost);
                continue;
            }
            entry.redelivered = true;
            self.put_back(&mut st, entry);
        }
        self.dispatch(&mut st);
        self.trim_to_limits(&mut st);
        self.arm_expiry(&mut st);
    }

    /// Return a taken message to its original position (by sequence number).
    pub(super) fn put_back(&self, st: &mut QueueState, entry: Entry) {
        if entry.message.is_some() {
            self.hold(st, entry.size as usize, 1);
        }
        st.ready.insert_by_seq(entry);
    }

    /// A no-ack delivery was written to its consumer: forget its stored copy. Takes no lock.
    pub fn auto_acked(&self, entry: &Entry) {
        self.forget(entry);
    }

    /// A dispatched message never reached its consumer (cancelled or channel closed while
    /// the delivery was on its way): put it back where it was, not marked redelivered.
    /// `counted` is true when it was dispatched to a consumer with acks.
    pub fn return_undelivered(self: &Arc<Self>, entry: Entry, counted: bool) {
        let mut st = self.lock();
        if counted {
            st.unacked = st.unacked.saturating_sub(1);
        }
        if st.deleted {
            return;
        }
        self.put_back(&mut st, entry);
        self.dispatch(&mut st);
        self.arm_expiry(&mut st);
    }

    pub(super) fn forget(&self, entry: &Entry) {
        if let Some(key) = entry.stored {
            self.store.submit(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
    }
}
