//! [`StoreOptions`] and the RocksDB tuning derived from them.
//!
//! The public struct holds the few knobs an operator may turn; [`rocks_options`] turns them into
//! RocksDB `Options` for the database and each column family. The choices, and why:
//!
//! - **Memory is bounded**: one LRU block cache (default 32 MiB) shared by every column family,
//!   with index and filter blocks charged to it; memtables capped per column family and, in
//!   total, by `db_write_buffer_size`. The broker's RSS target is under 150 MiB with a backlog of
//!   500k messages, so RocksDB gets roughly 100 MiB of it, whatever the backlog.
//! - **WAL on, synced only when needed**: the commit loop sets `sync = true` only on batches
//!   holding a `Put`. `max_total_wal_size` forces the rarely written column family (`meta`)
//!   to flush so old WAL files do not pin disk space.
//! - **Bodies in blob files** (`messages`): values of 256 bytes or more go to blob files, written
//!   once at flush and not rewritten by level compaction as a backlog ages; SST files then hold
//!   keys and blob pointers only, so compactions (and reclaim) touch little data.
//! - **A separate `index` column family** (key only, empty value) lets recovery list a queue
//!   without touching bodies: RocksDB iterators load blob values eagerly unless
//!   `allow_unprepared_value` is set, which the Rust binding does not expose.
//! - **Reclaim**: deleted messages free disk only once compaction drops them. A deletion-triggered
//!   compaction collector marks tombstone-heavy SST files, and the store's reclaim thread runs a
//!   manual `compact_range` over a queue's deleted range after many deletes or a `DeleteQueue`
//!   (see `reclaim.rs`).
//!
//! Measured on the 2-core development VM (2026-11; RocksDB built with -O3):
//!
//! - Group commit (`benches/commit.rs`): 1000 `Put`s of 1 KiB synced in 4.9 ms (about 210k
//!   puts/s, 976 puts per fsync); one `Put` alone 0.24 ms (about 4,300 fsyncs/s).
//! - Recovery (`benches/recovery.rs`): reopen of a 1,000,000 x 1 KiB queue 10-20 ms, then
//!   `queue_index` 220-235 ms. Listing the same queue through `messages` (which loads every
//!   blob) took 2.4 s, hence the `index` column family.
//! - Reclaim (`examples/reclaim.rs`): 500k x 1 KiB published (550-630 MiB on disk), then
//!   consumed and acked: the data directory is back to 0.3-0.5 MiB within 5 s. Without the
//!   reclaim thread 540 MiB stayed after a minute.
//! - Memory: RSS 85-95 MiB during that backlog with 16 MiB memtables (106-128 MiB with 32 MiB).
//!
//! With other builds loading the machine (load average 7 on 2 cores) the same benches gave
//! 14.6 ms per 1000 puts, 3.5 ms per single put and 0.76 s for reopen + index of 1M.

use std::time::Duration;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options};

/// Column family of definitions and counters.
pub(crate) const CF_META: &str = "meta";
/// Column family of message bodies.
pub(crate) const CF_MESSAGES: &str = "messages";
/// Column family listing each stored message with an empty value (recovery reads only this).
pub(crate) const CF_INDEX: &str = "index";
/// Column family of the older format's per-message "delivered" markers. Emptied when such a
/// store is opened (they become watermarks, see `delivered.rs`); kept so that the database
/// opens with the column families it was created with.
pub(crate) const CF_DELIVERED: &str = "delivered";
/// Column family of held (delayed) messages: key = hold id ++ due time ++ seq (see
/// `keys.rs`), value = the message as the broker encoded it. Bodies in blob files, as in
/// `messages`.
pub(crate) const CF_HELD: &str = "held";
/// The keys of `held` with a one-byte value (durable or not), so recovery counts and sorts
/// held messages without loading a body.
pub(crate) const CF_HELD_INDEX: &str = "held-index";

const MIB: usize = 1024 * 1024;

/// Tuning of a [`Store`](crate::Store). Start from `StoreOptions::default()` and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Size of the block cache shared by all column families. Default 32 MiB.
    pub block_cache_bytes: usize,
    /// Memtable size of the `messages` column family. Default 16 MiB (32 MiB measured +15 MiB
    /// of RSS with a 500k-message backlog for no gain while fsync bounds throughput).
    pub write_buffer_bytes: usize,
    /// Memtables of the `messages` column family (one active, the rest flushing). Default 3.
    pub max_write_buffer_number: i32,
    /// Total memtable memory across column families before RocksDB flushes. Default 48 MiB.
    pub total_write_buffer_bytes: usize,
    /// Store message bodies of at least `min_blob_size` bytes in blob files. Default true.
    pub blob_files: bool,
    /// Smallest body stored in a blob file. Default 256 bytes.
    pub min_blob_size: u64,
    /// Largest `WriteBatch` the commit loop builds; a longer backlog of pending writes is
    /// written as several batches in a row (each still drains everything it can hold).
    /// Default 32 MiB.
    pub max_batch_bytes: usize,
    /// Compact a queue's deleted range as soon as this many of its messages were deleted since
    /// the last reclaim. Default 4,194,304: compacting while a backlog drains cost ~10 % of
    /// the drain (a 500k x 1 KiB drain went from 319-361k to 366-384k msg/s, broker RSS peak
    /// from up to 159 to 139 MB, with this deferred); the periodic check below still gives
    /// the disk back within ~10 s of the acks stopping.
    pub reclaim_after_deletes: u64,
    /// How often the reclaim check runs for queues below `reclaim_after_deletes`. Default 10 s.
    pub reclaim_interval: Duration,
    /// The periodic check compacts queues with at least this many deletes (and queues whose
    /// acks stopped since the previous check, whatever their count). Default 16,384.
    pub reclaim_min_deletes: u64,
    /// RocksDB background threads (flushes and compactions). Default 2.
    pub max_background_jobs: i32,
    /// Fault injection: the commit loop's writes succeed for this many batches, then every
    /// write fails (the store becomes poisoned). Only with the `fault-injection` feature.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fail_writes_after: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            block_cache_bytes: 32 * MIB,
            write_buffer_bytes: 16 * MIB,
            max_write_buffer_number: 3,
            total_write_buffer_bytes: 48 * MIB,
            blob_files: true,
            min_blob_size: 256,
            max_batch_bytes: 32 * MIB,
            reclaim_after_deletes: 1 << 22,
            reclaim_interval: Duration::from_secs(10),
            reclaim_min_deletes: 16_384,
            max_background_jobs: 2,
            #[cfg(any(test, feature = "fault-injection"))]
            fail_writes_after: None,
        }
    }
}

/// The database options and the column family descriptors for `options`.
pub(crate) fn rocks_options(options: &StoreOptions) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(options.block_cache_bytes);

    let mut db = Options::default();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_max_background_jobs(options.max_background_jobs);
    db.set_db_write_buffer_size(options.total_write_buffer_bytes);
    db.set_max_total_wal_size(64 * MIB as u64);
    db.set_bytes_per_sync(MIB as u64);
    db.set_max_open_files(512);
    db.set_keep_log_file_num(4);
    db.set_max_log_file_size(8 * MIB);

    let meta = {
        let mut cf = column_family_base(&cache);
        cf.set_write_buffer_size(MIB);
        cf.set_max_write_buffer_number(2);
        cf
    };

    let bodies = |write_buffer: usize, buffers: i32| {
        let mut cf = column_family_base(&cache);
        cf.set_write_buffer_size(write_buffer);
        cf.set_max_write_buffer_number(buffers);
        if options.blob_files {
            cf.set_enable_blob_files(true);
            cf.set_min_blob_size(options.min_blob_size);
            cf.set_blob_file_size(64 * MIB as u64);
            cf.set_blob_compression_type(DBCompressionType::Lz4);
            cf.set_enable_blob_gc(true);
        }
        cf
    };
    let messages = bodies(options.write_buffer_bytes, options.max_write_buffer_number);

    let small_keys = |write_buffer: usize| {
        let mut cf = column_family_base(&cache);
        cf.set_write_buffer_size(write_buffer);
        cf.set_max_write_buffer_number(2);
        cf
    };

    let families = vec![
        ColumnFamilyDescriptor::new(CF_META, meta),
        ColumnFamilyDescriptor::new(CF_MESSAGES, messages),
        ColumnFamilyDescriptor::new(CF_INDEX, small_keys(8 * MIB)),
        ColumnFamilyDescriptor::new(CF_DELIVERED, small_keys(4 * MIB)),
        // Held messages are written once and read once when due: small memtables, so that
        // millions of them cost disk, not RAM.
        ColumnFamilyDescriptor::new(CF_HELD, bodies(4 * MIB, 2)),
        ColumnFamilyDescriptor::new(CF_HELD_INDEX, small_keys(2 * MIB)),
    ];
    (db, families)
}

/// Settings shared by every column family: the shared cache, LZ4, and the deletion-triggered
/// compaction that makes tombstone-heavy files compact early.
fn column_family_base(cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);

    let mut cf = Options::default();
    cf.set_block_based_table_factory(&table);
    cf.set_compression_type(DBCompressionType::Lz4);
    // An SST file with 4,096 tombstones among 8,192 consecutive entries (or half its entries)
    // is marked for compaction, so drained queues stop occupying disk without a manual step.
    cf.add_compact_on_deletion_collector_factory(8_192, 4_096, 0.5);
    cf
}
