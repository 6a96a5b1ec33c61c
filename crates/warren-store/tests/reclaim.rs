//! Deleted messages give their disk space back: acked backlogs and deleted queues.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use warren_store::{Store, StoreOptions, WriteOp};

fn blob_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".blob"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

/// An incompressible body.
fn body(seq: u64) -> Bytes {
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(1024);
    while bytes.len() < 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(bytes)
}

fn until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn drained_and_deleted_queues_give_their_disk_space_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StoreOptions::default();
    // Small memtables so bodies reach blob files; only the idle-queue rule may trigger.
    options.write_buffer_bytes = 1024 * 1024;
    options.reclaim_after_deletes = u64::MAX;
    options.reclaim_min_deletes = u64::MAX;
    options.reclaim_interval = Duration::from_millis(100);
    let store = Store::open(dir.path(), options).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    // In waves, so that there are many writes: RocksDB switches a full memtable (and flushes
    // it) on the write after the one that filled it.
    for queue_id in [1, 2] {
        for wave in 0..10 {
            let mut last = None;
            for seq in wave * 400..(wave + 1) * 400 {
                last = Some(store.submit(WriteOp::Put {
                    queue_id,
                    seq,
                    value: body(seq),
                    index: Default::default(),
                }));
            }
            runtime
                .block_on(store.wait_durable(last.expect("ticket")))
                .expect("synced");
        }
    }
    let nudge = store.submit(WriteOp::Delete {
        queue_id: 1,
        seq: u64::MAX,
    });
    runtime.block_on(store.wait_durable(nudge)).expect("synced");
    assert!(
        until(Duration::from_secs(10), || blob_bytes(dir.path())
            > 4_000_000),
        "bodies should have been flushed to blob files"
    );

    // Queue 1 is consumed and acked; queue 2 is deleted.
    for seq in 0..4_000 {
        store.submit(WriteOp::Delete { queue_id: 1, seq });
    }
    let last = store.submit(WriteOp::DeleteQueue { queue_id: 2 });
    runtime.block_on(store.wait_durable(last)).expect("written");

    assert!(
        until(Duration::from_secs(20), || blob_bytes(dir.path()) == 0),
        "blob files still hold {} bytes, {:?}",
        blob_bytes(dir.path()),
        store.stats()
    );
    // One compaction for the deleted queue, one for the drained queue once its acks stopped.
    assert!(
        until(Duration::from_secs(5), || store.stats().reclaim_compactions
            >= 2),
        "{:?}",
        store.stats()
    );
    assert!(store.queue_index(1).expect("index").is_empty());
    assert!(store.queue_index(2).expect("index").is_empty());
}
