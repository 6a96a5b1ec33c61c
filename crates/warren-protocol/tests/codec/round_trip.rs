//! Every method the broker sends or receives survives `encode::method` followed by
//! `FrameDecoder`, arguments and field tables included.

use amq_protocol::protocol::AMQPClass;
use bytes::BytesMut;
use proptest::prelude::*;
use warren_protocol::{
    AMQPValue, FieldTable, Frame, FrameDecoder, ProtocolError, ShortString, encode, queue,
};

use crate::decode_all;
use crate::strategies::{any_method, method_count};

fn method_frame(channel: u16, method: &AMQPClass) -> Vec<u8> {
    let mut out = Vec::new();
    encode::method(&mut out, channel, method).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_method_round_trips_through_encode_and_decoder(
        channel in any::<u16>(),
        method in any_method(),
    ) {
        let bytes = method_frame(channel, &method);
        let frames = decode_all(&mut FrameDecoder::new(u32::MAX), &bytes).unwrap();
        prop_assert_eq!(frames, vec![Frame::Method { channel, method: Box::new(method) }]);
    }

    #[test]
    fn methods_decode_from_one_stream_at_any_read_boundary(
        methods in proptest::collection::vec((any::<u16>(), any_method()), 1..6),
        chunk in 1usize..4096,
    ) {
        let mut stream = Vec::new();
        for (channel, method) in &methods {
            encode::method(&mut stream, *channel, method).unwrap();
        }
        let mut decoder = FrameDecoder::new(u32::MAX);
        let mut src = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in stream.chunks(chunk) {
            src.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut src).unwrap() {
                decoded.push(frame);
            }
        }
        prop_assert!(src.is_empty());
        let expected: Vec<Frame> = methods
            .into_iter()
            .map(|(channel, method)| Frame::Method { channel, method: Box::new(method) })
            .collect();
        prop_assert_eq!(decoded, expected);
    }
}

#[test]
fn generators_cover_every_method_of_the_broker_classes() {
    // connection 14, channel 6, exchange 8, queue 10, basic 18, confirm 2, tx 6.
    assert_eq!(method_count(), 64);
}

/// amq-protocol writes `AMQPValue::ShortString` with type tag `_`, which neither it nor
/// RabbitMQ reads: the broker must never put one in a table it sends.
#[test]
fn short_string_field_values_cannot_be_decoded() {
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("k"),
        AMQPValue::ShortString(ShortString::from("v")),
    );
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: "q".into(),
        arguments,
        ..Default::default()
    }));
    let bytes = method_frame(1, &declare);
    assert_eq!(
        decode_all(&mut FrameDecoder::new(4096), &bytes),
        Err(ProtocolError::Syntax {
            class_id: 50,
            method_id: 10
        })
    );
}
