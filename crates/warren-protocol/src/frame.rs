//! Frames: the [`Frame`] type and the [`FrameDecoder`] that cuts frames out of the
//! connection's read buffer.
//!
//! The decoder looks at the 7-byte frame header first and refuses a frame that declares
//! more payload than `frame_max` allows, before a byte of its payload is buffered: one
//! peer can therefore never make the broker buffer more than one frame. Only when the
//! whole frame is in the buffer does it check the frame-end octet and parse; field
//! tables nested deeper than [`MAX_FIELD_NESTING`](crate::MAX_FIELD_NESTING) are refused
//! before parsing (see `nesting.rs`: amq-protocol recurses per level). Body payloads are
//! `Bytes` slices of the read buffer (no copy).

use amq_protocol::frame::parsing::parse_content_header;
use amq_protocol::protocol::{AMQPClass, BasicProperties, parse_class};
use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::nesting;

/// The 8 octets a 0-9-1 client opens with.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// Smallest frame_max a peer may negotiate (spec: frame-min-size).
pub const FRAME_MIN_SIZE: u32 = 4096;
/// Bytes a frame adds around its payload: type (1), channel (2), size (4), frame-end (1).
pub const FRAME_OVERHEAD: usize = 8;

pub(crate) const FRAME_METHOD: u8 = 1;
pub(crate) const FRAME_HEADER: u8 = 2;
pub(crate) const FRAME_BODY: u8 = 3;
pub(crate) const FRAME_HEARTBEAT: u8 = 8;
pub(crate) const FRAME_END: u8 = 0xCE;
const FRAME_HEADER_LEN: usize = 7;
/// Offset of the property flags in a content header payload: class (2), weight (2), size (8).
const PROPERTIES_OFFSET: usize = 12;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a frame is moved once from decoder to channel; boxing headers would allocate per message"
)]
pub enum Frame {
    /// A method frame.
    Method {
        /// Channel number.
        channel: u16,
        /// The parsed method with its arguments.
        method: Box<AMQPClass>,
    },
    /// A content header frame.
    Header {
        /// Channel number.
        channel: u16,
        /// The parsed header.
        header: ContentHeader,
    },
    /// A content body frame.
    Body {
        /// Channel number.
        channel: u16,
        /// The payload, a slice of the read buffer.
        payload: Bytes,
    },
    /// A heartbeat (always channel 0).
    Heartbeat,
}

/// A content header: body size and properties, parsed and raw.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    /// Class of the content (60, basic).
    pub class_id: u16,
    /// Total body size announced.
    pub body_size: u64,
    /// The parsed properties (for routing, persistence and expiry decisions).
    pub properties: BasicProperties,
    /// The property flags and list exactly as the publisher encoded them; deliveries
    /// pass these through so consumers see every property byte for byte.
    pub raw_properties: Bytes,
}

/// Decodes frames from a read buffer; see the module docs.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: u32,
}

impl FrameDecoder {
    /// A decoder for frames up to `frame_max` octets in all (header and end included).
    pub fn new(frame_max: u32) -> Self {
        Self {
            max_payload: frame_max.saturating_sub(FRAME_OVERHEAD as u32),
        }
    }

    /// Change the limit once connection.tune-ok has negotiated it.
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.max_payload = frame_max.saturating_sub(FRAME_OVERHEAD as u32);
    }
}

impl FrameDecoder {
    /// Cut the next whole frame out of `src`. `Ok(None)` means more bytes are needed
    /// (and `src` has reserved room for the rest of the frame, never more).
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(head) = src.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let frame_type = head[0];
        let channel = u16::from_be_bytes([head[1], head[2]]);
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        if !matches!(
            frame_type,
            FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
        ) {
            return Err(ProtocolError::UnknownFrameType { frame_type });
        }
        if size > self.max_payload {
            return Err(ProtocolError::FrameTooLarge {
                frame_type,
                size,
                max: self.max_payload,
            });
        }
        let total = FRAME_HEADER_LEN + size as usize + 1;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let found = src[total - 1];
        if found != FRAME_END {
            return Err(ProtocolError::BadFrameEnd { frame_type, found });
        }
        let mut frame = src.split_to(total);
        frame.advance(FRAME_HEADER_LEN);
        frame.truncate(size as usize);
        let payload = frame.freeze();
        let frame = match frame_type {
            FRAME_METHOD => Frame::Method {
                channel,
                method: Box::new(parse_method(&payload)?),
            },
            FRAME_HEADER => Frame::Header {
                channel,
                header: parse_header(channel, payload)?,
            },
            FRAME_BODY => Frame::Body { channel, payload },
            _ => {
                if channel != 0 {
                    return Err(ProtocolError::HeartbeatOnChannel { channel });
                }
                Frame::Heartbeat
            }
        };
        Ok(Some(frame))
    }
}

fn parse_method(payload: &[u8]) -> Result<AMQPClass, ProtocolError> {
    let (class_id, method_id) = match payload {
        [c0, c1, m0, m1, ..] => (
            u16::from_be_bytes([*c0, *c1]),
            u16::from_be_bytes([*m0, *m1]),
        ),
        _ => {
            return Err(ProtocolError::Syntax {
                class_id: 0,
                method_id: 0,
            });
        }
    };
    if !is_known_method(class_id, method_id) {
        return Err(ProtocolError::UnknownMethod {
            class_id,
            method_id,
        });
    }
    // amq-protocol parses basic.qos's prefetch-size and drops it; read it here so that a
    // byte limit is refused (as RabbitMQ does) instead of ignored.
    if (class_id, method_id) == (60, 10)
        && let Some(size) = payload.get(4..8)
        && let size @ 1.. = u32::from_be_bytes([size[0], size[1], size[2], size[3]])
    {
        return Err(ProtocolError::PrefetchSizeNotImplemented { size });
    }
    if nesting::method_too_deep(class_id, method_id, payload) {
        return Err(ProtocolError::Syntax {
            class_id,
            method_id,
        });
    }
    match parse_class(payload) {
        Ok((_, method)) => Ok(method),
        Err(_) => Err(ProtocolError::Syntax {
            class_id,
            method_id,
        }),
    }
}

fn parse_header(channel: u16, payload: Bytes) -> Result<ContentHeader, ProtocolError> {
    if let Some(properties) = payload.get(PROPERTIES_OFFSET..)
        && nesting::properties_too_deep(properties)
    {
        return Err(ProtocolError::BadContentHeader { channel });
    }
    match parse_content_header(&payload[..]) {
        Ok((rest, header)) if rest.is_empty() && payload.len() >= PROPERTIES_OFFSET => {
            Ok(ContentHeader {
                class_id: header.class_id,
                body_size: header.body_size,
                properties: header.properties,
                raw_properties: payload.slice(PROPERTIES_OFFSET..),
            })
        }
        _ => Err(ProtocolError::BadContentHeader { channel }),
    }
}

/// Whether AMQP 0-9-1 defines this class/method pair.
pub fn is_known_method(class_id: u16, method_id: u16) -> bool {
    let methods: &[u16] = match class_id {
        10 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71],
        20 => &[10, 11, 20, 21, 40, 41],
        30 => &[10, 11],
        40 => &[10, 11, 20, 21, 30, 31, 40, 51],
        50 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51],
        60 => &[
            10, 11, 20, 21, 30, 31, 40, 50, 60, 70, 71, 72, 80, 90, 100, 110, 111, 120,
        ],
        85 => &[10, 11],
        90 => &[10, 11, 20, 21, 30, 31],
        _ => &[],
    };
    methods.contains(&method_id)
}
