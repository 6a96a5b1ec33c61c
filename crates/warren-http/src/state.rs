//! What every handler shares: the broker, the API's settings and the start time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use warren_broker::Broker;

/// Settings of the management API.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted (RabbitMQ's `management.http.max_body_size`,
    /// 20,000,000 bytes by default); a larger one gets 413.
    pub max_body_size: usize,
    /// The AMQP listeners, for `/api/overview`'s `listeners` and the port/protocol
    /// listener health checks: (protocol, address), e.g. ("amqp", 127.0.0.1:5672).
    pub listeners: Vec<(String, SocketAddr)>,
    /// This node's name (`rabbit@localhost` style), reported as `node`.
    pub node_name: String,
    /// The cluster name reported by `/api/overview`.
    pub cluster_name: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_size: 20_000_000,
            listeners: Vec::new(),
            node_name: default_node_name(),
            cluster_name: default_node_name(),
        }
    }
}

/// `warren@<hostname>`, as RabbitMQ names a node `rabbit@<hostname>`.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("warren@{host}")
}

/// Shared by every handler (cheap to clone).
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The broker.
    pub broker: Arc<Broker>,
    /// Settings.
    pub config: Arc<HttpConfig>,
    /// When the API (and, near enough, the broker) started.
    pub started: Instant,
    /// The HTTP listener's own address (for the listeners list).
    pub http_addr: Option<SocketAddr>,
}

impl ApiState {
    /// State over `broker` with `config`.
    pub fn new(broker: Arc<Broker>, config: HttpConfig) -> Self {
        Self {
            broker,
            config: Arc::new(config),
            started: Instant::now(),
            http_addr: None,
        }
    }

    /// The node name.
    pub fn node(&self) -> &str {
        &self.config.node_name
    }
}
