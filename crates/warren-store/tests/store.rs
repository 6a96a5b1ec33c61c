//! Behaviour of the store against a real RocksDB in a temporary directory: every test that
//! claims durability closes the store and reopens it.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use warren_store::{
    DefinitionKind, Store, StoreError, StoreOptions, Ticket, TicketStatus, WriteOp,
};

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).expect("open store")
}

fn body(queue_id: u64, seq: u64) -> Bytes {
    Bytes::from(format!(
        "message {seq} of queue {queue_id} {}",
        "x".repeat(300)
    ))
}

fn put(queue_id: u64, seq: u64) -> WriteOp {
    WriteOp::Put {
        queue_id,
        seq,
        value: body(queue_id, seq),
        index: Default::default(),
    }
}

fn wait(store: &Store, ticket: Ticket) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(store.wait_durable(ticket))
        .expect("ticket synced");
}

#[test]
fn definitions_survive_reopen_and_are_separated_by_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store
            .put_definition(DefinitionKind::Queue, "/|orders", b"durable")
            .expect("put");
        store
            .put_definition(DefinitionKind::Queue, "/|audit", b"one")
            .expect("put");
        store
            .put_definition(DefinitionKind::Queue, "/|audit", b"two")
            .expect("replace");
        store
            .put_definition(DefinitionKind::Exchange, "/|orders", b"topic")
            .expect("put");
        store
            .put_definition(DefinitionKind::Vhost, "/", b"")
            .expect("put");
        store
            .put_definition(DefinitionKind::Queue, "/|gone", b"")
            .expect("put");
        store
            .delete_definition(DefinitionKind::Queue, "/|gone")
            .expect("delete");
        store
            .delete_definition(DefinitionKind::Queue, "/|never-there")
            .expect("deleting an absent key is fine");
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(
        store.definitions(DefinitionKind::Queue).expect("queues"),
        vec![
            ("/|audit".to_string(), b"two".to_vec()),
            ("/|orders".to_string(), b"durable".to_vec()),
        ]
    );
    assert_eq!(
        store
            .definitions(DefinitionKind::Exchange)
            .expect("exchanges"),
        vec![("/|orders".to_string(), b"topic".to_vec())]
    );
    assert_eq!(
        store.definitions(DefinitionKind::Vhost).expect("vhosts"),
        vec![("/".to_string(), Vec::new())]
    );
    assert!(
        store
            .definitions(DefinitionKind::Binding)
            .expect("bindings")
            .is_empty()
    );
}

#[test]
fn next_id_is_monotonic_per_counter_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        assert_eq!(store.next_id("queue").expect("id"), 1);
        assert_eq!(store.next_id("queue").expect("id"), 2);
        assert_eq!(store.next_id("other").expect("id"), 1);
    }
    let store = open(dir.path());
    assert_eq!(store.next_id("queue").expect("id"), 3);
    let store = Arc::new(store);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| store.next_id("queue").expect("id"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = threads
        .into_iter()
        .flat_map(|thread| thread.join().expect("thread"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (4..104).collect::<Vec<_>>(), "no id handed out twice");
}

#[test]
fn synced_puts_survive_reopen_in_seq_order_per_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let mut last = None;
        for (queue_id, seq) in [(2, 7), (1, 300), (1, 2), (2, 1), (1, 256), (3, 0)] {
            last = Some(store.submit(put(queue_id, seq)));
        }
        wait(&store, last.expect("a ticket"));
        // Dropping the last handle closes the store.
    }
    let store = open(dir.path());
    let index = |queue_id| store.queue_index(queue_id).expect("index");
    assert_eq!(index(1), vec![2, 256, 300]);
    assert_eq!(index(2), vec![1, 7]);
    assert_eq!(index(3), vec![0]);
    assert!(index(4).is_empty());
    assert_eq!(store.stored_queue_ids().expect("ids"), vec![1, 2, 3]);
    assert_eq!(
        store.read_message(1, 256).expect("read"),
        Some(body(1, 256))
    );
    assert_eq!(store.read_message(1, 3).expect("read"), None);
    let range = store.read_range(1, 3, 10).expect("range");
    assert_eq!(range, vec![(256, body(1, 256)), (300, body(1, 300))]);
    assert_eq!(
        store.read_range(1, 0, 1).expect("range"),
        vec![(2, body(1, 2))]
    );
    assert!(store.read_range(1, 301, 10).expect("range").is_empty());
    assert_eq!(
        store
            .read_messages(1, &[1, 2, 256, 299, 300])
            .expect("read"),
        vec![
            None,
            Some(body(1, 2)),
            Some(body(1, 256)),
            None,
            Some(body(1, 300))
        ]
    );
}

#[test]
fn delivered_watermarks_only_rise_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for seq in 1..=5 {
            store.submit(put(9, seq));
        }
        store.raise_delivered(9, 2).expect("raise");
        store.raise_delivered(9, 5).expect("raise");
        // Lower is a no-op (a requeued message delivered again).
        store.raise_delivered(9, 3).expect("raise");
        store.raise_delivered(10, 7).expect("raise");
        store.forget_delivered(10).expect("forget");
        assert_eq!(store.delivered_mark(9), 5);
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(store.queue_index(9).expect("index"), vec![1, 2, 3, 4, 5]);
    assert_eq!(store.delivered_mark(9), 5);
    assert_eq!(store.delivered_mark(10), 0, "forgotten with its queue");
    assert_eq!(store.delivered_mark(11), 0);
}

#[test]
fn delete_removes_the_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for seq in 1..=3 {
            store.submit(put(4, seq));
        }
        store.submit(WriteOp::Delete {
            queue_id: 4,
            seq: 2,
        });
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(store.queue_index(4).expect("index"), vec![1, 3]);
    assert_eq!(store.read_message(4, 2).expect("read"), None);
    wait(&store, store.submit(put(4, 2)));
    assert_eq!(store.queue_index(4).expect("index"), vec![1, 2, 3]);
}

/// A data directory of the first format kept a marker per delivered message in the
/// `delivered` column family. Opening it turns them into watermarks and empties the family.
#[test]
fn delivered_markers_of_the_older_format_become_watermarks() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for seq in 1..=6 {
            store.submit(put(5, seq));
        }
        store.close().expect("close");
    }
    {
        // Rewrite it as the first format wrote it: format 1, markers on 2 and 4.
        let db = raw_open(dir.path());
        let meta = db.cf_handle("meta").expect("meta");
        db.put_cf(meta, b"format", 1u32.to_be_bytes())
            .expect("format");
        let delivered = db.cf_handle("delivered").expect("delivered");
        for seq in [2u64, 4] {
            let mut key = 5u64.to_be_bytes().to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            db.put_cf(delivered, key, b"").expect("marker");
        }
        db.flush_wal(true).expect("sync");
        std::fs::remove_file(dir.path().join("warren-delivered")).expect("drop the new log");
    }
    let store = open(dir.path());
    assert_eq!(store.delivered_mark(5), 4);
    assert_eq!(store.queue_index(5).expect("index"), vec![1, 2, 3, 4, 5, 6]);
    store.close().expect("close");
    drop(store);
    let db = raw_open(dir.path());
    let delivered = db.cf_handle("delivered").expect("delivered");
    assert!(
        db.iterator_cf(delivered, rocksdb::IteratorMode::Start)
            .next()
            .is_none(),
        "markers left behind"
    );
    let meta = db.cf_handle("meta").expect("meta");
    assert_eq!(
        db.get_cf(meta, b"format").expect("format"),
        Some(2u32.to_be_bytes().to_vec())
    );
}

/// The data directory opened with plain RocksDB, every column family.
fn raw_open(dir: &Path) -> rocksdb::DB {
    let options = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&options, dir).expect("list column families");
    rocksdb::DB::open_cf(&options, dir, &names).expect("raw open")
}

#[test]
fn delete_then_put_of_the_same_seq_apply_in_submission_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store.submit(put(1, 1));
        store.submit(WriteOp::Delete {
            queue_id: 1,
            seq: 1,
        });
        store.submit(WriteOp::Put {
            queue_id: 1,
            seq: 1,
            value: Bytes::from_static(b"second"),
            index: Default::default(),
        });
        store.submit(put(1, 2));
        store.submit(WriteOp::Delete {
            queue_id: 1,
            seq: 2,
        });
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(store.queue_index(1).expect("index"), vec![1]);
    assert_eq!(
        store.read_message(1, 1).expect("read"),
        Some(Bytes::from_static(b"second"))
    );
}

#[test]
fn delete_queue_removes_exactly_that_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for queue_id in [1, 2, 3, u64::MAX] {
            for seq in [0, 1, u64::MAX] {
                store.submit(put(queue_id, seq));
            }
        }
        store.submit(WriteOp::DeleteQueue { queue_id: 2 });
        store.submit(WriteOp::DeleteQueue { queue_id: u64::MAX });
        // A purged queue keeps its id and takes new messages.
        store.submit(put(2, 10));
        store.close().expect("close");
    }
    let store = open(dir.path());
    let all = vec![0, 1, u64::MAX];
    assert_eq!(store.queue_index(1).expect("index"), all);
    assert_eq!(store.queue_index(2).expect("index"), vec![10]);
    assert_eq!(store.queue_index(3).expect("index"), all);
    assert!(store.queue_index(u64::MAX).expect("index").is_empty());
    assert_eq!(store.read_message(2, 1).expect("read"), None);
    assert_eq!(store.stored_queue_ids().expect("ids"), vec![1, 2, 3]);
}

#[test]
fn group_commit_coalesces_concurrent_puts_into_few_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let threads: Vec<_> = (0..4u64)
        .map(|queue_id| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..250)
                    .map(|seq| store.submit(put(queue_id, seq)))
                    .max()
                    .expect("tickets")
            })
        })
        .collect();
    let last = threads
        .into_iter()
        .map(|thread| thread.join().expect("thread"))
        .max()
        .expect("tickets");
    wait(&store, last);
    let stats = store.stats();
    assert_eq!(stats.puts, 1000);
    assert_eq!(stats.ops, 1000);
    assert_eq!(stats.synced, 1000);
    assert!(stats.bytes > 300_000);
    assert!(
        stats.fsyncs < 250,
        "1000 puts should share fsyncs, got {} fsyncs in {} batches",
        stats.fsyncs,
        stats.batches
    );
    assert_eq!(store.queue_index(3).expect("index").len(), 250);
}

#[test]
fn batches_without_puts_are_not_fsynced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    wait(&store, store.submit(put(1, 1)));
    let before = store.stats();
    assert_eq!(before.fsyncs, 1);
    let absent = store.submit(WriteOp::Delete {
        queue_id: 1,
        seq: 99,
    });
    wait(&store, absent);
    let ack = store.submit(WriteOp::Delete {
        queue_id: 1,
        seq: 1,
    });
    wait(&store, ack);
    let after = store.stats();
    assert_eq!(after.fsyncs, 1, "acks need no fsync");
    assert!(after.batches >= 2);
    assert_eq!(after.deletes, 2);
}

#[test]
fn close_writes_everything_submitted_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for seq in 0..2_000 {
            store.submit(put(5, seq));
        }
        for seq in (0..2_000).step_by(2) {
            store.submit(WriteOp::Delete { queue_id: 5, seq });
        }
        store.close().expect("close");
        let stats = store.stats();
        assert_eq!(stats.synced, 3_000);
        assert_eq!(stats.dropped_ops, 0);
        store.close().expect("a second close does nothing");
    }
    let store = open(dir.path());
    let index = store.queue_index(5).expect("index");
    assert_eq!(index.len(), 1_000);
    assert!(
        index
            .iter()
            .zip((1..2_000).step_by(2))
            .all(|(&seq, expected)| seq == expected)
    );
}

#[test]
fn submissions_after_close_fail_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let before = store.submit(put(1, 1));
    store.close().expect("close");
    let after = store.submit(put(1, 2));
    let durability = *store.durability().borrow();
    assert_eq!(durability.status(before), TicketStatus::Synced);
    assert_eq!(durability.status(after), TicketStatus::Failed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert!(matches!(
        runtime.block_on(store.wait_durable(after)),
        Err(StoreError::Closed { .. })
    ));
    // Reads still work after close.
    assert_eq!(store.queue_index(1).expect("index"), vec![1]);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = open(dir.path());
    let error = Store::open(dir.path(), StoreOptions::default()).expect_err("locked");
    assert!(matches!(error, StoreError::Open { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string())
    );
}
