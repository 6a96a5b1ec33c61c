//! `/api/consumers` and `/api/consumers/{vhost}` (GET): every consumer of the queues in
//! the vhosts the user sees (RabbitMQ's `rabbit_mgmt_wm_consumers`), read from each
//! queue's consumer list (a short hold of the queue's lock) and the broker's connection
//! records for the channel details.
//!
//! `active` / `activity_status`: on a single-active-consumer queue the first consumer is
//! active (`single_active`) and the others wait (`waiting`, `active: false`); elsewhere
//! every consumer is `up`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use warren_broker::definitions::table_to_json;
use warren_broker::{Consumer, Queue};

use super::listed_vhosts;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/consumers", get(list_all))
        .route("/api/consumers/{vhost}", get(list_in))
}

/// One consumer of `queue` (`index` in its consumer list) as RabbitMQ renders it.
pub(crate) fn consumer_json(
    state: &ApiState,
    queue: &Queue,
    consumer: &Consumer,
    index: usize,
) -> Value {
    let (active, status) = if !queue.is_single_active() {
        (true, "up")
    } else if index == 0 {
        (true, "single_active")
    } else {
        (false, "waiting")
    };
    let conn = state.broker.connections().get(consumer.connection);
    let channel_details = match &conn {
        Some(c) => json!({
            "name": format!("{} ({})", c.details.name, consumer.channel),
            "number": consumer.channel,
            "connection_name": c.details.name,
            "node": state.node(),
            "peer_host": c.details.peer.ip().to_string(),
            "peer_port": c.details.peer.port(),
            "user": &*c.user,
        }),
        // The connection closed between the listing of the queue and this lookup.
        None => json!({}),
    };
    json!({
        "consumer_tag": consumer.tag.as_str(),
        "channel_details": channel_details,
        "queue": {"name": &**queue.name(), "vhost": &*queue.vhost},
        "ack_required": !consumer.no_ack,
        "exclusive": consumer.exclusive,
        "prefetch_count": consumer.prefetch,
        "arguments": Value::Object(table_to_json(&consumer.arguments)),
        "active": active,
        "activity_status": status,
    })
}

fn items(state: &ApiState, user: &AuthUser, one: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for v in listed_vhosts(state, user, one)? {
        for q in v.queues() {
            for (i, c) in q.consumers().iter().enumerate() {
                out.push(consumer_json(state, &q, c, i));
            }
        }
    }
    Ok(out)
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(items(&s, &user, None)?, &q, &[])
}

async fn list_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(items(&s, &user, Some(&vhost))?, &q, &[])
}
