//! `/api/queues[/{vhost}[/{name}]]` (GET, PUT, DELETE), `/contents` (purge), `/get`, and a
//! queue's bindings.
//!
//! Changes act with the calling user's AMQP permissions (configure to declare and delete,
//! read to purge and get). `/get` takes `count` messages and then, as its `ackmode` says,
//! puts them back (`ack_requeue_true`, `reject_requeue_true`: flagged redelivered), acks
//! them (`ack_requeue_false`) or rejects them without requeue (`reject_requeue_false`,
//! so a dead-letter exchange receives them).

use std::collections::HashMap;

use amq_protocol::protocol::basic::parse_properties;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete as delete_route, get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::access::{Permission, ResourceKind};
use warren_broker::definitions::json_to_table;
use warren_broker::{Destination, Queue, QueueDeclare};

use super::exchanges::check;
use super::{API_CONNECTION, created_or_updated, listed_vhosts, vhost};
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::json;
use crate::listing::{ListQuery, respond};
use crate::properties;
use crate::state::ApiState;
use crate::stats_json::{self, Ranges};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/queues", get(list_all))
        .route("/api/queues/{vhost}", get(list_in))
        .route(
            "/api/queues/{vhost}/{name}",
            get(show).put(put).delete(delete),
        )
        .route("/api/queues/{vhost}/{name}/contents", delete_route(purge))
        .route("/api/queues/{vhost}/{name}/get", post(get_messages))
        .route("/api/queues/{vhost}/{name}/bindings", get(bindings))
}

/// One queue with its statistics (`stats_json`).
fn render(state: &ApiState, q: &Queue, ranges: &Ranges) -> Value {
    let mut out = json::queue(state.node(), q);
    if let Value::Object(m) = &mut out {
        stats_json::insert_queue_stats(m, state.broker.stats(), q, ranges);
    }
    out
}

fn items(
    state: &ApiState,
    user: &AuthUser,
    one: Option<&str>,
    ranges: &Ranges,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for v in listed_vhosts(state, user, one)? {
        for q in v.queues() {
            out.push(render(state, &q, ranges));
        }
    }
    Ok(out)
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    respond(items(&s, &user, None, &ranges)?, &q, &["vhost", "name"])
}

async fn list_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    respond(
        items(&s, &user, Some(&vhost), &ranges)?,
        &q,
        &["vhost", "name"],
    )
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let q = v.lookup_queue(&name).ok_or_else(ApiError::not_found)?;
    let mut out = render(&s, &q, &ranges);
    if let Value::Object(m) = &mut out {
        let consumers: Vec<Value> = q
            .consumers()
            .iter()
            .enumerate()
            .map(|(i, c)| super::consumers::consumer_json(&s, &q, c, i))
            .collect();
        m.insert("consumer_details".into(), Value::Array(consumers));
        m.insert("deliveries".into(), json!([]));
        m.insert("incoming".into(), json!([]));
    }
    Ok(Json(out))
}

async fn put(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let map = body::object(&raw)?;
    let arguments = json_to_table("arguments", &body::table(&map, "arguments")?)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let durable = body::boolean(&map, "durable", true)?;
    let auto_delete = body::boolean(&map, "auto_delete", false)?;
    if name.is_empty() {
        return Err(ApiError::bad_request("queue name must not be empty"));
    }
    super::check_name("queue", &name)?;
    check(
        &s,
        &user,
        &vname,
        Permission::Configure,
        ResourceKind::Queue,
        &name,
    )?;
    // RabbitMQ 3.10 declares through an AMQP channel here, so the vhost's default queue
    // type applies as it does to queue.declare.
    let default_queue_type = s
        .broker
        .access()
        .vhost(&vname)
        .and_then(|record| record.default_queue_type);
    let arguments = warren_broker::with_default_queue_type(
        default_queue_type.as_deref(),
        durable,
        false,
        auto_delete,
        arguments,
    );
    let declared = v.declare_queue(
        QueueDeclare {
            name,
            passive: false,
            durable,
            exclusive: false,
            auto_delete,
            arguments,
        },
        API_CONNECTION,
    )?;
    Ok(created_or_updated(declared.created))
}

#[derive(Debug, Default, serde::Deserialize)]
struct DeleteQuery {
    #[serde(rename = "if-unused")]
    if_unused: Option<String>,
    #[serde(rename = "if-empty")]
    if_empty: Option<String>,
}

async fn delete(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    if !v.has_queue(&name) {
        return Err(ApiError::not_found());
    }
    check(
        &s,
        &user,
        &vname,
        Permission::Configure,
        ResourceKind::Queue,
        &name,
    )?;
    v.delete_queue(
        &name,
        q.if_unused.as_deref() == Some("true"),
        q.if_empty.as_deref() == Some("true"),
        API_CONNECTION,
    )?;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    if !v.has_queue(&name) {
        return Err(ApiError::not_found());
    }
    check(
        &s,
        &user,
        &vname,
        Permission::Read,
        ResourceKind::Queue,
        &name,
    )?;
    let queue = v.queue(&name, API_CONNECTION)?;
    queue.purge();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckMode {
    AckRequeueTrue,
    AckRequeueFalse,
    RejectRequeueTrue,
    RejectRequeueFalse,
}

async fn get_messages(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let map = body::object(&raw)?;
    let count = match map.get("count") {
        None => 1,
        Some(c) => c
            .as_u64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| ApiError::bad_request("count must be a positive integer"))?,
    };
    let mode = match body::string(&map, "ackmode")?.as_deref() {
        Some("ack_requeue_true") => AckMode::AckRequeueTrue,
        Some("ack_requeue_false") => AckMode::AckRequeueFalse,
        Some("reject_requeue_true") => AckMode::RejectRequeueTrue,
        Some("reject_requeue_false") => AckMode::RejectRequeueFalse,
        Some(other) => {
            return Err(ApiError::bad_request(format!("Unknown ackmode: {other}")));
        }
        None => return Err(ApiError::bad_request("key_missing: ackmode")),
    };
    let encoding = body::string(&map, "encoding")?.unwrap_or_else(|| "auto".into());
    if encoding != "auto" && encoding != "base64" {
        return Err(ApiError::bad_request(format!(
            "Unsupported encoding: {encoding}"
        )));
    }
    let truncate = match map.get("truncate") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_u64()
                .or_else(|| t.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| ApiError::bad_request("truncate must be an integer"))?
                as usize,
        ),
    };
    check(
        &s,
        &user,
        &vname,
        Permission::Read,
        ResourceKind::Queue,
        &name,
    )?;
    let queue = v.queue(&name, API_CONNECTION)?;
    let mut taken = Vec::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let Some((entry, remaining)) = queue.get(false) else {
            break;
        };
        if let Some(message) = entry.message.as_ref() {
            let props = parse_properties(&message.raw_properties[..])
                .map(|(_, p)| properties::to_json(&p))
                .unwrap_or_else(|_| json!({}));
            let full = &message.body[..];
            let shown = match truncate {
                Some(n) if n < full.len() => &full[..n],
                _ => full,
            };
            let (payload, payload_encoding) = match (encoding.as_str(), std::str::from_utf8(shown))
            {
                ("auto", Ok(text)) => (text.to_owned(), "string"),
                _ => (
                    base64::engine::general_purpose::STANDARD.encode(shown),
                    "base64",
                ),
            };
            out.push(json!({
                "payload_bytes": full.len(),
                "redelivered": entry.redelivered,
                "exchange": message.exchange.as_str(),
                "routing_key": message.routing_key.as_str(),
                "message_count": remaining,
                "properties": props,
                "payload": payload,
                "payload_encoding": payload_encoding,
            }));
        }
        taken.push(entry);
    }
    match mode {
        AckMode::AckRequeueTrue | AckMode::RejectRequeueTrue => queue.requeue(taken),
        AckMode::AckRequeueFalse => queue.settle(taken.iter()),
        AckMode::RejectRequeueFalse => queue.reject(taken.iter()),
    }
    Ok(Json(Value::Array(out)))
}

async fn bindings(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    if !v.has_queue(&name) {
        return Err(ApiError::not_found());
    }
    let items = json::bindings_of(
        &v,
        true,
        |_, dest| matches!(dest, Destination::Queue(d) if **d == *name),
    );
    respond(items, &q, &[])
}
