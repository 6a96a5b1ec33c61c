//! The store's error type, [`StoreError`].
//!
//! Every variant carries the data directory (or the key) it concerns and reads as a sentence an
//! operator can act on. The server maps these to AMQP replies in one place (a failed persistent
//! publish is a `basic.nack`; a failed definition write is a channel or connection error).

use std::path::PathBuf;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The delivered-watermark log (`warren-delivered`) could not be read or written.
    #[error(
        "cannot {operation} the delivered-watermark log {path}: {source} (check the disk under the data directory)"
    )]
    DeliveredLog {
        /// What the store was doing, e.g. "append".
        operation: &'static str,
        /// The log file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        /// The directory we tried to create.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// RocksDB refused to open the data directory (locked by another process, corrupt, ...).
    #[error(
        "cannot open the RocksDB store in {path}: {source} (is another warren running on this data directory?)"
    )]
    Open {
        /// The data directory.
        path: PathBuf,
        /// RocksDB's reason.
        #[source]
        source: rocksdb::Error,
    },

    /// A RocksDB read or write failed.
    #[error("RocksDB {operation} failed in {path}: {source}")]
    Rocks {
        /// What the store was doing, e.g. "write definition".
        operation: &'static str,
        /// The data directory.
        path: PathBuf,
        /// RocksDB's reason.
        #[source]
        source: rocksdb::Error,
    },

    /// The data directory was written by a different (newer) on-disk format.
    #[error(
        "the store in {path} has on-disk format version {found}; this build reads version {supported}: upgrade warren or point --data-dir elsewhere"
    )]
    UnsupportedFormat {
        /// The data directory.
        path: PathBuf,
        /// The version found on disk.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },

    /// A column family the store creates at open is missing (a bug, or a foreign database).
    #[error("column family {name:?} is missing from the store in {path}")]
    MissingColumnFamily {
        /// The data directory.
        path: PathBuf,
        /// The column family.
        name: &'static str,
    },

    /// A stored key or value does not have the shape the store writes.
    #[error("corrupt {what} in {path}: key {key:02x?}")]
    Corrupt {
        /// What was being read, e.g. "message key".
        what: &'static str,
        /// The data directory.
        path: PathBuf,
        /// The offending key.
        key: Vec<u8>,
    },

    /// A definition key was stored with bytes that are not UTF-8.
    #[error("definition key {key:02x?} in {path} is not UTF-8")]
    NonUtf8Key {
        /// The data directory.
        path: PathBuf,
        /// The raw key (without the kind prefix).
        key: Vec<u8>,
    },

    /// A write of the group-commit loop failed earlier; the store refuses writes until restart.
    #[error(
        "the store in {path} is poisoned: a write failed at ticket {first_failed}; persistent publishes are refused until warren is restarted"
    )]
    Poisoned {
        /// The data directory.
        path: PathBuf,
        /// The first ticket that failed.
        first_failed: u64,
    },

    /// The store was closed and takes no more writes.
    #[error("the store in {path} is closed")]
    Closed {
        /// The data directory.
        path: PathBuf,
    },

    /// The operating system would not start a store thread.
    #[error("cannot start the store's {thread} thread: {source}")]
    SpawnThread {
        /// The thread's name.
        thread: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A store thread panicked (a bug); its writes may be lost.
    #[error("the store's {thread} thread panicked")]
    ThreadPanicked {
        /// The thread's name.
        thread: &'static str,
    },

    /// A failure injected by `StoreOptions::fail_writes_after` (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    #[error("injected write failure after {after_batches} batches (fault injection)")]
    InjectedFault {
        /// How many batches had succeeded.
        after_batches: u64,
    },
}
