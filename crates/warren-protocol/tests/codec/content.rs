//! Content split by `frame_max` on the way out comes back whole through `FrameDecoder`
//! and `ContentAssembler`; a body that fits one frame is a slice of the read buffer.

use bytes::BytesMut;
use proptest::prelude::*;
use warren_protocol::{
    AMQPClass, BasicProperties, Content, ContentAssembler, ContentEvent, FRAME_OVERHEAD, Frame,
    FrameDecoder, basic, encode,
};

use crate::strategies::properties;

type Publish = Box<AMQPClass>;

fn publish() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "amq.topic".into(),
        routing_key: "a.b.c".into(),
        mandatory: true,
        immediate: false,
    }))
}

/// A whole publish as a client writes it: method, header, body frames.
fn publish_bytes(
    channel: u16,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    encode::method(&mut out, channel, &publish()).unwrap();
    let raw = encode::properties(properties).unwrap();
    encode::content(&mut out, channel, &raw, body, frame_max);
    out
}

/// Decode `read_buffer` frame by frame and feed the assembler as the server would.
fn assemble(read_buffer: &mut BytesMut, frame_max: u32) -> Content<Publish> {
    let mut decoder = FrameDecoder::new(frame_max);
    let mut assembler = ContentAssembler::new(u64::MAX);
    let mut complete = None;
    while let Some(frame) = decoder.decode(read_buffer).unwrap() {
        assert!(complete.is_none(), "frames after the content was complete");
        let event = match frame {
            Frame::Method { method, .. } => {
                assert!(assembler.method_interrupts().is_none());
                assembler.start(method, 60, 40);
                ContentEvent::Pending
            }
            Frame::Header { header, .. } => assembler.header(header).unwrap(),
            Frame::Body { payload, .. } => assembler.body(payload).unwrap(),
            Frame::Heartbeat => panic!("no heartbeat was sent"),
        };
        if let ContentEvent::Complete(content) = event {
            complete = Some(content);
        }
    }
    assert!(read_buffer.is_empty());
    assert!(assembler.is_idle());
    complete.expect("content never completed")
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn frame_max_and_len() -> impl Strategy<Value = (u32, usize)> {
    (4096u32..=131_072).prop_flat_map(|frame_max| (Just(frame_max), 0..=3 * frame_max as usize))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn split_content_reassembles_to_the_identical_body(
        channel in 1u16..,
        properties in properties(),
        (frame_max, len) in frame_max_and_len(),
    ) {
        let body = body(len);
        let bytes = publish_bytes(channel, &properties, &body, frame_max);
        let content = assemble(&mut BytesMut::from(&bytes[..]), frame_max);
        prop_assert_eq!(&content.body[..], &body[..]);
        prop_assert_eq!(*content.method, publish());
        prop_assert_eq!(content.header.body_size, len as u64);
        prop_assert_eq!(&content.header.properties, &properties);
        prop_assert_eq!(&content.header.raw_properties[..], &encode::properties(&properties).unwrap()[..]);
    }
}

#[test]
fn single_frame_body_is_a_slice_of_the_read_buffer() {
    let frame_max = 4096;
    for len in [1, 100, frame_max as usize - FRAME_OVERHEAD] {
        let mut read_buffer = BytesMut::from(
            &publish_bytes(1, &BasicProperties::default(), &body(len), frame_max)[..],
        );
        let start = read_buffer.as_ptr() as usize;
        let buffer = start..start + read_buffer.len();
        let content = assemble(&mut read_buffer, frame_max);
        let body_start = content.body.as_ptr() as usize;
        assert!(
            buffer.contains(&body_start) && body_start + content.body.len() <= buffer.end,
            "a {len}-byte body was copied out of the read buffer"
        );
    }
}

#[test]
fn multi_frame_body_is_copied_once_into_one_buffer() {
    let frame_max = 4096;
    let len = 3 * frame_max as usize;
    let content = assemble(
        &mut BytesMut::from(
            &publish_bytes(1, &BasicProperties::default(), &body(len), frame_max)[..],
        ),
        frame_max,
    );
    assert_eq!(content.body.len(), len);
    assert_eq!(&content.body[..], &body(len)[..]);
}

#[test]
fn empty_body_completes_at_the_header_without_body_frames() {
    let bytes = publish_bytes(1, &BasicProperties::default(), &[], 4096);
    let frames = crate::decode_all(&mut FrameDecoder::new(4096), &bytes).unwrap();
    assert_eq!(frames.len(), 2, "method and header only");
    let content = assemble(&mut BytesMut::from(&bytes[..]), 4096);
    assert!(content.body.is_empty());
}

#[test]
fn empty_body_frames_in_the_middle_do_not_lose_bytes() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(Box::new(publish()), 60, 40);
    let header = header_frame(6);
    assert!(matches!(
        assembler.header(header),
        Ok(ContentEvent::Pending)
    ));
    for piece in [&b""[..], b"ab", b"", b"", b"cd", b"ef"] {
        match assembler
            .body(bytes::Bytes::copy_from_slice(piece))
            .unwrap()
        {
            ContentEvent::Pending => {}
            ContentEvent::Complete(content) => {
                assert_eq!(&content.body[..], b"abcdef");
                return;
            }
        }
    }
    panic!("content never completed");
}

#[test]
fn reset_drops_partial_content() {
    let mut assembler = ContentAssembler::new(1 << 20);
    assembler.start(Box::new(publish()), 60, 40);
    assert!(!assembler.is_idle());
    assembler.reset();
    assert!(assembler.is_idle());
    assert!(assembler.method_interrupts().is_none());
}

/// A decoded content header announcing `body_size` bytes.
pub fn header_frame(body_size: u64) -> warren_protocol::ContentHeader {
    let mut bytes = Vec::new();
    encode::content(
        &mut bytes,
        1,
        &encode::properties(&BasicProperties::default()).unwrap(),
        &[],
        4096,
    );
    // Patch the announced size: class (2) + weight (2) then the size, after the 7-byte frame header.
    bytes[11..19].copy_from_slice(&body_size.to_be_bytes());
    match crate::decode_all(&mut FrameDecoder::new(4096), &bytes)
        .unwrap()
        .pop()
    {
        Some(Frame::Header { header, .. }) => header,
        other => panic!("expected a header frame, got {other:?}"),
    }
}
