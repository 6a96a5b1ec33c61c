//! Settings of the AMQP listener, with RabbitMQ's defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// What the server listens on and negotiates.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Most connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Largest frame the server accepts and proposes (connection.tune).
    pub frame_max: u32,
    /// Most channels per connection the server proposes.
    pub channel_max: u16,
    /// Heartbeat interval the server proposes, in seconds (0 disables).
    pub heartbeat: u16,
    /// Time a client has to finish the handshake (header to connection.open).
    pub handshake_timeout: Duration,
    /// Time to wait for connection.close-ok after the server closed a connection.
    pub close_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5672)),
            max_connections: 65_536,
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(3),
        }
    }
}
