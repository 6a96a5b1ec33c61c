//! API errors as RabbitMQ's management API reports them: a status code and a JSON body
//! `{"error": "...", "reason": "..."}`.
//!
//! Handlers return `Result<_, ApiError>`; broker errors convert with RabbitMQ's mapping
//! (a refused permission is 401 `not_authorised`, a failed precondition 400
//! `bad_request`, a missing object 404), so a client sees the codes it knows.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use warren_broker::{AccessError, BrokerError};

/// The realm RabbitMQ announces with a 401.
pub const REALM: &str = "Basic realm=\"RabbitMQ Management\"";

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    reason: Value,
    challenge: bool,
}

impl ApiError {
    /// Any status, error word and reason.
    pub fn new(status: StatusCode, error: &'static str, reason: impl Into<Value>) -> Self {
        Self {
            status,
            error,
            reason: reason.into(),
            challenge: false,
        }
    }

    /// 404 for an object (or path) that does not exist.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Object Not Found", "Not Found")
    }

    /// 404 for a vhost named in the path that does not exist.
    pub fn vhost_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "vhost_not_found")
    }

    /// 400 with a reason.
    pub fn bad_request(reason: impl Into<Value>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", reason)
    }

    /// 401 for a user who logged in but may not do this.
    pub fn not_authorised(reason: impl Into<Value>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not_authorised", reason)
    }

    /// 401 for a failed login (with the `www-authenticate` challenge).
    pub fn login_failed() -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "not_authorized", "Login failed")
        }
    }

    /// 500: the broker failed (the store, usually); the reason is logged as well.
    pub fn internal(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        tracing::error!(%reason, "management API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            reason,
        )
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "reason": self.reason});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        }
        response
    }
}

/// The text of a broker error without its AMQP prefix (`PRECONDITION_FAILED - `), as the
/// management API words it.
fn bare(text: &str) -> String {
    match text.split_once(" - ") {
        Some((code, rest)) if code.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            rest.to_owned()
        }
        _ => text.to_owned(),
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let text = bare(&e.to_string());
        match e {
            BrokerError::AccessRefused(_) => ApiError::not_authorised(text),
            BrokerError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", text),
            BrokerError::Internal(_) => ApiError::internal(text),
            _ => ApiError::bad_request(text),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::NoSuchVhost(_) => ApiError::vhost_not_found(),
            AccessError::NoSuchUser(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "user_not_found")
            }
            AccessError::Store(reason) => ApiError::internal(reason),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_texts_lose_their_amqp_prefix() {
        assert_eq!(
            bare("PRECONDITION_FAILED - inequivalent arg 'durable'"),
            "inequivalent arg 'durable'"
        );
        assert_eq!(bare("plain text - with a dash"), "plain text - with a dash");
    }
}
