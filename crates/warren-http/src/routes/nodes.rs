//! `/api/nodes` and `/api/nodes/{name}` (GET, monitors and administrators): this node's
//! readings, as RabbitMQ's `rabbit_mgmt_wm_node(s)` reports them where Warren has the
//! figure: memory and disk against their alarm thresholds (from the broker's alarm
//! monitor), file descriptors and sockets with their limits, processors, uptime, the run
//! queue, and the connection, channel and queue churn, with the rates of the sampled
//! readings (`mem_used_details`...). Erlang-only figures (GC,
//! reductions, mnesia, process limits) are left out rather than made up.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use warren_broker::stats::{ObjectKey, slot};

use super::overview::exchange_types;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::listing::{ListQuery, respond};
use crate::process;
use crate::state::ApiState;
use crate::stats_json;
use crate::stats_json::ranges;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/nodes", get(list))
        .route("/api/nodes/{name}", get(show))
}

fn node_json(s: &ApiState, ranges: &stats_json::Ranges) -> Value {
    let r = process::read(&s.broker);
    let mut out = Map::new();
    out.insert("name".into(), json!(s.node()));
    out.insert("type".into(), json!("disc"));
    out.insert("running".into(), json!(true));
    out.insert("os_pid".into(), json!(std::process::id().to_string()));
    out.insert("uptime".into(), json!(process::uptime_ms(&s.broker)));
    out.insert("processors".into(), json!(r.processors));
    out.insert("run_queue".into(), json!(r.run_queue));
    out.insert("mem_used".into(), json!(r.mem_used));
    out.insert("mem_limit".into(), json!(r.mem_limit));
    out.insert("mem_alarm".into(), json!(r.mem_alarm));
    out.insert("mem_calculation_strategy".into(), json!("rss"));
    out.insert("disk_free".into(), json!(r.disk_free));
    out.insert("disk_free_limit".into(), json!(r.disk_free_limit));
    out.insert("disk_free_alarm".into(), json!(r.disk_free_alarm));
    out.insert("fd_used".into(), json!(r.fd_used));
    out.insert("fd_total".into(), json!(r.fd_total));
    out.insert("sockets_used".into(), json!(r.sockets_used));
    out.insert("sockets_total".into(), json!(r.sockets_total));
    out.insert("proc_used".into(), json!(r.threads));
    out.insert("partitions".into(), json!([]));
    out.insert("cluster_links".into(), json!([]));
    let contexts: Vec<Value> = s
        .http_addr
        .iter()
        .map(|addr| {
            json!({
                "description": "Warren Management",
                "path": "/",
                "ip": addr.ip().to_string(),
                "port": addr.port().to_string(),
            })
        })
        .collect();
    out.insert("contexts".into(), Value::Array(contexts));
    out.insert("rates_mode".into(), json!("basic"));
    out.insert("exchange_types".into(), exchange_types());
    out.extend(stats_json::churn_rates(s.broker.stats(), ranges));
    s.broker.stats().read(|h| {
        for (name, slot) in [
            ("mem_used_details", slot::MEM_USED),
            ("disk_free_details", slot::DISK_FREE),
            ("fd_used_details", slot::FD_USED),
            ("sockets_used_details", slot::SOCKETS_USED),
            ("proc_used_details", slot::PROC_USED),
        ] {
            let d = h.details(&ObjectKey::Node, slot, ranges.lengths);
            out.insert(name.into(), stats_json::details_json(&d));
        }
    });
    Value::Object(out)
}

async fn list(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    user.require_monitor()?;
    let ranges = ranges(&raw)?;
    respond(vec![node_json(&s, &ranges)], &q, &["name"])
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(name): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    user.require_monitor()?;
    let ranges = ranges(&raw)?;
    if name != s.node() {
        return Err(ApiError::not_found());
    }
    Ok(Json(node_json(&s, &ranges)))
}
