//! Open connections: who is connected to which vhost, the counts that connection and channel
//! limits are checked against, and the way the broker closes a connection from outside
//! (vhost or user deleted; later the HTTP API's "close connection").
//!
//! The server registers a connection at connection.open (`Broker::open_connection`, which
//! checks the limits under the registry's lock, so two racing opens cannot both take the
//! last slot) and holds the returned [`ConnectionHandle`]; dropping it unregisters. A forced
//! close is a value sent on the connection's `watch` channel, which its task selects on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::access::under_limit;
use crate::access::{UserLimits, VhostLimits};
use crate::consumer::ConnectionId;
use crate::error::BrokerError;

/// Why the broker wants a connection closed: the reply code and text of its
/// connection.close (e.g. 320 `CONNECTION_FORCED - vhost 'x' is deleted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// Reply code.
    pub code: u16,
    /// Reply text.
    pub text: String,
}

/// What the broker knows about one open connection.
#[derive(Debug)]
pub struct ConnectionInfo {
    /// Connection id.
    pub id: ConnectionId,
    /// The authenticated user.
    pub user: Arc<str>,
    /// The vhost it opened.
    pub vhost: Arc<str>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Open channels.
    pub channels: AtomicUsize,
    close: watch::Sender<Option<CloseRequest>>,
}

impl ConnectionInfo {
    /// Ask the connection to close with `code` and `text`.
    pub fn close(&self, code: u16, text: impl Into<String>) {
        self.close.send_replace(Some(CloseRequest {
            code,
            text: text.into(),
        }));
    }
}

#[derive(Debug, Default)]
struct Counts {
    per_vhost: HashMap<Arc<str>, usize>,
    per_user: HashMap<Arc<str>, usize>,
    channels_per_user: HashMap<Arc<str>, usize>,
}

fn bump(map: &mut HashMap<Arc<str>, usize>, key: &Arc<str>, up: bool) {
    if up {
        *map.entry(Arc::clone(key)).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Every open connection; see the module docs.
#[derive(Debug, Default)]
pub struct Connections {
    open: dashmap::DashMap<ConnectionId, Arc<ConnectionInfo>>,
    counts: Mutex<Counts>,
}

/// Held by the connection task while it is open; dropping it unregisters the connection.
#[derive(Debug)]
pub struct ConnectionHandle {
    info: Arc<ConnectionInfo>,
    registry: Arc<Connections>,
    /// Fires when the broker wants the connection closed.
    pub closed: watch::Receiver<Option<CloseRequest>>,
}

/// Held by a channel while it is open; dropping it gives the slot back.
#[derive(Debug)]
pub struct ChannelSlot {
    info: Arc<ConnectionInfo>,
    registry: Arc<Connections>,
}

impl Connections {
    /// Register a connection if neither the vhost's nor the user's connection limit is
    /// reached; otherwise RabbitMQ's 530 text (vhost limit first, as RabbitMQ checks).
    pub(crate) fn register(
        self: &Arc<Self>,
        id: ConnectionId,
        user: &str,
        vhost: &str,
        peer: SocketAddr,
        vhost_limits: VhostLimits,
        user_limits: UserLimits,
    ) -> Result<ConnectionHandle, BrokerError> {
        let user: Arc<str> = Arc::from(user);
        let vhost: Arc<str> = Arc::from(vhost);
        let mut counts = self.counts.lock();
        let in_vhost = counts.per_vhost.get(&vhost).copied().unwrap_or(0);
        under_limit(vhost_limits.max_connections, in_vhost).map_err(|max| {
            BrokerError::NotAllowed(format!(
                "access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"
            ))
        })?;
        let of_user = counts.per_user.get(&user).copied().unwrap_or(0);
        under_limit(user_limits.max_connections, of_user).map_err(|max| {
            BrokerError::NotAllowed(format!(
                "connection refused for user '{user}': user connection limit ({max}) is reached"
            ))
        })?;
        bump(&mut counts.per_vhost, &vhost, true);
        bump(&mut counts.per_user, &user, true);
        drop(counts);
        let (close, closed) = watch::channel(None);
        let info = Arc::new(ConnectionInfo {
            id,
            user,
            vhost,
            peer,
            channels: AtomicUsize::new(0),
            close,
        });
        self.open.insert(id, Arc::clone(&info));
        Ok(ConnectionHandle {
            info,
            registry: Arc::clone(self),
            closed,
        })
    }

    /// Every open connection.
    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        self.open.iter().map(|c| Arc::clone(c.value())).collect()
    }

    /// One connection by id.
    pub fn get(&self, id: ConnectionId) -> Option<Arc<ConnectionInfo>> {
        self.open.get(&id).map(|c| Arc::clone(c.value()))
    }

    /// Open connections to `vhost`.
    pub fn count_in_vhost(&self, vhost: &str) -> usize {
        self.counts
            .lock()
            .per_vhost
            .get(vhost)
            .copied()
            .unwrap_or(0)
    }

    /// Close every connection matching `filter` with `code` / `text`; returns how many.
    pub fn close_where(
        &self,
        filter: impl Fn(&ConnectionInfo) -> bool,
        code: u16,
        text: &str,
    ) -> usize {
        let mut n = 0;
        for info in self.list() {
            if filter(&info) {
                info.close(code, text);
                n += 1;
            }
        }
        n
    }
}

impl ConnectionHandle {
    /// The connection's record.
    pub fn info(&self) -> &Arc<ConnectionInfo> {
        &self.info
    }

    /// Take a channel slot unless the user's `max-channels` is reached (RabbitMQ's 530
    /// text), counted over all of the user's connections.
    pub fn open_channel(&self, user_limits: UserLimits) -> Result<ChannelSlot, BrokerError> {
        let mut counts = self.registry.counts.lock();
        let user = &self.info.user;
        let open = counts.channels_per_user.get(user).copied().unwrap_or(0);
        under_limit(user_limits.max_channels, open).map_err(|max| {
            BrokerError::NotAllowed(format!(
                "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({max})"
            ))
        })?;
        bump(&mut counts.channels_per_user, user, true);
        drop(counts);
        self.info.channels.fetch_add(1, Ordering::Relaxed);
        Ok(ChannelSlot {
            info: Arc::clone(&self.info),
            registry: Arc::clone(&self.registry),
        })
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.registry.open.remove(&self.info.id);
        let mut counts = self.registry.counts.lock();
        bump(&mut counts.per_vhost, &self.info.vhost, false);
        bump(&mut counts.per_user, &self.info.user, false);
    }
}

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.info.channels.fetch_sub(1, Ordering::Relaxed);
        let mut counts = self.registry.counts.lock();
        bump(&mut counts.channels_per_user, &self.info.user, false);
    }
}
