//! Prometheus metrics on their own listener (RabbitMQ's `rabbitmq_prometheus`, port
//! 15692): `GET /metrics` (aggregated) and `GET /metrics/per-object` (one series per
//! queue, channel and connection), in the text format of the `prometheus-client` crate
//! (OpenMetrics text: `# TYPE`, `# HELP`, counters ending in `_total`, a closing
//! `# EOF`), which Prometheus scrapes as it scrapes RabbitMQ.
//!
//! Every scrape reads the broker afresh (`metrics.rs`): counters and gauges are built from
//! the broker's atomics and registries into a new registry and encoded, so nothing is
//! kept between scrapes and the message path pays nothing for them.
//!
//! # Layout
//! - `mod.rs`: the router and [`serve`].
//! - `metrics.rs`: the metric families, names and labels as RabbitMQ has them.

mod metrics;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warren_broker::Broker;

pub use metrics::render;

/// The content type of the text format we send.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the metrics handlers read.
#[derive(Debug, Clone)]
struct MetricsState {
    broker: Arc<Broker>,
    /// The node name (`rabbitmq_identity_info`'s `rabbitmq_node`).
    node: Arc<str>,
}

/// The metrics routes for `broker`, reporting it as node `node`.
pub fn router(broker: Arc<Broker>, node: &str) -> Router {
    Router::new()
        .route("/metrics", get(aggregated))
        .route("/metrics/per-object", get(per_object))
        .with_state(MetricsState {
            broker,
            node: Arc::from(node),
        })
}

/// Serve the metrics on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    node: &str,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(broker, node))
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

async fn aggregated(State(s): State<MetricsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&s.broker, &s.node, false),
    )
}

async fn per_object(State(s): State<MetricsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&s.broker, &s.node, true),
    )
}
