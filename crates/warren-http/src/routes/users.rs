//! `/api/users` (GET, bulk delete), `/api/users/{user}` (GET, PUT, DELETE),
//! `/api/users/without-permissions` and a user's permission lists.
//!
//! A PUT takes `password` (hashed here with the broker's default, SHA-256, as RabbitMQ) or
//! a ready `password_hash` with its `hashing_algorithm`, and `tags` as a comma-separated
//! string or a list. Without either password field a new user has no password (it can log
//! in only with EXTERNAL), and an existing user keeps its own.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::AccessCommand;
use warren_broker::access::{HashingAlgorithm, PasswordHash, UserRecord};

use super::{created_or_updated, parse_tags};
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/users", get(list))
        .route("/api/users/without-permissions", get(without_permissions))
        .route("/api/users/bulk-delete", post(bulk_delete))
        .route("/api/users/{user}", get(show).put(put).delete(delete))
        .route("/api/users/{user}/permissions", get(permissions))
        .route(
            "/api/users/{user}/topic-permissions",
            get(topic_permissions),
        )
}

fn render(name: &str, u: &UserRecord) -> Value {
    json!({
        "name": name,
        "password_hash": u.password.password_hash,
        "hashing_algorithm": u.password.hashing_algorithm.as_str(),
        "tags": u.tags,
        "limits": u.limits,
    })
}

async fn list(
    State(state): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let items = state
        .broker
        .access()
        .read(|s| s.users.iter().map(|(n, u)| render(n, u)).collect());
    respond(items, &q, &["name"])
}

async fn without_permissions(
    State(state): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let items = state.broker.access().read(|s| {
        s.users
            .iter()
            .filter(|(n, _)| !s.permissions.keys().any(|(_, u)| u == *n))
            .map(|(n, u)| render(n, u))
            .collect()
    });
    respond(items, &q, &["name"])
}

async fn show(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    let record = state
        .broker
        .access()
        .user(&name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(render(&name, &record)))
}

async fn put(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    if name.is_empty() {
        return Err(ApiError::bad_request("user name must not be empty"));
    }
    let map = body::object(&raw)?;
    let existing = state.broker.access().user(&name);
    let password = match (
        body::string(&map, "password")?,
        body::string(&map, "password_hash")?,
    ) {
        (Some(p), _) => PasswordHash::new(HashingAlgorithm::Sha256, &p),
        (None, Some(hash)) if hash.is_empty() => PasswordHash::none(),
        (None, Some(hash)) => {
            let algorithm = match body::string(&map, "hashing_algorithm")? {
                Some(a) => HashingAlgorithm::from_name(&a).ok_or_else(|| {
                    ApiError::bad_request(format!("unknown hashing algorithm '{a}'"))
                })?,
                None => HashingAlgorithm::Sha256,
            };
            PasswordHash::imported(&hash, algorithm).ok_or_else(|| {
                ApiError::bad_request("password_hash is not a valid base64 salted hash")
            })?
        }
        (None, None) => existing
            .as_ref()
            .map(|u| u.password.clone())
            .unwrap_or_else(PasswordHash::none),
    };
    let tags = match map.get("tags") {
        Some(t) => parse_tags(Some(t))?,
        None => existing
            .as_ref()
            .map(|u| u.tags.clone())
            .unwrap_or_default(),
    };
    state.broker.access().apply(AccessCommand::PutUser {
        name: name.clone(),
        password,
        tags,
    })?;
    tracing::info!(user = %name, by = %user.name, "user created or updated through the HTTP API");
    Ok(created_or_updated(existing.is_none()))
}

async fn delete(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    if state.broker.access().user(&name).is_none() {
        return Err(ApiError::not_found());
    }
    state.broker.delete_user(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn bulk_delete(
    State(state): State<ApiState>,
    user: AuthUser,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let map = body::object(&raw)?;
    let Some(Value::Array(names)) = map.get("users") else {
        return Err(ApiError::bad_request("users must be a list of user names"));
    };
    let names: Vec<&str> = names
        .iter()
        .map(|n| {
            n.as_str()
                .ok_or_else(|| ApiError::bad_request("users must be a list of user names"))
        })
        .collect::<Result<_, _>>()?;
    for name in names {
        // As RabbitMQ: names that do not exist are skipped.
        if state.broker.access().user(name).is_some() {
            state.broker.delete_user(name)?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn permissions(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    if state.broker.access().user(&name).is_none() {
        return Err(ApiError::not_found());
    }
    let items = super::permissions::permission_items(&state, |_, u| u == name);
    respond(items, &q, &["vhost", "user"])
}

async fn topic_permissions(
    State(state): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin()?;
    if state.broker.access().user(&name).is_none() {
        return Err(ApiError::not_found());
    }
    let items = super::permissions::topic_permission_items(&state, |_, u| u == name);
    respond(items, &q, &["vhost", "user"])
}
