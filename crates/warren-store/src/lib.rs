//! Warren's persistence on RocksDB: definitions, persistent messages, group commit, recovery.
//!
//! The store knows nothing of AMQP. The broker hands it opaque encoded bytes under a queue id and
//! a sequence number, and gets back a [`Ticket`] whose durability it can watch. A publish of a
//! persistent message is confirmed only once its ticket is reported synced, that is once it has
//! been **fsynced** ("honest durability").
//!
//! # API
//!
//! ```text
//! Store::open(dir: &Path, options: StoreOptions) -> Result<Store, StoreError>
//! // definitions and counters (`meta`), synchronous, durable on return
//! store.put_definition(kind: DefinitionKind, key: &str, value: &[u8]) -> Result<(), StoreError>
//! store.delete_definition(kind: DefinitionKind, key: &str) -> Result<(), StoreError>
//! store.write_definitions(&[DefinitionChange]) -> Result<(), StoreError> // atomic batch
//! store.definitions(kind: DefinitionKind) -> Result<Vec<(String, Vec<u8>)>, StoreError>
//! store.next_id(counter: &str) -> Result<u64, StoreError>            // 1, 2, 3, ...
//! // messages, through the group-commit loop
//! store.submit(op: WriteOp) -> Ticket                                 // never blocks on I/O
//! store.durability() -> watch::Receiver<Durability>                   // { synced, poisoned }
//! store.wait_durable(ticket: Ticket).await -> Result<(), StoreError>  // convenience
//! // recovery and paging
//! store.queue_index(queue_id: u64) -> Result<Vec<u64>, StoreError>   // stored seqs, in order
//! store.queue_index_entries(queue_id) -> Result<Vec<(u64, IndexEntry)>, _> // + priority, body length
//! store.delivered_mark(queue_id: u64) -> u64                            // seqs <= it were delivered
//! store.raise_delivered(queue_id: u64, seq: u64) -> Result<(), StoreError>  // before delivering
//! store.forget_delivered(queue_id: u64) -> Result<(), StoreError>       // queue deleted
//! store.settle_delivered(queue_id: u64, seq: u64) -> Result<(), StoreError> // exact, at stop
//! store.stored_queue_ids() -> Result<Vec<u64>, StoreError>
//! store.read_message(queue_id: u64, seq: u64) -> Result<Option<Bytes>, StoreError>
//! store.read_messages(queue_id: u64, seqs: &[u64]) -> Result<Vec<Option<Bytes>>, StoreError>
//! store.read_range(queue_id: u64, from_seq: u64, limit: usize) -> Result<Vec<(u64, Bytes)>, StoreError>
//! // held (delayed) messages, see `held.rs`
//! store.due_held(hold_id, after: Option<HeldKey>, due_by: u64, limit) -> Result<Vec<(HeldKey, Bytes)>, _>
//! store.first_held(hold_id) -> Result<Option<HeldKey>, StoreError>
//! store.for_each_held(|key: HeldKey, durable: bool| ..) -> Result<(), StoreError>  // recovery
//! // operations
//! store.stats() -> StoreStats
//! store.close() -> Result<(), StoreError>   // writes what is pending, stops threads, flushes
//! ```
//!
//! [`WriteOp`] is `Put { queue_id, seq, value }` (fsynced before its ticket is synced),
//! `PutTransient { .. }` (a paged-out transient body: not fsynced, not indexed),
//! `Delete { queue_id, seq }` (an ack) and
//! `DeleteQueue { queue_id }` (purge or queue delete, as range deletes), and for held
//! messages `PutHeld { key, value, durable }`, `DeleteHeld { key }`, `DeleteHold { hold_id }`. Ops apply in
//! submission order. A [`Durability`] says every ticket `<= synced` is written and, once
//! `poisoned` is `Some(t)`, that every ticket `>= t` failed for good (a write failed: the store
//! refuses writes until restart; see `commit.rs`).
//!
//! Typical use by the broker: on `queue.declare` of a durable queue, `next_id("queue")` and
//! `put_definition(Queue, name, encoded)`; on a persistent publish, `submit(Put)` and confirm
//! when `durability().synced >= ticket`; before delivering a stored message above the queue's
//! delivered watermark, `raise_delivered` (ahead, a lease at a time); on ack, `submit(Delete)`;
//! at start, `definitions(..)` then `queue_index(id)` and `delivered_mark(id)` per durable
//! queue, and `read_messages` for the bodies near each queue's head.
//!
//! # On disk
//!
//! One RocksDB database in the data directory, with the column families `meta` (definitions,
//! counters, format version), `messages` (bodies, key = queue id ++ seq, both big-endian),
//! `index` (the same keys with empty values, so recovery never reads a body), `delivered`
//! (the older format's per-message markers; emptied when such a store is opened), and
//! `held` / `held-index` (delayed exchanges' held messages, key = hold ++ due time ++ seq). Beside it,
//! `warren-delivered` holds each queue's delivered watermark (`delivered.rs`). Key layout in
//! `keys.rs`; tuning in `options.rs`.
//!
//! # Layout
//!
//! - `store.rs`: [`Store`]: open, the threads, reads, close.
//! - `commit.rs`: [`WriteOp`], [`Ticket`], [`Durability`]: the group-commit loop and the
//!   poisoned state.
//! - `delivered.rs`: the delivered watermarks and their log file.
//! - `held.rs`: [`HeldKey`] and the reads of held (delayed) messages.
//! - `definitions.rs`: [`DefinitionKind`] and the definition and counter methods.
//! - `reclaim.rs`: compactions that give deleted messages' disk space back.
//! - `keys.rs`: the byte layout of every key.
//! - `options.rs`: [`StoreOptions`] and the RocksDB options derived from them.
//! - `stats.rs`: [`StoreStats`] counters.
//! - `error.rs`: [`StoreError`].
//!
//! # Fault injection
//!
//! With the `fault-injection` feature (and in this crate's unit tests),
//! `StoreOptions::fail_writes_after` makes the commit loop fail every write after the given
//! number of batches, to exercise the poisoned state. (Making the data directory read-only does
//! not work in tests: they run as root, for whom permissions do not stop writes.)

mod commit;
mod definitions;
mod delivered;
mod error;
mod held;
mod keys;
mod options;
mod reclaim;
mod stats;
mod store;

pub use commit::{Durability, IndexEntry, Ticket, TicketStatus, WriteOp};
pub use definitions::{DefinitionChange, DefinitionKind};
pub use error::StoreError;
pub use held::HeldKey;
pub use options::StoreOptions;
pub use stats::StoreStats;
pub use store::Store;
