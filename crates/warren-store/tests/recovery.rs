//! Recovery from a process crash (no `close`, no memtable flush: only the WAL), from a torn
//! WAL tail, and refusal of a data directory written in an unknown format.
//!
//! The crash tests run a child copy of this test binary that writes, waits for its tickets to
//! be synced, and aborts; the parent then reopens the directory.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use warren_store::{Store, StoreError, StoreOptions, WriteOp};

const CHILD_ENV: &str = "WARREN_STORE_CRASH_CHILD";

/// In the child: 1,000 synced puts to queue 3, the delivered watermark at 599, acks of
/// 0..100; abort.
fn crash_child(dir: &Path) -> ! {
    let store = Store::open(dir, StoreOptions::default()).expect("child open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut last = None;
    for seq in 0..1_000u64 {
        last = Some(store.submit(WriteOp::Put {
            queue_id: 3,
            seq,
            value: Bytes::from(format!("body {seq}")),
            index: Default::default(),
        }));
    }
    // Separate batches (so separate WAL records): the puts, then the acks.
    runtime
        .block_on(store.wait_durable(last.expect("ticket")))
        .expect("puts synced");
    store.raise_delivered(3, 599).expect("raise");
    for seq in 0..100 {
        last = Some(store.submit(WriteOp::Delete { queue_id: 3, seq }));
    }
    runtime
        .block_on(store.wait_durable(last.expect("ticket")))
        .expect("synced");
    std::process::abort();
}

/// Runs `test` of this binary as a crashing child writing into `dir`.
fn run_crashing_child(test: &str, dir: &Path) {
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, dir)
        .status()
        .expect("run child");
    assert!(!status.success(), "the child should have aborted");
}

fn child_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_ENV).map(Into::into)
}

#[test]
fn synced_writes_survive_a_process_crash() {
    if let Some(dir) = child_dir() {
        crash_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    run_crashing_child("synced_writes_survive_a_process_crash", dir.path());

    let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen after crash");
    let index = store.queue_index(3).expect("index");
    assert_eq!(index, (100..1_000).collect::<Vec<_>>());
    assert_eq!(
        store.delivered_mark(3),
        599,
        "the watermark survives the kill"
    );
    assert_eq!(
        store.read_message(3, 999).expect("read"),
        Some(Bytes::from("body 999"))
    );
}

#[test]
fn a_torn_wal_tail_loses_at_most_the_torn_write() {
    if let Some(dir) = child_dir() {
        crash_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    run_crashing_child("a_torn_wal_tail_loses_at_most_the_torn_write", dir.path());

    // Tear the newest WAL file as a power cut in the middle of its last write would.
    let wal = std::fs::read_dir(dir.path())
        .expect("read dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .max()
        .expect("a WAL file");
    let length = std::fs::metadata(&wal).expect("wal").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open wal");
    file.set_len(length.saturating_sub(7)).expect("truncate");
    drop(file);

    let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen after tear");
    let index = store.queue_index(3).expect("index");
    // The last WAL record may be gone. The acks were submitted in order after the puts were
    // synced, and the commit loop may have cut them into more than one batch (it takes what
    // has arrived when it wakes), so what survives is a prefix of the acks: the queue holds
    // `first..1000` for some `first` up to 100. The puts before them are intact.
    let seqs = index;
    let first = seqs.first().copied().unwrap_or(0);
    assert!(
        first <= 100 && seqs == (first..1_000).collect::<Vec<_>>(),
        "unexpected recovery: {} entries from {:?}",
        seqs.len(),
        seqs.first()
    );
}

#[test]
fn a_store_in_an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    Store::open(dir.path(), StoreOptions::default())
        .expect("create")
        .close()
        .expect("close");
    {
        let mut options = rocksdb::Options::default();
        options.create_missing_column_families(true);
        // Every column family the store made (RocksDB refuses to open fewer).
        let families = rocksdb::DB::list_cf(&options, dir.path()).expect("list column families");
        let db = rocksdb::DB::open_cf(&options, dir.path(), &families).expect("raw open");
        let meta = db.cf_handle("meta").expect("meta");
        db.put_cf(meta, b"format", 3u32.to_be_bytes())
            .expect("write format");
    }
    let error = Store::open(dir.path(), StoreOptions::default()).expect_err("refused");
    assert!(
        matches!(
            error,
            StoreError::UnsupportedFormat {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{error}"
    );
}
