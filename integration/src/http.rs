//! A small client for the management HTTP API in tests: basic auth, JSON in and out,
//! status codes kept (tests check them), paths given as RabbitMQ writes them
//! (`/api/queues/%2F/q`).

use reqwest::StatusCode;
use serde_json::Value;

/// The API of one broker, as one user.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    user: String,
    pass: String,
    client: reqwest::Client,
}

/// A response: status and body (JSON, or `Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Body.
    pub body: Value,
    /// `Location` header, if any.
    pub location: Option<String>,
    /// `www-authenticate` header, if any.
    pub challenge: Option<String>,
}

impl Api {
    /// `base` is `http://127.0.0.1:PORT`; the user is guest/guest.
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            base: base.into(),
            user: "guest".into(),
            pass: "guest".into(),
            client: reqwest::Client::new(),
        }
    }

    /// The same API as another user.
    pub fn as_user(&self, user: &str, pass: &str) -> Api {
        Api {
            user: user.into(),
            pass: pass.into(),
            ..self.clone()
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .basic_auth(&self.user, Some(&self.pass))
            .send()
            .await
            .expect("HTTP request");
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let challenge = header("www-authenticate");
        let bytes = response.bytes().await.expect("HTTP body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            location,
            challenge,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// GET without credentials.
    pub async fn get_anonymous(&self, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("HTTP request");
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        Reply {
            status,
            body,
            location: None,
            challenge,
        }
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// PUT raw bytes (bad-input tests).
    pub async fn put_raw(&self, path: &str, body: &'static [u8]) -> Reply {
        self.send(
            self.client
                .put(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(format!("{}{path}", self.base)))
            .await
    }
}
