//! [`Store`]: opening the database, the threads it runs, the read paths and closing.
//!
//! A `Store` is a cheap handle (`Arc` inside) shared by the whole broker. It owns:
//!
//! - the RocksDB database (`Arc<DB>`, shared with the two threads below);
//! - the commit thread (`commit.rs`), fed by [`Store::submit`];
//! - the reclaim thread (`reclaim.rs`), fed by the commit thread;
//! - the delivered watermarks (`delivered.rs`), written by the dispatching thread itself.
//!
//! Reads ([`Store::queue_index`], [`Store::read_message`], [`Store::read_messages`],
//! [`Store::read_range`]) and the
//! definition writes (`definitions.rs`) run on the caller's thread and block on disk: the broker
//! calls them at recovery or from `spawn_blocking`, not on the publish path.
//! Dropping the last handle closes the store like [`Store::close`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use rocksdb::{ColumnFamily, DB, DBRawIterator, FlushOptions, ReadOptions, WriteOptions};
use tokio::sync::watch;

use crate::commit::{
    CommitLoop, CommitShared, Durability, IndexEntry, Ticket, TicketStatus, WriteOp,
};
use crate::delivered::DeliveredLog;
use crate::error::StoreError;
use crate::keys::{
    FORMAT_KEY, FORMAT_VERSION, FORMAT_VERSION_MARKERS, decode_message_key, message_key,
    queue_range,
};
use crate::options::{
    CF_DELIVERED, CF_HELD, CF_HELD_INDEX, CF_INDEX, CF_MESSAGES, CF_META, StoreOptions,
    rocks_options,
};
use crate::reclaim::{self, ReclaimTracker};
use crate::stats::{Counters, StoreStats};

/// Warren's persistent store. Clone it freely: clones share one database and commit loop.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<DB>,
    path: PathBuf,
    commit: Arc<CommitShared>,
    delivered: DeliveredLog,
    counters: Arc<Counters>,
    threads: Mutex<Threads>,
    /// Serialises `next_id`'s read-increment-write.
    id_lock: Mutex<()>,
    sync_write: WriteOptions,
}

/// The store's threads, taken out by the first `close`.
struct Threads {
    commit: Option<JoinHandle<()>>,
    reclaim: Option<JoinHandle<()>>,
    stop_reclaim: Arc<AtomicBool>,
    closed: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.commit.durability())
            .finish_non_exhaustive()
    }
}

/// Looks up a column family the store opened.
pub(crate) fn column_family<'a>(
    db: &'a DB,
    path: &Path,
    name: &'static str,
) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or_else(|| StoreError::MissingColumnFamily {
            path: path.to_path_buf(),
            name,
        })
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and starts its commit and reclaim threads.
    ///
    /// Opening replays RocksDB's WAL: every write whose ticket was reported synced before a
    /// crash is there afterwards.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.to_path_buf();
        let (db_options, families) = rocks_options(&options);
        let db = DB::open_cf_descriptors(&db_options, dir, families).map_err(|source| {
            StoreError::Open {
                path: path.clone(),
                source,
            }
        })?;
        let db = Arc::new(db);
        let mut sync_write = WriteOptions::default();
        sync_write.set_sync(true);
        let format = check_format(&db, &path, &sync_write)?;
        let delivered = open_delivered(&db, &path, format, &sync_write)?;

        let counters = Arc::new(Counters::default());
        let commit = Arc::new(CommitShared::new(path.clone(), Arc::clone(&counters)));
        let (requests, compactions) = std::sync::mpsc::channel();
        let stop_reclaim = Arc::new(AtomicBool::new(false));

        let reclaim = {
            let (db, path, stop, counters) = (
                Arc::clone(&db),
                path.clone(),
                Arc::clone(&stop_reclaim),
                Arc::clone(&counters),
            );
            std::thread::Builder::new()
                .name("warren-store-reclaim".into())
                .spawn(move || reclaim::run(db, path, compactions, stop, counters))
                .map_err(|source| StoreError::SpawnThread {
                    thread: "reclaim",
                    source,
                })?
        };
        let commit_loop = CommitLoop::new(
            Arc::clone(&db),
            Arc::clone(&commit),
            ReclaimTracker::new(&options, requests),
            &options,
        );
        let commit_thread = std::thread::Builder::new()
            .name("warren-store-commit".into())
            .spawn(move || commit_loop.run());
        let commit_thread = match commit_thread {
            Ok(handle) => handle,
            Err(source) => {
                // The reclaim thread exits once its request sender (moved into the closure that
                // never ran, now dropped) is gone.
                let _ = reclaim.join();
                return Err(StoreError::SpawnThread {
                    thread: "commit",
                    source,
                });
            }
        };

        tracing::info!(data_dir = %path.display(), "message store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                path,
                commit,
                delivered,
                counters,
                threads: Mutex::new(Threads {
                    commit: Some(commit_thread),
                    reclaim: Some(reclaim),
                    stop_reclaim,
                    closed: false,
                }),
                id_lock: Mutex::new(()),
                sync_write,
            }),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues `op` for the group-commit loop and returns at once with its [`Ticket`].
    ///
    /// Never blocks on I/O. Watch [`Store::durability`] (or await [`Store::wait_durable`]) to
    /// learn when the ticket is written. After poisoning or `close` the op is refused: its
    /// ticket is immediately reported failed.
    pub fn submit(&self, op: WriteOp) -> Ticket {
        self.inner.commit.submit(op)
    }

    /// The durability frontier: every ticket `<= synced` is written (a `Put`: fsynced); if
    /// `poisoned` is `Some(t)`, every ticket `>= t` has failed and will never be written.
    pub fn durability(&self) -> watch::Receiver<Durability> {
        self.inner.commit.subscribe()
    }

    /// Waits until `ticket` is written; `Err` if it failed (store poisoned or closed).
    pub async fn wait_durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut durability = self.durability();
        let status = match durability
            .wait_for(|now| now.status(ticket) != TicketStatus::Pending)
            .await
        {
            Ok(now) => now.status(ticket),
            Err(_) => TicketStatus::Failed,
        };
        match status {
            TicketStatus::Synced => Ok(()),
            TicketStatus::Pending | TicketStatus::Failed => Err(self.failure()),
        }
    }

    /// The error describing why tickets fail now.
    fn failure(&self) -> StoreError {
        let durability = self.inner.commit.durability();
        match durability.poisoned {
            Some(first_failed) if self.inner.commit.is_poisoned() => StoreError::Poisoned {
                path: self.inner.path.clone(),
                first_failed,
            },
            _ => StoreError::Closed {
                path: self.inner.path.clone(),
            },
        }
    }

    /// A snapshot of the store's counters.
    pub fn stats(&self) -> StoreStats {
        let durability = self.inner.commit.durability();
        StoreStats {
            submitted: self.inner.commit.last_ticket(),
            synced: durability.synced,
            poisoned: self.inner.commit.is_poisoned(),
            ..self.inner.counters.snapshot()
        }
    }

    /// The seqs of the messages stored for `queue_id`, in order (see
    /// [`Store::queue_index_entries`]).
    pub fn queue_index(&self, queue_id: u64) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .queue_index_entries(queue_id)?
            .into_iter()
            .map(|(seq, _)| seq)
            .collect())
    }

    /// Recovery: the seqs of the messages stored for `queue_id`, in order, with their
    /// [`IndexEntry`]. Reads only the `index` column family (no bodies). Which of them were
    /// delivered before: [`Store::delivered_mark`].
    pub fn queue_index_entries(&self, queue_id: u64) -> Result<Vec<(u64, IndexEntry)>, StoreError> {
        let mut index = self.queue_iterator(CF_INDEX, queue_id, 0)?;
        let mut out = Vec::new();
        while let (Some(key), Some(value)) = (index.key(), index.value()) {
            out.push((self.seq_of(key)?, IndexEntry::decode(value)));
            index.next();
        }
        self.finish(&index, "read queue index")?;
        Ok(out)
    }

    /// The delivered watermark of `queue_id`: every message of the queue with a seq at or
    /// below it may have been delivered (recovery sets `redelivered`); 0 if none was.
    pub fn delivered_mark(&self, queue_id: u64) -> u64 {
        self.inner.delivered.mark(queue_id)
    }

    /// Raises the delivered watermark of `queue_id` to `seq`. Call it *before* the delivery
    /// of a stored message with a seq above the current mark leaves the broker: on return the
    /// mark survives a kill of the process (not a power loss: it is not fsynced). One small
    /// `write(2)`, no RocksDB call; callers raise it ahead of their deliveries (a lease) so
    /// that it is rare.
    pub fn raise_delivered(&self, queue_id: u64, seq: u64) -> Result<(), StoreError> {
        self.inner.delivered.raise(queue_id, seq)
    }

    /// Whether the previous run stopped cleanly (its `close` completed): false after a
    /// crash or kill -9 (and on a new data directory).
    pub fn last_stop_was_clean(&self) -> bool {
        self.inner.delivered.was_clean()
    }

    /// Drops the delivered watermark of a deleted queue.
    pub fn forget_delivered(&self, queue_id: u64) -> Result<(), StoreError> {
        self.inner.delivered.set(queue_id, 0)
    }

    /// Sets the delivered watermark of `queue_id` to exactly `seq`, lower than a lease
    /// may have raised it: at a clean stop, the highest seq the queue really delivered, so
    /// that a clean restart flags only messages that were delivered.
    pub fn settle_delivered(&self, queue_id: u64, seq: u64) -> Result<(), StoreError> {
        self.inner.delivered.set(queue_id, seq)
    }

    /// The ids of the queues that have messages stored (to find queues whose definition is
    /// gone, e.g. after a crash between `DeleteQueue` and `delete_definition`).
    pub fn stored_queue_ids(&self) -> Result<Vec<u64>, StoreError> {
        let db = &*self.inner.db;
        let mut iter = db.raw_iterator_cf(column_family(db, &self.inner.path, CF_INDEX)?);
        let mut ids = Vec::new();
        iter.seek_to_first();
        while let Some(key) = iter.key() {
            let (queue_id, _) = decode_message_key(key).ok_or_else(|| self.corrupt(key))?;
            ids.push(queue_id);
            match queue_id.checked_add(1) {
                Some(next) => iter.seek(message_key(next, 0)),
                None => break,
            }
        }
        self.finish(&iter, "list stored queues")?;
        Ok(ids)
    }

    /// Reads message `seq` of `queue_id`, if stored.
    pub fn read_message(&self, queue_id: u64, seq: u64) -> Result<Option<Bytes>, StoreError> {
        let db = &*self.inner.db;
        db.get_cf(
            column_family(db, &self.inner.path, CF_MESSAGES)?,
            message_key(queue_id, seq),
        )
        .map(|value| value.map(Bytes::from))
        .map_err(|source| self.rocks("read message", source))
    }

    /// Reads the messages `seqs` of `queue_id` (ascending; for paging bodies in near the
    /// queue head): one entry per seq, `None` where nothing is stored.
    ///
    /// One forward scan from the first seq to the last, not a point lookup per seq: a
    /// backlog's messages sit in many level-0 files after a burst of publishes, and a scan
    /// merges them once while each point lookup would search them all (measured: a
    /// `MultiGet` of the same keys drained the S7 backlog about 20 % slower). Stored keys
    /// between the wanted ones (delivered, unacked messages) are stepped over.
    pub fn read_messages(
        &self,
        queue_id: u64,
        seqs: &[u64],
    ) -> Result<Vec<Option<Bytes>>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            return Ok(out);
        };
        let mut iter = self.queue_iterator(CF_MESSAGES, queue_id, first)?;
        for &seq in seqs {
            let mut found = None;
            while let Some(key) = iter.key() {
                let at = self.seq_of(key)?;
                if at > seq || at > last {
                    break;
                }
                if at == seq {
                    found = iter.value().map(Bytes::copy_from_slice);
                    iter.next();
                    break;
                }
                iter.next();
            }
            out.push(found);
        }
        self.finish(&iter, "read messages")?;
        Ok(out)
    }

    /// Reads up to `limit` messages of `queue_id` with seq `>= from_seq`, in seq order (for
    /// paging bodies in near the queue head).
    pub fn read_range(
        &self,
        queue_id: u64,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let mut iter = self.queue_iterator(CF_MESSAGES, queue_id, from_seq)?;
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            out.push((self.seq_of(key)?, Bytes::copy_from_slice(value)));
            iter.next();
        }
        self.finish(&iter, "read messages")?;
        Ok(out)
    }

    /// Writes everything submitted so far, stops the commit and reclaim threads, syncs the WAL
    /// and flushes the memtables (so the next open has no WAL to replay). Later submissions
    /// fail; reads keep working. Calling it again does nothing.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }

    /// A raw iterator over `queue_id`'s keys in `cf` from `from_seq`, positioned on the first.
    fn queue_iterator(
        &self,
        cf: &'static str,
        queue_id: u64,
        from_seq: u64,
    ) -> Result<DBRawIterator<'_>, StoreError> {
        let db = &*self.inner.db;
        let (_, end) = queue_range(queue_id);
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(end.to_vec());
        if cf != CF_MESSAGES {
            // A one-off recovery scan: do not evict the hot blocks.
            read.fill_cache(false);
        }
        let mut iter = db.raw_iterator_cf_opt(column_family(db, &self.inner.path, cf)?, read);
        iter.seek(message_key(queue_id, from_seq));
        Ok(iter)
    }

    fn seq_of(&self, key: &[u8]) -> Result<u64, StoreError> {
        decode_message_key(key)
            .map(|(_, seq)| seq)
            .ok_or_else(|| self.corrupt(key))
    }

    fn finish(&self, iter: &DBRawIterator<'_>, operation: &'static str) -> Result<(), StoreError> {
        iter.status()
            .map_err(|source| self.rocks(operation, source))
    }

    fn corrupt(&self, key: &[u8]) -> StoreError {
        StoreError::Corrupt {
            what: "message key",
            path: self.inner.path.clone(),
            key: key.to_vec(),
        }
    }

    pub(crate) fn rocks(&self, operation: &'static str, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            operation,
            path: self.inner.path.clone(),
            source,
        }
    }

    pub(crate) fn db(&self) -> &DB {
        &self.inner.db
    }

    pub(crate) fn meta(&self) -> Result<&ColumnFamily, StoreError> {
        column_family(&self.inner.db, &self.inner.path, CF_META)
    }

    pub(crate) fn sync_write(&self) -> &WriteOptions {
        &self.inner.sync_write
    }

    pub(crate) fn id_lock(&self) -> &Mutex<()> {
        &self.inner.id_lock
    }
}

impl Inner {
    fn close(&self) -> Result<(), StoreError> {
        let mut threads = self.threads.lock();
        if threads.closed {
            return Ok(());
        }
        threads.closed = true;
        self.commit.request_close();
        let commit_result = match threads.commit.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(StoreError::ThreadPanicked { thread: "commit" }),
            _ => Ok(()),
        };
        threads.stop_reclaim.store(true, Ordering::Release);
        // The commit loop owned the request sender: the reclaim thread's channel is closed now.
        let reclaim_result = match threads.reclaim.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(StoreError::ThreadPanicked { thread: "reclaim" }),
            _ => Ok(()),
        };
        commit_result?;
        reclaim_result?;
        if let Some(first_failed) = self.commit.durability().poisoned
            && self.commit.is_poisoned()
        {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
                first_failed,
            });
        }
        let rocks = |operation, source| StoreError::Rocks {
            operation,
            path: self.path.clone(),
            source,
        };
        self.db
            .flush_wal(true)
            .map_err(|source| rocks("sync the WAL at close", source))?;
        self.delivered.sync()?;
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        for name in [
            CF_META,
            CF_MESSAGES,
            CF_INDEX,
            CF_DELIVERED,
            CF_HELD,
            CF_HELD_INDEX,
        ] {
            let cf = column_family(&self.db, &self.path, name)?;
            self.db
                .flush_cf_opt(cf, &flush)
                .map_err(|source| rocks("flush memtables at close", source))?;
        }
        tracing::info!(data_dir = %self.path.display(), "message store closed");
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "closing the message store on drop failed");
        }
    }
}

/// Writes the format version into a new store, or checks the one found; returns it.
fn check_format(db: &DB, path: &Path, sync_write: &WriteOptions) -> Result<u32, StoreError> {
    let rocks = |operation, source| StoreError::Rocks {
        operation,
        path: path.to_path_buf(),
        source,
    };
    let meta = column_family(db, path, CF_META)?;
    match db
        .get_cf(meta, FORMAT_KEY)
        .map_err(|source| rocks("read format version", source))?
    {
        None => db
            .put_cf_opt(meta, FORMAT_KEY, FORMAT_VERSION.to_be_bytes(), sync_write)
            .map(|()| FORMAT_VERSION)
            .map_err(|source| rocks("write format version", source)),
        Some(found) => {
            let found = <[u8; 4]>::try_from(found.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: "format version",
                    path: path.to_path_buf(),
                    key: FORMAT_KEY.to_vec(),
                })?;
            if found == FORMAT_VERSION || found == FORMAT_VERSION_MARKERS {
                Ok(found)
            } else {
                Err(StoreError::UnsupportedFormat {
                    path: path.to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                })
            }
        }
    }
}

/// Opens the delivered watermarks. A store of the older format kept one marker per delivered
/// message in the `delivered` column family: those become watermarks (the highest marked seq
/// of each queue; deliveries go in seq order, so every seq below it was delivered too), the
/// markers are range-deleted and the format version is raised, in that order, so that a crash
/// halfway repeats the migration.
fn open_delivered(
    db: &DB,
    path: &Path,
    format: u32,
    sync_write: &WriteOptions,
) -> Result<DeliveredLog, StoreError> {
    if format != FORMAT_VERSION_MARKERS {
        return DeliveredLog::open(path, std::collections::HashMap::new());
    }
    let rocks = |operation, source| StoreError::Rocks {
        operation,
        path: path.to_path_buf(),
        source,
    };
    let delivered = column_family(db, path, CF_DELIVERED)?;
    let mut marks = std::collections::HashMap::new();
    let mut iter = db.raw_iterator_cf(delivered);
    iter.seek_to_first();
    while let Some(key) = iter.key() {
        if let Some((queue_id, seq)) = decode_message_key(key) {
            let mark = marks.entry(queue_id).or_insert(0u64);
            *mark = (*mark).max(seq);
        }
        iter.next();
    }
    iter.status()
        .map_err(|source| rocks("read delivered markers", source))?;
    drop(iter);
    let migrated = marks.len();
    let log = DeliveredLog::open(path, marks)?;
    let mut batch = rocksdb::WriteBatch::default();
    batch.delete_range_cf(delivered, [0u8; 0].as_slice(), [0xFFu8; 17].as_slice());
    batch.put_cf(
        column_family(db, path, CF_META)?,
        FORMAT_KEY,
        FORMAT_VERSION.to_be_bytes(),
    );
    db.write_opt(batch, sync_write)
        .map_err(|source| rocks("migrate delivered markers", source))?;
    tracing::info!(
        data_dir = %path.display(),
        queues = migrated,
        "store format upgraded: per-message delivered markers became per-queue delivered watermarks"
    );
    Ok(log)
}
