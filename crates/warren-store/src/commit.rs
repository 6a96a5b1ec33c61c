//! Group commit: the write path of messages, from `Store::submit` to the durability frontier.
//!
//! Data flow:
//!
//! 1. `submit` (any thread, never blocks on I/O) numbers the [`WriteOp`] with the next
//!    [`Ticket`] and appends it to the [`Inbox`], under one short lock. Numbering and enqueueing
//!    under the same lock makes inbox order = ticket order = submission order, so a `Delete` of
//!    seq N followed by a `Put` of seq N is applied in that order, and "every ticket up to T is
//!    written" is a statement about a prefix of the inbox.
//! 2. The commit thread (a dedicated std thread: RocksDB calls block, they must not run on tokio
//!    workers) sleeps until the inbox is non-empty, then takes **everything** pending at once
//!    (it swaps the inbox's vector for its own empty one) and builds one `WriteBatch` from it
//!    (several in a row only if the pending bytes exceed `max_batch_bytes`). `WriteBatch`
//!    preserves the order of its operations.
//! 3. The batch is written with `sync = true` if it holds a `Put` (a persistent message must be
//!    fsynced before its publish is confirmed) and `sync = false` otherwise (acks need no
//!    fsync: a crash at worst redelivers). The WAL is sequential, so the next
//!    synced write also makes the earlier unsynced ones durable.
//! 4. On success the thread publishes the batch's last ticket as [`Durability::synced`] through
//!    a `tokio::sync::watch` channel: every confirm waiting on a ticket up to it is released at
//!    once.
//!
//! **Poisoned state** (the fsyncgate lesson, as in fjall): if a write fails, the outcome of the
//! failed fsync is unknown and retrying could report data as durable that is not. The loop then
//! publishes `poisoned = Some(first ticket of the failed batch)`, logs an operator-actionable
//! error, never again reports a ticket as synced, and drops every later op (new submissions are
//! refused at once). Only a restart (which replays the WAL) clears it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use rocksdb::{DB, WriteBatch, WriteOptions};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::held::HeldKey;
use crate::keys::{held_key, hold_range, message_key, queue_range};
use crate::options::{CF_HELD, CF_HELD_INDEX, CF_INDEX, CF_MESSAGES};
use crate::reclaim::ReclaimTracker;
use crate::stats::Counters;
use crate::store::column_family;

/// One write for the group-commit loop. Keys are `queue_id` and `seq`; values are opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Store a persistent message. Its ticket is reported synced only once fsynced.
    Put {
        /// The durable queue's id (see `Store::next_id`).
        queue_id: u64,
        /// The message's position in the queue.
        seq: u64,
        /// The encoded message (properties and body), opaque to the store.
        value: Bytes,
        /// What recovery needs to know of the message without reading its body.
        index: IndexEntry,
    },
    /// Store a transient message's body to free memory (a paged-out transient message). Not
    /// fsynced and not indexed: such bodies are garbage after a restart and the broker
    /// range-deletes their key space at start.
    PutTransient {
        /// The queue's transient key space.
        queue_id: u64,
        /// The message's position in the queue.
        seq: u64,
        /// The encoded message.
        value: Bytes,
    },
    /// Remove the message (an ack). Not fsynced on its own.
    Delete {
        /// The queue.
        queue_id: u64,
        /// The message.
        seq: u64,
    },
    /// Remove every message of the queue (purge or queue delete): range deletes.
    DeleteQueue {
        /// The queue.
        queue_id: u64,
    },
    /// Hold a message until `key.due_ms` (a delayed exchange's message, see `held.rs`). A
    /// durable one is fsynced before its ticket is synced and flagged so in `held-index`;
    /// a transient one is written without a sync and dropped at the next start.
    PutHeld {
        /// Hold, due time and seq.
        key: HeldKey,
        /// The encoded message, opaque to the store.
        value: Bytes,
        /// Kept across restarts (durable exchange, persistent message).
        durable: bool,
    },
    /// Remove a held message (it was routed). Not fsynced on its own.
    DeleteHeld {
        /// The message.
        key: HeldKey,
    },
    /// Remove every message of a hold (its exchange was deleted): range deletes.
    DeleteHold {
        /// The hold.
        hold_id: u64,
    },
    /// Replace a stored message's index entry (a quorum queue's message came back with a
    /// higher delivery count). The body is untouched. Synced like a put, so the count a
    /// redelivery announces is on disk before the message can be delivered again after a
    /// crash. Submitted under the queue's lock while the message is in the queue, so it
    /// always precedes the message's delete.
    SetIndex {
        /// The queue.
        queue_id: u64,
        /// The message.
        seq: u64,
        /// The new index entry.
        index: IndexEntry,
    },
    /// Several ops written in the same `WriteBatch`, so that either all of them or none
    /// survive a crash (a dead-lettered message: delete from its queue, put into others).
    Group(Vec<WriteOp>),
}

/// What the `index` column family keeps of a stored message, so that recovery can rebuild
/// a queue without reading bodies: its priority, its body length and (quorum queues) how
/// many times it came back to its queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// The message's priority in its queue (0 unless the queue has `x-max-priority`).
    pub priority: u8,
    /// Body bytes (what `x-max-length-bytes` counts).
    pub body_len: u32,
    /// Returns to the queue so far (a quorum queue's delivery count; 0 elsewhere).
    pub delivery_count: u32,
    /// Non-zero when the message left its queue and awaits dead-lettering (a quorum
    /// queue's at-least-once dead letter no queue took yet): the broker's code of the
    /// death reason. 0 for a message in its queue.
    pub dead_letter: u8,
}

impl IndexEntry {
    const VERSION: u8 = 1;

    /// The index value: version, priority, body length (big-endian), then the delivery
    /// count (big-endian) only when it or the dead-letter mark is not 0, then the
    /// dead-letter mark only when it is not 0; so a classic queue's entry stays 6 bytes
    /// (and readers that predate the count, which ignore trailing bytes, still read it).
    /// On the stack: a put allocates nothing for its index value.
    pub(crate) fn encode(&self) -> EncodedIndex {
        let mut bytes = [0u8; 11];
        bytes[0] = Self::VERSION;
        bytes[1] = self.priority;
        bytes[2..6].copy_from_slice(&self.body_len.to_be_bytes());
        let mut len = 6;
        if self.delivery_count != 0 || self.dead_letter != 0 {
            bytes[6..10].copy_from_slice(&self.delivery_count.to_be_bytes());
            len = 10;
        }
        if self.dead_letter != 0 {
            bytes[10] = self.dead_letter;
            len = 11;
        }
        EncodedIndex { bytes, len }
    }

    /// Reads an index value; the empty value of stores written before the index held
    /// anything reads as priority 0 and an unknown (0) body length.
    pub(crate) fn decode(value: &[u8]) -> IndexEntry {
        match value {
            [Self::VERSION, priority, a, b, c, d, rest @ ..] => IndexEntry {
                priority: *priority,
                body_len: u32::from_be_bytes([*a, *b, *c, *d]),
                delivery_count: match rest {
                    [e, f, g, h, ..] => u32::from_be_bytes([*e, *f, *g, *h]),
                    _ => 0,
                },
                dead_letter: match rest {
                    [_, _, _, _, mark, ..] => *mark,
                    _ => 0,
                },
            },
            _ => IndexEntry::default(),
        }
    }
}

/// An encoded [`IndexEntry`] (6, 10 or 11 bytes).
pub(crate) struct EncodedIndex {
    bytes: [u8; 11],
    len: usize,
}

impl EncodedIndex {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

impl AsRef<[u8]> for EncodedIndex {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl WriteOp {
    /// The op's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            WriteOp::Put { .. } => "put",
            WriteOp::PutTransient { .. } => "put-transient",
            WriteOp::Delete { .. } => "delete",
            WriteOp::DeleteQueue { .. } => "delete-queue",
            WriteOp::PutHeld { .. } => "put-held",
            WriteOp::DeleteHeld { .. } => "delete-held",
            WriteOp::DeleteHold { .. } => "delete-hold",
            WriteOp::SetIndex { .. } => "set-index",
            WriteOp::Group(_) => "group",
        }
    }

    /// The bytes this op adds to a batch, roughly (keys and values).
    fn weight(&self) -> usize {
        match self {
            WriteOp::Put { value, .. }
            | WriteOp::PutTransient { value, .. }
            | WriteOp::PutHeld { value, .. } => value.len() + 48,
            WriteOp::Delete { .. } | WriteOp::DeleteHeld { .. } | WriteOp::SetIndex { .. } => 48,
            WriteOp::DeleteQueue { .. } | WriteOp::DeleteHold { .. } => 112,
            WriteOp::Group(ops) => ops.iter().map(WriteOp::weight).sum(),
        }
    }
}

/// The number `Store::submit` gave a write: tickets grow by one per submission, starting at 1,
/// in submission order. They are not persisted: each opened store starts again at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The ticket's number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The durability frontier, published by the commit loop after each batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durability {
    /// Every ticket `<= synced` has been written: for a `Put` that means fsynced; deletes
    /// written in a batch without `Put`s reach the disk with the next fsync.
    pub synced: u64,
    /// `Some(t)`: every ticket `>= t` has failed and will never be synced (a write failed, or
    /// the op was submitted after `close`).
    pub poisoned: Option<u64>,
}

/// Where one ticket stands, per a [`Durability`] snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    /// Not written yet.
    Pending,
    /// Written (for a `Put`: fsynced).
    Synced,
    /// Failed; will never be written.
    Failed,
}

impl Durability {
    /// The status of `ticket` in this snapshot.
    pub fn status(&self, ticket: Ticket) -> TicketStatus {
        if ticket.0 <= self.synced {
            TicketStatus::Synced
        } else if self
            .poisoned
            .is_some_and(|first_failed| ticket.0 >= first_failed)
        {
            TicketStatus::Failed
        } else {
            TicketStatus::Pending
        }
    }
}

/// State shared by submitters and the commit thread.
pub(crate) struct CommitShared {
    inbox: Mutex<Inbox>,
    /// Signalled when the inbox goes from empty to non-empty, or on close.
    ready: Condvar,
    durability: watch::Sender<Durability>,
    /// Set once a write failed; never cleared.
    write_failed: AtomicBool,
    /// Set once a dropped `Delete` was logged after poisoning, to log it once.
    dropped_logged: AtomicBool,
    counters: Arc<Counters>,
    path: PathBuf,
}

/// Pending ops, in ticket order.
struct Inbox {
    last_ticket: u64,
    pending: Vec<(u64, WriteOp)>,
    closing: bool,
}

impl CommitShared {
    pub(crate) fn new(path: PathBuf, counters: Arc<Counters>) -> CommitShared {
        CommitShared {
            inbox: Mutex::new(Inbox {
                last_ticket: 0,
                pending: Vec::new(),
                closing: false,
            }),
            ready: Condvar::new(),
            durability: watch::Sender::new(Durability::default()),
            write_failed: AtomicBool::new(false),
            dropped_logged: AtomicBool::new(false),
            counters,
            path,
        }
    }

    /// Numbers `op` and queues it for the commit thread; refuses it at once (its ticket is
    /// reported failed) if the store is poisoned or closing.
    pub(crate) fn submit(&self, op: WriteOp) -> Ticket {
        let mut inbox = self.inbox.lock();
        inbox.last_ticket += 1;
        let ticket = inbox.last_ticket;
        if inbox.closing || self.write_failed.load(Ordering::Acquire) {
            // Under the lock, so that refused tickets are marked failed in ticket order.
            self.refuse(ticket, &op, inbox.closing);
            return Ticket(ticket);
        }
        let was_empty = inbox.pending.is_empty();
        inbox.pending.push((ticket, op));
        drop(inbox);
        if was_empty {
            self.ready.notify_one();
        }
        Ticket(ticket)
    }

    /// Marks `ticket` failed without writing `op`.
    fn refuse(&self, ticket: u64, op: &WriteOp, closing: bool) {
        Counters::add(&self.counters.dropped_ops, 1);
        self.mark_failed_from(ticket);
        if closing {
            tracing::debug!(data_dir = %self.path.display(), ticket, op = op.kind(), "write submitted to a closed store; dropped");
        } else {
            self.log_dropped_once();
        }
    }

    fn log_dropped_once(&self) {
        if !self.dropped_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                data_dir = %self.path.display(),
                "the store is poisoned: dropping writes (persistent publishes are nacked; acks are not persisted, so those messages will be redelivered after restart). Logged once."
            );
        }
    }

    /// Publishes that every ticket `>= first_failed` has failed.
    fn mark_failed_from(&self, first_failed: u64) {
        self.durability.send_modify(|durability| {
            durability.poisoned = Some(
                durability
                    .poisoned
                    .map_or(first_failed, |earlier| earlier.min(first_failed)),
            );
        });
    }

    /// A receiver of the durability frontier.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Durability> {
        self.durability.subscribe()
    }

    /// The current durability frontier.
    pub(crate) fn durability(&self) -> Durability {
        *self.durability.borrow()
    }

    /// The highest ticket handed out.
    pub(crate) fn last_ticket(&self) -> u64 {
        self.inbox.lock().last_ticket
    }

    /// Whether a write has failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.write_failed.load(Ordering::Acquire)
    }

    /// Asks the commit thread to write what is pending and stop; later submissions fail.
    pub(crate) fn request_close(&self) {
        self.inbox.lock().closing = true;
        self.ready.notify_one();
    }

    /// Blocks until ops are pending, closing is requested, or `timeout` passes; moves the
    /// pending ops into `taken` (which must be empty). Returns whether closing was requested:
    /// then `taken` holds the last ops this store will ever accept.
    fn take(&self, taken: &mut Vec<(u64, WriteOp)>, timeout: Duration) -> bool {
        let mut inbox = self.inbox.lock();
        if inbox.pending.is_empty() && !inbox.closing {
            // Spurious wake-ups and timeouts both just return what is there (maybe nothing).
            self.ready.wait_for(&mut inbox, timeout);
        }
        std::mem::swap(&mut inbox.pending, taken);
        inbox.closing
    }
}

/// The commit thread's state.
pub(crate) struct CommitLoop {
    db: Arc<DB>,
    shared: Arc<CommitShared>,
    reclaim: ReclaimTracker,
    max_batch_bytes: usize,
    sync: WriteOptions,
    no_sync: WriteOptions,
    #[cfg(any(test, feature = "fault-injection"))]
    fail_writes_after: Option<u64>,
}

/// Poisons the store if the commit thread panics, so that no submitter waits forever.
struct PanicGuard(Arc<CommitShared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let shared = &self.0;
            shared.write_failed.store(true, Ordering::Release);
            let first_unwritten = shared.durability().synced + 1;
            shared.mark_failed_from(first_unwritten);
            tracing::error!(
                data_dir = %shared.path.display(),
                "the store's commit thread panicked (a bug): the store is POISONED; persistent publishes will be nacked until warren is restarted"
            );
        }
    }
}

/// One `WriteBatch` being built from consecutive ops.
struct Batch {
    batch: WriteBatch,
    first_ticket: u64,
    last_ticket: u64,
    ops: u64,
    puts: u64,
    deletes: u64,
    put_bytes: u64,
    weight: usize,
}

impl CommitLoop {
    pub(crate) fn new(
        db: Arc<DB>,
        shared: Arc<CommitShared>,
        reclaim: ReclaimTracker,
        options: &crate::StoreOptions,
    ) -> CommitLoop {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        let mut no_sync = WriteOptions::default();
        no_sync.set_sync(false);
        CommitLoop {
            db,
            shared,
            reclaim,
            max_batch_bytes: options.max_batch_bytes.max(1),
            sync,
            no_sync,
            #[cfg(any(test, feature = "fault-injection"))]
            fail_writes_after: options.fail_writes_after,
        }
    }

    /// The thread's body: commit until closing is requested and the inbox is empty.
    pub(crate) fn run(mut self) {
        let _guard = PanicGuard(Arc::clone(&self.shared));
        let mut taken = Vec::new();
        loop {
            let closing = self
                .shared
                .take(&mut taken, self.reclaim.time_to_next_check(Instant::now()));
            if !taken.is_empty() {
                self.commit(&mut taken);
            }
            self.reclaim.schedule(Instant::now());
            if closing {
                // Closing was set under the inbox lock before our take: nothing can follow.
                break;
            }
        }
    }

    /// Writes every op in `taken` (emptying it), as few batches as `max_batch_bytes` allows.
    fn commit(&mut self, taken: &mut Vec<(u64, WriteOp)>) {
        let mut ops = taken.drain(..).peekable();
        while let Some((first_ticket, _)) = ops.peek() {
            let mut batch = Batch {
                batch: WriteBatch::default(),
                first_ticket: *first_ticket,
                last_ticket: *first_ticket,
                ops: 0,
                puts: 0,
                deletes: 0,
                put_bytes: 0,
                weight: 0,
            };
            if self.shared.is_poisoned() {
                let dropped = ops.count() as u64;
                Counters::add(&self.shared.counters.dropped_ops, dropped);
                self.shared.log_dropped_once();
                return;
            }
            let max = self.max_batch_bytes;
            let built = loop {
                let Some((ticket, op)) = ops.next_if(|_| batch.weight < max) else {
                    break Ok(());
                };
                if let Err(error) = self.add(&mut batch, ticket, op) {
                    break Err(error);
                }
            };
            let written = built.and_then(|()| self.write(&mut batch));
            match written {
                Ok(()) => self.publish(&batch),
                Err(error) => self.poison(batch.first_ticket, &error),
            }
        }
    }

    /// Appends one op to the batch (in order: `WriteBatch` keeps it).
    fn add(&mut self, batch: &mut Batch, ticket: u64, op: WriteOp) -> Result<(), StoreError> {
        let db = Arc::clone(&self.db);
        let shared = Arc::clone(&self.shared);
        let messages = column_family(&db, &shared.path, CF_MESSAGES)?;
        let index = column_family(&db, &shared.path, CF_INDEX)?;
        batch.last_ticket = ticket;
        batch.ops += 1;
        batch.weight += op.weight();
        self.add_op(batch, op, messages, index)
    }

    /// One op's RocksDB writes (a group's, in order).
    fn add_op(
        &mut self,
        batch: &mut Batch,
        op: WriteOp,
        messages: &rocksdb::ColumnFamily,
        index: &rocksdb::ColumnFamily,
    ) -> Result<(), StoreError> {
        match op {
            WriteOp::Put {
                queue_id,
                seq,
                value,
                index: entry,
            } => {
                let key = message_key(queue_id, seq);
                batch.batch.put_cf(messages, key, &value);
                batch.batch.put_cf(index, key, entry.encode());
                batch.puts += 1;
                batch.put_bytes += value.len() as u64;
            }
            WriteOp::PutTransient {
                queue_id,
                seq,
                value,
            } => {
                let key = message_key(queue_id, seq);
                batch.batch.put_cf(messages, key, &value);
                batch.put_bytes += value.len() as u64;
            }
            WriteOp::Delete { queue_id, seq } => {
                let key = message_key(queue_id, seq);
                batch.batch.delete_cf(messages, key);
                batch.batch.delete_cf(index, key);
                batch.deletes += 1;
                self.reclaim.deleted(queue_id, seq);
            }
            WriteOp::DeleteQueue { queue_id } => {
                let (start, end) = queue_range(queue_id);
                for cf in [messages, index] {
                    batch.batch.delete_range_cf(cf, &start[..], &end[..]);
                }
                self.reclaim.queue_deleted(queue_id);
            }
            WriteOp::PutHeld {
                key,
                value,
                durable,
            } => {
                let db = Arc::clone(&self.db);
                let (held, held_index) = self.held_families(&db)?;
                let key = held_key(key);
                batch.batch.put_cf(held, key, &value);
                batch.batch.put_cf(held_index, key, [u8::from(durable)]);
                if durable {
                    // Counted as a put: the batch is fsynced before its tickets are synced.
                    batch.puts += 1;
                }
                batch.put_bytes += value.len() as u64;
            }
            WriteOp::DeleteHeld { key } => {
                let db = Arc::clone(&self.db);
                let (held, held_index) = self.held_families(&db)?;
                let key = held_key(key);
                batch.batch.delete_cf(held, key);
                batch.batch.delete_cf(held_index, key);
                batch.deletes += 1;
            }
            WriteOp::DeleteHold { hold_id } => {
                let db = Arc::clone(&self.db);
                let (held, held_index) = self.held_families(&db)?;
                let (start, end) = hold_range(hold_id);
                for cf in [held, held_index] {
                    batch.batch.delete_range_cf(cf, &start[..], &end[..]);
                }
            }
            WriteOp::SetIndex {
                queue_id,
                seq,
                index: entry,
            } => {
                batch
                    .batch
                    .put_cf(index, message_key(queue_id, seq), entry.encode());
                batch.puts += 1;
            }
            WriteOp::Group(ops) => {
                for op in ops {
                    self.add_op(batch, op, messages, index)?;
                }
            }
        }
        Ok(())
    }

    /// The `held` and `held-index` column families (looked up only by held-message ops, so
    /// queue writes pay nothing for them).
    fn held_families<'a>(
        &self,
        db: &'a DB,
    ) -> Result<(&'a rocksdb::ColumnFamily, &'a rocksdb::ColumnFamily), StoreError> {
        Ok((
            column_family(db, &self.shared.path, CF_HELD)?,
            column_family(db, &self.shared.path, CF_HELD_INDEX)?,
        ))
    }

    /// Writes the batch: synced if it holds a `Put`.
    fn write(&mut self, batch: &mut Batch) -> Result<(), StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        {
            if let Some(remaining) = self.fail_writes_after.as_mut() {
                if *remaining == 0 {
                    return Err(StoreError::InjectedFault {
                        after_batches: self.shared.counters.batches.load(Ordering::Relaxed),
                    });
                }
                *remaining -= 1;
            }
        }
        let options = if batch.puts > 0 {
            &self.sync
        } else {
            &self.no_sync
        };
        self.db
            .write_opt(std::mem::take(&mut batch.batch), options)
            .map_err(|source| StoreError::Rocks {
                operation: "write batch",
                path: self.shared.path.clone(),
                source,
            })
    }

    /// Counts a written batch and moves the durability frontier to its last ticket.
    fn publish(&self, batch: &Batch) {
        let counters = &self.shared.counters;
        Counters::add(&counters.batches, 1);
        if batch.puts > 0 {
            Counters::add(&counters.fsyncs, 1);
        }
        Counters::add(&counters.ops, batch.ops);
        Counters::add(&counters.puts, batch.puts);
        Counters::add(&counters.deletes, batch.deletes);
        Counters::add(&counters.bytes, batch.put_bytes);
        self.shared.durability.send_modify(|durability| {
            durability.synced = durability.synced.max(batch.last_ticket);
        });
    }

    /// Enters the poisoned state: `first_failed` and every later ticket are failed for good.
    fn poison(&self, first_failed: u64, error: &StoreError) {
        self.shared.write_failed.store(true, Ordering::Release);
        self.shared.mark_failed_from(first_failed);
        tracing::error!(
            data_dir = %self.shared.path.display(),
            first_failed_ticket = first_failed,
            %error,
            "a RocksDB write failed: the message store is now POISONED. Persistent publishes will be nacked and acks are not persisted until warren is restarted. Check the disk under the data directory (free space, permissions, I/O errors in the kernel log), then restart warren: confirmed messages are safe, unconfirmed ones were nacked."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreOptions};

    fn put(seq: u64) -> WriteOp {
        WriteOp::Put {
            queue_id: 1,
            seq,
            value: Bytes::from(vec![7u8; 1024]),
            index: Default::default(),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_failed_write_poisons_the_store_and_no_later_ticket_is_ever_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = StoreOptions {
            fail_writes_after: Some(2),
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), options).expect("open");
        let runtime = runtime();

        // Record every frontier the loop publishes, from before the first submission.
        let mut watch = store.durability();
        let observer = runtime.spawn(async move {
            let mut seen = vec![*watch.borrow_and_update()];
            while watch.changed().await.is_ok() {
                let now = *watch.borrow_and_update();
                seen.push(now);
                if now.poisoned.is_some() {
                    break;
                }
            }
            seen
        });

        let first = store.submit(put(1));
        runtime
            .block_on(store.wait_durable(first))
            .expect("batch 1");
        let second = store.submit(put(2));
        runtime
            .block_on(store.wait_durable(second))
            .expect("batch 2");

        // Batch 3 fails, with everything submitted with it or after it.
        let failing: Vec<Ticket> = (3..200).map(|seq| store.submit(put(seq))).collect();
        let first_failing = failing.first().copied().expect("tickets");
        let outcome = runtime.block_on(store.wait_durable(first_failing));
        assert!(
            matches!(outcome, Err(StoreError::Poisoned { first_failed, .. }) if first_failed <= first_failing.get()),
            "{outcome:?}"
        );
        let durability = *store.durability().borrow();
        assert_eq!(durability.synced, second.get());
        let first_failed = durability.poisoned.expect("poisoned");
        assert!(first_failed > second.get() && first_failed <= first_failing.get());
        for ticket in &failing {
            assert_eq!(durability.status(*ticket), TicketStatus::Failed);
        }

        // Later submissions fail at once, deletes included, and are never written.
        let late_put = store.submit(put(500));
        let late_ack = store.submit(WriteOp::Delete {
            queue_id: 1,
            seq: 1,
        });
        let durability = *store.durability().borrow();
        assert_eq!(durability.status(late_put), TicketStatus::Failed);
        assert_eq!(durability.status(late_ack), TicketStatus::Failed);
        let stats = store.stats();
        assert!(stats.poisoned);
        assert_eq!(stats.synced, second.get());
        assert_eq!(stats.fsyncs, 2);
        assert!(stats.dropped_ops >= 2);

        let seen = runtime.block_on(observer).expect("observer");
        for frontier in &seen {
            assert!(
                frontier.synced < first_failed,
                "a ticket at or after the failure was reported synced: {seen:?}"
            );
        }
        assert!(matches!(store.close(), Err(StoreError::Poisoned { .. })));
        drop(store);

        // After a restart only what was synced is there, and the store takes writes again.
        let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen");
        assert_eq!(store.queue_index(1).expect("index"), vec![1, 2]);
        let ticket = store.submit(put(3));
        runtime
            .block_on(store.wait_durable(ticket))
            .expect("healthy again");
    }

    #[test]
    fn poisoning_under_concurrent_load_never_reports_a_failed_ticket_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = StoreOptions {
            fail_writes_after: Some(3),
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), options).expect("open");
        let runtime = runtime();
        let mut watch = store.durability();
        let observer = runtime.spawn(async move {
            let mut seen = Vec::new();
            while watch.changed().await.is_ok() {
                let now = *watch.borrow_and_update();
                seen.push(now);
                if now.poisoned.is_some() {
                    break;
                }
            }
            seen
        });
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..2_000)
                        .map(|seq| {
                            if seq % 50 == 0 {
                                // Let the loop cut batches in the middle of the stream.
                                std::thread::sleep(Duration::from_micros(200));
                            }
                            store.submit(put(seq))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut tickets: Vec<Ticket> = submitters
            .into_iter()
            .flat_map(|thread| thread.join().expect("submitter"))
            .collect();
        // If the stream fit in fewer batches than the fault needs, write more until it fails.
        loop {
            let ticket = store.submit(put(9_999));
            tickets.push(ticket);
            if runtime.block_on(store.wait_durable(ticket)).is_err() {
                break;
            }
        }
        let durability = *store.durability().borrow();
        let first_failed = durability.poisoned.expect("poisoned");
        assert!(durability.synced < first_failed);
        for ticket in tickets {
            let expected = if ticket.get() < first_failed {
                TicketStatus::Synced
            } else {
                TicketStatus::Failed
            };
            assert_eq!(durability.status(ticket), expected);
        }
        let seen = runtime.block_on(observer).expect("observer");
        assert!(seen.iter().all(|frontier| frontier.synced < first_failed));
    }
}

#[cfg(test)]
mod index_entry_tests {
    use super::IndexEntry;

    #[test]
    fn index_entry_round_trips() {
        let entry = IndexEntry {
            priority: 7,
            body_len: 0x0102_0304,
            delivery_count: 0,
            dead_letter: 0,
        };
        assert_eq!(entry.encode().len(), 6, "no count, no extra bytes");
        assert_eq!(IndexEntry::decode(entry.encode().as_ref()), entry);
        let counted = IndexEntry {
            delivery_count: 21,
            ..entry
        };
        assert_eq!(IndexEntry::decode(counted.encode().as_ref()), counted);
        let marked = IndexEntry {
            dead_letter: 3,
            ..entry
        };
        assert_eq!(marked.encode().len(), 11);
        assert_eq!(IndexEntry::decode(marked.encode().as_ref()), marked);
    }

    #[test]
    fn an_empty_old_format_index_value_reads_as_priority_zero() {
        assert_eq!(IndexEntry::decode(&[]), IndexEntry::default());
        assert_eq!(IndexEntry::decode(&[]).priority, 0);
    }
}
