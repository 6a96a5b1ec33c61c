//! `/api/overview` (GET): the node's summary, as RabbitMQ's `rabbit_mgmt_wm_overview`:
//! versions (Warren's, in RabbitMQ's fields), cluster and node names, `object_totals`,
//! `queue_totals` and `message_stats` with rates (`stats_json`), `churn_rates`, the
//! listeners and HTTP contexts, the exchange types, and the sample retention Warren keeps.
//!
//! Monitors and administrators get the broker-wide figures; other management users get
//! sums over the vhosts they may use (as RabbitMQ narrows the overview to a user's vhosts),
//! and no churn or listener details.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use warren_broker::stats::{MessageCounts, ObjectKey};

use super::connections::visible;
use super::visible_vhosts;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::ApiState;
use crate::stats_json;
use crate::stats_json::ranges;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/api/overview", get(overview))
}

/// The exchange types Warren implements, as RabbitMQ lists them (`x-delayed-message` as
/// RabbitMQ lists it with the delayed-message plugin enabled).
pub(crate) fn exchange_types() -> Value {
    json!([
        {"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
        {"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
        {"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
        {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
        {"name": "x-delayed-message", "description": "Delayed Message Exchange.", "enabled": true},
    ])
}

async fn overview(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ranges = ranges(&raw)?;
    let version = env!("CARGO_PKG_VERSION");
    let stats = s.broker.stats();
    let vhosts = visible_vhosts(&s, &user);
    let connections = visible(&s, &user, None);
    let (mut queues, mut consumers, mut exchanges) = (0u64, 0u64, 0u64);
    let mut lengths = (0u64, 0u64, 0u64);
    for v in &vhosts {
        exchanges += v.exchanges().len() as u64;
        for q in v.queues() {
            queues += 1;
            consumers += u64::from(q.consumer_count());
            let (r, u, d) = q.depth();
            lengths = (lengths.0 + r, lengths.1 + u, lengths.2 + d);
        }
    }
    let channels: usize = connections.iter().map(|c| c.channel_list().len()).sum();
    let mut out = Map::new();
    out.insert("management_version".into(), json!(version));
    out.insert("rates_mode".into(), json!("basic"));
    out.insert(
        "sample_retention_policies".into(),
        json!({"global": [600], "basic": [60], "detailed": [60]}),
    );
    out.insert("exchange_types".into(), exchange_types());
    out.insert("product_version".into(), json!(version));
    out.insert("product_name".into(), json!("Warren"));
    out.insert("rabbitmq_version".into(), json!(version));
    out.insert("cluster_name".into(), json!(s.config.cluster_name));
    out.insert("node".into(), json!(s.node()));
    out.insert("disable_stats".into(), json!(false));
    out.insert("enable_queue_totals".into(), json!(false));
    out.insert("statistics_db_event_queue".into(), json!(0));
    out.insert(
        "object_totals".into(),
        json!({
            "channels": channels,
            "connections": connections.len(),
            "consumers": consumers,
            "exchanges": exchanges,
            "queues": queues,
        }),
    );
    let everything = user.is_monitor();
    stats.read(|h| {
        let (depth, ms) = if everything {
            let counts = stats.totals.snapshot();
            let keys = [ObjectKey::Broker];
            (
                stats_json::depth(h, &keys, lengths, &ranges),
                stats_json::overview_message_stats(h, &keys, &counts, &ranges),
            )
        } else {
            // Sums over the user's vhosts: counters added, rates added.
            let mut counts = MessageCounts::default();
            for v in &vhosts {
                counts.add(&v.stats.snapshot());
            }
            let keys: Vec<ObjectKey> = vhosts
                .iter()
                .map(|v| ObjectKey::VHost(v.name.clone()))
                .collect();
            (
                stats_json::depth(h, &keys, lengths, &ranges),
                stats_json::overview_message_stats(h, &keys, &counts, &ranges),
            )
        };
        out.insert("queue_totals".into(), Value::Object(depth));
        out.insert("message_stats".into(), Value::Object(ms));
    });
    if everything {
        out.insert(
            "churn_rates".into(),
            Value::Object(stats_json::churn_rates(stats, &ranges)),
        );
        let http = s.http_addr.map(|a| ("http".to_owned(), a));
        let listeners: Vec<Value> = s
            .config
            .listeners
            .iter()
            .chain(http.iter())
            .map(|(protocol, addr)| {
                json!({
                    "node": s.node(),
                    "protocol": protocol,
                    "ip_address": addr.ip().to_string(),
                    "port": addr.port(),
                })
            })
            .collect();
        out.insert("listeners".into(), Value::Array(listeners));
        let contexts: Vec<Value> = s
            .http_addr
            .iter()
            .map(|addr| {
                json!({
                    "node": s.node(),
                    "description": "Warren Management",
                    "path": "/",
                    "ssl_opts": [],
                    "ip": addr.ip().to_string(),
                    "port": addr.port().to_string(),
                })
            })
            .collect();
        out.insert("contexts".into(), Value::Array(contexts));
    }
    Ok(Json(Value::Object(out)))
}
