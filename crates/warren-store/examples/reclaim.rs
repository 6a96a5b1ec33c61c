//! Disk reclaim and memory: publish a backlog of 500,000 persistent 1 KiB messages to one
//! queue, consume and ack all of them, then print the data directory's size every 5 seconds
//! for a minute, with the process RSS. The store should give the space back within a minute.
//!
//! Run: `cargo run --release -p warren-store --example reclaim [MESSAGES]`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use warren_store::{Store, StoreOptions, Ticket, WriteOp};

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|metadata| metadata.is_file())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn wait(runtime: &tokio::runtime::Runtime, store: &Store, ticket: Ticket) {
    if let Err(error) = runtime.block_on(store.wait_durable(ticket)) {
        panic!("write failed: {error}");
    }
}

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(500_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
    let start_size = dir_size(dir.path());
    println!(
        "empty store: {:.2} MiB, RSS {:.0} MiB",
        mib(start_size),
        rss_mib()
    );

    let started = Instant::now();
    let mut body = vec![0u8; 1024];
    for seq in 0..count {
        if let Some(slot) = body.get_mut((seq % 1024) as usize) {
            *slot = seq as u8;
        }
        let ticket = store.submit(WriteOp::Put {
            queue_id: 1,
            seq,
            value: Bytes::copy_from_slice(&body),
        });
        if seq % 10_000 == 9_999 || seq + 1 == count {
            wait(&runtime, &store, ticket);
        }
    }
    println!(
        "published {count} x 1 KiB in {:.1}s: {:.1} MiB on disk, RSS {:.0} MiB, {} fsyncs",
        started.elapsed().as_secs_f64(),
        mib(dir_size(dir.path())),
        rss_mib(),
        store.stats().fsyncs
    );

    let started = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(1_000) {
        for &seq in chunk {
            store.submit(WriteOp::MarkDelivered { queue_id: 1, seq });
        }
        let mut last = None;
        for &seq in chunk {
            last = Some(store.submit(WriteOp::Delete { queue_id: 1, seq }));
        }
        if let Some(last) = last {
            wait(&runtime, &store, last);
        }
    }
    let consumed = Instant::now();
    println!(
        "consumed and acked all in {:.1}s: {:.1} MiB on disk, RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        mib(dir_size(dir.path())),
        rss_mib()
    );
    for _ in 0..13 {
        std::thread::sleep(Duration::from_secs(5));
        println!(
            "  +{:>2.0}s: {:.1} MiB on disk, {} reclaim compactions, RSS {:.0} MiB",
            consumed.elapsed().as_secs_f64(),
            mib(dir_size(dir.path())),
            store.stats().reclaim_compactions,
            rss_mib()
        );
    }
    assert!(store.queue_index(1).expect("index").is_empty());
    store.close().expect("close");
    println!("after close: {:.1} MiB on disk", mib(dir_size(dir.path())));
}
