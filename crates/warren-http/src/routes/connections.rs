//! `/api/connections` (GET), `/api/connections/{name}` (GET, DELETE),
//! `/api/vhosts/{vhost}/connections` (GET): the open AMQP connections, as RabbitMQ's
//! `rabbit_mgmt_wm_connection(s)`.
//!
//! Who sees what, as RabbitMQ: `monitoring` and `administrator` users see every
//! connection, other management users only their own (a list leaves the others out; one
//! connection of someone else is 401 "User not authorised to access object"). DELETE is
//! for administrators and the connection's own user: the connection gets
//! connection.close 320 `CONNECTION_FORCED - <reason>`, the reason from the `X-Reason`
//! header or "Closed via management plugin".
//!
//! Each connection's JSON comes from the broker's record (`ConnectionInfo`: what it
//! negotiated, its state, socket counters) and the sampler's rates
//! (`stats_json::connection_io`); ranges with `data_rates_age` / `data_rates_incr`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use warren_broker::definitions::table_to_json;
use warren_broker::stats::ObjectKey;
use warren_broker::{Broker, ConnectionInfo};

use super::vhost;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;
use crate::stats_json::{self, Ranges, ranges};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/connections", get(list_all))
        .route("/api/connections/{name}", get(show).delete(close))
        .route("/api/vhosts/{vhost}/connections", get(list_in))
}

/// The TLS fields of a connection (null on a plain connection).
const SSL_FIELDS: [&str; 7] = [
    "ssl_protocol",
    "ssl_key_exchange",
    "ssl_cipher",
    "ssl_hash",
    "peer_cert_subject",
    "peer_cert_issuer",
    "peer_cert_validity",
];

/// RabbitMQ's `state` of a connection.
fn connection_state(broker: &Broker, info: &ConnectionInfo) -> &'static str {
    if info.closing.load(Ordering::Relaxed) {
        "closing"
    } else if info.blocked.load(Ordering::Relaxed) {
        "blocked"
    } else if broker.alarms().any_raised() {
        // An alarm is up: the connection will be blocked when it publishes.
        "blocking"
    } else {
        "running"
    }
}

/// One connection as RabbitMQ renders it.
pub(crate) fn connection_json(state: &ApiState, info: &ConnectionInfo, ranges: &Ranges) -> Value {
    let d = &info.details;
    let tls = d.tls.as_ref();
    let client_properties = table_to_json(&d.client_properties);
    let mut obj = Map::new();
    obj.insert("name".into(), json!(d.name));
    obj.insert("node".into(), json!(state.node()));
    obj.insert("type".into(), json!("network"));
    obj.insert("protocol".into(), json!(d.protocol));
    obj.insert("auth_mechanism".into(), json!(d.auth_mechanism));
    obj.insert("user".into(), json!(&*info.user));
    obj.insert("user_who_performed_action".into(), json!(&*info.user));
    obj.insert("vhost".into(), json!(&*info.vhost));
    obj.insert("host".into(), json!(d.local.ip().to_string()));
    obj.insert("port".into(), json!(d.local.port()));
    obj.insert("peer_host".into(), json!(d.peer.ip().to_string()));
    obj.insert("peer_port".into(), json!(d.peer.port()));
    obj.insert("connected_at".into(), json!(d.connected_at));
    if let Some(name) = client_properties.get("connection_name") {
        obj.insert("user_provided_name".into(), name.clone());
    }
    obj.insert("client_properties".into(), Value::Object(client_properties));
    obj.insert("frame_max".into(), json!(d.frame_max));
    obj.insert("channel_max".into(), json!(d.channel_max));
    obj.insert("timeout".into(), json!(d.heartbeat));
    obj.insert(
        "channels".into(),
        json!(info.channels.load(Ordering::Relaxed)),
    );
    obj.insert(
        "send_pend".into(),
        json!(info.io.send_pend.load(Ordering::Relaxed)),
    );
    obj.insert("state".into(), json!(connection_state(&state.broker, info)));
    obj.insert("ssl".into(), json!(tls.is_some()));
    obj.insert("ssl_protocol".into(), json!(tls.map(|t| &t.protocol)));
    obj.insert(
        "ssl_key_exchange".into(),
        json!(tls.map(|t| &t.key_exchange)),
    );
    obj.insert("ssl_cipher".into(), json!(tls.map(|t| &t.cipher)));
    obj.insert("ssl_hash".into(), json!(tls.map(|t| &t.hash)));
    obj.insert(
        "peer_cert_subject".into(),
        json!(tls.and_then(|t| t.peer_cert_subject.as_ref())),
    );
    obj.insert(
        "peer_cert_issuer".into(),
        json!(tls.and_then(|t| t.peer_cert_issuer.as_ref())),
    );
    obj.insert(
        "peer_cert_validity".into(),
        json!(tls.and_then(|t| t.peer_cert_validity.as_ref())),
    );
    let key = ObjectKey::Connection(info.id);
    let io = info.io.snapshot();
    state
        .broker
        .stats()
        .read(|h| obj.extend(stats_json::connection_io(h, &key, io, ranges)));
    Value::Object(obj)
}

/// May `user` see (or, with `delete`, close) a connection of `owner`?
pub(crate) fn may_access(user: &AuthUser, owner: &str, delete: bool) -> bool {
    let privileged = if delete {
        user.is_admin()
    } else {
        user.is_monitor()
    };
    privileged || user.name == owner
}

/// The connections `user` sees, optionally only those of `vhost`.
pub(crate) fn visible(
    state: &ApiState,
    user: &AuthUser,
    vhost: Option<&str>,
) -> Vec<Arc<ConnectionInfo>> {
    state
        .broker
        .connections()
        .list()
        .into_iter()
        .filter(|c| may_access(user, &c.user, false))
        .filter(|c| vhost.is_none_or(|v| &*c.vhost == v))
        .collect()
}

/// The open connection named `name`, if any.
pub(crate) fn find(state: &ApiState, name: &str) -> Option<Arc<ConnectionInfo>> {
    state
        .broker
        .connections()
        .list()
        .into_iter()
        .find(|c| c.details.name == name)
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = ranges(&raw)?;
    let items = visible(&s, &user, None)
        .iter()
        .map(|c| connection_json(&s, c, &ranges))
        .collect();
    respond(items, &q, &["name"])
}

async fn list_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vname): Path<String>,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    vhost(&s, &vname)?;
    user.require_vhost_visible(&s, &vname)?;
    let ranges = ranges(&raw)?;
    let items = visible(&s, &user, Some(&vname))
        .iter()
        .map(|c| connection_json(&s, c, &ranges))
        .collect();
    respond(items, &q, &["name"])
}

/// RabbitMQ checks the user before it looks for the object: someone else's (or a
/// missing) connection is 401 for a non-monitor, a missing one 404 for a monitor.
fn authorised(
    user: &AuthUser,
    found: Option<&Arc<ConnectionInfo>>,
    delete: bool,
) -> Result<(), ApiError> {
    let owner = found.map(|c| &*c.user).unwrap_or("");
    let privileged = if delete {
        user.is_admin()
    } else {
        user.is_monitor()
    };
    if privileged || (found.is_some() && user.name == owner) {
        Ok(())
    } else {
        Err(ApiError::not_authorised(
            "User not authorised to access object",
        ))
    }
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = ranges(&raw)?;
    let found = find(&s, &name);
    authorised(&user, found.as_ref(), false)?;
    let conn = found.ok_or_else(ApiError::not_found)?;
    let mut out = connection_json(&s, &conn, &ranges);
    // RabbitMQ 3.10 shows one connection's TLS fields as "" where a list shows null.
    if let Value::Object(m) = &mut out {
        for field in SSL_FIELDS {
            if m.get(field).is_some_and(Value::is_null) {
                m.insert(field.into(), json!(""));
            }
        }
    }
    Ok(Json(out))
}

async fn close(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let found = find(&s, &name);
    authorised(&user, found.as_ref(), true)?;
    let conn = found.ok_or_else(ApiError::not_found)?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    tracing::info!(connection = %name, user = %user.name, reason, "closing connection via the management API");
    conn.close(320, format!("CONNECTION_FORCED - {reason}"));
    Ok(StatusCode::NO_CONTENT)
}
