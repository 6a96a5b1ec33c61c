//! The endpoints, one file per resource, each with its own `routes()`; `api()` joins them.
//!
//! Shared here: looking up the vhost named in a path (404 `vhost_not_found`), the vhosts
//! a user sees, and the pseudo-connection id the API acts under.

mod bindings;
mod channels;
mod connections;
mod consumers;
mod definitions;
mod exchanges;
mod health;
mod limits;
mod misc;
mod nodes;
mod overview;
mod parameters;
mod permissions;
mod policies;
mod queues;
mod users;
mod vhosts;

use std::sync::Arc;

use axum::Router;
use warren_broker::{ConnectionId, VHost};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::ApiState;

pub(crate) use channels::channel_name;

/// The connection id the API's declares, deletes and gets act under: no AMQP connection
/// has it, so another connection's exclusive queue stays locked (405) to the API.
pub(crate) const API_CONNECTION: ConnectionId = 0;

/// Every endpoint.
pub fn api() -> Router<ApiState> {
    Router::new()
        .merge(misc::routes())
        .merge(vhosts::routes())
        .merge(users::routes())
        .merge(permissions::routes())
        .merge(limits::routes())
        .merge(policies::routes())
        .merge(parameters::routes())
        .merge(definitions::routes())
        .merge(health::routes())
        .merge(exchanges::routes())
        .merge(queues::routes())
        .merge(bindings::routes())
        .merge(overview::routes())
        .merge(nodes::routes())
        .merge(connections::routes())
        .merge(channels::routes())
        .merge(consumers::routes())
}

/// The vhost named in a path, or 404.
pub(crate) fn vhost(state: &ApiState, name: &str) -> Result<Arc<VHost>, ApiError> {
    let known = state.broker.access().vhost(name).is_some();
    match state.broker.vhost(name) {
        Some(v) if known => Ok(v),
        _ => Err(ApiError::vhost_not_found()),
    }
}

/// The vhosts whose objects `user` sees in listings, sorted by name.
pub(crate) fn visible_vhosts(state: &ApiState, user: &AuthUser) -> Vec<Arc<VHost>> {
    let mut all: Vec<Arc<VHost>> = state
        .broker
        .all_vhosts()
        .into_iter()
        .filter(|v| user.sees_vhost(state, &v.name))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The vhosts of a list endpoint: one (from the path, checked) or all visible ones.
pub(crate) fn listed_vhosts(
    state: &ApiState,
    user: &AuthUser,
    one: Option<&str>,
) -> Result<Vec<Arc<VHost>>, ApiError> {
    match one {
        Some(name) => {
            let v = vhost(state, name)?;
            user.require_vhost(state, name)?;
            Ok(vec![v])
        }
        None => Ok(visible_vhosts(state, user)),
    }
}

/// 201 Created for a new object, 204 No Content for an update (as RabbitMQ's PUTs).
pub(crate) fn created_or_updated(created: bool) -> axum::http::StatusCode {
    if created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::NO_CONTENT
    }
}

/// A name AMQP can carry: at most 255 bytes (a short string). RabbitMQ 3.10 checks this for
/// queues only (with this text); Warren checks exchanges and vhosts too, since a longer
/// name could never be used over AMQP.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if name.len() > 255 {
        return Err(ApiError::bad_request(format!(
            "{kind} should be less than 255 bytes, actually was {}\n",
            name.len()
        )));
    }
    Ok(())
}

/// Tags as RabbitMQ accepts them: a comma-separated string or a list of strings.
pub(crate) fn parse_tags(value: Option<&serde_json::Value>) -> Result<Vec<String>, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(|s| s.trim().to_owned())
                    .ok_or_else(|| ApiError::bad_request("tags must be strings"))
            })
            .filter(|t| !matches!(t, Ok(s) if s.is_empty()))
            .collect(),
        Some(_) => Err(ApiError::bad_request(
            "tags must be a comma-separated string or a list",
        )),
    }
}
