//! Content assembly: `basic.publish` + content header + body frames -> one message.
//!
//! A channel owns one [`ContentAssembler`]. The server hands it the method that carries
//! content, then each header and body frame of that channel; the assembler checks the
//! sequence (header right after the method, bodies adding up to exactly the announced
//! size, no method in between) and yields a [`Content`] when the body is complete.
//! A body that arrived in one frame is that frame's `Bytes` (no copy); a body in several
//! frames is copied into one buffer whose capacity follows the bytes received, never the
//! size the header announces (a peer could announce `max_body` and send two bytes). A
//! body of two or three frames, the common case, is still copied exactly once.

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::ContentHeader;

/// A complete message as published: the method that carried it, header and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Content<M> {
    /// The content-bearing method (e.g. `basic.publish`).
    pub method: M,
    /// The content header (properties, parsed and raw).
    pub header: ContentHeader,
    /// The whole body.
    pub body: Bytes,
}

/// What feeding a frame to the assembler produced.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "moved once per message; boxing would add an allocation per message"
)]
pub enum ContentEvent<M> {
    /// More frames are needed.
    Pending,
    /// The message is complete.
    Complete(Content<M>),
}

#[derive(Debug, Default)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per channel, rewritten in place; boxing the header would allocate per message"
)]
enum State<M> {
    #[default]
    Idle,
    AwaitingHeader {
        method: M,
        class_id: u16,
        method_id: u16,
    },
    AwaitingBody {
        method: M,
        header: ContentHeader,
        first: Option<Bytes>,
        rest: BytesMut,
        received: u64,
    },
}

/// Per-channel content assembly state; see the module docs.
#[derive(Debug)]
pub struct ContentAssembler<M> {
    state: State<M>,
    max_body: u64,
}

impl<M> ContentAssembler<M> {
    /// An idle assembler accepting bodies of at most `max_body` bytes.
    pub fn new(max_body: u64) -> Self {
        Self {
            state: State::Idle,
            max_body,
        }
    }

    /// True when no content is being assembled, i.e. a method frame may come next.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Drop any partial content (channel closed).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// The error for a method frame that arrived while content was expected; `None` when idle.
    pub fn method_interrupts(&self) -> Option<ProtocolError> {
        match &self.state {
            State::Idle => None,
            State::AwaitingHeader {
                class_id,
                method_id,
                ..
            } => Some(ProtocolError::UnexpectedFrame {
                reason: "expected content header, got a method frame",
                class_id: *class_id,
                method_id: *method_id,
            }),
            State::AwaitingBody { .. } => Some(ProtocolError::UnexpectedFrame {
                reason: "expected content body, got a method frame",
                class_id: 60,
                method_id: 40,
            }),
        }
    }

    /// Start assembling the content of `method` (class/method ids for error reports).
    pub fn start(&mut self, method: M, class_id: u16, method_id: u16) {
        self.state = State::AwaitingHeader {
            method,
            class_id,
            method_id,
        };
    }

    /// Feed a content header frame.
    pub fn header(&mut self, header: ContentHeader) -> Result<ContentEvent<M>, ProtocolError> {
        let (method, class_id, method_id) = match std::mem::take(&mut self.state) {
            State::AwaitingHeader {
                method,
                class_id,
                method_id,
            } => (method, class_id, method_id),
            State::Idle => {
                return Err(ProtocolError::UnexpectedFrame {
                    reason: "content header frame without a content-bearing method",
                    class_id: 0,
                    method_id: 0,
                });
            }
            State::AwaitingBody { .. } => {
                return Err(ProtocolError::UnexpectedFrame {
                    reason: "expected content body, got a content header",
                    class_id: 60,
                    method_id: 40,
                });
            }
        };
        if header.class_id != class_id {
            return Err(ProtocolError::UnexpectedFrame {
                reason: "content header class does not match its method",
                class_id,
                method_id,
            });
        }
        if header.body_size > self.max_body {
            return Err(ProtocolError::MessageTooLarge {
                size: header.body_size,
                max: self.max_body,
            });
        }
        if header.body_size == 0 {
            return Ok(ContentEvent::Complete(Content {
                method,
                header,
                body: Bytes::new(),
            }));
        }
        self.state = State::AwaitingBody {
            method,
            header,
            first: None,
            rest: BytesMut::new(),
            received: 0,
        };
        Ok(ContentEvent::Pending)
    }

    /// Feed a content body frame.
    pub fn body(&mut self, payload: Bytes) -> Result<ContentEvent<M>, ProtocolError> {
        let State::AwaitingBody {
            header,
            first,
            rest,
            received,
            ..
        } = &mut self.state
        else {
            return Err(ProtocolError::UnexpectedFrame {
                reason: "content body frame without a content header",
                class_id: 0,
                method_id: 0,
            });
        };
        let announced = header.body_size;
        *received = received.saturating_add(payload.len() as u64);
        if *received > announced {
            return Err(ProtocolError::BodyTooLong { announced });
        }
        match first.take() {
            None if rest.is_empty() => *first = Some(payload),
            None => rest.extend_from_slice(&payload),
            Some(earlier) => {
                // A second frame: copy into one buffer, sized for twice what has arrived
                // rather than for the announced size, which a peer chooses: announcing
                // max_body and sending two tiny frames must not allocate max_body (nor
                // abort the broker when the announced size cannot be allocated).
                let wanted = announced.min(received.saturating_mul(2));
                rest.reserve(usize::try_from(wanted).unwrap_or(0));
                rest.extend_from_slice(&earlier);
                rest.extend_from_slice(&payload);
            }
        }
        if *received < announced {
            return Ok(ContentEvent::Pending);
        }
        let State::AwaitingBody {
            method,
            header,
            first,
            rest,
            ..
        } = std::mem::take(&mut self.state)
        else {
            return Ok(ContentEvent::Pending);
        };
        let body = match first {
            Some(body) => body,
            None => rest.freeze(),
        };
        Ok(ContentEvent::Complete(Content {
            method,
            header,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::BasicProperties;

    fn header(body_size: u64) -> ContentHeader {
        ContentHeader {
            class_id: 60,
            body_size,
            properties: BasicProperties::default(),
            raw_properties: Bytes::from_static(&[0, 0]),
        }
    }

    fn buffered_capacity(assembler: &ContentAssembler<()>) -> usize {
        match &assembler.state {
            State::AwaitingBody { rest, .. } => rest.capacity(),
            _ => panic!("not awaiting body"),
        }
    }

    /// Regression: the second body frame used to reserve the whole announced size.
    #[test]
    fn announced_size_alone_does_not_allocate() {
        let mut assembler = ContentAssembler::new(u64::MAX);
        assembler.start((), 60, 40);
        assembler.header(header(1 << 40)).unwrap();
        assembler.body(Bytes::from_static(b"0123456789")).unwrap();
        assembler.body(Bytes::from_static(b"0123456789")).unwrap();
        assert!(buffered_capacity(&assembler) < 4096);
    }

    #[test]
    fn three_frame_body_is_copied_into_a_buffer_reserved_once() {
        let frame = Bytes::from(vec![7u8; 1000]);
        let mut assembler = ContentAssembler::new(1 << 20);
        assembler.start((), 60, 40);
        assembler.header(header(3000)).unwrap();
        assembler.body(frame.clone()).unwrap();
        assembler.body(frame.clone()).unwrap();
        let capacity = buffered_capacity(&assembler);
        assert!(capacity >= 3000, "{capacity}");
        let ContentEvent::Complete(content) = assembler.body(frame).unwrap() else {
            panic!("body incomplete");
        };
        assert_eq!(content.body, vec![7u8; 3000]);
    }
}
