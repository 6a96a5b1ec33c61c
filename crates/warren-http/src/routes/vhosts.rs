//! `/api/vhosts[/{vhost}]` (GET, PUT, DELETE) and a vhost's permission lists.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{created_or_updated, parse_tags, vhost};
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::json::zero_rate;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;
use crate::stats_json::{self, Ranges};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/vhosts", get(list))
        .route("/api/vhosts/{vhost}", get(show).put(put).delete(delete))
        .route("/api/vhosts/{vhost}/permissions", get(permissions))
        .route(
            "/api/vhosts/{vhost}/topic-permissions",
            get(topic_permissions),
        )
}

fn render(state: &ApiState, name: &str, ranges: &Ranges) -> Option<Value> {
    let record = state.broker.access().vhost(name)?;
    let (mut ready, mut unacked) = (0u64, 0u64);
    if let Some(v) = state.broker.vhost(name) {
        for q in v.queues() {
            let info = q.info();
            ready += info.messages_ready;
            unacked += info.messages_unacknowledged;
        }
    }
    let mut cluster_state = serde_json::Map::new();
    cluster_state.insert(state.node().to_owned(), json!("running"));
    Some(json!({
        "name": name,
        "description": record.description,
        "tags": record.tags,
        "default_queue_type": record.default_queue_type.as_deref().unwrap_or("undefined"),
        "metadata": {"description": record.description, "tags": record.tags},
        "tracing": false,
        "cluster_state": cluster_state,
        "messages": ready + unacked,
        "messages_details": zero_rate(),
        "messages_ready": ready,
        "messages_ready_details": zero_rate(),
        "messages_unacknowledged": unacked,
        "messages_unacknowledged_details": zero_rate(),
    }))
    .map(|mut out| {
        if let (Value::Object(m), Some(v)) = (&mut out, state.broker.vhost(name)) {
            stats_json::insert_vhost_stats(m, &state.broker, &v, ranges);
        }
        out
    })
}

async fn list(
    State(state): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    let names = state
        .broker
        .access()
        .read(|s| s.vhosts.keys().cloned().collect::<Vec<_>>());
    let items = names
        .iter()
        .filter(|n| user.sees_vhost(&state, n))
        .filter_map(|n| render(&state, n, &ranges))
        .collect();
    respond(items, &q, &["name"])
}

async fn show(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    let found = render(&state, &name, &ranges).ok_or_else(ApiError::not_found)?;
    user.require_vhost_visible(&state, &name)?;
    Ok(Json(found))
}

async fn put(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let map = body::object(&raw)?;
    let existing = state.broker.access().vhost(&name);
    let description = match body::string(&map, "description")? {
        Some(d) => d,
        None => existing
            .as_ref()
            .map(|v| v.description.clone())
            .unwrap_or_default(),
    };
    let tags = match map.get("tags") {
        Some(t) => parse_tags(Some(t))?,
        None => existing
            .as_ref()
            .map(|v| v.tags.clone())
            .unwrap_or_default(),
    };
    // RabbitMQ 3.10's management API reads `defaultqueuetype`; Warren also takes the
    // `default_queue_type` its listings show.
    let asked = match body::string(&map, "defaultqueuetype")? {
        Some(t) => Some(t),
        None => body::string(&map, "default_queue_type")?,
    };
    let default_queue_type = match asked {
        Some(t) => match t.as_str() {
            "classic" | "quorum" => Some(t),
            "stream" => {
                return Err(ApiError::bad_request(format!(
                    "default queue type '{t}' is not supported by Warren yet"
                )));
            }
            "undefined" | "" => None,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown default queue type '{other}'"
                )));
            }
        },
        None => existing.as_ref().and_then(|v| v.default_queue_type.clone()),
    };
    if body::boolean(&map, "tracing", false)? {
        return Err(ApiError::bad_request(
            "message tracing (the firehose) is not supported by Warren",
        ));
    }
    if name.is_empty() {
        return Err(ApiError::bad_request("vhost name must not be empty"));
    }
    super::check_name("vhost", &name)?;
    state
        .broker
        .add_vhost(&name, &description, tags, default_queue_type)?;
    if existing.is_none() {
        // As RabbitMQ: the user who creates a vhost gets full permissions in it.
        state
            .broker
            .access()
            .apply(warren_broker::AccessCommand::SetPermissions {
                user: user.name.clone(),
                vhost: name.clone(),
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            })?;
        tracing::info!(vhost = %name, by = %user.name, "vhost created through the HTTP API");
    }
    Ok(created_or_updated(existing.is_none()))
}

async fn delete(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    if state.broker.access().vhost(&name).is_none() {
        return Err(ApiError::not_found());
    }
    state.broker.delete_vhost(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn permissions(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    vhost(&state, &name)?;
    let items = super::permissions::permission_items(&state, |v, _| v == name);
    respond(items, &q, &["vhost", "user"])
}

async fn topic_permissions(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    vhost(&state, &name)?;
    let items = super::permissions::topic_permission_items(&state, |v, _| v == name);
    respond(items, &q, &["vhost", "user"])
}
