//! The management HTTP API client: one blocking request at a time, basic auth, JSON.
//!
//! [`ApiClient`] joins the base URL with an API path (built with [`path`], which
//! percent-encodes every segment, so a vhost `/` is `%2F`), sends it with ureq, and turns the
//! answer into `Ok(Some(json))` / `Ok(None)` (empty body) or a [`CtlError`]: an error status
//! becomes [`CtlError::Api`] carrying the API's `reason` (RabbitMQ's error bodies are
//! `{"error": ..., "reason": ...}`), a refused connection [`CtlError::Unreachable`], a
//! timeout [`CtlError::Timeout`].

use std::time::Duration;

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::error::{CtlError, Subject};

/// What is left unencoded in a path segment: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode one path segment (a vhost, a queue name, a connection name).
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// `/api/` followed by the segments, each percent-encoded: `path(&["queues", "/", "q 1"])`
/// is `/api/queues/%2F/q%201`.
pub fn path(segments: &[&str]) -> String {
    let mut p = String::from("/api");
    for s in segments {
        p.push('/');
        p.push_str(&encode(s));
    }
    p
}

/// Largest answer read (a definitions export of a big broker).
const MAX_BODY: u64 = 512 << 20;

/// A client of one broker's management API.
pub struct ApiClient {
    base: String,
    authorization: String,
    agent: ureq::Agent,
}

impl ApiClient {
    /// A client of the API at `base` (`http://127.0.0.1:15672`, a trailing `/` is dropped)
    /// authenticating as `username`.
    pub fn new(base: &str, username: &str, password: &str, timeout: Duration) -> ApiClient {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            authorization: format!("Basic {credentials}"),
            agent,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` (with its query string, if any); the parsed JSON answer.
    pub fn get(&self, path: &str, subject: Subject) -> Result<Value, CtlError> {
        self.request("GET", path, None, &[], subject)?
            .ok_or_else(|| CtlError::BadAnswer {
                path: path.to_string(),
                detail: "empty body".into(),
            })
    }

    /// GET `path`, `None` on 404.
    pub fn get_optional(&self, path: &str, subject: Subject) -> Result<Option<Value>, CtlError> {
        match self.get(path, subject) {
            Ok(v) => Ok(Some(v)),
            Err(CtlError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT `body` as JSON.
    pub fn put(&self, path: &str, body: &Value, subject: Subject) -> Result<(), CtlError> {
        self.request("PUT", path, Some(body), &[], subject)
            .map(drop)
    }

    /// POST `body` as JSON; the answer's JSON, if any.
    pub fn post(
        &self,
        path: &str,
        body: &Value,
        subject: Subject,
    ) -> Result<Option<Value>, CtlError> {
        self.request("POST", path, Some(body), &[], subject)
    }

    /// DELETE, with extra headers (`X-Reason` for a connection).
    pub fn delete(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        subject: Subject,
    ) -> Result<(), CtlError> {
        self.request("DELETE", path, None, headers, subject)
            .map(drop)
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        subject: Subject,
    ) -> Result<Option<Value>, CtlError> {
        let url = format!("{}{}", self.base, path);
        let result = match (method, body) {
            ("PUT", Some(b)) => self
                .with_headers(self.agent.put(&url), headers)
                .send_json(b),
            ("POST", Some(b)) => self
                .with_headers(self.agent.post(&url), headers)
                .send_json(b),
            ("DELETE", _) => self.with_headers(self.agent.delete(&url), headers).call(),
            _ => self.with_headers(self.agent.get(&url), headers).call(),
        };
        let mut response = result.map_err(|e| transport_error(&url, e))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| transport_error(&url, e))?;
        debug_log(method, path, status);
        if !(200..300).contains(&status) {
            return Err(CtlError::Api {
                method,
                path: path.to_string(),
                status,
                reason: reason_of(status, &bytes),
                subject,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CtlError::BadAnswer {
                path: path.to_string(),
                detail: format!("not JSON: {e}"),
            })
    }

    fn with_headers<B>(
        &self,
        mut request: ureq::RequestBuilder<B>,
        headers: &[(&str, &str)],
    ) -> ureq::RequestBuilder<B> {
        request = request.header("authorization", &self.authorization);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }
}

/// No logging framework in a CLI: `WARREN_CTL_DEBUG=1` prints each request on stderr.
fn debug_log(method: &str, path: &str, status: u16) {
    if std::env::var_os("WARREN_CTL_DEBUG").is_some() {
        eprintln!("{method} {path} -> {status}");
    }
}

/// The API's `reason`, else its `error`, else the body's text, else the status's name.
fn reason_of(status: u16, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["reason", "error"] {
            match v.get(key) {
                Some(Value::String(s)) if !s.is_empty() => return s.trim().to_string(),
                Some(Value::Null) | None => {}
                Some(other) => return other.to_string(),
            }
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if !text.is_empty() {
        return text.chars().take(500).collect();
    }
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "error",
    }
    .to_string()
}

fn transport_error(url: &str, e: ureq::Error) -> CtlError {
    match e {
        ureq::Error::Timeout(_) => CtlError::Timeout {
            url: url.to_string(),
        },
        other => CtlError::Unreachable {
            url: url.to_string(),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path(&["queues", "/", "q 1"]), "/api/queues/%2F/q%201");
        assert_eq!(
            path(&["connections", "127.0.0.1:5 -> 127.0.0.1:6"]),
            "/api/connections/127.0.0.1%3A5%20-%3E%20127.0.0.1%3A6"
        );
        assert_eq!(encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(encode("é?#%"), "%C3%A9%3F%23%25");
    }

    #[test]
    fn reason_comes_from_the_error_body() {
        let body = br#"{"error":"Object Not Found","reason":"Not Found"}"#;
        assert_eq!(reason_of(404, body), "Not Found");
        assert_eq!(reason_of(401, b""), "Unauthorized");
        assert_eq!(reason_of(500, b"boom"), "boom");
        assert_eq!(reason_of(400, br#"{"error":"bad_request"}"#), "bad_request");
    }

    #[test]
    fn unreachable_broker_is_reported_as_unavailable() {
        // Port 1 on loopback: nothing listens there.
        let client = ApiClient::new(
            "http://127.0.0.1:1/",
            "guest",
            "guest",
            Duration::from_secs(5),
        );
        match client.get("/api/overview", Subject::Other) {
            Err(e @ CtlError::Unreachable { .. }) => assert_eq!(e.exit_code(), 69),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}
