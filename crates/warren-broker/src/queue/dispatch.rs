//! Consumers and dispatch: who gets the head of the queue.
//!
//! Dispatch hands ready messages, head first, to consumers with credit (their prefetch, the
//! channel's, flow, and their connection's backlog: all atomics, see `consumer.rs`),
//! round-robin, or by `x-priority` when priorities differ; a single-active-consumer queue
//! only to its active consumer (see `single_active.rs`). A delivery goes to the consumer's
//! connection as a `ConsumerEvent`. Before a stored message above the delivered watermark
//! leaves, the watermark is raised (see the module docs of `queue`).

use std::sync::Arc;

use super::{DELIVERED_LEASE, DeathReason, Entry, Queue, QueueState};
use crate::consumer::{Consumer, ConsumerEvent};
use crate::error::BrokerError;
use crate::stats::Counter;

impl Queue {
    /// Hand ready messages to consumers with credit.
    pub(super) fn dispatch(self: &Arc<Self>, st: &mut QueueState) {
        // Read the clock only once a message with an expiry shows up.
        let mut now: Option<u64> = None;
        while !st.ready.is_empty() && !st.consumers.is_empty() {
            let Some(index) = self.pick_consumer(st) else {
                // The head waits for credit: it may expire meanwhile.
                self.arm_expiry(st);
                return;
            };
            if st.ready.front().is_some_and(|e| e.message.is_none()) {
                self.page_in(st);
            }
            let Some(mut entry) = st.ready.pop_front() else {
                return;
            };
            if entry.message.is_none() {
                // The body is gone from the store: nothing to deliver (logged in page_in).
                self.forget(&entry);
                continue;
            }
            self.account_out(st, &entry);
            if entry.expires_at != u64::MAX
                && entry.expires_at <= *now.get_or_insert_with(crate::message::now_ms)
            {
                self.let_go(
                    st,
                    entry.message.as_ref(),
                    entry.stored,
                    DeathReason::Expired,
                );
                continue;
            }
            let consumer = Arc::clone(&st.consumers[index]);
            consumer.take_credit();
            // A no-ack delivery is settled by the connection once it is written
            // (`auto_acked`), so a message whose consumer vanished in between can come back.
            if !consumer.no_ack {
                st.unacked += 1;
                self.stats.add(Counter::Deliver, 1);
            } else {
                self.stats.add(Counter::DeliverNoAck, 1);
            }
            if entry.redelivered {
                self.stats.add(Counter::Redeliver, 1);
            }
            self.note_delivery(st, &entry);
            if entry.delivery_count != 0 {
                self.show_delivery_count(&mut entry, false);
            }
            let sink = Arc::clone(&consumer.sink);
            sink.send(ConsumerEvent::Deliver {
                consumer,
                queue: Arc::clone(self),
                entry,
            });
        }
    }

    /// The consumer the head goes to. `consumers` is sorted by `x-priority`, highest first;
    /// when all share one priority (the common case) this is a plain round-robin.
    pub(super) fn pick_consumer(&self, st: &mut QueueState) -> Option<usize> {
        if self.args.single_active_consumer {
            return Self::pick_single_active(st);
        }
        let n = st.consumers.len();
        if n > 1 && st.consumers[0].priority != st.consumers[n - 1].priority {
            return Self::pick_by_priority(st);
        }
        for i in 0..n {
            let index = (st.next_consumer + i) % n;
            if st.consumers[index].has_credit() {
                st.next_consumer = (index + 1) % n;
                return Some(index);
            }
        }
        None
    }

    /// Mixed priorities, as RabbitMQ: the first consumer with credit in the highest group
    /// that has one. Each group is kept in service order: the chosen consumer moves to the
    /// back of its group, so equal-priority consumers take turns (no allocation).
    pub(super) fn pick_by_priority(st: &mut QueueState) -> Option<usize> {
        let consumers = &mut st.consumers;
        let n = consumers.len();
        let mut start = 0;
        while start < n {
            let priority = consumers[start].priority;
            let end = consumers[start..]
                .iter()
                .position(|c| c.priority != priority)
                .map_or(n, |len| start + len);
            if let Some(offset) = consumers[start..end].iter().position(|c| c.has_credit()) {
                consumers[start + offset..end].rotate_left(1);
                return Some(end - 1);
            }
            start = end;
        }
        None
    }

    /// A stored message is about to go to a consumer: make sure the delivered watermark
    /// covers it before it leaves (see the module docs).
    pub(super) fn note_delivery(&self, st: &mut QueueState, entry: &Entry) {
        let Some(key) = entry.stored.filter(|k| k.persistent) else {
            return;
        };
        st.delivered_max = st.delivered_max.max(key.seq);
        if key.seq <= st.delivered_lease {
            return;
        }
        let lease = key.seq.saturating_add(DELIVERED_LEASE);
        // On failure the lease moves on anyway: the error is logged once per lease, and the
        // only cost is a missing `redelivered` flag after a crash.
        st.delivered_lease = lease;
        if let Err(error) = self.store.raise_delivered(key.id, lease) {
            tracing::error!(queue = %self.spec.name, vhost = %self.vhost, %error, "cannot record deliveries: after a crash, messages delivered now may come back without redelivered = true");
        }
    }

    /// A clean stop: set the store's delivered watermark to the highest seq really
    /// delivered, below the lease, so that after a clean restart only messages that were
    /// delivered come back `redelivered`.
    pub fn settle_delivered_mark(&self) {
        if self.store_id == 0 {
            return;
        }
        let mut st = self.lock();
        if st.deleted || st.delivered_max == st.delivered_lease {
            return;
        }
        st.delivered_lease = st.delivered_max;
        if let Err(error) = self.store.settle_delivered(self.store_id, st.delivered_max) {
            tracing::warn!(queue = %self.spec.name, vhost = %self.vhost, %error, "cannot record the exact delivered watermark at stop; after restart up to a lease of undelivered messages come back flagged redelivered");
        }
    }

    /// Register a consumer. Refuses a second consumer when an exclusive one exists, and an
    /// exclusive consumer when any exists or the queue has a single active consumer (403, as
    /// RabbitMQ).
    pub fn consume(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<(), BrokerError> {
        let mut st = self.lock();
        if st.deleted {
            return Err(BrokerError::no_queue(&self.vhost, &self.spec.name));
        }
        if st.consumers.iter().any(|c| c.exclusive)
            || (consumer.exclusive
                && (!st.consumers.is_empty() || self.args.single_active_consumer))
        {
            return Err(BrokerError::AccessRefused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.spec.name, self.vhost
            )));
        }
        // After the consumers of the same or higher priority: at the end when all are equal.
        let at = if self.args.single_active_consumer {
            Self::single_active_slot(&st, &consumer)
        } else {
            st.consumers
                .partition_point(|c| c.priority >= consumer.priority)
        };
        st.consumers.insert(at, consumer);
        st.had_consumer = true;
        st.last_used = crate::message::now_ms();
        self.dispatch(&mut st);
        Ok(())
    }

    /// Remove a consumer. Returns true when the queue is auto-delete and this was its
    /// last consumer: the caller deletes the queue. Nothing is dispatched here: with a
    /// single active consumer the caller kicks the queue once it has requeued what the
    /// consumer's channel gives back, so the next consumer gets those first.
    pub fn cancel(&self, consumer: &Arc<Consumer>) -> bool {
        consumer.mark_cancelled();
        let mut st = self.lock();
        st.consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        st.last_used = crate::message::now_ms();
        if st.next_consumer >= st.consumers.len() {
            st.next_consumer = 0;
        }
        self.spec.auto_delete && st.had_consumer && st.consumers.is_empty() && !st.deleted
    }

    /// Try to deliver again (credit came back, flow resumed, a connection drained).
    pub fn kick(self: &Arc<Self>) {
        let mut st = self.lock();
        self.dispatch(&mut st);
    }

    /// basic.get: take the head message. Returns it with the count of messages left.
    pub fn get(self: &Arc<Self>, no_ack: bool) -> Option<(Entry, u32)> {
        let mut st = self.lock();
        let now = crate::message::now_ms();
        st.last_used = now;
        loop {
            if st.ready.front().is_some_and(|e| e.message.is_none()) {
                self.page_in(&mut st);
            }
            let Some(mut entry) = st.ready.pop_front() else {
                self.stats.add(Counter::GetEmpty, 1);
                return None;
            };
            if entry.message.is_none() {
                self.forget(&entry);
                continue;
            }
            self.account_out(&mut st, &entry);
            if entry.expires_at <= now {
                self.let_go(
                    &mut st,
                    entry.message.as_ref(),
                    entry.stored,
                    DeathReason::Expired,
                );
                continue;
            }
            self.note_delivery(&mut st, &entry);
            if entry.redelivered {
                self.stats.add(Counter::Redeliver, 1);
            }
            self.show_delivery_count(&mut entry, true);
            if no_ack {
                self.stats.add(Counter::GetNoAck, 1);
                self.forget(&entry);
                entry.stored = None;
            } else {
                self.stats.add(Counter::Get, 1);
                st.unacked += 1;
            }
            self.arm_expiry(&mut st);
            return Some((entry, st.ready.len() as u32));
        }
    }
}
