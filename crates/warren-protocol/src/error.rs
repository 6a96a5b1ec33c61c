//! Protocol errors: every way bytes from a peer can be wrong, each with the reply code
//! the server closes the connection with (all of these are connection exceptions).

use crate::reply_code;

/// A framing or parsing error. All of them close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame header declares more payload than the negotiated `frame_max` allows.
    #[error(
        "FRAME_ERROR - frame of type {frame_type} declares {size} payload bytes, more than the negotiated maximum {max}"
    )]
    FrameTooLarge {
        /// Frame type octet.
        frame_type: u8,
        /// Declared payload size.
        size: u32,
        /// Largest payload allowed (frame_max - 8).
        max: u32,
    },
    /// The octet after the payload is not 0xCE.
    #[error(
        "FRAME_ERROR - frame of type {frame_type} has frame-end octet {found:#04x}, expected 0xce"
    )]
    BadFrameEnd {
        /// Frame type octet.
        frame_type: u8,
        /// The octet found instead of 0xCE.
        found: u8,
    },
    /// The frame type octet is none of method, header, body, heartbeat.
    #[error("FRAME_ERROR - unknown frame type {frame_type}")]
    UnknownFrameType {
        /// Frame type octet.
        frame_type: u8,
    },
    /// A heartbeat frame on a channel other than 0.
    #[error("UNEXPECTED_FRAME - heartbeat frame on channel {channel}")]
    HeartbeatOnChannel {
        /// The channel it came on.
        channel: u16,
    },
    /// The class or method id is not one AMQP 0-9-1 defines.
    #[error("NOT_IMPLEMENTED - unknown class/method {class_id}/{method_id}")]
    UnknownMethod {
        /// Class id.
        class_id: u16,
        /// Method id.
        method_id: u16,
    },
    /// basic.qos with a non-zero prefetch-size: RabbitMQ implements only message-count
    /// prefetch and closes the connection with 540 NOT_IMPLEMENTED, and so does Warren
    /// rather than silently ignoring a byte limit the client asked for.
    #[error("NOT_IMPLEMENTED - prefetch_size!=0 ({size})")]
    PrefetchSizeNotImplemented {
        /// The prefetch-size the client sent.
        size: u32,
    },
    /// A known method whose arguments do not parse, or whose field table nests deeper
    /// than [`MAX_FIELD_NESTING`](crate::MAX_FIELD_NESTING).
    #[error("SYNTAX_ERROR - cannot parse arguments of method {class_id}/{method_id}")]
    Syntax {
        /// Class id.
        class_id: u16,
        /// Method id.
        method_id: u16,
    },
    /// A content header whose fields do not parse, or whose `headers` table nests deeper
    /// than [`MAX_FIELD_NESTING`](crate::MAX_FIELD_NESTING).
    #[error("FRAME_ERROR - cannot parse content header on channel {channel}")]
    BadContentHeader {
        /// The channel it came on.
        channel: u16,
    },
    /// Content frames out of sequence (body without header, method inside content...).
    #[error("UNEXPECTED_FRAME - {reason}")]
    UnexpectedFrame {
        /// What was expected and what came.
        reason: &'static str,
        /// Class id of the method being assembled, 0 if none.
        class_id: u16,
        /// Method id of the method being assembled, 0 if none.
        method_id: u16,
    },
    /// More body bytes than the content header announced.
    #[error("FRAME_ERROR - content body exceeds the size its header announced ({announced} bytes)")]
    BodyTooLong {
        /// The size announced in the content header.
        announced: u64,
    },
    /// A message larger than the broker accepts.
    #[error("message size {size} is larger than configured max size {max}")]
    MessageTooLarge {
        /// Announced body size.
        size: u64,
        /// Configured maximum.
        max: u64,
    },
}

impl ProtocolError {
    /// The reply code of the `connection.close` this error ends the connection with.
    pub fn reply_code(&self) -> u16 {
        match self {
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::BadFrameEnd { .. }
            | ProtocolError::UnknownFrameType { .. }
            | ProtocolError::BadContentHeader { .. }
            | ProtocolError::BodyTooLong { .. } => reply_code::FRAME_ERROR,
            ProtocolError::HeartbeatOnChannel { .. } | ProtocolError::UnexpectedFrame { .. } => {
                reply_code::UNEXPECTED_FRAME
            }
            ProtocolError::UnknownMethod { .. }
            | ProtocolError::PrefetchSizeNotImplemented { .. } => reply_code::NOT_IMPLEMENTED,
            ProtocolError::Syntax { .. } => reply_code::SYNTAX_ERROR,
            ProtocolError::MessageTooLarge { .. } => reply_code::PRECONDITION_FAILED,
        }
    }

    /// Class and method ids to report in `connection.close`.
    pub fn class_method(&self) -> (u16, u16) {
        match self {
            ProtocolError::UnknownMethod {
                class_id,
                method_id,
            }
            | ProtocolError::Syntax {
                class_id,
                method_id,
            }
            | ProtocolError::UnexpectedFrame {
                class_id,
                method_id,
                ..
            } => (*class_id, *method_id),
            ProtocolError::PrefetchSizeNotImplemented { .. } => (60, 10),
            _ => (0, 0),
        }
    }
}
