//! `/api/permissions[/{vhost}/{user}]` and `/api/topic-permissions[/{vhost}/{user}]`
//! (administrators only, as in RabbitMQ).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use warren_broker::AccessCommand;

use super::created_or_updated;
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/permissions", get(list))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(show).put(put).delete(delete),
        )
        .route("/api/topic-permissions", get(list_topic))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(show_topic).put(put_topic).delete(delete_topic),
        )
}

/// Permission records as JSON, those `keep(vhost, user)` accepts.
pub(super) fn permission_items(state: &ApiState, keep: impl Fn(&str, &str) -> bool) -> Vec<Value> {
    state.broker.access().read(|s| {
        s.permissions
            .iter()
            .filter(|((v, u), _)| keep(v, u))
            .map(|((v, u), p)| {
                json!({"user": u, "vhost": v, "configure": p.configure, "write": p.write, "read": p.read})
            })
            .collect()
    })
}

/// Topic permission records as JSON, those `keep(vhost, user)` accepts.
pub(super) fn topic_permission_items(
    state: &ApiState,
    keep: impl Fn(&str, &str) -> bool,
) -> Vec<Value> {
    state.broker.access().read(|s| {
        s.topic_permissions
            .iter()
            .filter(|((v, u, _), _)| keep(v, u))
            .map(|((v, u, x), p)| {
                json!({"user": u, "vhost": v, "exchange": x, "write": p.write, "read": p.read})
            })
            .collect()
    })
}

/// A required string field (RabbitMQ: `key_missing`).
fn required(map: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    body::string(map, key)?.ok_or_else(|| ApiError::bad_request(format!("key_missing: {key}")))
}

/// Both ends must exist: 400 `vhost_or_user_not_found` otherwise, as RabbitMQ.
fn check_ends(state: &ApiState, vhost: &str, user: &str) -> Result<(), ApiError> {
    if state.broker.access().vhost(vhost).is_none() || state.broker.access().user(user).is_none() {
        return Err(ApiError::bad_request("vhost_or_user_not_found"));
    }
    Ok(())
}

async fn list(
    State(state): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    respond(
        permission_items(&state, |_, _| true),
        &q,
        &["vhost", "user"],
    )
}

async fn show(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    permission_items(&state, |v, u| v == vhost && u == name)
        .pop()
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

async fn put(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let map = body::object(&raw)?;
    check_ends(&state, &vhost, &name)?;
    let created = state
        .broker
        .access()
        .read(|s| !s.permissions.contains_key(&(vhost.clone(), name.clone())));
    state.broker.access().apply(AccessCommand::SetPermissions {
        user: name,
        vhost,
        configure: required(&map, "configure")?,
        write: required(&map, "write")?,
        read: required(&map, "read")?,
    })?;
    Ok(created_or_updated(created))
}

async fn delete(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let exists = state
        .broker
        .access()
        .read(|s| s.permissions.contains_key(&(vhost.clone(), name.clone())));
    if !exists {
        return Err(ApiError::not_found());
    }
    state
        .broker
        .access()
        .apply(AccessCommand::ClearPermissions { user: name, vhost })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_topic(
    State(state): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    respond(
        topic_permission_items(&state, |_, _| true),
        &q,
        &["vhost", "user"],
    )
}

async fn show_topic(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let items = topic_permission_items(&state, |v, u| v == vhost && u == name);
    if items.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(Json(Value::Array(items)))
}

async fn put_topic(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let map = body::object(&raw)?;
    check_ends(&state, &vhost, &name)?;
    let exchange = required(&map, "exchange")?;
    let created = state.broker.access().read(|s| {
        !s.topic_permissions
            .contains_key(&(vhost.clone(), name.clone(), exchange.clone()))
    });
    state
        .broker
        .access()
        .apply(AccessCommand::SetTopicPermissions {
            user: name,
            vhost,
            exchange,
            write: required(&map, "write")?,
            read: required(&map, "read")?,
        })?;
    Ok(created_or_updated(created))
}

async fn delete_topic(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    if topic_permission_items(&state, |v, u| v == vhost && u == name).is_empty() {
        return Err(ApiError::not_found());
    }
    state
        .broker
        .access()
        .apply(AccessCommand::ClearTopicPermissions {
            user: name,
            vhost,
            exchange: None,
        })?;
    Ok(StatusCode::NO_CONTENT)
}
