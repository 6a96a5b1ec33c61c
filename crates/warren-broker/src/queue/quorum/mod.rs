//! Quorum queues (`x-queue-type: quorum`) on one node: what a quorum queue does that a
//! classic one does not, kept where a replicated log could later drive it.
//!
//! A quorum queue is a [`Queue`] whose [`QueueType`] is `Quorum`: the same locked state
//! (ready list, consumers, unacked count, settings) under the same mutex, the same
//! dispatch, paging, limits, TTL and dead-lettering. Its state differs in one field, each
//! entry's `delivery_count` (also kept in the store's index entry), and its behaviour in
//! the few places this module owns:
//!
//! - **Every message is stored** (`Queue::persists`): a quorum queue is durable, and a
//!   transient message is written and fsynced before its confirm like a persistent one.
//! - **Commands.** Every change to a quorum queue's state is one of a few commands, each
//!   applied under the queue lock by one function, each with at most one store write:
//!   *enqueue* (`Queue::publish`, `accept_dead_letter`: a put), *settle* (`Queue::settle`:
//!   a delete), *discard* (`Queue::reject` and the limits/expiry paths: `let_go`, a delete
//!   or a dead-letter move), and *return* ([`Queue::quorum_return`], below: an index
//!   update, or a discard past the delivery limit). `checkout` (dispatch, `basic.get`)
//!   changes no stored state. Replication would put these commands in a Raft log and apply
//!   them on commit in the same functions; today the store write is the log.
//! - **Return** ([`Queue::quorum_return`]): a message given back by a consumer (nack or
//!   reject with requeue, `basic.recover`, its channel or connection closed) has its
//!   delivery count raised by one. Past the effective delivery limit (argument and policy
//!   as RabbitMQ 4 resolves them; 20 when neither sets one, a negative value for none) it
//!   is dead-lettered with reason `delivery_limit`, or dropped without a dead-letter
//!   exchange (as `rabbit_fifo:return_one`); otherwise the new count goes to the store
//!   (`WriteOp::SetIndex`, synced) and the message, `redelivered`, goes before the
//!   other ready messages, after those returned before it (`rabbit_fifo`'s `returns`;
//!   `Ready::push_returned`). One exception, as RabbitMQ 3.10 (checked on it): with no
//!   delivery limit (a negative one), a nack, reject or recover sends it to the back of
//!   the queue (3.10 appends a `requeue` command), its stored copy moved to a new seq in
//!   one synced batch; a consumer that went away still returns its messages to the
//!   front. A delivery that never reached its consumer (`return_undelivered`) is not
//!   counted and goes back to its place.
//! - **`x-delivery-count`** ([`Queue::show_delivery_count`]): a delivery of a message
//!   returned before carries the header `x-delivery-count` (long) with its count, and a
//!   `basic.get` always does (0 for a first delivery), as RabbitMQ 3.10's
//!   `rabbit_fifo_client`. The header is added to the copy that goes out; the queue's
//!   copy and the stored one never carry it (so a dead-lettered message does not).
//! - **Settings** (`normalized`, `warn_fallbacks`): `x-overflow: reject-publish-dlx`
//!   is not a quorum overflow mode (RabbitMQ accepts it and uses drop-head, with a
//!   warning); `x-dead-letter-strategy: at-least-once` takes effect only with
//!   `reject-publish` and a dead-letter exchange, and falls back to at-most-once with a
//!   warning otherwise.
//! - **At-least-once dead-lettering**: the dead letter's move (source delete, target
//!   puts) is one synced `WriteBatch` as for every queue (`dead_letter/mod.rs`), and a
//!   quorum target stores every message, so the source's copy is deleted only in the
//!   same fsynced batch that writes the targets' copies: a kill -9 leaves it in one place
//!   or the other. A dead letter that reaches no queue, or that a full reject-publish
//!   target refuses, stays in the source, stored and marked, and is retried
//!   (`discards.rs`).

// Layout: `mod.rs` the return command, `x-delivery-count` and the settings' fall-backs;
// `discards.rs` at-least-once dead letters awaiting a queue; `crash.rs` returns counted
// after a crash.
mod crash;
mod discards;

pub(super) use discards::Discards;

use std::sync::Arc;

use warren_store::WriteOp;

use super::dead_letter::with_long_header;
use super::{DeathReason, Entry, Queue, QueueState, StoreKey};
use crate::arguments::{DeadLetterStrategy, Overflow, QueueArgs, QueueType};
use crate::message::Message;

/// The header a quorum queue's redeliveries carry.
pub(super) const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

impl Queue {
    /// The queue's type.
    pub fn queue_type(&self) -> QueueType {
        self.args.queue_type
    }

    /// Whether the queue is a quorum queue.
    pub(super) fn is_quorum(&self) -> bool {
        self.args.queue_type == QueueType::Quorum
    }

    /// Whether `message` is written to the store in this queue (a durable queue keeps
    /// persistent messages; a quorum queue keeps every message).
    pub(crate) fn persists(&self, message: &Message) -> bool {
        self.store_id != 0 && (message.is_persistent() || self.is_quorum())
    }

    /// The *return* command: `entry` comes back from a consumer (see the module docs);
    /// `lost`: its consumer went away (channel or connection closed).
    pub(super) fn quorum_return(&self, st: &mut QueueState, mut entry: Entry, lost: bool) {
        entry.delivery_count = entry.delivery_count.saturating_add(1);
        // The queue's copy never carries the header the delivery showed.
        if let Some(message) = entry.message.take() {
            entry.message = Some(without_count_header(message));
        }
        let limit = st.settings.effective_delivery_limit();
        if let Some(limit) = limit
            && u64::from(entry.delivery_count) > limit
        {
            self.let_go(
                st,
                entry.message.as_ref(),
                entry.stored,
                DeathReason::DeliveryLimit,
            );
            return;
        }
        entry.redelivered = true;
        if !lost
            && limit.is_none()
            && let Some(message) = entry.message.clone()
        {
            self.requeue_at_back(st, entry, &message);
            return;
        }
        if let Some(key) = entry.stored.filter(|k| k.persistent) {
            self.store.submit(WriteOp::SetIndex {
                queue_id: key.id,
                seq: key.seq,
                index: entry.index_entry(),
            });
        }
        if entry.message.is_some() {
            self.hold(st, entry.size as usize, 1);
        }
        st.ready.push_returned(entry);
    }

    /// RabbitMQ 3.10 without a delivery limit: a message nacked or rejected with requeue
    /// goes to the back of the queue (`rabbit_fifo` appends it to its log again as a
    /// `requeue` command). Here it takes the next seq: its stored copy moves to that seq
    /// (with its count) in one synced batch, so the order survives a restart too.
    fn requeue_at_back(&self, st: &mut QueueState, mut entry: Entry, message: &Arc<Message>) {
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(key) = entry.stored.filter(|k| k.persistent) {
            self.store.submit(WriteOp::Group(vec![
                WriteOp::Put {
                    queue_id: key.id,
                    seq,
                    value: message.encode(),
                    index: entry.index_entry(),
                },
                WriteOp::Delete {
                    queue_id: key.id,
                    seq: key.seq,
                },
            ]));
            entry.stored = Some(StoreKey { seq, ..key });
        }
        entry.seq = seq;
        self.put_back(st, entry);
    }

    /// The copy of `entry`'s message a consumer sees: with `x-delivery-count` when it was
    /// returned before, or always for `basic.get` (`always`). Classic queues: unchanged.
    pub(super) fn show_delivery_count(&self, entry: &mut Entry, always: bool) {
        if !self.is_quorum() || (entry.delivery_count == 0 && !always) {
            return;
        }
        let Some(message) = entry.message.as_ref() else {
            return;
        };
        match with_long_header(
            &message.raw_properties,
            DELIVERY_COUNT_HEADER,
            Some(i64::from(entry.delivery_count)),
        ) {
            Some(properties) => {
                let mut shown = Message::clone(message);
                shown.raw_properties = properties.into();
                entry.message = Some(Arc::new(shown));
            }
            None => {
                tracing::warn!(queue = %self.spec.name, vhost = %self.vhost, seq = entry.seq, "cannot add x-delivery-count: the message's properties do not parse; delivered without it");
            }
        }
    }
}

/// The settings a quorum queue acts on, from the merged ones: `reject-publish-dlx` is not a
/// quorum overflow mode and reads as drop-head, as RabbitMQ 3.10 does.
pub(super) fn normalized(mut settings: QueueArgs) -> QueueArgs {
    if settings.overflow == Overflow::RejectPublishDlx {
        settings.overflow = Overflow::DropHead;
    }
    settings
}

/// Log RabbitMQ 3.10's fall-backs for `settings` (before [`normalized`]) in words an
/// operator can act on: reject-publish-dlx overflow, and an at-least-once dead-letter
/// strategy that cannot take effect.
pub(super) fn warn_fallbacks(queue: &str, vhost: &str, settings: &QueueArgs) {
    if settings.overflow == Overflow::RejectPublishDlx {
        tracing::warn!(
            queue,
            vhost,
            overflow = "reject-publish-dlx",
            using = "drop-head",
            fix = "set x-overflow (or the policy's overflow) to drop-head or reject-publish",
            "quorum queues do not support overflow reject-publish-dlx; using drop-head"
        );
    }
    let effective = normalized(settings.clone());
    if effective.dead_letter_strategy == DeadLetterStrategy::AtLeastOnce
        && !effective.at_least_once()
    {
        let why = if effective.dead_letter.is_none() {
            "no dead-letter exchange is configured"
        } else {
            "at-least-once needs overflow reject-publish and the effective overflow is drop-head"
        };
        tracing::warn!(
            queue,
            vhost,
            dead_letter_strategy = "at-least-once",
            using = "at-most-once",
            why,
            fix = "set x-overflow (or the policy's overflow) to reject-publish and give the queue a dead-letter exchange",
            "falling back to dead-letter strategy at-most-once"
        );
    }
}

/// `message` without the `x-delivery-count` header a delivery of it showed (the same
/// `Arc` when it has none).
fn without_count_header(message: Arc<Message>) -> Arc<Message> {
    // Cheap test first: the header name appears in the raw properties only if present.
    let name = DELIVERY_COUNT_HEADER.as_bytes();
    if !message
        .raw_properties
        .windows(name.len())
        .any(|w| w == name)
    {
        return message;
    }
    match with_long_header(&message.raw_properties, DELIVERY_COUNT_HEADER, None) {
        Some(properties) => {
            let mut plain = Message::clone(&message);
            plain.raw_properties = properties.into();
            Arc::new(plain)
        }
        None => message,
    }
}
