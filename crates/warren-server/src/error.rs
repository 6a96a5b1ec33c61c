//! The one place where errors become AMQP closes.
//!
//! Every failure a connection meets — a protocol error from the codec, a broker error
//! from a method, a state error of the channel machine — becomes an [`Exception`]: a
//! reply code, RabbitMQ-worded text and the class/method that caused it. Whether it
//! closes the channel or the connection follows from the code, as the AMQP spec (and
//! RabbitMQ) classify them: 403-406 and 311-313 are soft (channel.close), the rest hard
//! (connection.close).

use warren_broker::BrokerError;
use warren_protocol::ProtocolError;

/// An AMQP exception to answer with a close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exception {
    pub code: u16,
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl Exception {
    pub(crate) fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    pub(crate) fn on(mut self, class_id: u16, method_id: u16) -> Self {
        if self.class_id == 0 && self.method_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    /// Hard errors close the connection.
    pub(crate) fn is_connection_error(&self) -> bool {
        !matches!(self.code, 311..=313 | 403..=406)
    }

    pub(crate) fn channel_error(text: impl std::fmt::Display) -> Self {
        Self::new(504, format!("CHANNEL_ERROR - {text}"))
    }

    pub(crate) fn command_invalid(text: impl std::fmt::Display) -> Self {
        Self::new(503, format!("COMMAND_INVALID - {text}"))
    }

    pub(crate) fn not_allowed(text: impl std::fmt::Display) -> Self {
        Self::new(530, format!("NOT_ALLOWED - {text}"))
    }

    pub(crate) fn precondition(text: impl std::fmt::Display) -> Self {
        Self::new(406, format!("PRECONDITION_FAILED - {text}"))
    }
}

impl From<BrokerError> for Exception {
    fn from(e: BrokerError) -> Self {
        Self::new(e.reply_code(), e.to_string())
    }
}

impl From<ProtocolError> for Exception {
    fn from(e: ProtocolError) -> Self {
        let (class_id, method_id) = e.class_method();
        Self {
            code: e.reply_code(),
            text: e.to_string(),
            class_id,
            method_id,
        }
    }
}
