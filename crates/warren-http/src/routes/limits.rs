//! `/api/vhost-limits[/{vhost}[/{name}]]` and `/api/user-limits[/{user}[/{name}]]`:
//! `max-connections` and `max-queues` per vhost, `max-connections` and `max-channels` per
//! user. A PUT body is `{"value": N}`; a negative value means "no limit", as RabbitMQ.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::AccessCommand;
use warren_broker::access::{UserLimits, VhostLimits};

use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/vhost-limits", get(vhost_all))
        .route("/api/vhost-limits/{vhost}", get(vhost_one))
        .route(
            "/api/vhost-limits/{vhost}/{name}",
            put(vhost_put).delete(vhost_delete),
        )
        .route("/api/user-limits", get(user_all))
        .route("/api/user-limits/{user}", get(user_one))
        .route(
            "/api/user-limits/{user}/{name}",
            put(user_put).delete(user_delete),
        )
}

fn vhost_items(state: &ApiState, only: Option<&str>) -> Vec<Value> {
    state.broker.access().read(|s| {
        s.vhosts
            .iter()
            .filter(|(n, v)| only.is_none_or(|o| o == *n) && v.limits != VhostLimits::default())
            .map(|(n, v)| json!({"vhost": n, "value": v.limits}))
            .collect()
    })
}

fn user_items(state: &ApiState, only: Option<&str>) -> Vec<Value> {
    state.broker.access().read(|s| {
        s.users
            .iter()
            .filter(|(n, u)| only.is_none_or(|o| o == *n) && u.limits != UserLimits::default())
            .map(|(n, u)| json!({"user": n, "value": u.limits}))
            .collect()
    })
}

/// `{"value": N}`: an integer.
fn limit_value(raw: &Bytes) -> Result<i64, ApiError> {
    let map = body::object(raw)?;
    match map.get("value") {
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or(-1)),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("limit value must be an integer, got {s}"))),
        Some(other) => Err(ApiError::bad_request(format!(
            "limit value must be an integer, got {other}"
        ))),
        None => Err(ApiError::bad_request("key_missing: value")),
    }
}

async fn vhost_all(State(state): State<ApiState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    Ok(Json(Value::Array(vhost_items(&state, None))))
}

async fn vhost_one(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.require_vhost_visible(&state, &vhost)?;
    if state.broker.access().vhost(&vhost).is_none() {
        return Err(ApiError::vhost_not_found());
    }
    Ok(Json(Value::Array(vhost_items(&state, Some(&vhost)))))
}

fn set_vhost_limit(
    state: &ApiState,
    vhost: &str,
    name: &str,
    value: Option<i64>,
) -> Result<(), ApiError> {
    let mut limits = state
        .broker
        .access()
        .vhost(vhost)
        .ok_or_else(ApiError::vhost_not_found)?
        .limits;
    match name {
        "max-connections" => limits.max_connections = value,
        "max-queues" => limits.max_queues = value,
        other => {
            return Err(ApiError::bad_request(format!(
                "Validation failed\n\nUnrecognised terms [{{<<\"{other}\">>,...}}] in limits\n"
            )));
        }
    }
    state.broker.access().apply(AccessCommand::SetVhostLimits {
        vhost: vhost.to_owned(),
        limits,
    })?;
    Ok(())
}

async fn vhost_put(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let value = limit_value(&raw)?;
    set_vhost_limit(&state, &vhost, &name, Some(value))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn vhost_delete(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    set_vhost_limit(&state, &vhost, &name, None)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_all(State(state): State<ApiState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    Ok(Json(Value::Array(user_items(&state, None))))
}

async fn user_one(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if user.name != name {
        user.require_admin()?;
    }
    if state.broker.access().user(&name).is_none() {
        return Err(ApiError::not_found());
    }
    Ok(Json(Value::Array(user_items(&state, Some(&name)))))
}

fn set_user_limit(
    state: &ApiState,
    user: &str,
    name: &str,
    value: Option<i64>,
) -> Result<(), ApiError> {
    let mut limits = state
        .broker
        .access()
        .user(user)
        .ok_or_else(ApiError::not_found)?
        .limits;
    match name {
        "max-connections" => limits.max_connections = value,
        "max-channels" => limits.max_channels = value,
        other => {
            return Err(ApiError::bad_request(format!(
                "Validation failed\n\nUnrecognised terms [{{<<\"{other}\">>,...}}] in user limits\n"
            )));
        }
    }
    state.broker.access().apply(AccessCommand::SetUserLimits {
        user: user.to_owned(),
        limits,
    })?;
    Ok(())
}

async fn user_put(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((name, limit)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let value = limit_value(&raw)?;
    set_user_limit(&state, &name, &limit, Some(value))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_delete(
    State(state): State<ApiState>,
    user: AuthUser,
    Path((name, limit)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    set_user_limit(&state, &name, &limit, None)?;
    Ok(StatusCode::NO_CONTENT)
}
