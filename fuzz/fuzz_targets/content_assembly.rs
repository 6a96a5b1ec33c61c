//! Arbitrary sequences of method, header and body frames fed to a `ContentAssembler`,
//! checked against a model of what AMQP 0-9-1 allows.
//!
//! The driver behaves like the server: a method frame first asks `method_interrupts`,
//! and any error resets the channel's assembler. The model predicts, for each frame,
//! whether it is refused, keeps the content pending, or completes it with exactly the
//! bytes sent; a single-frame body must be that frame's buffer (no copy).

#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use warren_protocol::{BasicProperties, ContentAssembler, ContentEvent, ContentHeader};

#[derive(Arbitrary, Debug)]
enum BodySize {
    Small(u8),
    Medium(u16),
    Any(u64),
}

impl BodySize {
    fn get(&self) -> u64 {
        match self {
            BodySize::Small(n) => u64::from(*n),
            BodySize::Medium(n) => u64::from(*n),
            BodySize::Any(n) => *n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A method frame; content-bearing methods are class 60 (publish 40).
    Method { class_id: u8, tag: u16 },
    /// A content header frame.
    Header { class_id: u8, size: BodySize },
    /// A content body frame of this many bytes.
    Body { len: u8, fill: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_body: BodySize,
    ops: Vec<Op>,
}

/// What the protocol allows next, and the bytes of the body so far.
#[derive(Debug)]
enum Model {
    Idle,
    AwaitingHeader { tag: u16, class_id: u16 },
    AwaitingBody { tag: u16, announced: u64, body: Vec<u8>, frames: usize },
}

fn header(class_id: u16, body_size: u64) -> ContentHeader {
    ContentHeader {
        class_id,
        body_size,
        properties: BasicProperties::default(),
        raw_properties: Bytes::from_static(&[0, 0]),
    }
}

fuzz_target!(|input: Input| {
    let max_body = input.max_body.get();
    let mut assembler = ContentAssembler::<u16>::new(max_body);
    let mut model = Model::Idle;
    for op in input.ops {
        assert_eq!(assembler.is_idle(), matches!(model, Model::Idle));
        match op {
            Op::Method { class_id, tag } => {
                let interrupted = assembler.method_interrupts();
                assert_eq!(interrupted.is_some(), !matches!(model, Model::Idle));
                if interrupted.is_some() {
                    assembler.reset();
                    model = Model::Idle;
                } else {
                    let class_id = u16::from(class_id);
                    assembler.start(tag, class_id, 40);
                    model = Model::AwaitingHeader { tag, class_id };
                }
            }
            Op::Header { class_id, size } => {
                let (class_id, size) = (u16::from(class_id), size.get());
                let result = assembler.header(header(class_id, size));
                match std::mem::replace(&mut model, Model::Idle) {
                    Model::AwaitingHeader { tag, class_id: expected }
                        if class_id == expected && size <= max_body =>
                    {
                        match result.expect("a valid header is accepted") {
                            ContentEvent::Complete(content) => {
                                assert_eq!(size, 0, "completed a non-empty body at the header");
                                assert_eq!(content.method, tag);
                                assert!(content.body.is_empty());
                            }
                            ContentEvent::Pending => {
                                assert_ne!(size, 0, "an empty body left pending");
                                model = Model::AwaitingBody {
                                    tag,
                                    announced: size,
                                    body: Vec::new(),
                                    frames: 0,
                                };
                            }
                        }
                    }
                    _ => {
                        assert!(result.is_err(), "an out-of-sequence header was accepted");
                        assembler.reset();
                    }
                }
            }
            Op::Body { len, fill } => {
                let payload = Bytes::from(vec![fill; usize::from(len)]);
                let result = assembler.body(payload.clone());
                match std::mem::replace(&mut model, Model::Idle) {
                    Model::AwaitingBody { tag, announced, mut body, frames }
                        if body.len() as u64 + u64::from(len) <= announced =>
                    {
                        body.extend_from_slice(&payload);
                        let frames = frames + 1;
                        match result.expect("a body within the announced size is accepted") {
                            ContentEvent::Pending => {
                                assert!((body.len() as u64) < announced, "complete body left pending");
                                model = Model::AwaitingBody { tag, announced, body, frames };
                            }
                            ContentEvent::Complete(content) => {
                                assert_eq!(body.len() as u64, announced, "completed early");
                                assert_eq!(content.method, tag);
                                assert_eq!(content.body, body);
                                if frames == 1 {
                                    assert_eq!(content.body.as_ptr(), payload.as_ptr(), "copied");
                                }
                            }
                        }
                    }
                    _ => {
                        assert!(result.is_err(), "an out-of-sequence or oversized body was accepted");
                        assembler.reset();
                    }
                }
            }
        }
    }
});
