//! Codec hot paths, per message:
//!
//! - `parse_publish/1KiB`: a whole 1 KiB publish (method + header + one body frame)
//!   through `FrameDecoder` and `ContentAssembler` to a `Content`;
//! - `encode_deliver/{16B,1KiB}`: `encode::deliver` (method + header + body frames)
//!   into a reused output buffer, and the same frames through amq-protocol's
//!   `gen_frame` for comparison.
//!
//! Run: `cargo bench -p warren-protocol --bench codec`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use warren_protocol::{
    AMQPClass, AMQPValue, BasicProperties, ContentAssembler, ContentEvent, FieldTable, Frame,
    FrameDecoder, basic, encode,
};

const FRAME_MAX: u32 = 131_072;

/// Properties a typical client sets: content type, persistence, a small header.
fn properties() -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "trace-id".into(),
        AMQPValue::LongString("4bf92f3577b34da6".into()),
    );
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers)
}

fn publish_bytes(body: &[u8]) -> Vec<u8> {
    let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "amq.topic".into(),
        routing_key: "orders.eu.created".into(),
        mandatory: false,
        immediate: false,
    }));
    let mut out = Vec::new();
    encode::method(&mut out, 1, &publish).unwrap();
    encode::content(
        &mut out,
        1,
        &encode::properties(&properties()).unwrap(),
        body,
        FRAME_MAX,
    );
    out
}

fn parse_publish(c: &mut Criterion) {
    let bytes = publish_bytes(&[b'x'; 1024]);
    let mut group = c.benchmark_group("parse_publish");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1KiB", |b| {
        let mut decoder = FrameDecoder::new(FRAME_MAX);
        let mut assembler = ContentAssembler::new(128 << 20);
        b.iter_batched_ref(
            || BytesMut::from(&bytes[..]),
            |src| {
                while let Some(frame) = decoder.decode(src).unwrap() {
                    let event = match frame {
                        Frame::Method { method, .. } => {
                            assembler.start(method, 60, 40);
                            continue;
                        }
                        Frame::Header { header, .. } => assembler.header(header).unwrap(),
                        Frame::Body { payload, .. } => assembler.body(payload).unwrap(),
                        Frame::Heartbeat => continue,
                    };
                    if let ContentEvent::Complete(content) = event {
                        black_box(content);
                    }
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn encode_deliver(c: &mut Criterion) {
    let raw = encode::properties(&properties()).unwrap();
    let mut group = c.benchmark_group("encode_deliver");
    group.throughput(Throughput::Elements(1));
    for (name, size) in [("16B", 16), ("1KiB", 1024)] {
        let body = vec![b'x'; size];
        group.bench_function(format!("warren/{name}"), |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                encode::deliver(
                    &mut out,
                    1,
                    b"amq.ctag-Xk3pW1mQ9b",
                    black_box(42),
                    false,
                    b"amq.topic",
                    b"orders.eu.created",
                    &raw,
                    black_box(&body),
                    FRAME_MAX,
                );
                black_box(&out);
            });
        });
        group.bench_function(format!("amq-protocol/{name}"), |b| {
            let deliver = AMQPFrame::Method(
                1,
                AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                    consumer_tag: "amq.ctag-Xk3pW1mQ9b".into(),
                    delivery_tag: 42,
                    redelivered: false,
                    exchange: "amq.topic".into(),
                    routing_key: "orders.eu.created".into(),
                })),
            );
            let header = AMQPFrame::Header(
                1,
                AMQPContentHeader {
                    class_id: 60,
                    body_size: size as u64,
                    properties: properties(),
                },
            );
            let body = AMQPFrame::Body(1, body.clone());
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                for frame in [&deliver, &header, &body] {
                    let ctx = gen_frame(frame)(WriteContext::from(std::mem::take(&mut out)));
                    out = ctx.unwrap().into_inner().0;
                }
                black_box(&out);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse_publish, encode_deliver);
criterion_main!(benches);
