//! Counters for the management API and Prometheus.
//!
//! The commit loop and the reclaim thread bump [`Counters`] (relaxed atomics, no locks); readers
//! take a [`StoreStats`] snapshot with `Store::stats`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the store's counters since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `WriteBatch`es written by the commit loop.
    pub batches: u64,
    /// Of those, the ones written with `sync = true` (one fsync of the WAL each).
    pub fsyncs: u64,
    /// `WriteOp`s applied.
    pub ops: u64,
    /// Message bytes written (the values of `Put`s).
    pub bytes: u64,
    /// `Put`s applied.
    pub puts: u64,
    /// `Delete`s applied.
    pub deletes: u64,
    /// `WriteOp`s dropped because the store was poisoned or closed.
    pub dropped_ops: u64,
    /// Manual compactions run to reclaim the disk space of deleted messages.
    pub reclaim_compactions: u64,
    /// The highest ticket handed out by `submit`.
    pub submitted: u64,
    /// The durability frontier (see `Durability::synced`).
    pub synced: u64,
    /// Whether the store is poisoned.
    pub poisoned: bool,
}

/// The live counters behind [`StoreStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) ops: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) dropped_ops: AtomicU64,
    pub(crate) reclaim_compactions: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads the counters (each on its own: the snapshot is not atomic as a whole).
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            batches: self.batches.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
            dropped_ops: self.dropped_ops.load(Ordering::Relaxed),
            reclaim_compactions: self.reclaim_compactions.load(Ordering::Relaxed),
            submitted: 0,
            synced: 0,
            poisoned: false,
        }
    }
}
