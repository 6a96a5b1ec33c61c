//! `/api/channels`, `/api/channels/{name}`, `/api/connections/{name}/channels`,
//! `/api/vhosts/{vhost}/channels` (GET): the open channels, as RabbitMQ's
//! `rabbit_mgmt_wm_channel(s)`. A channel's name is its connection's plus ` (<number>)`.
//!
//! Visibility follows the connection's (`connections.rs`): monitors and administrators
//! see every channel, other management users those of their own connections. Each
//! channel's JSON comes from the broker's `ChannelInfo` (modes, prefetch, counts kept by
//! the connection task per batch) and its `message_stats` with rates from the sampler
//! (`msg_rates_age` / `msg_rates_incr` for samples).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use warren_broker::stats::ObjectKey;
use warren_broker::{ChannelInfo, ConnectionInfo};

use super::connections::{find, may_access, visible};
use super::vhost;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;
use crate::stats_json::ranges;
use crate::stats_json::{self, Ranges};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/channels", get(list_all))
        .route("/api/channels/{name}", get(show))
        .route("/api/connections/{name}/channels", get(of_connection))
        .route("/api/vhosts/{vhost}/channels", get(list_in))
}

/// The API name of a channel: `"<connection name> (<number>)"`.
pub(crate) fn channel_name(connection: &ConnectionInfo, channel: &ChannelInfo) -> String {
    format!("{} ({})", connection.details.name, channel.number)
}

/// One channel as RabbitMQ renders it.
pub(crate) fn channel_json(
    state: &ApiState,
    conn: &ConnectionInfo,
    ch: &ChannelInfo,
    ranges: &Ranges,
) -> Value {
    let load = |a: &std::sync::atomic::AtomicU32| a.load(Ordering::Relaxed);
    let closing = ch.closing.load(Ordering::Relaxed) || conn.closing.load(Ordering::Relaxed);
    let mut obj = Map::new();
    obj.insert("name".into(), json!(channel_name(conn, ch)));
    obj.insert("number".into(), json!(ch.number));
    obj.insert("node".into(), json!(state.node()));
    obj.insert("user".into(), json!(&*conn.user));
    obj.insert("user_who_performed_action".into(), json!(&*conn.user));
    obj.insert("vhost".into(), json!(&*conn.vhost));
    obj.insert(
        "connection_details".into(),
        json!({
            "name": conn.details.name,
            "peer_host": conn.details.peer.ip().to_string(),
            "peer_port": conn.details.peer.port(),
        }),
    );
    obj.insert(
        "state".into(),
        json!(if closing { "closing" } else { "running" }),
    );
    obj.insert("confirm".into(), json!(ch.confirm.load(Ordering::Relaxed)));
    obj.insert(
        "transactional".into(),
        json!(ch.transactional.load(Ordering::Relaxed)),
    );
    obj.insert("consumer_count".into(), json!(load(&ch.consumers)));
    obj.insert("messages_unacknowledged".into(), json!(load(&ch.unacked)));
    obj.insert("messages_unconfirmed".into(), json!(load(&ch.unconfirmed)));
    obj.insert("messages_uncommitted".into(), json!(load(&ch.uncommitted)));
    obj.insert("acks_uncommitted".into(), json!(load(&ch.acks_uncommitted)));
    obj.insert("prefetch_count".into(), json!(load(&ch.prefetch)));
    obj.insert(
        "global_prefetch_count".into(),
        json!(ch.credit.global_prefetch.load(Ordering::Relaxed)),
    );
    // Idle since its last message event (or its opening).
    let last = ch.last_active.load(Ordering::Relaxed);
    obj.insert("idle_since".into(), json!(crate::json::timestamp(last)));
    let key = [ObjectKey::Channel(conn.id, ch.number)];
    let counts = ch.counters.snapshot();
    let ms = state
        .broker
        .stats()
        .read(|h| stats_json::message_stats(h, &key, &counts, ranges));
    if !ms.is_empty() {
        obj.insert("message_stats".into(), Value::Object(ms));
    }
    Value::Object(obj)
}

fn channels_of(state: &ApiState, conns: &[Arc<ConnectionInfo>], ranges: &Ranges) -> Vec<Value> {
    conns
        .iter()
        .flat_map(|c| {
            c.channel_list()
                .into_iter()
                .map(|ch| channel_json(state, c, &ch, ranges))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = ranges(&raw)?;
    respond(
        channels_of(&s, &visible(&s, &user, None), &ranges),
        &q,
        &["name"],
    )
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
    respond(
        channels_of(&s, &visible(&s, &user, Some(&vname)), &ranges),
        &q,
        &["name"],
    )
}

async fn of_connection(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = ranges(&raw)?;
    let found = find(&s, &name);
    let owner = found
        .as_ref()
        .map(|c| c.user.to_string())
        .unwrap_or_default();
    if !(user.is_monitor() || (found.is_some() && may_access(&user, &owner, false))) {
        return Err(ApiError::not_authorised(
            "User not authorised to access object",
        ));
    }
    let conn = found.ok_or_else(ApiError::not_found)?;
    respond(channels_of(&s, &[conn], &ranges), &q, &["name"])
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = ranges(&raw)?;
    let found = s.broker.connections().list().into_iter().find_map(|c| {
        c.channel_list()
            .into_iter()
            .find(|ch| channel_name(&c, ch) == name)
            .map(|ch| (Arc::clone(&c), ch))
    });
    let owner = found
        .as_ref()
        .map(|(c, _)| c.user.to_string())
        .unwrap_or_default();
    if !(user.is_monitor() || (found.is_some() && may_access(&user, &owner, false))) {
        return Err(ApiError::not_authorised(
            "User not authorised to access object",
        ));
    }
    let (conn, ch) = found.ok_or_else(ApiError::not_found)?;
    let mut out = channel_json(&s, &conn, &ch, &ranges);
    if let Value::Object(m) = &mut out {
        // Its consumers, from the queues of its vhost.
        let mut consumers = Vec::new();
        if let Some(v) = s.broker.vhost(&conn.vhost) {
            for q in v.queues() {
                for (i, c) in q.consumers().iter().enumerate() {
                    if c.connection == conn.id && c.channel == ch.number {
                        consumers.push(super::consumers::consumer_json(&s, &q, c, i));
                    }
                }
            }
        }
        m.insert("consumer_details".into(), Value::Array(consumers));
        // Per-queue and per-exchange figures are RabbitMQ's `detailed` rates mode; in
        // the `basic` mode Warren reports, as RabbitMQ's default, these lists are empty.
        m.insert("deliveries".into(), json!([]));
        m.insert("publishes".into(), json!([]));
    }
    Ok(Json(out))
}
