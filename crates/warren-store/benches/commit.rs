//! Group commit: how long a batch of persistent publishes takes to become durable.
//!
//! - `commit/1000_puts_1KiB`: submit 1000 `Put`s of 1 KiB at once, time until the last one is
//!   synced (the loop coalesces them into one or a few fsynced `WriteBatch`es).
//! - `commit/1_put_1KiB`: one `Put`, time until synced: the latency of one fsynced write.
//!
//! After each group the fsyncs per second and the ops per fsync are printed from `Store::stats`.
//! Run: `cargo bench -p warren-store --bench commit`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warren_store::{Store, StoreOptions, Ticket, WriteOp};

fn wait(runtime: &tokio::runtime::Runtime, store: &Store, ticket: Ticket) {
    if let Err(error) = runtime.block_on(store.wait_durable(ticket)) {
        panic!("ticket failed: {error}");
    }
}

/// Times `iters` rounds of `per_round` puts, each round waited for; acks the messages after
/// each round (untimed) so the database stays small.
fn rounds(
    store: &Store,
    runtime: &tokio::runtime::Runtime,
    next_seq: &mut u64,
    per_round: u64,
    iters: u64,
) -> Duration {
    let value = Bytes::from(vec![0x5Au8; 1024]);
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        let first = *next_seq;
        let started = Instant::now();
        let mut last = None;
        for seq in first..first + per_round {
            last = Some(store.submit(WriteOp::Put {
                queue_id: 1,
                seq,
                value: value.clone(),
                index: Default::default(),
            }));
        }
        if let Some(last) = last {
            wait(runtime, store, last);
        }
        timed += started.elapsed();
        *next_seq += per_round;
        for seq in first..first + per_round {
            store.submit(WriteOp::Delete { queue_id: 1, seq });
        }
    }
    timed
}

fn report(name: &str, store: &Store, before: warren_store::StoreStats, elapsed: Duration) {
    let after = store.stats();
    let fsyncs = after.fsyncs - before.fsyncs;
    let puts = after.puts - before.puts;
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "{name}: {fsyncs} fsyncs for {puts} puts in {secs:.2}s of timed work: {:.0} fsyncs/s, {:.1} puts per fsync, {:.0} puts/s",
        fsyncs as f64 / secs,
        puts as f64 / fsyncs.max(1) as f64,
        puts as f64 / secs,
    );
}

fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut next_seq = 0u64;
    let mut group = c.benchmark_group("commit");
    group.sample_size(20);

    for (name, per_round) in [("1000_puts_1KiB", 1000u64), ("1_put_1KiB", 1)] {
        group.throughput(Throughput::Elements(per_round));
        let before = store.stats();
        let mut timed = Duration::ZERO;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let elapsed = rounds(&store, &runtime, &mut next_seq, per_round, iters);
                timed += elapsed;
                elapsed
            })
        });
        report(name, &store, before, timed);
    }
    group.finish();
    store.close().expect("close");
}

criterion_group!(benches, commit);
criterion_main!(benches);
