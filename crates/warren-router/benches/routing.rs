//! Routing cost per message for topic and headers exchanges with 1, 1,000 and 100,000
//! bindings.
//!
//! - `topic/<n>`: bindings `stock.<i>.*` (a third of them), `*.quote.<i>` and `logs.<i>.#`;
//!   the routed key `stock.<n/2>.nyse` matches exactly one binding (the trie walk, not
//!   the table size, should set the cost). `topic_miss/<n>`: a key that matches nothing.
//! - `headers/<n>`: bindings `x-match=all, region=r<i>, kind=k<i % 10>`; the message's
//!   headers match exactly one binding. Headers routing scans every binding, so this one
//!   grows with the table.
//!
//! Run: `cargo bench -p warren-router --bench routing`.

use std::hint::black_box;

use amq_protocol_types::{AMQPValue, FieldTable, LongString};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warren_router::{BindingTable, ExchangeKind};

const SIZES: [u32; 3] = [1, 1_000, 100_000];

fn topic_table(n: u32) -> BindingTable<u32> {
    let mut table = BindingTable::new(ExchangeKind::Topic);
    let none = FieldTable::default();
    for i in 0..n {
        let key = match i % 3 {
            0 => format!("stock.{i}.*"),
            1 => format!("*.quote.{i}"),
            _ => format!("logs.{i}.#"),
        };
        table.bind(i, &key, &none);
    }
    table
}

fn headers_args(region: u32, kind: u32, x_match: bool) -> FieldTable {
    let mut t = FieldTable::default();
    if x_match {
        t.insert(
            "x-match".into(),
            AMQPValue::LongString(LongString::from("all")),
        );
    }
    t.insert(
        "region".into(),
        AMQPValue::LongString(LongString::from(format!("r{region}"))),
    );
    t.insert(
        "kind".into(),
        AMQPValue::LongString(LongString::from(format!("k{kind}"))),
    );
    t
}

fn headers_table(n: u32) -> BindingTable<u32> {
    let mut table = BindingTable::new(ExchangeKind::Headers);
    for i in 0..n {
        table.bind(i, "", &headers_args(i, i % 10, true));
    }
    table
}

fn topic(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(8);
    for n in SIZES {
        let table = topic_table(n);
        // An index i with i % 3 == 0 near the middle: `stock.<i>.*` exists.
        let hit = (n / 2) - (n / 2) % 3;
        let key = format!("stock.{hit}.nyse");
        group.bench_with_input(BenchmarkId::from_parameter(n), &key, |b, key| {
            b.iter(|| {
                out.clear();
                table.route(black_box(key), None, &mut out);
                assert_eq!(out.len(), 1);
            })
        });
        group.bench_with_input(BenchmarkId::new("miss", n), "audit.trail.x.y", |b, key| {
            b.iter(|| {
                out.clear();
                table.route(black_box(key), None, &mut out);
                assert!(out.is_empty());
            })
        });
    }
    group.finish();
}

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(8);
    for n in SIZES {
        let table = headers_table(n);
        let target = n / 2;
        let message = headers_args(target, target % 10, false);
        if n >= 100_000 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &message, |b, message| {
            b.iter(|| {
                out.clear();
                table.route("", Some(black_box(message)), &mut out);
                assert_eq!(out.len(), 1);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, topic, headers);
criterion_main!(benches);
