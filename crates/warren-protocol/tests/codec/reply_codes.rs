//! The reply code and class/method each protocol error closes the connection with,
//! as RabbitMQ would send them.

use warren_protocol::{ProtocolError, reply_code};

#[test]
fn every_error_maps_to_rabbitmq_reply_code() {
    let cases = [
        (
            ProtocolError::FrameTooLarge {
                frame_type: 1,
                size: 10,
                max: 5,
            },
            reply_code::FRAME_ERROR,
        ),
        (
            ProtocolError::BadFrameEnd {
                frame_type: 1,
                found: 0,
            },
            reply_code::FRAME_ERROR,
        ),
        (
            ProtocolError::UnknownFrameType { frame_type: 9 },
            reply_code::FRAME_ERROR,
        ),
        (
            ProtocolError::BadContentHeader { channel: 1 },
            reply_code::FRAME_ERROR,
        ),
        (
            ProtocolError::BodyTooLong { announced: 1 },
            reply_code::FRAME_ERROR,
        ),
        (
            ProtocolError::HeartbeatOnChannel { channel: 1 },
            reply_code::UNEXPECTED_FRAME,
        ),
        (
            ProtocolError::UnexpectedFrame {
                reason: "r",
                class_id: 60,
                method_id: 40,
            },
            reply_code::UNEXPECTED_FRAME,
        ),
        (
            ProtocolError::UnknownMethod {
                class_id: 99,
                method_id: 10,
            },
            reply_code::NOT_IMPLEMENTED,
        ),
        (
            ProtocolError::Syntax {
                class_id: 50,
                method_id: 10,
            },
            reply_code::SYNTAX_ERROR,
        ),
        (
            ProtocolError::MessageTooLarge { size: 2, max: 1 },
            reply_code::PRECONDITION_FAILED,
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.reply_code(), code, "{error}");
    }
}

#[test]
fn reply_code_constants_match_the_spec() {
    assert_eq!(reply_code::FRAME_ERROR, 501);
    assert_eq!(reply_code::SYNTAX_ERROR, 502);
    assert_eq!(reply_code::UNEXPECTED_FRAME, 505);
    assert_eq!(reply_code::PRECONDITION_FAILED, 406);
    assert_eq!(reply_code::NOT_IMPLEMENTED, 540);
}

#[test]
fn method_errors_report_their_class_and_method() {
    assert_eq!(
        ProtocolError::UnknownMethod {
            class_id: 99,
            method_id: 10
        }
        .class_method(),
        (99, 10)
    );
    assert_eq!(
        ProtocolError::Syntax {
            class_id: 50,
            method_id: 10
        }
        .class_method(),
        (50, 10)
    );
    assert_eq!(
        ProtocolError::UnexpectedFrame {
            reason: "r",
            class_id: 60,
            method_id: 40
        }
        .class_method(),
        (60, 40)
    );
    assert_eq!(
        ProtocolError::BodyTooLong { announced: 1 }.class_method(),
        (0, 0)
    );
    assert_eq!(
        ProtocolError::HeartbeatOnChannel { channel: 1 }.class_method(),
        (0, 0)
    );
}

#[test]
fn error_messages_start_with_the_reply_text_rabbitmq_uses() {
    let error = ProtocolError::FrameTooLarge {
        frame_type: 1,
        size: 10,
        max: 5,
    };
    assert!(error.to_string().starts_with("FRAME_ERROR - "), "{error}");
    let error = ProtocolError::Syntax {
        class_id: 50,
        method_id: 10,
    };
    assert!(error.to_string().starts_with("SYNTAX_ERROR - "), "{error}");
}
