//! Request bodies: JSON objects read by hand so that every refusal is RabbitMQ's 400
//! (`not_json` for a body that is not JSON, the field and its problem for a wrong type),
//! never axum's plain-text rejection.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The body as a JSON object.
pub fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("not_json")),
        Err(_) => Err(ApiError::bad_request("not_json")),
    }
}

/// A boolean field that RabbitMQ also accepts as the strings "true"/"false".
pub fn boolean(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(other) => Err(ApiError::bad_request(serde_json::json!([
            "not_boolean",
            other
        ]))),
    }
}

/// A string field.
pub fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "{key} must be a string, got {other}"
        ))),
    }
}

/// An object field (`arguments`, `properties`, `headers`...).
pub fn table(map: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        // RabbitMQ's forms send `"arguments": ""` when empty.
        Some(Value::String(s)) if s.is_empty() => Ok(Map::new()),
        Some(Value::Array(a)) if a.is_empty() => Ok(Map::new()),
        Some(other) => Err(ApiError::bad_request(format!(
            "{key} must be an object, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_json_is_not_json() {
        let e = object(&Bytes::from_static(b"{bad"))
            .err()
            .map(|e| e.status());
        assert_eq!(e, Some(axum::http::StatusCode::BAD_REQUEST));
        assert!(object(&Bytes::from_static(b"")).is_ok_and(|m| m.is_empty()));
        assert!(object(&Bytes::from_static(b"[1]")).is_err());
    }

    #[test]
    fn booleans_accept_rabbitmq_strings() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"a":"true","b":false,"c":"x"}"#).unwrap_or_default();
        assert!(matches!(boolean(&m, "a", false), Ok(true)));
        assert!(matches!(boolean(&m, "b", true), Ok(false)));
        assert!(matches!(boolean(&m, "z", true), Ok(true)));
        assert!(boolean(&m, "c", true).is_err());
    }
}
