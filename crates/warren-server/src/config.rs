//! Settings of the AMQP listeners, with RabbitMQ's defaults.

use std::net::SocketAddr;
use std::time::Duration;

use crate::tls::TlsConfig;

/// A SASL mechanism the server can offer in connection.start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`: user and password (RFC 4616).
    Plain,
    /// `AMQPLAIN`: user and password in a field table.
    Amqplain,
    /// `EXTERNAL`: the user named by the TLS client certificate (offered on amqps
    /// connections only; it needs `verify_peer` to ever succeed).
    External,
}

impl SaslMechanism {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Amqplain => "AMQPLAIN",
            SaslMechanism::External => "EXTERNAL",
        }
    }

    /// The mechanism with this wire name.
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        [
            SaslMechanism::Plain,
            SaslMechanism::Amqplain,
            SaslMechanism::External,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// RabbitMQ's default `consumer_timeout`: 30 minutes.
pub const DEFAULT_CONSUMER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What the server listens on and negotiates.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the plain (non-TLS) listener.
    pub listen: SocketAddr,
    /// Whether the plain listener runs (false: amqps only).
    pub plain_listener: bool,
    /// The amqps listener, when configured.
    pub tls: Option<TlsConfig>,
    /// SASL mechanisms offered, in this order (RabbitMQ's `auth_mechanisms`); EXTERNAL
    /// only on amqps connections.
    pub auth_mechanisms: Vec<SaslMechanism>,
    /// Most connections served at once (plain and amqps together, handshakes included);
    /// more wait in the accept queue.
    pub max_connections: usize,
    /// Largest frame the server accepts and proposes (connection.tune).
    pub frame_max: u32,
    /// Most channels per connection the server proposes.
    pub channel_max: u16,
    /// Heartbeat interval the server proposes, in seconds (0 disables).
    pub heartbeat: u16,
    /// Time a client has to finish the handshake (TLS handshake, then header to
    /// connection.open).
    pub handshake_timeout: Duration,
    /// Time to wait for connection.close-ok after the server closed a connection.
    pub close_timeout: Duration,
    /// How long a refused login keeps its socket before closing it (RabbitMQ's
    /// `SILENT_CLOSE_DELAY`, 3 s: a client cannot retry logins faster than that on one
    /// connection). A client that answers the 403 with close-ok, or closes, ends it
    /// sooner.
    pub silent_close_delay: Duration,
    /// How long a delivery may stay unacknowledged before its channel is closed with 406
    /// (RabbitMQ's `consumer_timeout`); `None` disables the check.
    pub consumer_timeout: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5672)),
            plain_listener: true,
            tls: None,
            auth_mechanisms: vec![SaslMechanism::Plain, SaslMechanism::Amqplain],
            max_connections: 65_536,
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(3),
            silent_close_delay: Duration::from_secs(3),
            consumer_timeout: Some(DEFAULT_CONSUMER_TIMEOUT),
        }
    }
}
