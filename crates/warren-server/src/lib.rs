//! Warren's AMQP 0-9-1 server: the listener, connections and channels.
//!
//! [`Server::bind`] opens the listener; [`Server::run`] accepts connections until the
//! shutdown signal fires, each served by its own task (`connection.rs`) plus a writer
//! task (`writer.rs`). A connection decodes frames with `warren-protocol`, runs channel
//! methods (`channel/`) against the `warren-broker` model, and turns every error into
//! the close RabbitMQ would send (`error.rs`).
//!
//! # Layout
//! - `lib.rs`: [`Server`]: accept loop, connection limit, graceful shutdown.
//! - `config.rs`: [`ServerConfig`].
//! - `connection.rs`: handshake (header, SASL PLAIN/AMQPLAIN, tune, open), the
//!   connection loop, heartbeats, update-secret, closing (and closes that cross).
//! - `channel/`: one AMQP channel, a file per concern (its `mod.rs` doc has the map):
//!   - `mod.rs`: the `Channel` type, its Open / ClosingByServer / Closed lifecycle, the
//!     dispatch of a method to its class's handler, the channel class and close handling.
//!   - `exchange.rs`, `queue.rs`, `basic.rs`, `confirm.rs`, `tx.rs`: the methods of each
//!     AMQP class (`confirm.rs` also releases confirms once the store has synced).
//!   - `publish.rs`: content frames into a message, then routing and enqueueing.
//!   - `delivery.rs`: deliveries to consumers, the unacked list, settle and requeue.
//! - `flow.rs`: a connection's blocked state under resource alarms (connection.blocked /
//!   unblocked, not reading a blocked publisher).
//! - `writer.rs`: the per-connection writer that batches output into one syscall.
//! - `error.rs`: the mapping of every error to a channel or connection close.

mod channel;
mod config;
mod connection;
mod error;
mod flow;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};
use warren_broker::Broker;

pub use config::ServerConfig;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound (in use, not permitted...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A bound AMQP listener.
pub struct Server {
    listener: TcpListener,
    broker: Arc<Broker>,
    config: Arc<ServerConfig>,
}

impl Server {
    /// Bind the listen address.
    pub async fn bind(config: ServerConfig, broker: Arc<Broker>) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            broker,
            config: Arc::new(config),
        })
    }

    /// Serve on a listener bound beforehand (the binary binds before it opens the
    /// store, so a busy port fails fast and early clients wait in the backlog).
    pub fn from_listener(
        listener: TcpListener,
        config: ServerConfig,
        broker: Arc<Broker>,
    ) -> Server {
        Server {
            listener,
            broker,
            config: Arc::new(config),
        }
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept connections until `shutdown` becomes true; then stop accepting, close
    /// every connection with 320 CONNECTION_FORCED and wait (up to 10 s) for them to end.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let mut connections = JoinSet::new();
        info!(addr = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(), "accepting AMQP connections");
        loop {
            let permit = tokio::select! {
                _ = shutdown.changed() => break,
                permit = Arc::clone(&limit).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = shutdown.changed() => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let broker = Arc::clone(&self.broker);
                    let config = Arc::clone(&self.config);
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        connection::serve(stream, peer, broker, config, shutdown).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            while connections.try_join_next().is_some() {}
        }
        drop(self.listener);
        info!(
            open = connections.len(),
            "stopped accepting; closing connections"
        );
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                open = connections.len(),
                "connections still open after 10 s; aborting them"
            );
            connections.abort_all();
        }
    }
}
