//! Queues: ordered messages, their consumers, and dispatch.
//!
//! A [`Queue`] holds its state behind one short-held `parking_lot` mutex. Every operation
//! (publish, consume, ack, requeue, get, purge) takes the lock, changes the state, runs
//! dispatch if deliveries may have become possible, and releases it; nothing
//! awaits while holding it. Dispatch hands messages to consumers round-robin, each only
//! while it has credit (see `consumer.rs`), by sending events to the consumers'
//! connections; with `x-priority` consumers, to the highest-priority ones with credit.
//!
//! Messages are kept in publish order as [`Entry`]s with a per-queue sequence number; a
//! requeued message goes back to its original position (found by sequence number) with
//! `redelivered` set. A queue with `x-max-priority` keeps one such order per priority
//! level and delivers the highest level first (see `ready.rs`); a message's priority is
//! clamped to the maximum at publish and stored in the store's index, so recovery rebuilds
//! the levels. Persistent messages on durable queues are written to the store
//! under `(store id, seq)`; acks delete them.
//!
//! Redelivered after a crash: before a stored message with a seq above the queue's delivered
//! watermark goes to a consumer, the queue raises the watermark in the store
//! (`Store::raise_delivered`, a `write(2)` that a kill cannot undo) to that seq plus
//! [`DELIVERED_LEASE`], so the store sees one write per lease, not one per delivery.
//! Recovery flags every stored message at or below the watermark `redelivered`: all that
//! were delivered, and at most a lease of messages that were not (AMQP's flag means "may
//! have been delivered"). Sequence numbers never go back across restarts (they resume above
//! both the stored messages and the watermark), so a lease never covers a later message.
//!
//! Memory is bounded (see `memory.rs`): past its window, or past the broker-wide budget, a
//! queue keeps only
//! the index entry of a new message and leaves its body in the store (transient
//! messages are written to a per-process "transient" key space for that, wiped at start);
//! dispatch pages bodies back in, a batch at a time, as they near the head.
//!
//! Priorities live in the ready list's levels (`ready.rs`), TTL expiry walks entries from
//! the head (`expiry.rs`), dead-lettering hooks where entries are dropped
//! (`dead_letter.rs`), length limits trim the head or refuse the newest (`limits.rs`), and
//! single active consumer restricts the consumer pick (`single_active.rs`).
//!
//! # Layout
//!
//! - `mod.rs`: [`Queue`], its declared [`QueueSpec`] and locked state; publish, recovery,
//!   purge, delete and the counts.
//! - `entry.rs`: [`Entry`] (a message's place in the queue), [`StoreKey`], [`QueueLimits`].
//! - `ready.rs`: the ready list in delivery order (seq order, or per-priority levels).
//! - `dispatch.rs`: consumers (consume, cancel), dispatch to them, `basic.get`, and the
//!   delivered watermark raised before a stored message leaves.
//! - `settle.rs`: what comes back from consumers: acks, rejects, requeues, undelivered
//!   returns.
//! - `paging.rs`: bodies in and out of memory (page-out at publish, batched page-in near the
//!   head) and the memory accounting.
//! - `single_active.rs`: `x-single-active-consumer`: which consumer is active, who
//!   takes over.
//! - `expiry.rs`: message TTL (only the head expires; one timer per queue) and `x-expires`.
//! - `limits.rs`: `x-max-length`/`x-max-length-bytes` and the `x-overflow` modes.
//! - `dead_letter.rs`: dead lettering: the x-death rewrite, cycle detection, the one-batch
//!   move into the target queues.
//! - `policy.rs`: applying policies: the effective settings replaced, limits and expiry
//!   enforced at once, and the view for the management API.
//! - `moved_in.rs`: a message moving in from elsewhere in the store (a delayed exchange's
//!   due message) in one batch with the write that removes it there.
//! - `locked.rs`: the lock guard that flushes collected dead letters once the lock is
//!   released.
//! - `quorum/`: what a quorum queue (`x-queue-type: quorum`) does differently: every
//!   message stored, delivery counts and the delivery limit, `x-delivery-count`, returned
//!   messages first, its settings' fall-backs, at-least-once dead letters kept until a
//!   queue takes them (`discards.rs`), returns counted after a crash (`crash.rs`); its
//!   state changes as a few commands a log could replay.

mod dead_letter;
mod dispatch;
mod entry;
mod expiry;
mod info;
mod limits;
mod locked;
mod moved_in;
mod paging;
mod policy;
mod quorum;
mod ready;
mod settle;
mod single_active;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dead_letter::DeadLetter;
pub use dead_letter::DeathReason;
pub use entry::{Entry, QueueLimits, StoreKey};
pub use info::QueueInfo;
use paging::Unwritten;
use ready::Ready;

use amq_protocol::types::FieldTable;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;
use warren_store::{Durability, IndexEntry, Store, Ticket, WriteOp};

use crate::arguments::QueueArgs;
use crate::consumer::{ConnectionId, Consumer, ConsumerEvent};
use crate::error::BrokerError;
use crate::memory::{MESSAGE_OVERHEAD, MessageMemory};
use crate::message::Message;
use crate::policy::Applied;
use crate::stats::{Counter, MessageCounters};
use crate::vhost::VHost;

/// How far past the seq it delivers a queue raises its delivered watermark (see the module
/// docs): after a crash, at most this many never-delivered messages per queue come back
/// flagged `redelivered`.
pub const DELIVERED_LEASE: u64 = 256;

/// Store ids at or above this are the transient key space (paged-out transient messages).
pub const TRANSIENT_ID_BASE: u64 = 1 << 63;
static NEXT_TRANSIENT_ID: AtomicU64 = AtomicU64::new(TRANSIENT_ID_BASE);

/// Declared properties of a queue.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    /// Name.
    pub name: Arc<str>,
    /// Survives restart.
    pub durable: bool,
    /// Owned by this connection, if exclusive.
    pub exclusive_owner: Option<ConnectionId>,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Arguments (x-...).
    pub arguments: FieldTable,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: Ready,
    next_seq: u64,
    ram_bytes: usize,
    ram_messages: usize,
    consumers: Vec<Arc<Consumer>>,
    next_consumer: usize,
    unacked: usize,
    deleted: bool,
    had_consumer: bool,
    /// Last use for `x-expires` (declare, consume, get, last consumer gone), ms.
    last_used: u64,
    /// Bodies paged out at publish whose store write has not landed yet, in seq order. A
    /// paged-out message can reach the head before the commit loop has written it (a stalled
    /// consumer gets credit back and takes the whole in-memory window at once); page-in takes
    /// such bodies from here, as the store cannot return them yet. Trimmed as writes land, so
    /// it holds at most the page-outs of the last commit or two.
    unwritten: VecDeque<Unwritten>,
    /// When the armed message-expiry timer fires (ms), if one is armed.
    expiry_timer: Option<u64>,
    /// The delivered watermark as raised in the store: stored messages up to this seq may
    /// go to consumers without another raise.
    delivered_lease: u64,
    /// The highest seq of a stored message handed to a consumer (or flagged delivered at
    /// recovery): what the watermark is set to at a clean stop.
    delivered_max: u64,
    /// Messages let go to the dead-letter exchange under the lock, published once it is
    /// released (see `dead_letter.rs`).
    dead_letters: Vec<DeadLetter>,
    /// A quorum queue's at-least-once dead letters that no queue took yet
    /// (`quorum/discards.rs`).
    discards: quorum::Discards,
    /// What the queue acts on: its arguments with the policies that apply merged in
    /// (`crate::policy`); replaced when a policy changes, read under this lock.
    settings: QueueArgs,
    /// `settings` has a length limit (one branch on the publish path).
    limited: bool,
    /// The policy and operator policy that apply (for the management API's view).
    applied: Applied,
    /// Bumped whenever `settings.expires` changes: an `x-expires` watcher of an older epoch
    /// stops (see `VHost::watch_expiry`).
    expiry_epoch: u64,
}

/// One queue; see the module docs.
#[derive(Debug)]
pub struct Queue {
    /// Declared properties.
    pub spec: QueueSpec,
    /// Virtual host name.
    pub vhost: Arc<str>,
    /// Durable store id (0 for transient queues).
    pub store_id: u64,
    transient_id: u64,
    store: Store,
    /// The store's durability frontier (to know which page-outs have landed).
    durability: watch::Receiver<Durability>,
    limits: QueueLimits,
    memory: Arc<MessageMemory>,
    /// What the queue's own arguments ask of it. Priorities and single active consumer are
    /// read from here (no policy sets them); TTLs, expiry, dead-lettering and limits from
    /// `QueueState::settings`, which policies may change.
    args: QueueArgs,
    /// The vhost, for routing dead letters.
    home: Weak<VHost>,
    /// Message counters (publish, deliver, get, redeliver, ack...), bumped under the lock.
    pub stats: MessageCounters,
    state: Mutex<QueueState>,
}

/// Whether a queue has room for an at-least-once dead letter ([`Queue::reserve_room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// Yes, at this seq.
    Seq(u64),
    /// No: reject-publish at its limits.
    Full,
    /// The queue was deleted.
    Deleted,
}

/// What publishing to a queue produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct Enqueued {
    /// Store ticket to wait for before confirming, if the message was persisted.
    pub ticket: Option<Ticket>,
    /// The queue refused the message (`x-overflow` reject-publish or reject-publish-dlx at
    /// its length limit): a publisher in confirm mode gets a `basic.nack`.
    pub rejected: bool,
}

impl Queue {
    /// A new, empty queue of the vhost `home` (named `vhost`).
    pub fn new(
        spec: QueueSpec,
        vhost: Arc<str>,
        store_id: u64,
        store: Store,
        limits: QueueLimits,
        memory: Arc<MessageMemory>,
        home: Weak<VHost>,
    ) -> Self {
        let args = QueueArgs::parse(&spec.arguments);
        let quorum = args.queue_type == crate::arguments::QueueType::Quorum;
        let ready = if quorum {
            Ready::returning()
        } else {
            Ready::new(args.max_priority)
        };
        let settings = if quorum {
            quorum::warn_fallbacks(&spec.name, &vhost, &args);
            quorum::normalized(args.clone())
        } else {
            args.clone()
        };
        Self {
            home,
            spec,
            vhost,
            store_id,
            transient_id: NEXT_TRANSIENT_ID.fetch_add(1, Ordering::Relaxed),
            durability: store.durability(),
            store,
            limits,
            memory,
            stats: MessageCounters::default(),
            state: Mutex::new(QueueState {
                ready,
                next_seq: 1,
                limited: settings.has_length_limit(),
                settings,
                last_used: crate::message::now_ms(),
                ..QueueState::default()
            }),
            args,
        }
    }

    /// Name.
    pub fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    /// Restore recovered messages (index only; bodies paged in on demand), in seq order,
    /// each into its priority level (from the stored index entry). Those
    /// at or below `delivered_mark` (the store's delivered watermark) were delivered before
    /// and come back `redelivered`. A quorum queue's messages marked as awaiting
    /// dead-lettering go back to its discards, and after a crash its messages that may
    /// have been out with consumers are counted as returned (`quorum/crash.rs`). Returns
    /// whether the queue needs [`Queue::after_recovery`] once the bindings are restored.
    pub fn recover(self: &Arc<Self>, index: Vec<(u64, IndexEntry)>, delivered_mark: u64) -> bool {
        let mut st = self.lock();
        let crash_returns = self.counts_crash_returns(delivered_mark);
        let mut bumped = Vec::new();
        let recovered_any = !index.is_empty();
        // New messages get seqs above everything a lease of the last run may have covered.
        st.next_seq = st.next_seq.max(delivered_mark.saturating_add(1));
        st.delivered_lease = delivered_mark;
        st.delivered_max = delivered_mark;
        for (seq, index) in index {
            if index.dead_letter != 0 {
                self.recover_discard(&mut st, seq, index);
                st.next_seq = st.next_seq.max(seq + 1);
                continue;
            }
            let mut index = index;
            if crash_returns && seq <= delivered_mark {
                index.delivery_count = index.delivery_count.saturating_add(1);
                bumped.push((seq, index));
            }
            st.ready.push_back(Entry {
                seq,
                // A quorum queue's returned message is flagged whatever the watermark.
                redelivered: seq <= delivered_mark || index.delivery_count > 0,
                stored: Some(StoreKey {
                    id: self.store_id,
                    seq,
                    persistent: true,
                }),
                message: None,
                size: 0,
                body_len: index.body_len,
                expires_at: u64::MAX,
                priority: index.priority.min(self.args.max_priority),
                delivery_count: index.delivery_count,
            });
            st.next_seq = st.next_seq.max(seq + 1);
        }
        // With a queue TTL, messages that expired while the broker was down go now, not
        // when a client next touches the queue: check the head at once.
        if recovered_any && st.settings.message_ttl.is_some() {
            self.schedule_expiry(&mut st, crate::message::now_ms());
        }
        let over_limit = !bumped.is_empty() && self.count_crash_returns(&mut st, bumped);
        over_limit || !st.discards.is_empty()
    }

    /// After recovery, once the bindings are restored (see [`Queue::recover`]): a quorum
    /// queue's messages counted past the delivery limit by a crash go, and its pending
    /// at-least-once dead letters get a first attempt.
    pub fn after_recovery(self: &Arc<Self>) {
        if self.is_quorum() {
            self.enforce_delivery_limit();
            self.retry_discards();
        }
    }

    /// Add a message (routed here by a publish). `encoded` caches the stored form across
    /// the queues of one publish.
    pub fn publish(
        self: &Arc<Self>,
        message: &Arc<Message>,
        encoded: &mut Option<Bytes>,
    ) -> Enqueued {
        let mut st = self.lock();
        if st.deleted {
            return Enqueued::default();
        }
        if st.limited && self.would_overflow(&st, message.body.len() as u64) {
            if st.settings.overflow == crate::arguments::Overflow::RejectPublishDlx {
                self.let_go(&mut st, Some(message), None, DeathReason::MaxLen);
            }
            return Enqueued {
                ticket: None,
                rejected: true,
            };
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        self.stats.add(Counter::Publish, 1);
        // Only queues with a store id (durable, not exclusive) keep messages across restarts;
        // the store id is also what keeps two queues' messages apart in the store.
        let persist = self.persists(message);
        let over_limit = self.over_memory_window(&st, message, persist);
        let mut result = Enqueued::default();
        let mut put_ticket = None;
        let mut stored = None;
        if persist || over_limit {
            let (id, persistent) = if persist {
                (self.store_id, true)
            } else {
                (self.transient_id, false)
            };
            let value = encoded.get_or_insert_with(|| message.encode()).clone();
            let ticket = self.store.submit(if persistent {
                WriteOp::Put {
                    queue_id: id,
                    seq,
                    value,
                    index: self.index_entry(message),
                }
            } else {
                WriteOp::PutTransient {
                    queue_id: id,
                    seq,
                    value,
                }
            });
            if persist {
                result.ticket = Some(ticket);
            }
            put_ticket = Some(ticket);
            stored = Some(StoreKey {
                id,
                seq,
                persistent,
            });
        }
        self.enqueue(&mut st, message, seq, stored, put_ticket, over_limit);
        result
    }

    /// Whether a new message stays out of memory: a persistent body is on disk anyway, so
    /// past the queue's window it is not kept in RAM; a transient one pages out (a write it
    /// would not need otherwise) only when the broker-wide budget is spent, or past the
    /// queue's message cap.
    fn over_memory_window(&self, st: &QueueState, message: &Message, persist: bool) -> bool {
        let size = message.size() + MESSAGE_OVERHEAD;
        st.ram_messages >= self.limits.ram_messages
            || (persist && st.ram_bytes + size > self.limits.ram_bytes)
            || self.memory.would_exceed(size)
    }

    /// What the store's index keeps of `message` in this queue.
    pub(super) fn index_entry(&self, message: &Message) -> IndexEntry {
        IndexEntry {
            priority: self.priority_of(message),
            body_len: message.body.len() as u32,
            delivery_count: 0,
            dead_letter: 0,
        }
    }

    /// `message`'s priority in this queue: its `priority` property clamped to
    /// `x-max-priority` (0 on a queue without one).
    pub(super) fn priority_of(&self, message: &Message) -> u8 {
        message.priority.min(self.args.max_priority)
    }

    /// Put a message whose store write (if any) was submitted as `put_ticket` into the
    /// ready list at `seq`, dispatch, apply the length limits and arm its expiry.
    fn enqueue(
        self: &Arc<Self>,
        st: &mut QueueState,
        message: &Arc<Message>,
        seq: u64,
        stored: Option<StoreKey>,
        put_ticket: Option<Ticket>,
        over_limit: bool,
    ) {
        let size = message.size() + MESSAGE_OVERHEAD;
        let mut entry = Entry {
            seq,
            redelivered: false,
            stored,
            message: Some(Arc::clone(message)),
            size: size as u32,
            body_len: message.body.len() as u32,
            // Set after the first dispatch attempt: a message with TTL 0 is still
            // delivered if a consumer can take it at once.
            expires_at: u64::MAX,
            priority: self.priority_of(message),
            delivery_count: 0,
        };
        let priority = entry.priority;
        let page_out = match put_ticket {
            Some(ticket) if over_limit && !st.ready.is_empty() => {
                self.page_out(st, ticket, seq, message)
            }
            _ => false,
        };
        if page_out {
            entry.message = None;
        } else {
            self.hold(st, size, 1);
        }
        st.ready.insert_by_seq(entry);
        self.dispatch(st);
        if st.limited {
            self.trim_to_limits(st);
        }
        let expires_at = self.expiry_of(st.settings.message_ttl, message);
        if expires_at != u64::MAX {
            if let Some(entry) = st.ready.find_mut(seq, priority) {
                entry.expires_at = expires_at;
            }
            self.expire_head(st, crate::message::now_ms());
            self.arm_expiry(st);
        }
    }

    /// A place for a dead-lettered message (see `dead_letter.rs`): the next seq, or `None`
    /// when the queue is deleted.
    pub(super) fn reserve_seq(&self) -> Option<u64> {
        let mut st = self.state.lock();
        if st.deleted {
            return None;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        Some(seq)
    }

    /// At-least-once dead-lettering: a place for `message` if the queue has room for it
    /// (reject-publish refuses it at its limits, as a publish), as [`Queue::reserve_seq`].
    pub(super) fn reserve_room(&self, message: &Message) -> Room {
        let mut st = self.state.lock();
        if st.deleted {
            return Room::Deleted;
        }
        if st.limited && self.would_overflow(&st, message.body.len() as u64) {
            return Room::Full;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        Room::Seq(seq)
    }

    /// Take a dead-lettered message at the seq reserved for it, its store write (if any)
    /// submitted as `ticket` (together with its removal from the queue it left).
    /// `room_reserved`: [`Queue::reserve_room`] found room for it, so the limits are not
    /// checked again (the source's copy may be gone already).
    pub(super) fn accept_dead_letter(
        self: &Arc<Self>,
        message: &Arc<Message>,
        seq: u64,
        stored: Option<StoreKey>,
        ticket: Option<Ticket>,
        room_reserved: bool,
    ) {
        let mut st = self.lock();
        if st.deleted {
            if let Some(key) = stored {
                self.store.submit(WriteOp::Delete {
                    queue_id: key.id,
                    seq: key.seq,
                });
            }
            return;
        }
        if !room_reserved && st.limited && self.would_overflow(&st, message.body.len() as u64) {
            // reject-publish: a dead letter is refused like a publish (and dead-lettered
            // again with reject-publish-dlx).
            if st.settings.overflow == crate::arguments::Overflow::RejectPublishDlx {
                self.let_go(&mut st, Some(message), stored, DeathReason::MaxLen);
            } else if let Some(key) = stored {
                self.store.submit(WriteOp::Delete {
                    queue_id: key.id,
                    seq: key.seq,
                });
            }
            return;
        }
        let over_limit = stored.is_some() && self.over_memory_window(&st, message, true);
        self.enqueue(
            &mut st,
            message,
            seq,
            stored,
            ticket.filter(|_| stored.is_some()),
            over_limit,
        );
    }

    /// Drop every ready message; returns how many.
    pub fn purge(&self) -> u32 {
        let mut st = self.lock();
        let count = st.ready.len() as u32;
        // A range delete would take the stored copies of unacked messages and of a quorum
        // queue's pending dead letters (which a purge leaves, as `rabbit_fifo`) with it.
        if st.unacked == 0 && st.discards.is_empty() {
            self.drop_stored_ranges();
        } else {
            for entry in st.ready.iter() {
                self.forget(entry);
            }
        }
        st.ready.clear();
        st.unwritten.clear();
        let (bytes, messages) = (st.ram_bytes, st.ram_messages);
        self.unhold(&mut st, bytes, messages);
        count
    }

    fn drop_stored_ranges(&self) {
        if self.store_id != 0 {
            self.store.submit(WriteOp::DeleteQueue {
                queue_id: self.store_id,
            });
        }
        self.store.submit(WriteOp::DeleteQueue {
            queue_id: self.transient_id,
        });
    }

    /// Mark deleted, drop messages, tell consumers (basic.cancel), return the ready count.
    pub fn delete(&self) -> u32 {
        let mut st = self.lock();
        if st.deleted {
            return 0;
        }
        st.deleted = true;
        let count = st.ready.len() as u32;
        st.ready.clear();
        st.discards.clear();
        let (bytes, messages) = (st.ram_bytes, st.ram_messages);
        self.unhold(&mut st, bytes, messages);
        st.unwritten.clear();
        self.drop_stored_ranges();
        if self.store_id != 0
            && let Err(error) = self.store.forget_delivered(self.store_id)
        {
            tracing::warn!(queue = %self.spec.name, vhost = %self.vhost, %error, "cannot drop the deleted queue's delivered watermark");
        }
        for consumer in std::mem::take(&mut st.consumers) {
            consumer.mark_cancelled();
            let sink = Arc::clone(&consumer.sink);
            sink.send(ConsumerEvent::Cancelled { consumer });
        }
        count
    }

    /// Check `queue.delete`'s if-unused / if-empty conditions.
    pub fn check_delete(&self, if_unused: bool, if_empty: bool) -> Result<(), BrokerError> {
        let st = self.state.lock();
        if if_unused && !st.consumers.is_empty() {
            return Err(BrokerError::PreconditionFailed(format!(
                "queue '{}' in vhost '{}' in use",
                self.spec.name, self.vhost
            )));
        }
        if if_empty && !st.ready.is_empty() {
            return Err(BrokerError::PreconditionFailed(format!(
                "queue '{}' in vhost '{}' not empty",
                self.spec.name, self.vhost
            )));
        }
        Ok(())
    }

    /// Ready messages (what queue.declare-ok reports).
    pub fn message_count(&self) -> u32 {
        let mut st = self.lock();
        self.expire_head(&mut st, crate::message::now_ms());
        st.ready.len() as u32
    }

    /// Consumers.
    pub fn consumer_count(&self) -> u32 {
        self.state.lock().consumers.len() as u32
    }

    /// The consumers, in the queue's order (with a single active consumer, the active one
    /// first).
    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.state.lock().consumers.clone()
    }

    /// `(ready, unacked)` without expiring anything: one short hold of the lock (for
    /// statistics and listings).
    pub fn lengths(&self) -> (u64, u64) {
        let st = self.state.lock();
        (st.ready.len() as u64, st.unacked as u64)
    }

    /// `(ready, unacked, pending dead letters)` in one hold of the lock: the queue's
    /// `messages` is their sum (a quorum queue's at-least-once dead letters awaiting a
    /// queue count in it, as in RabbitMQ 3.10: in the queue's, the vhost's and
    /// `queue_totals`' `messages`, and Prometheus' `rabbitmq_queue_messages`).
    pub fn depth(&self) -> (u64, u64, u64) {
        let st = self.state.lock();
        (
            st.ready.len() as u64,
            st.unacked as u64,
            st.discards.len() as u64,
        )
    }

    /// Bytes of the ready messages' bodies.
    pub fn ready_bytes(&self) -> u64 {
        self.state.lock().ready.body_bytes()
    }

    /// Delivered and not yet settled.
    pub fn unacked_count(&self) -> usize {
        self.state.lock().unacked
    }

    /// Whether the queue was deleted.
    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }
}
