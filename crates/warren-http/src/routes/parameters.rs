//! `/api/parameters[/{component}[/{vhost}[/{name}]]]` and
//! `/api/global-parameters[/{name}]`.
//!
//! Runtime parameters belong to plugin components (federation, shovel...). Warren has none
//! of those components, so setting a vhost parameter is refused as RabbitMQ refuses an
//! unknown component; parameters imported from definitions are kept, listed and exported.
//! Global parameters (e.g. `cluster_name`) are stored as given.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::AccessCommand;

use super::created_or_updated;
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/parameters", get(list_all))
        .route("/api/parameters/{component}", get(list_component))
        .route("/api/parameters/{component}/{vhost}", get(list_in_vhost))
        .route(
            "/api/parameters/{component}/{vhost}/{name}",
            get(show).put(put).delete(delete),
        )
        .route("/api/global-parameters", get(list_global))
        .route(
            "/api/global-parameters/{name}",
            get(show_global).put(put_global).delete(delete_global),
        )
}

fn items(state: &ApiState, user: &AuthUser, keep: impl Fn(&str, &str, &str) -> bool) -> Vec<Value> {
    let all: Vec<(String, String, String, Value)> = state.broker.access().read(|s| {
        s.parameters
            .iter()
            .filter(|((c, v, n), _)| keep(c, v, n))
            .map(|((c, v, n), value)| (c.clone(), v.clone(), n.clone(), value.clone()))
            .collect()
    });
    all.into_iter()
        .filter(|(_, v, _, _)| {
            user.is_admin() || (user.is_policymaker() && user.logs_into(state, v))
        })
        .map(|(c, v, n, value)| json!({"vhost": v, "component": c, "name": n, "value": value}))
        .collect()
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_policymaker()?;
    respond(
        items(&s, &user, |_, _, _| true),
        &q,
        &["vhost", "component", "name"],
    )
}

async fn list_component(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(component): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_policymaker()?;
    respond(
        items(&s, &user, |c, _, _| c == component),
        &q,
        &["vhost", "name"],
    )
}

async fn list_in_vhost(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((component, vhost)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    super::vhost(&s, &vhost)?;
    user.require_policies(&s, &vhost)?;
    respond(
        items(&s, &user, |c, v, _| c == component && v == vhost),
        &q,
        &["name"],
    )
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    super::vhost(&s, &vhost)?;
    user.require_policies(&s, &vhost)?;
    items(&s, &user, |c, v, n| {
        c == component && v == vhost && n == name
    })
    .pop()
    .map(Json)
    .ok_or_else(ApiError::not_found)
}

async fn put(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((component, vhost, _name)): Path<(String, String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    super::vhost(&s, &vhost)?;
    user.require_policies(&s, &vhost)?;
    body::object(&raw)?;
    Err(ApiError::bad_request(format!(
        "Validation failed\n\ncomponent {component} not found\n"
    )))
}

async fn delete(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    super::vhost(&s, &vhost)?;
    user.require_policies(&s, &vhost)?;
    let key = (component.clone(), vhost.clone(), name.clone());
    if !s
        .broker
        .access()
        .read(|st| st.parameters.contains_key(&key))
    {
        return Err(ApiError::not_found());
    }
    s.broker.access().apply(AccessCommand::ClearParameter {
        component,
        vhost,
        name,
    })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_global(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    user.require_policymaker()?;
    let items = s.broker.access().read(|st| {
        st.global_parameters
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect()
    });
    respond(items, &q, &["name"])
}

async fn show_global(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.require_policymaker()?;
    s.broker
        .access()
        .read(|st| st.global_parameters.get(&name).cloned())
        .map(|v| Json(json!({"name": name, "value": v})))
        .ok_or_else(ApiError::not_found)
}

async fn put_global(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    user.require_policymaker()?;
    let map = body::object(&raw)?;
    let value = map
        .get("value")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("key_missing: value"))?;
    let created = !s
        .broker
        .access()
        .read(|st| st.global_parameters.contains_key(&name));
    s.broker
        .access()
        .apply(AccessCommand::SetGlobalParameter { name, value })?;
    Ok(created_or_updated(created))
}

async fn delete_global(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require_policymaker()?;
    if !s
        .broker
        .access()
        .read(|st| st.global_parameters.contains_key(&name))
    {
        return Err(ApiError::not_found());
    }
    s.broker
        .access()
        .apply(AccessCommand::ClearGlobalParameter { name })?;
    Ok(StatusCode::NO_CONTENT)
}
