//! `/api/definitions` (GET export, POST import) and `/api/definitions/{vhost}` (one
//! vhost's exchanges, queues, bindings, policies and parameters). The JSON is RabbitMQ's,
//! the same as the `load_definitions` file at boot; an import is checked whole and applied
//! in one registry batch (`Broker::import_definitions`), so a bad file changes nothing.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::Value;
use warren_broker::Definitions;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/definitions", get(export_all).post(import_all))
        .route(
            "/api/definitions/{vhost}",
            get(export_vhost).post(import_vhost),
        )
}

fn json_response(defs: &Definitions) -> Result<Response, ApiError> {
    let bytes = defs
        .to_json()
        .map_err(|e| ApiError::internal(format!("cannot encode definitions: {e}")))?;
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn export_all(State(s): State<ApiState>, user: AuthUser) -> Result<Response, ApiError> {
    user.require_admin()?;
    json_response(&s.broker.export_definitions())
}

/// Only `vhost`'s objects, without users, vhosts, permissions and global parameters, as
/// RabbitMQ's per-vhost export.
fn only_vhost(mut defs: Definitions, vhost: &str) -> Definitions {
    defs.users.clear();
    defs.vhosts.clear();
    defs.permissions.clear();
    defs.topic_permissions.clear();
    defs.global_parameters.clear();
    defs.parameters.retain(|p| p.vhost == vhost);
    defs.policies.retain(|p| p.vhost == vhost);
    defs.queues.retain(|q| q.vhost == vhost);
    defs.exchanges.retain(|x| x.vhost == vhost);
    defs.bindings.retain(|b| b.vhost == vhost);
    defs
}

async fn export_vhost(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    super::vhost(&s, &vhost)?;
    let defs = only_vhost(s.broker.export_definitions(), &vhost);
    let bytes = defs
        .to_json()
        .map_err(|e| ApiError::internal(format!("cannot encode definitions: {e}")))?;
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    // RabbitMQ's per-vhost file: the version and the vhost's objects; queues, exchanges
    // and bindings without their `vhost` fields (an import names the vhost in its path).
    if let Value::Object(map) = &mut value {
        map.retain(|k, _| {
            matches!(
                k.as_str(),
                "rabbit_version" | "parameters" | "policies" | "queues" | "exchanges" | "bindings"
            )
        });
        for (key, list) in map.iter_mut() {
            if !matches!(key.as_str(), "queues" | "exchanges" | "bindings") {
                continue;
            }
            if let Value::Array(items) = list {
                for item in items {
                    if let Value::Object(entry) = item {
                        entry.remove("vhost");
                    }
                }
            }
        }
    }
    Ok(axum::Json(value).into_response())
}

fn parse(raw: &Bytes) -> Result<Definitions, ApiError> {
    if serde_json::from_slice::<Value>(raw).is_err() {
        return Err(ApiError::bad_request("not_json"));
    }
    Definitions::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn import_all(
    State(s): State<ApiState>,
    user: AuthUser,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    let defs = parse(&raw)?;
    let summary = s
        .broker
        .import_definitions(&defs)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::info!(by = %user.name, ?summary, "definitions imported through the HTTP API");
    Ok(StatusCode::NO_CONTENT)
}

async fn import_vhost(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_admin()?;
    super::vhost(&s, &vhost)?;
    let mut defs = only_vhost(parse_any_vhost(&raw)?, "");
    for p in &mut defs.parameters {
        p.vhost = vhost.clone();
    }
    for p in &mut defs.policies {
        p.vhost = vhost.clone();
    }
    for q in &mut defs.queues {
        q.vhost = vhost.clone();
    }
    for x in &mut defs.exchanges {
        x.vhost = vhost.clone();
    }
    for b in &mut defs.bindings {
        b.vhost = vhost.clone();
    }
    s.broker
        .import_definitions(&defs)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A per-vhost file names no vhost in its entries (or another one): read it with every
/// entry's vhost set to "" so `only_vhost(.., "")` keeps them all.
fn parse_any_vhost(raw: &Bytes) -> Result<Definitions, ApiError> {
    let mut value: Value =
        serde_json::from_slice(raw).map_err(|_| ApiError::bad_request("not_json"))?;
    for key in ["parameters", "policies", "queues", "exchanges", "bindings"] {
        if let Some(Value::Array(items)) = value.get_mut(key) {
            for item in items {
                if let Value::Object(map) = item {
                    map.insert("vhost".into(), Value::String(String::new()));
                }
            }
        }
    }
    let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::internal(e.to_string()))?;
    parse(&Bytes::from(bytes))
}
