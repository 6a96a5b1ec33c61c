//! Message properties as the management API writes them (`properties` of a publish and of
//! each message `/get` returns): JSON object <-> AMQP basic properties.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use serde_json::{Map, Value};
use warren_broker::definitions::{json_to_table, table_to_json};

use crate::error::ApiError;

fn short(key: &str, v: &Value) -> Result<ShortString, ApiError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(ApiError::bad_request(format!(
                "property {key} must be a string, got {other}"
            )));
        }
    };
    ShortString::try_new(s)
        .map_err(|_| ApiError::bad_request(format!("property {key} is longer than 255 bytes")))
}

fn integer(key: &str, v: &Value) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or(0)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("property {key} must be an integer"))),
        _ => Err(ApiError::bad_request(format!(
            "property {key} must be an integer"
        ))),
    }
}

/// Properties from a publish request. Unknown keys are refused, as RabbitMQ does.
pub fn from_json(map: &Map<String, Value>) -> Result<BasicProperties, ApiError> {
    let mut p = BasicProperties::default();
    for (key, v) in map {
        if v.is_null() {
            continue;
        }
        p = match key.as_str() {
            "content_type" => p.with_content_type(short(key, v)?),
            "content_encoding" => p.with_content_encoding(short(key, v)?),
            "headers" => {
                let Value::Object(h) = v else {
                    return Err(ApiError::bad_request("property headers must be an object"));
                };
                let table = json_to_table("properties.headers", h)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                p.with_headers(table)
            }
            "delivery_mode" => match integer(key, v)? {
                m @ (1 | 2) => p.with_delivery_mode(m as u8),
                m => {
                    return Err(ApiError::bad_request(format!(
                        "delivery_mode must be 1 or 2, got {m}"
                    )));
                }
            },
            "priority" => match integer(key, v)? {
                n @ 0..=255 => p.with_priority(n as u8),
                n => {
                    return Err(ApiError::bad_request(format!(
                        "priority must be 0..255, got {n}"
                    )));
                }
            },
            "correlation_id" => p.with_correlation_id(short(key, v)?),
            "reply_to" => p.with_reply_to(short(key, v)?),
            "expiration" => p.with_expiration(short(key, v)?),
            "message_id" => p.with_message_id(short(key, v)?),
            "timestamp" => p.with_timestamp(integer(key, v)?.max(0) as u64),
            "type" => p.with_type(short(key, v)?),
            "user_id" => p.with_user_id(short(key, v)?),
            "app_id" => p.with_app_id(short(key, v)?),
            "cluster_id" => p.with_cluster_id(short(key, v)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown message property '{other}'"
                )));
            }
        };
    }
    Ok(p)
}

/// Properties of a message, as RabbitMQ's `/get` shows them (only those that are set).
pub fn to_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let mut s = |k: &str, v: &Option<ShortString>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v.as_str()));
        }
    };
    s("content_type", p.content_type());
    s("content_encoding", p.content_encoding());
    s("correlation_id", p.correlation_id());
    s("reply_to", p.reply_to());
    s("expiration", p.expiration());
    s("message_id", p.message_id());
    s("type", p.kind());
    s("user_id", p.user_id());
    s("app_id", p.app_id());
    s("cluster_id", p.cluster_id());
    if let Some(h) = p.headers() {
        m.insert("headers".into(), Value::Object(table_to_json(h)));
    }
    if let Some(d) = p.delivery_mode() {
        m.insert("delivery_mode".into(), Value::from(*d));
    }
    if let Some(pr) = p.priority() {
        m.insert("priority".into(), Value::from(*pr));
    }
    if let Some(t) = p.timestamp() {
        m.insert("timestamp".into(), Value::from(*t));
    }
    Value::Object(m)
}
