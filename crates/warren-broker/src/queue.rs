//! Queues: ordered messages, their consumers, and dispatch.
//!
//! A [`Queue`] holds its state behind one short-held `parking_lot` mutex. Every operation
//! (publish, consume, ack, requeue, get, purge) takes the lock, changes the state, runs
//! [`Queue::dispatch`] if deliveries may have become possible, and releases it; nothing
//! awaits while holding it. Dispatch hands messages to consumers round-robin, each only
//! while it has credit (see `consumer.rs`), by sending events to the consumers'
//! connections; with `x-priority` consumers, to the highest-priority ones with credit.
//!
//! Messages are kept in publish order as [`Entry`]s with a per-queue sequence number; a
//! requeued message goes back to its original position (found by sequence number) with
//! `redelivered` set. Persistent messages on durable queues are written to the store
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
//! The design leaves room for the extensions to come: per-priority sub-queues replace
//! `ready`, TTL expiry walks entries by sequence, dead-lettering hooks where entries are
//! dropped, max-length trims the head, single active consumer restricts `pick_consumer`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use amq_protocol::types::FieldTable;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;
use warren_store::{Durability, Store, Ticket, TicketStatus, WriteOp};

use crate::consumer::{ConnectionId, Consumer, ConsumerEvent};
use crate::error::BrokerError;
use crate::memory::{MESSAGE_OVERHEAD, MessageMemory};
use crate::message::Message;

/// How far past the seq it delivers a queue raises its delivered watermark (see the module
/// docs): after a crash, at most this many never-delivered messages per queue come back
/// flagged `redelivered`.
pub const DELIVERED_LEASE: u64 = 256;

/// Store ids at or above this are the transient key space (paged-out transient messages).
pub const TRANSIENT_ID_BASE: u64 = 1 << 63;
static NEXT_TRANSIENT_ID: AtomicU64 = AtomicU64::new(TRANSIENT_ID_BASE);

/// How much of a queue stays in memory.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Bytes of persistent messages a queue keeps in RAM before paging new ones out (their
    /// bodies are on disk already). Transient messages page out only past the broker-wide
    /// budget (`BrokerConfig::message_memory`).
    pub ram_bytes: usize,
    /// Messages of any kind a queue keeps in RAM before paging new ones out.
    pub ram_messages: usize,
    /// Messages read back from the store at once.
    pub page_in_batch: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            ram_bytes: 8 * 1024 * 1024,
            ram_messages: 1 << 24,
            page_in_batch: 512,
        }
    }
}

/// A message's place in a queue.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Sequence number within the queue (publish order).
    pub seq: u64,
    /// Delivered before (requeued, or recovered after being delivered).
    pub redelivered: bool,
    /// Where the body sits in the store, if it was written there.
    pub stored: Option<StoreKey>,
    /// The message, or `None` while its body is only in the store.
    pub message: Option<Arc<Message>>,
    /// Body size (memory accounting while paged out).
    pub size: u32,
    /// When the message expires (ms since the Unix epoch; `u64::MAX` = never, or not
    /// known until its body is paged in).
    pub expires_at: u64,
}

/// A message's key in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreKey {
    /// Store id (durable id, or transient key space).
    pub id: u64,
    /// Sequence within it.
    pub seq: u64,
    /// Written as a persistent message (survives restart).
    pub persistent: bool,
}

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
    ready: VecDeque<Entry>,
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
}

/// A paged-out body waiting for its store write.
#[derive(Debug)]
struct Unwritten {
    ticket: Ticket,
    seq: u64,
    message: Arc<Message>,
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
    /// `x-message-ttl`, ms.
    message_ttl: Option<u64>,
    /// `x-expires`, ms.
    expires: Option<u64>,
    state: Mutex<QueueState>,
}

/// What publishing to a queue produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct Enqueued {
    /// Store ticket to wait for before confirming, if the message was persisted.
    pub ticket: Option<Ticket>,
}

impl Queue {
    /// A new, empty queue.
    pub fn new(
        spec: QueueSpec,
        vhost: Arc<str>,
        store_id: u64,
        store: Store,
        limits: QueueLimits,
        memory: Arc<MessageMemory>,
    ) -> Self {
        let spec_ttl_args = spec.arguments.clone();
        Self {
            spec,
            vhost,
            store_id,
            transient_id: NEXT_TRANSIENT_ID.fetch_add(1, Ordering::Relaxed),
            durability: store.durability(),
            store,
            limits,
            memory,
            message_ttl: crate::arguments::message_ttl(&spec_ttl_args),
            expires: crate::arguments::queue_expires(&spec_ttl_args),
            state: Mutex::new(QueueState {
                next_seq: 1,
                last_used: crate::message::now_ms(),
                ..QueueState::default()
            }),
        }
    }

    /// The expiry time of `message` in this queue (queue TTL and per-message TTL, the
    /// lower wins), or `u64::MAX`.
    fn expiry_of(&self, message: &Message) -> u64 {
        let per_message = message.expiration;
        let ttl = match (self.message_ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ttl.map_or(u64::MAX, |ttl| message.timestamp_ms.saturating_add(ttl))
    }

    /// Drop expired messages at the head (RabbitMQ expires only at the head). Bodies that
    /// are paged out are not read for this: dispatch checks them once they are paged in.
    fn expire_head(&self, st: &mut QueueState, now: u64) {
        while let Some(front) = st.ready.front() {
            if front.message.is_none() || front.expires_at > now {
                return;
            }
            if let Some(entry) = st.ready.pop_front() {
                self.account_out(st, &entry);
                self.forget(&entry);
            }
        }
    }

    /// Arm the expiry timer for the head message, unless one is armed for that time or
    /// earlier. The head is the only message that can expire (as RabbitMQ), so one timer
    /// per queue suffices; when it fires it drops what expired and arms for the new head.
    fn arm_expiry(self: &Arc<Self>, st: &mut QueueState) {
        let Some(head) = st.ready.front() else {
            return;
        };
        if head.message.is_some() && head.expires_at != u64::MAX {
            self.schedule_expiry(st, head.expires_at);
        }
    }

    /// Run an expiry check at `at` (ms since the epoch) unless one runs by then already.
    fn schedule_expiry(self: &Arc<Self>, st: &mut QueueState, at: u64) {
        if st.deleted || st.expiry_timer.is_some_and(|armed| armed <= at) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (unit tests of the model): expiry still happens when the queue is
            // next dispatched, read or counted.
            return;
        };
        st.expiry_timer = Some(at);
        let queue = Arc::downgrade(self);
        runtime.spawn(async move {
            let wait = at.saturating_sub(crate::message::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            if let Some(queue) = queue.upgrade() {
                queue.expiry_timer_fired(at);
            }
        });
    }

    /// The expiry timer armed for `at` fired: drop expired messages at the head, reading
    /// paged-out bodies as they come up (their expiry is known only from the body), and
    /// arm the timer for the new head.
    fn expiry_timer_fired(self: &Arc<Self>, at: u64) {
        let mut st = self.state.lock();
        if st.expiry_timer == Some(at) {
            st.expiry_timer = None;
        }
        if st.deleted {
            return;
        }
        let now = crate::message::now_ms();
        loop {
            self.expire_head(&mut st, now);
            match st.ready.front() {
                Some(head) if head.message.is_none() => {
                    self.page_in(&mut st);
                    if st.ready.front().is_some_and(|e| e.message.is_none()) {
                        // The body could not be read (logged by page_in).
                        break;
                    }
                }
                _ => break,
            }
        }
        self.arm_expiry(&mut st);
    }

    /// `x-expires`: milliseconds of disuse after which the queue deletes itself.
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// Note a use of the queue (declare, consume, get) for `x-expires`.
    pub fn touch(&self) {
        self.state.lock().last_used = crate::message::now_ms();
    }

    /// For `x-expires`: `None` when the queue is in use (consumers) or deleted, else the
    /// milliseconds left before it expires (0 = expired now).
    pub fn expires_in(&self, now: u64) -> Option<u64> {
        let expires = self.expires?;
        let st = self.state.lock();
        if st.deleted {
            return None;
        }
        if !st.consumers.is_empty() {
            return Some(expires);
        }
        Some((st.last_used.saturating_add(expires)).saturating_sub(now))
    }

    /// Count `bytes` of `messages` message bodies as held in RAM.
    fn hold(&self, st: &mut QueueState, bytes: usize, messages: usize) {
        st.ram_bytes += bytes;
        st.ram_messages += messages;
        self.memory.add(bytes);
    }

    /// Count message bodies as no longer held in RAM.
    fn unhold(&self, st: &mut QueueState, bytes: usize, messages: usize) {
        let bytes = bytes.min(st.ram_bytes);
        st.ram_bytes -= bytes;
        st.ram_messages = st.ram_messages.saturating_sub(messages);
        self.memory.sub(bytes);
    }

    /// Name.
    pub fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    /// Restore recovered messages (index only; bodies paged in on demand), in order. Those
    /// at or below `delivered_mark` (the store's delivered watermark) were delivered before
    /// and come back `redelivered`.
    pub fn recover(self: &Arc<Self>, index: Vec<u64>, delivered_mark: u64) {
        let mut st = self.state.lock();
        let recovered_any = !index.is_empty();
        // New messages get seqs above everything a lease of the last run may have covered.
        st.next_seq = st.next_seq.max(delivered_mark.saturating_add(1));
        st.delivered_lease = delivered_mark;
        for seq in index {
            st.ready.push_back(Entry {
                seq,
                redelivered: seq <= delivered_mark,
                stored: Some(StoreKey {
                    id: self.store_id,
                    seq,
                    persistent: true,
                }),
                message: None,
                size: 0,
                expires_at: u64::MAX,
            });
            st.next_seq = st.next_seq.max(seq + 1);
        }
        // With a queue TTL, messages that expired while the broker was down go now, not
        // when a client next touches the queue: check the head at once.
        if recovered_any && self.message_ttl.is_some() {
            self.schedule_expiry(&mut st, crate::message::now_ms());
        }
    }

    /// Add a message (routed here by a publish). `encoded` caches the stored form across
    /// the queues of one publish.
    pub fn publish(
        self: &Arc<Self>,
        message: &Arc<Message>,
        encoded: &mut Option<Bytes>,
    ) -> Enqueued {
        let mut st = self.state.lock();
        if st.deleted {
            return Enqueued::default();
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let size = message.size() + MESSAGE_OVERHEAD;
        // Only queues with a store id (durable, not exclusive) keep messages across restarts;
        // the store id is also what keeps two queues' messages apart in the store.
        let persist = self.store_id != 0 && message.is_persistent();
        // A persistent body is on disk anyway: past the queue's window it is not kept in
        // RAM. A transient one pages out (a write it would not need otherwise) only when
        // the broker-wide budget is spent, or past the queue's message cap.
        let over_limit = st.ram_messages >= self.limits.ram_messages
            || (persist && st.ram_bytes + size > self.limits.ram_bytes)
            || self.memory.would_exceed(size);
        // Fast path: a consumer is waiting and nothing is queued ahead of this message.
        let mut entry = Entry {
            seq,
            redelivered: false,
            stored: None,
            message: Some(Arc::clone(message)),
            size: size as u32,
            // Set after the first dispatch attempt: a message with TTL 0 is still
            // delivered if a consumer can take it at once.
            expires_at: u64::MAX,
        };
        let mut result = Enqueued::default();
        let mut put_ticket = None;
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
            entry.stored = Some(StoreKey {
                id,
                seq,
                persistent,
            });
        }
        let page_out = match put_ticket {
            Some(ticket) if over_limit && !st.ready.is_empty() => {
                let durability = *self.durability.borrow();
                trim_unwritten(&mut st.unwritten, &durability);
                match durability.status(ticket) {
                    TicketStatus::Synced => true,
                    TicketStatus::Pending => {
                        st.unwritten.push_back(Unwritten {
                            ticket,
                            seq,
                            message: Arc::clone(message),
                        });
                        true
                    }
                    // The store refused the write (poisoned): the body stays in memory.
                    TicketStatus::Failed => false,
                }
            }
            _ => false,
        };
        if page_out {
            entry.message = None;
        } else {
            self.hold(&mut st, size, 1);
        }
        st.ready.push_back(entry);
        self.dispatch(&mut st);
        let expires_at = self.expiry_of(message);
        if expires_at != u64::MAX {
            if let Some(back) = st.ready.back_mut().filter(|e| e.seq == seq) {
                back.expires_at = expires_at;
            }
            self.expire_head(&mut st, crate::message::now_ms());
            self.arm_expiry(&mut st);
        }
        result
    }

    /// Hand ready messages to consumers with credit.
    fn dispatch(self: &Arc<Self>, st: &mut QueueState) {
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
            let Some(entry) = st.ready.pop_front() else {
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
                self.forget(&entry);
                continue;
            }
            let consumer = Arc::clone(&st.consumers[index]);
            consumer.take_credit();
            // A no-ack delivery is settled by the connection once it is written
            // (`auto_acked`), so a message whose consumer vanished in between can come back.
            if !consumer.no_ack {
                st.unacked += 1;
            }
            self.note_delivery(st, &entry);
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
    fn pick_consumer(&self, st: &mut QueueState) -> Option<usize> {
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
    fn pick_by_priority(st: &mut QueueState) -> Option<usize> {
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

    fn account_out(&self, st: &mut QueueState, entry: &Entry) {
        if entry.message.is_some() {
            self.unhold(st, entry.size as usize, 1);
        }
    }

    /// Read the bodies of the paged-out run at the head of the queue back from the store:
    /// up to `page_in_batch` entries without a body, in one batched lookup of their exact
    /// keys (RocksDB batches the blob-file reads behind it).
    fn page_in(&self, st: &mut QueueState) {
        let Some(first) = st.ready.front().and_then(|e| e.stored) else {
            return;
        };
        let limit = self.limits.page_in_batch;
        // Trim the unwritten list BEFORE reading the store: whatever the trim drops was
        // written before the read, so the read sees it. Trimming after the read would lose
        // a body written between the two (in neither the rows read nor the list).
        if !st.unwritten.is_empty() {
            trim_unwritten(&mut st.unwritten, &self.durability.borrow());
        }
        let wanted = |e: &Entry| e.message.is_none() && e.stored.is_some_and(|k| k.id == first.id);
        let seqs: Vec<u64> = st
            .ready
            .iter()
            .filter(|e| wanted(e))
            .take(limit)
            .map(|e| e.seq)
            .collect();
        let rows = match self.store.read_messages(first.id, &seqs) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(queue = %self.spec.name, vhost = %self.vhost, error = %e, "cannot read paged-out messages from the store");
                return;
            }
        };
        let mut rows = seqs.iter().zip(rows);
        let mut loaded = 0usize;
        let mut loaded_bytes = 0usize;
        let QueueState {
            ready, unwritten, ..
        } = st;
        for entry in ready.iter_mut().filter(|e| wanted(e)) {
            let Some((&seq, value)) = rows.next() else {
                break;
            };
            debug_assert_eq!(seq, entry.seq);
            let message = match value {
                Some(value) => match Message::decode(value) {
                    Ok(m) => Arc::new(m),
                    Err(e) => {
                        tracing::error!(queue = %self.spec.name, seq, error = %e, "dropping unreadable stored message");
                        continue;
                    }
                },
                // Not in the store (yet): a page-out whose write has not landed?
                None => match unwritten
                    .binary_search_by_key(&seq, |u| u.seq)
                    .ok()
                    .and_then(|at| unwritten.get(at))
                {
                    Some(u) => Arc::clone(&u.message),
                    None => {
                        tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq, "message body missing from the store; skipping it");
                        continue;
                    }
                },
            };
            entry.size = (message.size() + MESSAGE_OVERHEAD) as u32;
            entry.expires_at = self.expiry_of(&message);
            entry.message = Some(message);
            loaded += 1;
            loaded_bytes += entry.size as usize;
        }
        self.hold(st, loaded_bytes, loaded);
    }

    /// A stored message is about to go to a consumer: make sure the delivered watermark
    /// covers it before it leaves (see the module docs).
    fn note_delivery(&self, st: &mut QueueState, entry: &Entry) {
        let Some(key) = entry.stored.filter(|k| k.persistent) else {
            return;
        };
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

    fn forget(&self, entry: &Entry) {
        if let Some(key) = entry.stored {
            self.store.submit(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
    }

    /// Register a consumer. Refuses a second consumer when an exclusive one exists, and an
    /// exclusive consumer when any exists (403, as RabbitMQ).
    pub fn consume(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<(), BrokerError> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(BrokerError::no_queue(&self.vhost, &self.spec.name));
        }
        if st.consumers.iter().any(|c| c.exclusive)
            || (consumer.exclusive && !st.consumers.is_empty())
        {
            return Err(BrokerError::AccessRefused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.spec.name, self.vhost
            )));
        }
        // After the consumers of the same or higher priority: at the end when all are equal.
        let at = st
            .consumers
            .partition_point(|c| c.priority >= consumer.priority);
        st.consumers.insert(at, consumer);
        st.had_consumer = true;
        st.last_used = crate::message::now_ms();
        self.dispatch(&mut st);
        Ok(())
    }

    /// Remove a consumer. Returns true when the queue is auto-delete and this was its
    /// last consumer: the caller deletes the queue.
    pub fn cancel(&self, consumer: &Arc<Consumer>) -> bool {
        consumer.mark_cancelled();
        let mut st = self.state.lock();
        st.consumers.retain(|c| !Arc::ptr_eq(c, consumer));
        st.last_used = crate::message::now_ms();
        if st.next_consumer >= st.consumers.len() {
            st.next_consumer = 0;
        }
        self.spec.auto_delete && st.had_consumer && st.consumers.is_empty() && !st.deleted
    }

    /// Try to deliver again (credit came back, flow resumed, a connection drained).
    pub fn kick(self: &Arc<Self>) {
        let mut st = self.state.lock();
        self.dispatch(&mut st);
    }

    /// Settle delivered messages for good (ack, or reject without requeue).
    pub fn settle<'a>(self: &Arc<Self>, entries: impl IntoIterator<Item = &'a Entry>) {
        let mut st = self.state.lock();
        let mut n = 0;
        for entry in entries {
            n += 1;
            if !st.deleted {
                self.forget(entry);
            }
        }
        st.unacked = st.unacked.saturating_sub(n);
        self.dispatch(&mut st);
    }

    /// Put delivered messages back at their original positions, marked redelivered.
    pub fn requeue(self: &Arc<Self>, entries: impl IntoIterator<Item = Entry>) {
        let mut st = self.state.lock();
        for mut entry in entries {
            st.unacked = st.unacked.saturating_sub(1);
            if st.deleted {
                continue;
            }
            entry.redelivered = true;
            self.put_back(&mut st, entry);
        }
        self.dispatch(&mut st);
        self.arm_expiry(&mut st);
    }

    /// Return a taken message to its original position (by sequence number).
    fn put_back(&self, st: &mut QueueState, entry: Entry) {
        if entry.message.is_some() {
            self.hold(st, entry.size as usize, 1);
        }
        let at = st.ready.partition_point(|e| e.seq < entry.seq);
        st.ready.insert(at, entry);
    }

    /// A no-ack delivery was written to its consumer: forget its stored copy. Takes no lock.
    pub fn auto_acked(&self, entry: &Entry) {
        self.forget(entry);
    }

    /// A dispatched message never reached its consumer (cancelled or channel closed while
    /// the delivery was on its way): put it back where it was, not marked redelivered.
    /// `counted` is true when it was dispatched to a consumer with acks.
    pub fn return_undelivered(self: &Arc<Self>, entry: Entry, counted: bool) {
        let mut st = self.state.lock();
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

    /// basic.get: take the head message. Returns it with the count of messages left.
    pub fn get(self: &Arc<Self>, no_ack: bool) -> Option<(Entry, u32)> {
        let mut st = self.state.lock();
        let now = crate::message::now_ms();
        st.last_used = now;
        loop {
            if st.ready.front().is_some_and(|e| e.message.is_none()) {
                self.page_in(&mut st);
            }
            let mut entry = st.ready.pop_front()?;
            if entry.message.is_none() {
                self.forget(&entry);
                continue;
            }
            self.account_out(&mut st, &entry);
            if entry.expires_at <= now {
                self.forget(&entry);
                continue;
            }
            self.note_delivery(&mut st, &entry);
            if no_ack {
                self.forget(&entry);
                entry.stored = None;
            } else {
                st.unacked += 1;
            }
            self.arm_expiry(&mut st);
            return Some((entry, st.ready.len() as u32));
        }
    }

    /// Drop every ready message; returns how many.
    pub fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        let count = st.ready.len() as u32;
        if st.unacked == 0 {
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
        let mut st = self.state.lock();
        if st.deleted {
            return 0;
        }
        st.deleted = true;
        let count = st.ready.len() as u32;
        st.ready.clear();
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
        let mut st = self.state.lock();
        self.expire_head(&mut st, crate::message::now_ms());
        st.ready.len() as u32
    }

    /// Consumers.
    pub fn consumer_count(&self) -> u32 {
        self.state.lock().consumers.len() as u32
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

/// Drops the page-outs whose store write has landed (the store can return them now).
fn trim_unwritten(unwritten: &mut VecDeque<Unwritten>, durability: &Durability) {
    while unwritten
        .front()
        .is_some_and(|u| durability.status(u.ticket) == TicketStatus::Synced)
    {
        unwritten.pop_front();
    }
}
