//! `/api/health/checks/*`: RabbitMQ's health checks. A passing check is 200
//! `{"status":"ok"}`; a failing one is 503 with `{"status":"failed","reason":...}` and
//! the details RabbitMQ gives, so load balancers and Kubernetes probes read them as usual.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/health/checks/alarms", get(alarms))
        .route("/api/health/checks/local-alarms", get(alarms))
        .route(
            "/api/health/checks/port-listener/{port}",
            get(port_listener),
        )
        .route(
            "/api/health/checks/protocol-listener/{protocol}",
            get(protocol_listener),
        )
        .route("/api/health/checks/virtual-hosts", get(virtual_hosts))
        .route(
            "/api/health/checks/ready-to-serve-clients",
            get(ready_to_serve_clients),
        )
        .route(
            "/api/health/checks/node-is-quorum-critical",
            get(single_node_ok),
        )
        .route(
            "/api/health/checks/node-is-mirror-sync-critical",
            get(single_node_ok),
        )
}

fn ok(extra: Value) -> Response {
    let mut body = json!({"status": "ok"});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (StatusCode::OK, Json(body)).into_response()
}

fn failed(reason: &str, extra: Value) -> Response {
    let mut body = json!({"status": "failed", "reason": reason});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Raised memory or disk alarms fail the check (one node: local and cluster-wide agree).
async fn alarms(State(s): State<ApiState>, _user: AuthUser) -> Response {
    let raised = s.broker.alarms().current();
    if !raised.any() {
        return ok(json!({}));
    }
    let mut list = Vec::new();
    if raised.memory {
        list.push(json!({"node": s.node(), "resource": "memory"}));
    }
    if raised.disk {
        list.push(json!({"node": s.node(), "resource": "disk"}));
    }
    failed(
        "resource alarm(s) in effect in the cluster",
        json!({"alarms": list}),
    )
}

/// Every listener: (protocol, port), the HTTP API's included.
fn listeners(s: &ApiState) -> Vec<(String, u16)> {
    let mut all: Vec<(String, u16)> = s
        .config
        .listeners
        .iter()
        .map(|(p, a)| (p.clone(), a.port()))
        .collect();
    if let Some(http) = s.http_addr {
        all.push(("http".into(), http.port()));
    }
    all
}

async fn port_listener(
    State(s): State<ApiState>,
    _user: AuthUser,
    Path(port): Path<String>,
) -> Response {
    let Ok(port) = port.parse::<u16>() else {
        return crate::error::ApiError::bad_request(format!("invalid port: {port}"))
            .into_response();
    };
    let all = listeners(&s);
    if all.iter().any(|(_, p)| *p == port) {
        ok(json!({"port": port}))
    } else {
        let mut ports: Vec<u16> = all.iter().map(|(_, p)| *p).collect();
        ports.sort_unstable();
        failed(
            "No active listener",
            json!({"missing": port, "ports": ports}),
        )
    }
}

async fn protocol_listener(
    State(s): State<ApiState>,
    _user: AuthUser,
    Path(protocol): Path<String>,
) -> Response {
    let all = listeners(&s);
    // RabbitMQ accepts "amqp091" and "amqp0-9-1" for "amqp", and "amqps" for "amqp/ssl".
    let wanted = match protocol.as_str() {
        "amqp091" | "amqp0.9.1" | "amqp0-9-1" => "amqp",
        "amqps" => "amqp/ssl",
        "https" => "https",
        other => other,
    };
    if all.iter().any(|(p, _)| p == wanted) {
        ok(json!({"protocol": protocol}))
    } else {
        let protocols: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        failed(
            "No active listener",
            json!({"missing": protocol, "protocols": protocols}),
        )
    }
}

/// Every vhost the registry knows is running here.
async fn virtual_hosts(State(s): State<ApiState>, _user: AuthUser) -> Response {
    let names = s
        .broker
        .access()
        .read(|st| st.vhosts.keys().cloned().collect::<Vec<_>>());
    let down: Vec<&String> = names
        .iter()
        .filter(|n| s.broker.vhost(n).is_none())
        .collect();
    if down.is_empty() {
        ok(json!({}))
    } else {
        failed(
            "Some virtual hosts are down",
            json!({"virtual-hosts": down}),
        )
    }
}

/// Serving once the broker is open (this API only starts after recovery) and no alarm
/// blocks publishers.
async fn ready_to_serve_clients(State(s): State<ApiState>, _user: AuthUser) -> Response {
    if s.broker.alarms().current().any() {
        failed(
            "resource alarm(s) in effect: publishers are blocked",
            json!({}),
        )
    } else {
        ok(json!({}))
    }
}

/// One node: no quorum or mirror depends on it being up.
async fn single_node_ok(_user: AuthUser) -> Response {
    ok(json!({"reason": "single node cluster"}))
}
