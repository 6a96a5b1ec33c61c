//! Each way a peer's bytes can be wrong, and what the decoder or assembler says.

use bytes::{Bytes, BytesMut};
use warren_protocol::{
    AMQPClass, AMQPValue, BasicProperties, ContentAssembler, ContentEvent, FieldTable, Frame,
    FrameDecoder, MAX_FIELD_NESTING, ProtocolError, basic, connection, encode,
};

use crate::content::header_frame;
use crate::decode_all;

const FRAME_MAX: u32 = 4096;

fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![frame_type];
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(0xCE);
    out
}

fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    FrameDecoder::new(FRAME_MAX).decode(&mut BytesMut::from(bytes))
}

fn publish() -> Box<AMQPClass> {
    Box::new(AMQPClass::Basic(basic::AMQPMethod::Publish(
        basic::Publish::default(),
    )))
}

#[test]
fn frame_larger_than_frame_max_is_rejected_before_buffering() {
    let mut src = BytesMut::from(&[1u8, 0, 1, 0x00, 0x98, 0x96, 0x80][..]); // 10 MB
    let result = FrameDecoder::new(131_072).decode(&mut src);
    assert_eq!(
        result,
        Err(ProtocolError::FrameTooLarge {
            frame_type: 1,
            size: 10_000_000,
            max: 131_072 - 8
        })
    );
    assert!(
        src.capacity() < 1 << 20,
        "payload room was reserved: {}",
        src.capacity()
    );
}

#[test]
fn frame_of_exactly_frame_max_is_accepted() {
    let payload = vec![7u8; FRAME_MAX as usize - 8];
    let decoded = decode_one(&frame(3, 1, &payload)).unwrap();
    assert_eq!(
        decoded,
        Some(Frame::Body {
            channel: 1,
            payload: Bytes::from(payload)
        })
    );
    let one_more = vec![7u8; FRAME_MAX as usize - 7];
    assert!(matches!(
        decode_one(&frame(3, 1, &one_more)),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
}

#[test]
fn bad_frame_end_is_rejected() {
    let mut bytes = frame(8, 0, &[]);
    *bytes.last_mut().unwrap() = 0xCD;
    assert_eq!(
        decode_one(&bytes),
        Err(ProtocolError::BadFrameEnd {
            frame_type: 8,
            found: 0xCD
        })
    );
}

#[test]
fn unknown_frame_type_is_rejected_from_the_header_alone() {
    for frame_type in [0u8, 4, 9, b'A'] {
        let bytes = frame(frame_type, 0, &[]);
        assert_eq!(
            decode_one(&bytes[..7]),
            Err(ProtocolError::UnknownFrameType { frame_type })
        );
    }
}

#[test]
fn heartbeat_on_channel_0_decodes() {
    let mut out = Vec::new();
    encode::heartbeat(&mut out);
    assert_eq!(decode_one(&out), Ok(Some(Frame::Heartbeat)));
}

#[test]
fn heartbeat_on_channel_1_is_rejected() {
    assert_eq!(
        decode_one(&frame(8, 1, &[])),
        Err(ProtocolError::HeartbeatOnChannel { channel: 1 })
    );
}

#[test]
fn unknown_class_99_is_not_implemented() {
    assert_eq!(
        decode_one(&frame(1, 1, &[0, 99, 0, 10, 0, 0])),
        Err(ProtocolError::UnknownMethod {
            class_id: 99,
            method_id: 10
        })
    );
}

#[test]
fn unknown_method_of_a_known_class_is_not_implemented() {
    assert_eq!(
        decode_one(&frame(1, 1, &[0, 60, 0, 55])),
        Err(ProtocolError::UnknownMethod {
            class_id: 60,
            method_id: 55
        })
    );
}

#[test]
fn basic_qos_with_a_prefetch_size_is_not_implemented() {
    // basic.qos: prefetch-size 65536, prefetch-count 10, global false.
    assert_eq!(
        decode_one(&frame(1, 1, &[0, 60, 0, 10, 0, 1, 0, 0, 0, 10, 0])),
        Err(ProtocolError::PrefetchSizeNotImplemented { size: 65536 })
    );
    assert_eq!(
        ProtocolError::PrefetchSizeNotImplemented { size: 65536 }.reply_code(),
        540
    );
}

#[test]
fn basic_qos_with_prefetch_size_zero_decodes() {
    assert!(decode_one(&frame(1, 1, &[0, 60, 0, 10, 0, 0, 0, 0, 0, 10, 0])).is_ok());
}

#[test]
fn known_method_with_truncated_arguments_is_a_syntax_error() {
    // queue.declare: ticket, then a short string claiming 10 bytes with only 2 present.
    assert_eq!(
        decode_one(&frame(1, 1, &[0, 50, 0, 10, 0, 0, 10, b'a', b'b'])),
        Err(ProtocolError::Syntax {
            class_id: 50,
            method_id: 10
        })
    );
}

#[test]
fn method_payload_shorter_than_its_ids_is_a_syntax_error() {
    assert_eq!(
        decode_one(&frame(1, 1, &[0, 60, 0])),
        Err(ProtocolError::Syntax {
            class_id: 0,
            method_id: 0
        })
    );
}

#[test]
fn content_header_with_trailing_bytes_is_rejected() {
    let mut payload = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0];
    payload.push(0xFF);
    assert_eq!(
        decode_one(&frame(2, 3, &payload)),
        Err(ProtocolError::BadContentHeader { channel: 3 })
    );
}

#[test]
fn body_without_header_is_unexpected() {
    let mut idle = ContentAssembler::<Box<AMQPClass>>::new(1 << 20);
    assert!(matches!(
        idle.body(Bytes::from_static(b"x")),
        Err(ProtocolError::UnexpectedFrame { .. })
    ));
    let mut awaiting_header = ContentAssembler::new(1 << 20);
    awaiting_header.start(publish(), 60, 40);
    assert!(matches!(
        awaiting_header.body(Bytes::from_static(b"x")),
        Err(ProtocolError::UnexpectedFrame { .. })
    ));
}

#[test]
fn header_without_method_is_unexpected() {
    let mut assembler = ContentAssembler::<Box<AMQPClass>>::new(1 << 20);
    assert_eq!(
        assembler.header(header_frame(1)).err(),
        Some(ProtocolError::UnexpectedFrame {
            reason: "content header frame without a content-bearing method",
            class_id: 0,
            method_id: 0
        })
    );
}

#[test]
fn header_while_awaiting_body_is_unexpected() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(publish(), 60, 40);
    assert!(matches!(
        assembler.header(header_frame(5)),
        Ok(ContentEvent::Pending)
    ));
    assert!(matches!(
        assembler.header(header_frame(5)),
        Err(ProtocolError::UnexpectedFrame { .. })
    ));
}

#[test]
fn method_while_awaiting_header_is_unexpected() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(publish(), 60, 40);
    assert_eq!(
        assembler.method_interrupts(),
        Some(ProtocolError::UnexpectedFrame {
            reason: "expected content header, got a method frame",
            class_id: 60,
            method_id: 40
        })
    );
}

#[test]
fn method_while_awaiting_body_is_unexpected() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(publish(), 60, 40);
    assembler.header(header_frame(5)).unwrap();
    assembler.body(Bytes::from_static(b"ab")).unwrap();
    assert!(matches!(
        assembler.method_interrupts(),
        Some(ProtocolError::UnexpectedFrame { .. })
    ));
}

#[test]
fn header_of_another_class_than_its_method_is_unexpected() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(publish(), 60, 40);
    let mut header = header_frame(1);
    header.class_id = 50;
    assert!(matches!(
        assembler.header(header),
        Err(ProtocolError::UnexpectedFrame { .. })
    ));
}

#[test]
fn body_longer_than_announced_is_rejected() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(publish(), 60, 40);
    assembler.header(header_frame(3)).unwrap();
    assert!(matches!(
        assembler.body(Bytes::from_static(b"ab")),
        Ok(ContentEvent::Pending)
    ));
    assert_eq!(
        assembler.body(Bytes::from_static(b"cd")).err(),
        Some(ProtocolError::BodyTooLong { announced: 3 })
    );
}

#[test]
fn message_larger_than_max_is_rejected_at_the_header() {
    let mut assembler = ContentAssembler::new(1000);
    assembler.start(publish(), 60, 40);
    assert_eq!(
        assembler.header(header_frame(1001)).err(),
        Some(ProtocolError::MessageTooLarge {
            size: 1001,
            max: 1000
        })
    );
    let mut at_max = ContentAssembler::new(1000);
    at_max.start(publish(), 60, 40);
    assert!(matches!(
        at_max.header(header_frame(1000)),
        Ok(ContentEvent::Pending)
    ));
}

#[test]
fn partial_input_byte_by_byte_yields_exactly_one_frame_at_the_end() {
    let method = AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
        channel_max: 2047,
        frame_max: 131_072,
        heartbeat: 60,
    }));
    let mut bytes = Vec::new();
    encode::method(&mut bytes, 0, &method).unwrap();
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for (i, byte) in bytes.iter().enumerate() {
        src.extend_from_slice(&[*byte]);
        match decoder.decode(&mut src).unwrap() {
            None => assert!(i + 1 < bytes.len(), "no frame after the last byte"),
            Some(frame) => {
                assert_eq!(i + 1, bytes.len(), "a frame before the last byte");
                frames.push(frame);
            }
        }
    }
    assert_eq!(
        frames,
        vec![Frame::Method {
            channel: 0,
            method: Box::new(method)
        }]
    );
    assert_eq!(decoder.decode(&mut src), Ok(None));
}

/// `depth` field arrays inside one another, as a typed field value.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut value = Vec::new();
    for _ in 0..depth {
        let mut outer = vec![b'A'];
        outer.extend_from_slice(&(value.len() as u32).to_be_bytes());
        outer.extend_from_slice(&value);
        value = outer;
    }
    value
}

/// A field table of one entry `k` holding `value`, length-prefixed.
fn table_with(value: &[u8]) -> Vec<u8> {
    let mut entries = vec![1, b'k'];
    entries.extend_from_slice(value);
    let mut table = (entries.len() as u32).to_be_bytes().to_vec();
    table.extend_from_slice(&entries);
    table
}

/// Decode on a thread with tokio's default worker stack (2 MiB), as the server would.
fn decode_on_worker_stack(bytes: Vec<u8>, frame_max: u32) -> Result<Option<Frame>, ProtocolError> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || FrameDecoder::new(frame_max).decode(&mut BytesMut::from(&bytes[..])))
        .unwrap()
        .join()
        .unwrap()
}

/// Regression: amq-protocol parses nested arrays recursively, and 26,000 of them in one
/// 128 KiB `connection.start-ok` overflowed even an 8 MiB stack, aborting the broker.
#[test]
fn deeply_nested_field_table_is_refused_without_overflowing_the_stack() {
    let frame_max = 131_072;
    let depth = (frame_max as usize - 100) / 5;
    let mut payload = vec![0, 10, 0, 11];
    payload.extend_from_slice(&table_with(&nested_arrays(depth)));
    payload.extend_from_slice(&[5, b'P', b'L', b'A', b'I', b'N', 0, 0, 0, 0, 0]);
    assert_eq!(
        decode_on_worker_stack(frame(1, 0, &payload), frame_max),
        Err(ProtocolError::Syntax {
            class_id: 10,
            method_id: 11
        })
    );
}

#[test]
fn deeply_nested_headers_property_is_refused_without_overflowing_the_stack() {
    let frame_max = 131_072;
    let depth = (frame_max as usize - 100) / 5;
    let mut payload = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0];
    payload.extend_from_slice(&table_with(&nested_arrays(depth)));
    assert_eq!(
        decode_on_worker_stack(frame(2, 1, &payload), frame_max),
        Err(ProtocolError::BadContentHeader { channel: 1 })
    );
}

#[test]
fn field_tables_nested_up_to_the_limit_decode() {
    // The arguments table is level 1; each nested table adds one.
    let mut value = AMQPValue::Boolean(true);
    for _ in 1..MAX_FIELD_NESTING {
        let mut inner = FieldTable::default();
        inner.insert("n".into(), value);
        value = AMQPValue::FieldTable(inner);
    }
    let mut arguments = FieldTable::default();
    arguments.insert("x-deep".into(), value.clone());
    let consume = AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: "q".into(),
        arguments: arguments.clone(),
        ..Default::default()
    }));
    let mut bytes = Vec::new();
    encode::method(&mut bytes, 1, &consume).unwrap();
    assert_eq!(
        decode_on_worker_stack(bytes, FRAME_MAX),
        Ok(Some(Frame::Method {
            channel: 1,
            method: Box::new(consume)
        }))
    );

    let mut too_deep = FieldTable::default();
    too_deep.insert("n".into(), value);
    let mut arguments = FieldTable::default();
    arguments.insert("x-deep".into(), AMQPValue::FieldTable(too_deep));
    let consume = AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        arguments,
        ..Default::default()
    }));
    let mut bytes = Vec::new();
    encode::method(&mut bytes, 1, &consume).unwrap();
    assert_eq!(
        decode_on_worker_stack(bytes, FRAME_MAX),
        Err(ProtocolError::Syntax {
            class_id: 60,
            method_id: 20
        })
    );

    let properties = BasicProperties::default().with_headers(arguments_at_limit());
    let mut bytes = Vec::new();
    encode::content(
        &mut bytes,
        1,
        &encode::properties(&properties).unwrap(),
        &[],
        FRAME_MAX,
    );
    assert!(matches!(
        decode_all(&mut FrameDecoder::new(FRAME_MAX), &bytes).unwrap()[..],
        [Frame::Header { .. }]
    ));
}

fn arguments_at_limit() -> FieldTable {
    let mut value = AMQPValue::FieldArray(Vec::new().into());
    for _ in 2..MAX_FIELD_NESTING {
        value = AMQPValue::FieldArray(vec![value].into());
    }
    let mut table = FieldTable::default();
    table.insert("x-death".into(), value);
    table
}
