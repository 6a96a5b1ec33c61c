//! `/api/whoami`, `/api/auth`, `/api/extensions`, `/api/aliveness-test/{vhost}`.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::stats::{Counter, LocalCounts};
use warren_broker::{Message, QueueDeclare};

use super::{API_CONNECTION, vhost};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/auth", get(auth))
        .route("/api/extensions", get(extensions))
        .route("/api/aliveness-test/{vhost}", get(aliveness))
        .route("/api/cluster-name", get(cluster_name).put(put_cluster_name))
}

async fn whoami(user: AuthUser) -> Json<Value> {
    Json(json!({"name": user.name, "tags": user.tags}))
}

/// OAuth 2 is not offered: basic auth only.
async fn auth() -> Json<Value> {
    Json(json!({"enable_uaa": false, "uaa_client_id": "", "uaa_location": ""}))
}

/// No UI extensions are installed.
async fn extensions(_user: AuthUser) -> Json<Value> {
    Json(json!([]))
}

/// The cluster name: the `cluster_name` global parameter when set, else the node's name
/// (as RabbitMQ).
pub(crate) fn cluster_name_of(state: &ApiState) -> String {
    state
        .broker
        .access()
        .read(|s| s.global_parameters.get("cluster_name").cloned())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| state.config.cluster_name.clone())
}

async fn cluster_name(State(state): State<ApiState>, _user: AuthUser) -> Json<Value> {
    Json(json!({"name": cluster_name_of(&state)}))
}

async fn put_cluster_name(
    State(state): State<ApiState>,
    user: AuthUser,
    raw: Bytes,
) -> Result<axum::http::StatusCode, ApiError> {
    user.require_admin()?;
    let map = crate::body::object(&raw)?;
    let name = crate::body::string(&map, "name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name must be a non-empty string"))?;
    state
        .broker
        .access()
        .apply(warren_broker::AccessCommand::SetGlobalParameter {
            name: "cluster_name".into(),
            value: Value::String(name),
        })?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// RabbitMQ's aliveness test: declare the queue `aliveness-test` in the vhost, publish a
/// message to it through the default exchange and get it back.
async fn aliveness(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = vhost(&state, &name)?;
    user.require_vhost(&state, &name)?;
    const QUEUE: &str = "aliveness-test";
    let declared = v.declare_queue(
        QueueDeclare {
            name: QUEUE.into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: Default::default(),
        },
        API_CONNECTION,
    )?;
    let properties = BasicProperties::default();
    let raw = warren_protocol::encode::properties(&properties)
        .map_err(|e| ApiError::internal(format!("cannot encode properties: {e}")))?;
    let message = Arc::new(Message::new(
        "".into(),
        QUEUE.into(),
        &properties,
        raw,
        Bytes::from_static(b"test_message"),
        warren_broker::now_ms(),
    )?);
    let mut encoded = None;
    declared.queue.publish(&message, &mut encoded);
    let got = declared.queue.get(true);
    // Counted as RabbitMQ counts its aliveness test (a publish and a basic.get no-ack on
    // a channel of its own).
    let mut counts = LocalCounts::default();
    counts.add(Counter::Publish, 1);
    counts.add(Counter::PublishOut, 1);
    if got.is_some() {
        counts.add(Counter::GetNoAck, 1);
    }
    counts.flush(&[&v.stats, &state.broker.stats().totals]);
    if let Some(x) = v.exchange("") {
        x.stats.add(Counter::PublishIn, 1);
        x.stats.add(Counter::PublishOut, 1);
    }
    match got {
        Some((entry, _))
            if entry
                .message
                .as_ref()
                .is_some_and(|m| &m.body[..] == b"test_message") =>
        {
            Ok(Json(json!({"status": "ok"})))
        }
        _ => Ok(Json(
            json!({"status": "failed", "reason": "the test message did not come back"}),
        )),
    }
}
