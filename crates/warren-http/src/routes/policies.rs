//! `/api/policies[/{vhost}[/{name}]]` and `/api/operator-policies[/{vhost}[/{name}]]`.
//!
//! Reading needs vhost visibility; changing needs the `policymaker` tag with access to the
//! vhost, or `administrator` (operator policies: administrators only, as RabbitMQ). The
//! broker validates and applies a policy to the vhost's queues and exchanges at once.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::PolicyError;
use warren_broker::access::{PolicyKind, PolicyRecord};

use super::{created_or_updated, listed_vhosts};
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/policies", get(list_policies))
        .route("/api/policies/{vhost}", get(list_policies_in))
        .route(
            "/api/policies/{vhost}/{name}",
            get(show_policy).put(put_policy).delete(delete_policy),
        )
        .route("/api/operator-policies", get(list_operator))
        .route("/api/operator-policies/{vhost}", get(list_operator_in))
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(show_operator).put(put_operator).delete(delete_operator),
        )
}

fn render(vhost: &str, name: &str, p: &PolicyRecord) -> Value {
    json!({
        "vhost": vhost,
        "name": name,
        "pattern": p.pattern,
        "apply-to": p.apply_to,
        "definition": p.definition,
        "priority": p.priority,
    })
}

fn items(
    state: &ApiState,
    user: &AuthUser,
    kind: PolicyKind,
    vhost: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let vhosts: Vec<String> = listed_vhosts(state, user, vhost)?
        .iter()
        .map(|v| v.name.to_string())
        .collect();
    Ok(state.broker.access().read(|s| {
        s.policies
            .iter()
            .filter(|((k, v, _), _)| *k == kind && vhosts.contains(v))
            .map(|((_, v, n), p)| render(v, n, p))
            .collect()
    }))
}

fn show(
    state: &ApiState,
    user: &AuthUser,
    kind: PolicyKind,
    vhost: &str,
    name: &str,
) -> Result<Json<Value>, ApiError> {
    super::vhost(state, vhost)?;
    user.require_vhost(state, vhost)?;
    state
        .broker
        .access()
        .read(|s| {
            s.policies
                .get(&(kind, vhost.to_owned(), name.to_owned()))
                .map(|p| render(vhost, name, p))
        })
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

fn authorise_change(
    state: &ApiState,
    user: &AuthUser,
    kind: PolicyKind,
    vhost: &str,
) -> Result<(), ApiError> {
    match kind {
        PolicyKind::Policy => user.require_policies(state, vhost),
        PolicyKind::OperatorPolicy => user.require_admin(),
    }
}

fn put(
    state: &ApiState,
    user: &AuthUser,
    kind: PolicyKind,
    vhost: &str,
    name: &str,
    raw: &Bytes,
) -> Result<StatusCode, ApiError> {
    authorise_change(state, user, kind, vhost)?;
    super::vhost(state, vhost)?;
    let map = body::object(raw)?;
    let pattern = body::string(&map, "pattern")?
        .ok_or_else(|| ApiError::bad_request("[{key_missing,pattern}]"))?;
    let definition = match map.get("definition") {
        Some(Value::Object(d)) => d.clone(),
        Some(_) => return Err(ApiError::bad_request("definition must be a dictionary")),
        None => return Err(ApiError::bad_request("[{key_missing,definition}]")),
    };
    let priority = match map.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("priority must be an integer, got {s}")))?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "priority must be an integer, got {other}"
            )));
        }
    };
    let apply_to = body::string(&map, "apply-to")?.unwrap_or_else(|| "all".into());
    let created = state.broker.access().read(|s| {
        !s.policies
            .contains_key(&(kind, vhost.to_owned(), name.to_owned()))
    });
    let record = PolicyRecord {
        pattern,
        apply_to,
        priority,
        definition,
    };
    state
        .broker
        .set_policy(vhost, name, kind, record)
        .map_err(|e| policy_error(kind, e))?;
    Ok(created_or_updated(created))
}

/// A refused policy as RabbitMQ's API reports it: 400 with "Validation failed" (HTML-escaped
/// for user policies, as RabbitMQ 3.10 does), 404 for what does not exist.
fn policy_error(kind: PolicyKind, e: PolicyError) -> ApiError {
    match e {
        PolicyError::Invalid(_) => {
            let reason = e.management_reason();
            ApiError::bad_request(match kind {
                PolicyKind::Policy => html_escape(&reason),
                PolicyKind::OperatorPolicy => reason,
            })
        }
        PolicyError::NoSuchVhost(_) => ApiError::vhost_not_found(),
        PolicyError::NotFound { .. } => ApiError::not_found(),
        PolicyError::Access(a) => a.into(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn delete(
    state: &ApiState,
    user: &AuthUser,
    kind: PolicyKind,
    vhost: &str,
    name: &str,
) -> Result<StatusCode, ApiError> {
    authorise_change(state, user, kind, vhost)?;
    super::vhost(state, vhost)?;
    let exists = state.broker.access().read(|s| {
        s.policies
            .contains_key(&(kind, vhost.to_owned(), name.to_owned()))
    });
    if !exists {
        return Err(ApiError::not_found());
    }
    state
        .broker
        .clear_policy(vhost, name, kind)
        .map_err(|e| policy_error(kind, e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_policies(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(
        items(&s, &user, PolicyKind::Policy, None)?,
        &q,
        &["vhost", "name"],
    )
}

async fn list_policies_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(
        items(&s, &user, PolicyKind::Policy, Some(&vhost))?,
        &q,
        &["vhost", "name"],
    )
}

async fn show_policy(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((v, n)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show(&s, &user, PolicyKind::Policy, &v, &n)
}

async fn put_policy(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((v, n)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    put(&s, &user, PolicyKind::Policy, &v, &n, &raw)
}

async fn delete_policy(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((v, n)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete(&s, &user, PolicyKind::Policy, &v, &n)
}

async fn list_operator(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(
        items(&s, &user, PolicyKind::OperatorPolicy, None)?,
        &q,
        &["vhost", "name"],
    )
}

async fn list_operator_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(
        items(&s, &user, PolicyKind::OperatorPolicy, Some(&vhost))?,
        &q,
        &["vhost", "name"],
    )
}

async fn show_operator(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((v, n)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show(&s, &user, PolicyKind::OperatorPolicy, &v, &n)
}

async fn put_operator(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((v, n)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    put(&s, &user, PolicyKind::OperatorPolicy, &v, &n, &raw)
}

async fn delete_operator(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((v, n)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete(&s, &user, PolicyKind::OperatorPolicy, &v, &n)
}
