//! Recovery: reopen a store holding one queue of 1,000,000 messages of 1 KiB and load its
//! index with `Store::queue_index` (keys only, no bodies).
//!
//! The million messages are written once (about a minute), then criterion times
//! `Store::open` + `queue_index` + `close`. Run: `cargo bench -p warren-store --bench recovery`.
//! `WARREN_BENCH_MESSAGES` changes the count.

use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use warren_store::{Store, StoreOptions, WriteOp};

fn messages() -> u64 {
    std::env::var("WARREN_BENCH_MESSAGES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1_000_000)
}

/// An incompressible 1 KiB body (xorshift), so LZ4 cannot make the bytes vanish.
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

fn fill(store: &Store, count: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for seq in 0..count {
        let ticket = store.submit(WriteOp::Put {
            queue_id: 7,
            seq,
            value: random_body(&mut state),
            index: Default::default(),
        });
        // Keep about 10k messages in flight, like publishers with confirm windows.
        if (seq % 10_000 == 9_999 || seq + 1 == count)
            && let Err(error) = runtime.block_on(store.wait_durable(ticket))
        {
            panic!("fill failed: {error}");
        }
    }
    let stats = store.stats();
    println!(
        "filled {count} x 1 KiB in {:.1}s ({} fsyncs)",
        started.elapsed().as_secs_f64(),
        stats.fsyncs
    );
}

fn recovery(c: &mut Criterion) {
    let count = messages();
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
        fill(&store, count);
        // The first tenth was delivered and not acked.
        store.raise_delivered(7, count / 10).expect("raise");
        store.close().expect("close");
    }
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10);
    group.bench_function(format!("reopen_and_queue_index_{count}"), |b| {
        b.iter(|| {
            let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen");
            let index = store.queue_index(7).expect("index");
            assert_eq!(index.len() as u64, count);
            store.close().expect("close");
            index.len()
        })
    });
    group.finish();

    let started = Instant::now();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen");
    let opened = started.elapsed();
    let index = store.queue_index(7).expect("index");
    let indexed = started.elapsed();
    let head = store.read_range(7, 0, 1000).expect("head");
    println!(
        "reopen {:.0} ms, + queue_index of {} ({} delivered) {:.0} ms, + first 1000 bodies {:.1} ms",
        opened.as_secs_f64() * 1e3,
        index.len(),
        store.delivered_mark(7),
        (indexed - opened).as_secs_f64() * 1e3,
        (started.elapsed() - indexed).as_secs_f64() * 1e3,
    );
    assert_eq!(head.len(), 1000);
}

criterion_group!(benches, recovery);
criterion_main!(benches);
