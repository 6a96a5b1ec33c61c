//! Broker errors. Each variant is one AMQP reply code; the text follows RabbitMQ's wording
//! so that clients (and their users) see the messages they know. Whether an error closes
//! the channel or the whole connection follows from the code (`is_connection_error`), as
//! the AMQP spec classifies them (soft vs hard errors); the server does the mapping in
//! one place.

/// An error the broker answers a method with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// 403 ACCESS_REFUSED.
    #[error("ACCESS_REFUSED - {0}")]
    AccessRefused(String),
    /// 404 NOT_FOUND.
    #[error("NOT_FOUND - {0}")]
    NotFound(String),
    /// 405 RESOURCE_LOCKED.
    #[error("RESOURCE_LOCKED - {0}")]
    ResourceLocked(String),
    /// 406 PRECONDITION_FAILED.
    #[error("PRECONDITION_FAILED - {0}")]
    PreconditionFailed(String),
    /// 503 COMMAND_INVALID (connection error).
    #[error("COMMAND_INVALID - {0}")]
    CommandInvalid(String),
    /// 530 NOT_ALLOWED (connection error).
    #[error("NOT_ALLOWED - {0}")]
    NotAllowed(String),
    /// 540 NOT_IMPLEMENTED (connection error).
    #[error("NOT_IMPLEMENTED - {0}")]
    NotImplemented(String),
    /// 541 INTERNAL_ERROR (connection error), e.g. the store failed.
    #[error("INTERNAL_ERROR - {0}")]
    Internal(String),
}

impl BrokerError {
    /// The AMQP reply code.
    pub fn reply_code(&self) -> u16 {
        match self {
            BrokerError::AccessRefused(_) => 403,
            BrokerError::NotFound(_) => 404,
            BrokerError::ResourceLocked(_) => 405,
            BrokerError::PreconditionFailed(_) => 406,
            BrokerError::CommandInvalid(_) => 503,
            BrokerError::NotAllowed(_) => 530,
            BrokerError::NotImplemented(_) => 540,
            BrokerError::Internal(_) => 541,
        }
    }

    /// True for hard errors, which close the connection rather than the channel.
    pub fn is_connection_error(&self) -> bool {
        self.reply_code() >= 500
    }

    pub(crate) fn no_exchange(vhost: &str, name: &str) -> Self {
        BrokerError::NotFound(format!("no exchange '{name}' in vhost '{vhost}'"))
    }

    pub(crate) fn no_queue(vhost: &str, name: &str) -> Self {
        BrokerError::NotFound(format!("no queue '{name}' in vhost '{vhost}'"))
    }

    pub(crate) fn inequivalent(
        what: &str,
        arg: &str,
        name: &str,
        vhost: &str,
        received: impl std::fmt::Display,
        current: impl std::fmt::Display,
    ) -> Self {
        BrokerError::PreconditionFailed(format!(
            "inequivalent arg '{arg}' for {what} '{name}' in vhost '{vhost}': received '{received}' but current is '{current}'"
        ))
    }
}

impl From<warren_store::StoreError> for BrokerError {
    fn from(e: warren_store::StoreError) -> Self {
        BrokerError::Internal(format!("store: {e}"))
    }
}
