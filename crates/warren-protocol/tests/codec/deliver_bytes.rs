//! The hand-written hot path (`encode::deliver`, `encode::content`, `encode::heartbeat`)
//! writes exactly the bytes amq-protocol's generator writes for the same frames.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use proptest::prelude::*;
use warren_protocol::{AMQPClass, BasicProperties, FRAME_OVERHEAD, basic, encode};

use crate::strategies::{deliver, properties};

fn generated(frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(Vec::new()))
        .unwrap()
        .into_inner()
        .0
}

/// Bytes amq-protocol generates for a delivery: method, header, then the body cut into
/// `frame_max - 8` byte frames (as RabbitMQ and lapin cut it).
fn reference_delivery(
    channel: u16,
    deliver: &basic::Deliver,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let mut out = generated(&AMQPFrame::Method(
        channel,
        AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver.clone())),
    ));
    out.extend(generated(&AMQPFrame::Header(
        channel,
        AMQPContentHeader {
            class_id: 60,
            body_size: body.len() as u64,
            properties: properties.clone(),
        },
    )));
    for piece in body.chunks(frame_max as usize - FRAME_OVERHEAD) {
        out.extend(generated(&AMQPFrame::Body(channel, piece.to_vec())));
    }
    out
}

fn hand_written_delivery(
    channel: u16,
    deliver: &basic::Deliver,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let raw = encode::properties(properties).unwrap();
    let mut out = Vec::new();
    encode::deliver(
        &mut out,
        channel,
        deliver.consumer_tag.as_str().as_bytes(),
        deliver.delivery_tag,
        deliver.redelivered,
        deliver.exchange.as_str().as_bytes(),
        deliver.routing_key.as_str().as_bytes(),
        &raw,
        body,
        frame_max,
    );
    out
}

/// A body of `len` bytes, cheap to make (proptest would draw each byte separately).
fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn frame_max_and_body() -> impl Strategy<Value = (u32, Vec<u8>)> {
    (4096u32..=131_072).prop_flat_map(|frame_max| {
        (0..=3 * frame_max as usize, any::<u64>())
            .prop_map(move |(len, seed)| (frame_max, body(len, seed)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deliver_is_byte_identical_to_amq_protocol_frames(
        channel in any::<u16>(),
        deliver in deliver(),
        properties in properties(),
        (frame_max, body) in frame_max_and_body(),
    ) {
        let hand = hand_written_delivery(channel, &deliver, &properties, &body, frame_max);
        let reference = reference_delivery(channel, &deliver, &properties, &body, frame_max);
        prop_assert!(hand == reference, "delivery bytes differ from amq-protocol's");
    }
}

#[test]
fn deliver_is_byte_identical_at_frame_boundaries() {
    let deliver = basic::Deliver {
        consumer_tag: "ctag".into(),
        delivery_tag: 7,
        redelivered: true,
        exchange: "x".into(),
        routing_key: "k".into(),
    };
    let properties = BasicProperties::default().with_delivery_mode(2);
    for frame_max in [4096u32, 131_072] {
        let chunk = frame_max as usize - FRAME_OVERHEAD;
        for len in [
            0,
            1,
            chunk - 1,
            chunk,
            chunk + 1,
            2 * chunk,
            3 * chunk,
            3 * frame_max as usize,
        ] {
            let body = body(len, len as u64);
            assert_eq!(
                hand_written_delivery(3, &deliver, &properties, &body, frame_max),
                reference_delivery(3, &deliver, &properties, &body, frame_max),
                "frame_max {frame_max}, body {len} bytes"
            );
        }
    }
}

#[test]
fn heartbeat_is_byte_identical_to_amq_protocol() {
    let mut out = Vec::new();
    encode::heartbeat(&mut out);
    assert_eq!(out, generated(&AMQPFrame::Heartbeat));
}
