//! Open connections and their channels: who is connected to which vhost, what each
//! connection negotiated and each channel is doing (for the management API), the counts
//! that connection and channel limits are checked against, and the way the broker closes a
//! connection from outside (vhost or user deleted, the HTTP API's "close connection").
//!
//! The server registers a connection at connection.open (`Broker::open_connection`, which
//! checks the limits under the registry's lock, so two racing opens cannot both take the
//! last slot) with its [`ConnectionDetails`], and holds the returned [`ConnectionHandle`];
//! dropping it unregisters. Each channel.open takes a [`ChannelSlot`] that registers a
//! [`ChannelInfo`] in its connection's record until the channel goes. The connection task
//! keeps the live fields of both (atomics: blocked, prefetch, modes, counts, counters) up
//! to date, per batch where they change per message. A forced close is a value sent on the
//! connection's `watch` channel, which its task selects on. Registering and unregistering
//! bump the broker's churn counters (`stats/`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::access::under_limit;
use crate::access::{UserLimits, VhostLimits};
use crate::consumer::{ChannelCredit, ConnectionId};
use crate::error::BrokerError;
use crate::stats::{Churn, IoCounters, MessageCounters, Stats};

/// Why the broker wants a connection closed: the reply code and text of its
/// connection.close (e.g. 320 `CONNECTION_FORCED - vhost 'x' is deleted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// Reply code.
    pub code: u16,
    /// Reply text.
    pub text: String,
}

/// The TLS session of an amqps connection, as the management API shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsDetails {
    /// e.g. `tlsv1.3` (RabbitMQ's spelling).
    pub protocol: String,
    /// The cipher suite.
    pub cipher: String,
    /// The key exchange, when the suite names one.
    pub key_exchange: String,
    /// The suite's hash.
    pub hash: String,
    /// The client certificate's subject (RabbitMQ's DN format), if any.
    pub peer_cert_subject: Option<String>,
    /// The client certificate's issuer, if any.
    pub peer_cert_issuer: Option<String>,
    /// The client certificate's validity, if any.
    pub peer_cert_validity: Option<String>,
}

/// What a connection negotiated, fixed at connection.open (the server fills it).
#[derive(Debug, Clone)]
pub struct ConnectionDetails {
    /// RabbitMQ's name: `"<peer> -> <local>"`, e.g. `127.0.0.1:54321 -> 127.0.0.1:5672`.
    pub name: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address of the socket.
    pub local: SocketAddr,
    /// e.g. `AMQP 0-9-1`.
    pub protocol: String,
    /// The SASL mechanism it logged in with.
    pub auth_mechanism: String,
    /// The client's properties from connection.start-ok.
    pub client_properties: FieldTable,
    /// The TLS session, for amqps.
    pub tls: Option<TlsDetails>,
    /// Negotiated frame_max.
    pub frame_max: u32,
    /// Negotiated channel_max.
    pub channel_max: u16,
    /// Negotiated heartbeat (s).
    pub heartbeat: u16,
    /// When connection.open was accepted (ms since the epoch).
    pub connected_at: u64,
    /// The socket counters (shared with the connection's reader and writer).
    pub io: Arc<IoCounters>,
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
    /// What it negotiated.
    pub details: ConnectionDetails,
    /// Bytes and socket operations.
    pub io: Arc<IoCounters>,
    /// Blocked by a resource alarm after publishing (RabbitMQ's `blocked` state).
    pub blocked: AtomicBool,
    /// The server sent connection.close and waits for close-ok.
    pub closing: AtomicBool,
    channel_infos: Mutex<BTreeMap<u16, Arc<ChannelInfo>>>,
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

    /// Its open channels, by number.
    pub fn channel_list(&self) -> Vec<Arc<ChannelInfo>> {
        self.channel_infos.lock().values().cloned().collect()
    }

    /// One of its channels.
    pub fn channel(&self, number: u16) -> Option<Arc<ChannelInfo>> {
        self.channel_infos.lock().get(&number).cloned()
    }
}

/// What the broker knows about one open channel; the connection task keeps it current.
#[derive(Debug)]
pub struct ChannelInfo {
    /// Channel number.
    pub number: u16,
    /// Its connection.
    pub connection: ConnectionId,
    /// Channel-wide prefetch, in-flight count and flow (shared with its consumers).
    pub credit: Arc<ChannelCredit>,
    /// Message counters, added per batch.
    pub counters: MessageCounters,
    /// basic.qos global=false prefetch (for consumers created later).
    pub prefetch: AtomicU32,
    /// In confirm mode.
    pub confirm: AtomicBool,
    /// In tx mode.
    pub transactional: AtomicBool,
    /// Consumers on the channel.
    pub consumers: AtomicU32,
    /// Delivered and not yet acked (consumers and basic.get), as of the last batch.
    pub unacked: AtomicU32,
    /// Publishes not yet confirmed, as of the last batch.
    pub unconfirmed: AtomicU32,
    /// Publishes held by an open transaction.
    pub uncommitted: AtomicU32,
    /// Acks held by an open transaction.
    pub acks_uncommitted: AtomicU32,
    /// The server sent channel.close and waits for close-ok.
    pub closing: AtomicBool,
    /// When the channel last counted a message event (ms since the epoch; its open time
    /// until then): RabbitMQ's `idle_since`.
    pub last_active: AtomicU64,
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
    stats: Arc<Stats>,
}

/// Held by the connection task while it is open; dropping it unregisters the connection.
#[derive(Debug)]
pub struct ConnectionHandle {
    info: Arc<ConnectionInfo>,
    registry: Arc<Connections>,
    /// Fires when the broker wants the connection closed.
    pub closed: watch::Receiver<Option<CloseRequest>>,
}

/// Held by a channel while it is open; dropping it gives the slot back and unregisters
/// its [`ChannelInfo`].
#[derive(Debug)]
pub struct ChannelSlot {
    info: Arc<ConnectionInfo>,
    channel: Arc<ChannelInfo>,
    registry: Arc<Connections>,
}

impl ChannelSlot {
    /// The channel's record.
    pub fn info(&self) -> &Arc<ChannelInfo> {
        &self.channel
    }

    /// Its connection's record.
    pub fn connection(&self) -> &Arc<ConnectionInfo> {
        &self.info
    }
}

impl Connections {
    /// An empty registry counting churn into `stats`.
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        Self {
            stats,
            ..Self::default()
        }
    }

    /// Register a connection if neither the vhost's nor the user's connection limit is
    /// reached; otherwise RabbitMQ's 530 text (vhost limit first, as RabbitMQ checks).
    pub(crate) fn register(
        self: &Arc<Self>,
        id: ConnectionId,
        user: &str,
        vhost: &str,
        details: ConnectionDetails,
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
            peer: details.peer,
            channels: AtomicUsize::new(0),
            io: Arc::clone(&details.io),
            details,
            blocked: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            channel_infos: Mutex::new(BTreeMap::new()),
            close,
        });
        self.open.insert(id, Arc::clone(&info));
        self.stats.churn.bump(Churn::ConnectionCreated);
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

    /// Take a slot for channel `number` unless the user's `max-channels` is reached
    /// (RabbitMQ's 530 text), counted over all of the user's connections, and register
    /// the channel's record.
    pub fn open_channel(
        &self,
        number: u16,
        user_limits: UserLimits,
    ) -> Result<ChannelSlot, BrokerError> {
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
        let channel = Arc::new(ChannelInfo {
            number,
            connection: self.info.id,
            credit: Arc::new(ChannelCredit::default()),
            counters: MessageCounters::default(),
            prefetch: AtomicU32::new(0),
            confirm: AtomicBool::new(false),
            transactional: AtomicBool::new(false),
            consumers: AtomicU32::new(0),
            unacked: AtomicU32::new(0),
            unconfirmed: AtomicU32::new(0),
            uncommitted: AtomicU32::new(0),
            acks_uncommitted: AtomicU32::new(0),
            closing: AtomicBool::new(false),
            last_active: AtomicU64::new(crate::message::now_ms()),
        });
        self.info
            .channel_infos
            .lock()
            .insert(number, Arc::clone(&channel));
        self.registry.stats.churn.bump(Churn::ChannelCreated);
        Ok(ChannelSlot {
            info: Arc::clone(&self.info),
            channel,
            registry: Arc::clone(&self.registry),
        })
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.registry.open.remove(&self.info.id);
        self.registry.stats.churn.bump(Churn::ConnectionClosed);
        let mut counts = self.registry.counts.lock();
        bump(&mut counts.per_vhost, &self.info.vhost, false);
        bump(&mut counts.per_user, &self.info.user, false);
    }
}

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.info.channels.fetch_sub(1, Ordering::Relaxed);
        {
            let mut infos = self.info.channel_infos.lock();
            if infos
                .get(&self.channel.number)
                .is_some_and(|c| Arc::ptr_eq(c, &self.channel))
            {
                infos.remove(&self.channel.number);
            }
        }
        self.registry.stats.churn.bump(Churn::ChannelClosed);
        let mut counts = self.registry.counts.lock();
        bump(&mut counts.channels_per_user, &self.info.user, false);
    }
}
