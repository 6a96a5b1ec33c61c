//! Warren's AMQP 0-9-1 server: the listeners, connections and channels.
//!
//! [`Server::bind`] opens the listeners (plain AMQP, amqps, or both); [`Server::run`]
//! accepts connections until the shutdown signal fires, each served by its own task
//! (`connection.rs`) plus a writer task (`writer.rs`). An amqps connection does its TLS
//! handshake inside its task, under the handshake timeout; after that both kinds run the
//! same code, generic over the stream. A connection decodes frames with
//! `warren-protocol`, runs channel methods (`channel/`) against the `warren-broker`
//! model, and turns every error into the close RabbitMQ would send (`error.rs`).
//!
//! # Layout
//! - `lib.rs`: [`Server`]: accept loops, connection limit, graceful shutdown.
//! - `config.rs`: [`ServerConfig`], [`SaslMechanism`].
//! - `tls.rs`: [`TlsConfig`]: certificate, key and CA files into a rustls configuration;
//!   the user name of a client certificate (SASL EXTERNAL).
//! - `connection.rs`: the TLS handshake, the AMQP handshake (header, SASL PLAIN,
//!   AMQPLAIN and EXTERNAL, refused logins as RabbitMQ refuses them, tune, open), the
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
pub mod tls;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};
use warren_broker::Broker;

pub use config::{DEFAULT_CONSUMER_TIMEOUT, SaslMechanism, ServerConfig};
pub use tls::{CertLoginFrom, Tls, TlsConfig, TlsError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound (in use, not permitted...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS settings are unusable.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// Neither listener is configured.
    #[error("no listener: the plain listener is off and no amqps listener is configured")]
    NoListener,
}

/// Listeners bound beforehand (see [`Server::from_listeners`]).
#[derive(Debug, Default)]
pub struct Listeners {
    /// The plain AMQP listener.
    pub plain: Option<TcpListener>,
    /// The amqps listener and its loaded TLS settings.
    pub amqps: Option<(TcpListener, Tls)>,
}

impl Listeners {
    /// Load the TLS settings and bind what `config` asks for.
    pub async fn bind(config: &ServerConfig) -> Result<Listeners, ServerError> {
        let tls = config.tls.as_ref().map(TlsConfig::load).transpose()?;
        if !config.plain_listener && tls.is_none() {
            return Err(ServerError::NoListener);
        }
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })
        };
        let plain = match config.plain_listener {
            true => Some(bind(config.listen).await?),
            false => None,
        };
        let amqps = match (&config.tls, tls) {
            (Some(settings), Some(tls)) => Some((bind(settings.listen).await?, tls)),
            _ => None,
        };
        Ok(Listeners { plain, amqps })
    }
}

/// The bound AMQP listeners.
pub struct Server {
    plain: Option<TcpListener>,
    amqps: Option<(TcpListener, Tls)>,
    broker: Arc<Broker>,
    config: Arc<ServerConfig>,
}

impl Server {
    /// Load the TLS settings (if any) and bind the listen addresses.
    pub async fn bind(config: ServerConfig, broker: Arc<Broker>) -> Result<Server, ServerError> {
        let listeners = Listeners::bind(&config).await?;
        Ok(Self::from_listeners(listeners, config, broker))
    }

    /// Serve on listeners bound beforehand (the binary binds before it opens the
    /// store, so a busy port fails fast and early clients wait in the backlog).
    pub fn from_listeners(
        listeners: Listeners,
        config: ServerConfig,
        broker: Arc<Broker>,
    ) -> Server {
        Server {
            plain: listeners.plain,
            amqps: listeners.amqps,
            broker,
            config: Arc::new(config),
        }
    }

    /// The plain listener's address (port 0 resolved); an error when it is off.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.plain {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the plain listener is off",
            )),
        }
    }

    /// The amqps listener's address, when there is one.
    pub fn amqps_addr(&self) -> Option<SocketAddr> {
        self.amqps.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Accept connections until `shutdown` becomes true; then stop accepting, close
    /// every connection with 320 CONNECTION_FORCED and wait (up to 10 s) for them to end.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let mut connections = JoinSet::new();
        if let Some(addr) = self.plain.as_ref().and_then(|l| l.local_addr().ok()) {
            info!(%addr, "accepting AMQP connections");
        }
        if let Some(addr) = self.amqps_addr() {
            info!(%addr, "accepting AMQPS (TLS) connections");
        }
        loop {
            let permit = tokio::select! {
                _ = shutdown.changed() => break,
                permit = Arc::clone(&limit).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            // A permit is held while waiting: a handshake (TLS included) counts
            // against max_connections as an open connection does.
            let (accepted, tls) = tokio::select! {
                _ = shutdown.changed() => break,
                accepted = accept(self.plain.as_ref()) => (accepted, None),
                accepted = accept(self.amqps.as_ref().map(|(l, _)| l)) => {
                    (accepted, self.amqps.as_ref().map(|(_, tls)| tls.clone()))
                }
            };
            match accepted {
                Ok((stream, peer)) => {
                    let broker = Arc::clone(&self.broker);
                    let config = Arc::clone(&self.config);
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        match tls {
                            None => {
                                connection::serve_plain(stream, peer, broker, config, shutdown)
                                    .await
                            }
                            Some(tls) => {
                                connection::serve_tls(stream, peer, tls, broker, config, shutdown)
                                    .await
                            }
                        }
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
        drop(self.plain);
        drop(self.amqps);
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

/// Accept on `listener`, or never when there is none.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}
