//! Behaviour of the codec as the server sees it: bytes a peer may send, frames the
//! broker writes, and how both line up with amq-protocol's own parser and generator.
//!
//! Layout:
//! - `strategies`: proptest generators for methods, field values and properties.
//! - `round_trip`: every method encodes with `encode::method` and decodes back equal.
//! - `deliver_bytes`: the hand-written delivery path is byte-identical to amq-protocol.
//! - `content`: bodies split by `frame_max` reassemble identically, zero-copy when whole.
//! - `decoder_errors`: each way a peer's bytes can be wrong, one named test each.
//! - `reply_codes`: the reply code each error closes the connection with.

#![allow(clippy::unwrap_used)]

mod content;
mod decoder_errors;
mod deliver_bytes;
mod reply_codes;
mod round_trip;
mod strategies;

use bytes::BytesMut;
use warren_protocol::{Frame, FrameDecoder, ProtocolError};

/// Decode every frame in `bytes`, asserting the buffer is consumed exactly.
pub fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
    let mut src = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut src)? {
        frames.push(frame);
    }
    assert!(src.is_empty(), "{} bytes left undecoded", src.len());
    Ok(frames)
}
