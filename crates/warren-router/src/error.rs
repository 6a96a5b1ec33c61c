//! Errors of the router: binding arguments that RabbitMQ refuses.
//!
//! The router itself never fails to route; the only thing it rejects is a binding it could
//! not interpret. RabbitMQ answers those with a channel exception 406 PRECONDITION_FAILED
//! (`binding_invalid`); the server maps [`BindingError`] to that code.

/// A binding refused at `queue.bind` / `exchange.bind` time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// `x-match` is a string, but not one of the four known modes.
    #[error(
        "Invalid x-match field value <<\"{value}\">>; expected all, any, all-with-x, or any-with-x"
    )]
    InvalidXMatchValue {
        /// The value received, lossily decoded as UTF-8.
        value: String,
    },
    /// `x-match` is not a string at all.
    #[error("Invalid x-match field type {amqp_type} (value {value}); expected longstr")]
    InvalidXMatchType {
        /// The AMQP type of the value received, as RabbitMQ names it (`signedint`, ...).
        amqp_type: String,
        /// The value received, as text.
        value: String,
    },
}
