//! Warren's management HTTP API: RabbitMQ's management API (same paths, methods, status
//! codes and JSON), so that rabbitmqadmin, Terraform providers, Kubernetes operators,
//! monitoring checks and scripts written for RabbitMQ work against Warren unchanged.
//!
//! This crate sits above `warren-broker` and reads and changes the broker only through its
//! public API (the access registry's commands, vhost operations, the connection registry);
//! it never reaches into the AMQP server.
//!
//! # How a request flows
//! axum routes `/api/...` (`routes/`, one file per resource) to a handler. The handler
//! takes an [`AuthUser`] (basic auth and tags, `auth.rs`), parses a body with `body.rs`
//! (RabbitMQ's 400s), calls the broker, renders each object as JSON and lets
//! `listing.rs` sort, filter, paginate and cut lists. Errors are [`ApiError`]s with
//! RabbitMQ's `{"error", "reason"}` bodies (`error.rs`).
//!
//! # Layout
//! - `state.rs`: [`ApiState`] (broker, settings) and [`HttpConfig`].
//! - `auth.rs`, `error.rs`, `body.rs`, `listing.rs`: the parts every handler shares.
//! - `json.rs`: objects as RabbitMQ renders them (queues, exchanges, bindings, ...).
//! - `stats_json.rs`: `message_stats`, queue depths and socket counters with their
//!   `_details` (rates, and samples for `*_age` / `*_incr` ranges) from `warren_broker::stats`.
//! - `process.rs`: the node's readings (descriptors, sockets, memory, disk) for
//!   `/api/nodes` and the metrics.
//! - `routes/`: the endpoints, by resource.
//! - `ui/`: the web management UI's embedded static files, served at `/` and `/ui/`;
//!   the UI itself calls only the `/api` endpoints.
//! - `prometheus/`: the Prometheus metrics (`/metrics`, `/metrics/per-object`) on their own
//!   listener ([`prometheus::serve`]).

mod auth;
mod body;
mod error;
mod json;
mod listing;
mod process;
pub mod prometheus;
mod properties;
mod routes;
mod state;
pub mod stats_json;
pub mod ui;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::AuthUser;
pub use error::ApiError;
pub use listing::ListQuery;
pub use state::{ApiState, HttpConfig, default_node_name};

/// The whole API as an axum router.
pub fn router(state: ApiState) -> Router {
    let max_body = state.config.max_body_size;
    routes::api()
        .merge(ui::routes())
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serve the API on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    mut state: ApiState,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    state.http_addr = listener.local_addr().ok();
    // Rates need samples: the broker's sampler runs while the API is served.
    state.broker.start_sampler();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}
