//! Arbitrary bytes through `FrameDecoder`, as a peer could send them.
//!
//! Checks, besides "never panics, never overflows the stack":
//! - every decoded frame consumed bytes, and decoding stops at the first error;
//! - the same bytes fed in two pieces (split where the first input byte says) decode to
//!   the same frames and the same outcome: read boundaries never matter;
//! - a decoded method or content header, encoded again by `encode`, decodes to the same
//!   value (compared through `Debug`, so a NaN float equals itself).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_protocol::{Frame, FrameDecoder, ProtocolError, encode};

/// Small, so that size checks trigger often; the spec's minimum.
const FRAME_MAX: u32 = warren_protocol::FRAME_MIN_SIZE;

/// Decode `pieces` in order, appending each to the read buffer as a socket would.
fn decode(pieces: &[&[u8]]) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        src.extend_from_slice(piece);
        loop {
            let before = src.len();
            match decoder.decode(&mut src) {
                Ok(Some(frame)) => {
                    assert!(src.len() < before, "a frame consumed no bytes");
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

/// Encode a decoded frame again and decode that: the value must survive.
fn re_encode(frame: &Frame) {
    let mut bytes = Vec::new();
    match frame {
        Frame::Method { channel, method } => {
            encode::method(&mut bytes, *channel, method).expect("a decoded method encodes");
        }
        Frame::Header { channel, header } if header.class_id == 60 => {
            let raw = encode::properties(&header.properties).expect("decoded properties encode");
            encode::content(&mut bytes, *channel, &raw, &[], FRAME_MAX);
            // Patch the announced body size back in: `content` derives it from the body.
            bytes[11..19].copy_from_slice(&header.body_size.to_be_bytes());
        }
        _ => return,
    }
    let mut src = BytesMut::from(&bytes[..]);
    let again = FrameDecoder::new(u32::MAX)
        .decode(&mut src)
        .expect("re-encoded frame decodes")
        .expect("re-encoded frame is whole");
    let (before, after) = match (frame, &again) {
        (Frame::Header { header: a, .. }, Frame::Header { header: b, .. }) => {
            (format!("{:?}", a.properties), format!("{:?}", b.properties))
        }
        _ => (format!("{frame:?}"), format!("{again:?}")),
    };
    assert_eq!(before, after, "value changed through encode + decode");
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(&[data]);
    let split_at = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (head, tail) = data.split_at(split_at);
    let pieces = decode(&[head, tail]);
    // Through `Debug`: a NaN float in a field table is not equal to itself.
    assert_eq!(
        format!("{whole:?}"),
        format!("{pieces:?}"),
        "read boundaries changed the outcome"
    );
    for frame in &whole.0 {
        re_encode(frame);
    }
});
