//! Disk reclaim and memory: publish a backlog of 500,000 persistent 1 KiB messages to one
//! queue, consume and ack all of them, then print the data directory's size every 5 seconds
//! for a minute, with the process RSS. The store should give the space back within a minute.
//!
//! Run: `cargo run --release -p warren-store --example reclaim [MESSAGES]`;
//! `WARREN_RECLAIM=off` leaves reclaim to RocksDB's own compactions, for comparison.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use warren_store::{Store, StoreOptions, Ticket, WriteOp};

fn dir_size(dir: &Path) -> u64 {
    sizes(dir).iter().map(|(_, size)| size).sum()
}

/// Bytes on disk per file kind (extension): sst, blob, log (WAL), other.
fn sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut by_kind: Vec<(String, u64)> = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match name.rsplit_once('.') {
            Some((_, ext @ ("sst" | "blob" | "log"))) if !name.starts_with("LOG") => ext,
            _ => "other",
        };
        match by_kind.iter_mut().find(|(known, _)| known == kind) {
            Some((_, size)) => *size += metadata.len(),
            None => by_kind.push((kind.to_string(), metadata.len())),
        }
    }
    by_kind.sort();
    by_kind
}

fn breakdown(dir: &Path) -> String {
    sizes(dir)
        .iter()
        .map(|(kind, size)| format!("{kind} {:.1}", mib(*size)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An incompressible 1 KiB body (xorshift), so LZ4 cannot hide the bytes.
fn random_body(state: &mut u64) -> Bytes {
    let mut body = Vec::with_capacity(1024);
    while body.len() < 1024 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        body.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(body)
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
    let mut options = StoreOptions::default();
    if std::env::var("WARREN_RECLAIM").as_deref() == Ok("off") {
        // Baseline: leave reclaim to RocksDB's own compactions.
        options.reclaim_after_deletes = u64::MAX;
        options.reclaim_min_deletes = u64::MAX;
    }
    let store = Store::open(dir.path(), options).expect("open");
    let start_size = dir_size(dir.path());
    println!(
        "empty store: {:.2} MiB, RSS {:.0} MiB",
        mib(start_size),
        rss_mib()
    );

    let started = Instant::now();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for seq in 0..count {
        let ticket = store.submit(WriteOp::Put {
            queue_id: 1,
            seq,
            value: random_body(&mut state),
            index: Default::default(),
        });
        if seq % 10_000 == 9_999 || seq + 1 == count {
            wait(&runtime, &store, ticket);
        }
    }
    println!(
        "published {count} x 1 KiB in {:.1}s: {:.1} MiB on disk ({}), RSS {:.0} MiB, {} fsyncs",
        started.elapsed().as_secs_f64(),
        mib(dir_size(dir.path())),
        breakdown(dir.path()),
        rss_mib(),
        store.stats().fsyncs
    );

    let started = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(1_000) {
        if let Some(&highest) = chunk.last() {
            store.raise_delivered(1, highest).expect("raise");
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
        "consumed and acked all in {:.1}s: {:.1} MiB on disk ({}), RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        mib(dir_size(dir.path())),
        breakdown(dir.path()),
        rss_mib()
    );
    for _ in 0..12 {
        std::thread::sleep(Duration::from_secs(5));
        println!(
            "  +{:>2.0}s: {:.1} MiB on disk ({}), {} reclaim compactions, RSS {:.0} MiB",
            consumed.elapsed().as_secs_f64(),
            mib(dir_size(dir.path())),
            breakdown(dir.path()),
            store.stats().reclaim_compactions,
            rss_mib()
        );
    }
    assert!(store.queue_index(1).expect("index").is_empty());
    store.close().expect("close");
    println!("after close: {:.1} MiB on disk", mib(dir_size(dir.path())));
}
