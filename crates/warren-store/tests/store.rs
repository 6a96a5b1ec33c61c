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
    assert_eq!(index(1), vec![(2, false), (256, false), (300, false)]);
    assert_eq!(index(2), vec![(1, false), (7, false)]);
    assert_eq!(index(3), vec![(0, false)]);
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
}

#[test]
fn delivered_markers_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for seq in 1..=5 {
            store.submit(put(9, seq));
        }
        store.submit(WriteOp::MarkDelivered {
            queue_id: 9,
            seq: 2,
        });
        store.submit(WriteOp::MarkDelivered {
            queue_id: 9,
            seq: 5,
        });
        // A marker twice (delivered, requeued, delivered again) is one marker.
        store.submit(WriteOp::MarkDelivered {
            queue_id: 9,
            seq: 5,
        });
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(
        store.queue_index(9).expect("index"),
        vec![(1, false), (2, true), (3, false), (4, false), (5, true)]
    );
}

#[test]
fn delete_removes_the_message_and_its_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for seq in 1..=3 {
            store.submit(put(4, seq));
        }
        store.submit(WriteOp::MarkDelivered {
            queue_id: 4,
            seq: 2,
        });
        store.submit(WriteOp::Delete {
            queue_id: 4,
            seq: 2,
        });
        // An orphan marker (no message) is not listed by the index.
        store.submit(WriteOp::MarkDelivered {
            queue_id: 4,
            seq: 99,
        });
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(
        store.queue_index(4).expect("index"),
        vec![(1, false), (3, false)]
    );
    assert_eq!(store.read_message(4, 2).expect("read"), None);
    // A new Put at a deleted seq comes back undelivered: the marker went with the delete.
    wait(&store, store.submit(put(4, 2)));
    assert_eq!(
        store.queue_index(4).expect("index"),
        vec![(1, false), (2, false), (3, false)]
    );
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
        });
        store.submit(put(1, 2));
        store.submit(WriteOp::Delete {
            queue_id: 1,
            seq: 2,
        });
        store.close().expect("close");
    }
    let store = open(dir.path());
    assert_eq!(store.queue_index(1).expect("index"), vec![(1, false)]);
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
                store.submit(WriteOp::MarkDelivered { queue_id, seq });
            }
        }
        store.submit(WriteOp::DeleteQueue { queue_id: 2 });
        store.submit(WriteOp::DeleteQueue { queue_id: u64::MAX });
        // A purged queue keeps its id and takes new messages.
        store.submit(put(2, 10));
        store.close().expect("close");
    }
    let store = open(dir.path());
    let all_delivered = vec![(0, true), (1, true), (u64::MAX, true)];
    assert_eq!(store.queue_index(1).expect("index"), all_delivered);
    assert_eq!(store.queue_index(2).expect("index"), vec![(10, false)]);
    assert_eq!(store.queue_index(3).expect("index"), all_delivered);
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
    let marker = store.submit(WriteOp::MarkDelivered {
        queue_id: 1,
        seq: 1,
    });
    wait(&store, marker);
    let ack = store.submit(WriteOp::Delete {
        queue_id: 1,
        seq: 1,
    });
    wait(&store, ack);
    let after = store.stats();
    assert_eq!(after.fsyncs, 1, "markers and acks need no fsync");
    assert!(after.batches >= 2);
    assert_eq!(after.deletes, 1);
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
            .all(|(&(seq, delivered), expected)| seq == expected && !delivered)
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
    assert_eq!(store.queue_index(1).expect("index"), vec![(1, false)]);
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
