//! `/api/exchanges[/{vhost}[/{name}]]` (GET, PUT, DELETE), an exchange's bindings as
//! source and destination, and `/publish`.
//!
//! The default exchange is `amq.default` in paths, as in RabbitMQ. Changes act with the
//! calling user's AMQP permissions (configure to declare and delete, write to publish), so
//! the API grants nothing the user could not do over AMQP.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use warren_broker::access::{Permission, ResourceKind};
use warren_broker::definitions::json_to_table;
use warren_broker::{Destination, Exchange, ExchangeSpec, Message, VHost, sender_selected};

use super::{created_or_updated, listed_vhosts, vhost};
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::json;
use crate::listing::{ListQuery, respond};
use crate::properties;
use crate::state::ApiState;
use crate::stats_json::{self, Ranges};
use warren_broker::stats::{Counter, LocalCounts};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/exchanges", get(list_all))
        .route("/api/exchanges/{vhost}", get(list_in))
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(show).put(put).delete(delete),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/source",
            get(bindings_source),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/destination",
            get(bindings_destination),
        )
        .route("/api/exchanges/{vhost}/{name}/publish", post(publish))
}

/// `amq.default` in a path is the default exchange ("").
pub(super) fn path_name(name: &str) -> &str {
    if name == "amq.default" { "" } else { name }
}

/// The user's compiled permissions in `vhost`.
pub(super) fn check(
    state: &ApiState,
    user: &AuthUser,
    vhost: &str,
    permission: Permission,
    kind: ResourceKind,
    name: &str,
) -> Result<(), ApiError> {
    state
        .broker
        .access()
        .permissions(&user.name, vhost, None)
        .check(permission, kind, name)?;
    Ok(())
}

/// One exchange with its statistics (`stats_json`).
fn render(state: &ApiState, v: &VHost, x: &Exchange, ranges: &Ranges) -> Value {
    let mut out = json::exchange(&v.name, x);
    if let Value::Object(m) = &mut out {
        stats_json::insert_exchange_stats(m, state.broker.stats(), v, x, ranges);
    }
    out
}

fn items(
    state: &ApiState,
    user: &AuthUser,
    one: Option<&str>,
    ranges: &Ranges,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for v in listed_vhosts(state, user, one)? {
        for x in v.exchanges() {
            out.push(render(state, &v, &x, ranges));
        }
    }
    Ok(out)
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    respond(items(&s, &user, None, &ranges)?, &q, &["vhost", "name"])
}

async fn list_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    respond(
        items(&s, &user, Some(&vhost), &ranges)?,
        &q,
        &["vhost", "name"],
    )
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = stats_json::ranges(&raw)?;
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let x = v
        .exchange(path_name(&name))
        .ok_or_else(ApiError::not_found)?;
    let mut out = render(&s, &v, &x, &ranges);
    if let Value::Object(m) = &mut out {
        m.insert("incoming".into(), json!([]));
        m.insert("outgoing".into(), json!([]));
    }
    Ok(Json(out))
}

async fn put(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let map = body::object(&raw)?;
    let kind =
        body::string(&map, "type")?.ok_or_else(|| ApiError::bad_request("key_missing: type"))?;
    let arguments = json_to_table("arguments", &body::table(&map, "arguments")?)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let name = path_name(&name).to_owned();
    super::check_name("exchange", &name)?;
    check(
        &s,
        &user,
        &vname,
        Permission::Configure,
        ResourceKind::Exchange,
        &name,
    )?;
    let created = v.exchange(&name).is_none();
    v.declare_exchange(
        ExchangeSpec {
            name,
            kind,
            durable: body::boolean(&map, "durable", true)?,
            auto_delete: body::boolean(&map, "auto_delete", false)?,
            internal: body::boolean(&map, "internal", false)?,
            arguments,
        },
        false,
    )?;
    Ok(created_or_updated(created))
}

#[derive(Debug, Default, serde::Deserialize)]
struct DeleteQuery {
    #[serde(rename = "if-unused")]
    if_unused: Option<String>,
}

async fn delete(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let name = path_name(&name);
    if v.exchange(name).is_none() {
        return Err(ApiError::not_found());
    }
    check(
        &s,
        &user,
        &vname,
        Permission::Configure,
        ResourceKind::Exchange,
        name,
    )?;
    v.delete_exchange(name, q.if_unused.as_deref() == Some("true"))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn bindings_source(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let name = path_name(&name);
    if v.exchange(name).is_none() {
        return Err(ApiError::not_found());
    }
    let items = json::bindings_of(&v, name.is_empty(), |src, _| src == name);
    respond(items, &q, &[])
}

async fn bindings_destination(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let name = path_name(&name);
    if v.exchange(name).is_none() {
        return Err(ApiError::not_found());
    }
    let items = json::bindings_of(
        &v,
        false,
        |_, dest| matches!(dest, Destination::Exchange(d) if **d == *name),
    );
    respond(items, &q, &[])
}

/// The payload of a publish or get: `string` (UTF-8) or `base64`.
pub(super) fn decode_payload(map: &serde_json::Map<String, Value>) -> Result<Bytes, ApiError> {
    let payload = body::string(map, "payload")?.unwrap_or_default();
    match body::string(map, "payload_encoding")?.as_deref() {
        None | Some("string") => Ok(Bytes::from(payload)),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map(Bytes::from)
            .map_err(|_| ApiError::bad_request("payload is not valid base64")),
        Some(other) => Err(ApiError::bad_request(format!(
            "payload_encoding must be string or base64, got {other}"
        ))),
    }
}

/// Publish one message as the user (write permission, `user_id` checked as over AMQP).
/// Answers `{"routed": bool}` once a persistent message is on disk in every durable
/// queue it reached (the API's publish is confirmed, as RabbitMQ's).
async fn publish(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = vhost(&s, &vname)?;
    user.require_vhost(&s, &vname)?;
    let map = body::object(&raw)?;
    let exchange = path_name(&name).to_owned();
    check(
        &s,
        &user,
        &vname,
        Permission::Write,
        ResourceKind::Exchange,
        &exchange,
    )?;
    let routing_key = body::string(&map, "routing_key")?.unwrap_or_default();
    let props = properties::from_json(&body::table(&map, "properties")?)?;
    if let Some(uid) = props.user_id()
        && uid.as_str() != user.name
    {
        return Err(ApiError::bad_request(format!(
            "user_id property set to '{}' but authenticated user was '{}'",
            uid.as_str(),
            user.name
        )));
    }
    let payload = decode_payload(&map)?;
    if payload.len() as u64 > s.broker.config().max_message_size {
        return Err(ApiError::bad_request(format!(
            "message size {} is larger than max size {}",
            payload.len(),
            s.broker.config().max_message_size
        )));
    }
    let extra_keys = sender_selected::extra_routing_keys(&props)?;
    let props = sender_selected::without_bcc(&props).unwrap_or(props);
    let raw_props = warren_protocol::encode::properties(&props)
        .map_err(|e| ApiError::bad_request(format!("cannot encode properties: {e}")))?;
    let routing_key = amq_protocol::types::ShortString::try_new(routing_key)
        .map_err(|_| ApiError::bad_request("routing_key is longer than 255 bytes"))?;
    let exchange_name = amq_protocol::types::ShortString::try_new(exchange.clone())
        .map_err(|_| ApiError::bad_request("exchange name is longer than 255 bytes"))?;
    let message = Arc::new(Message::new(
        exchange_name,
        routing_key,
        &props,
        raw_props,
        payload,
        warren_broker::now_ms(),
    )?);
    let mut queues = Vec::new();
    let held = v.route(
        &exchange,
        &message,
        props.headers().as_ref(),
        &extra_keys,
        &mut queues,
    )?;
    // Held by a delayed exchange (the one named, or one reached through an
    // exchange-to-exchange binding, beside `queues`): the plugin's form counts as no route
    // (as RabbitMQ answers with the plugin), LavinMQ's as routed.
    let held_routes = held.map_or(0, |h| u64::from(!h.unroutable));
    let routed = !queues.is_empty() || held_routes > 0;
    // Counted as RabbitMQ counts its API's publishes (they go through a channel there).
    let mut counts = LocalCounts::default();
    counts.add(Counter::Publish, 1);
    counts.add(Counter::PublishOut, queues.len() as u64 + held_routes);
    if !routed {
        counts.add(Counter::DropUnroutable, 1);
    }
    counts.flush(&[&v.stats, &s.broker.stats().totals]);
    if let Some(x) = v.exchange(&exchange) {
        x.stats.add(Counter::PublishIn, 1);
        x.stats
            .add(Counter::PublishOut, queues.len() as u64 + held_routes);
    }
    let mut encoded = None;
    let mut ticket = held.and_then(|h| h.ticket);
    for q in queues {
        let enqueued = q.publish(&message, &mut encoded);
        if let Some(t) = enqueued.ticket {
            ticket = Some(ticket.map_or(t, |old: warren_broker::Ticket| old.max(t)));
        }
    }
    if let Some(t) = ticket {
        s.broker
            .store()
            .wait_durable(t)
            .await
            .map_err(|e| ApiError::internal(format!("the store did not write the message: {e}")))?;
    }
    Ok(Json(json!({"routed": routed})))
}
