//! The broker: virtual hosts, users, the store, and start-up recovery.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use warren_store::{DefinitionKind, Store, StoreOptions, WriteOp};

use crate::alarms::{AlarmConfig, AlarmMonitor, Alarms};
use crate::consumer::ConnectionId;
use crate::error::BrokerError;
use crate::exchange::ExchangeSpec;
use crate::memory::MessageMemory;
use crate::queue::{QueueLimits, TRANSIENT_ID_BASE};
use crate::vhost::{BindingDef, QueueDef, VHost};

/// Broker-wide settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The user created on a fresh data directory.
    pub default_user: String,
    /// Its password.
    pub default_pass: String,
    /// Users that may only connect from loopback (RabbitMQ's `loopback_users`).
    pub loopback_users: Vec<String>,
    /// Largest message body accepted.
    pub max_message_size: u64,
    /// Per-queue memory bounds.
    pub queue_limits: QueueLimits,
    /// Bytes of messages all queues together keep in RAM before paging to disk.
    pub message_memory: usize,
    /// Tuning of the message store (RocksDB memory, reclaim; fault injection in tests).
    pub store_options: StoreOptions,
    /// Resource alarm thresholds (memory high watermark, disk free limit).
    pub alarms: AlarmConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            default_user: "guest".into(),
            default_pass: "guest".into(),
            loopback_users: vec!["guest".into()],
            max_message_size: 16 * 1024 * 1024,
            queue_limits: QueueLimits::default(),
            message_memory: 256 * 1024 * 1024,
            store_options: StoreOptions::default(),
            alarms: AlarmConfig::default(),
        }
    }
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password.
    #[error(
        "ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
    )]
    BadCredentials {
        /// The SASL mechanism used.
        mechanism: String,
    },
    /// A loopback-only user connecting from elsewhere.
    #[error("ACCESS_REFUSED - user '{user}' can only connect via localhost")]
    LoopbackOnly {
        /// The user.
        user: String,
    },
}

/// The broker; see the crate docs.
#[derive(Debug)]
pub struct Broker {
    vhosts: DashMap<Arc<str>, Arc<VHost>>,
    store: Store,
    memory: Arc<MessageMemory>,
    config: BrokerConfig,
    next_connection: AtomicU64,
    alarms: Arc<Alarms>,
    /// Samples memory and disk while the broker lives (stopped when it is dropped).
    _alarm_monitor: AlarmMonitor,
}

impl Broker {
    /// Open the store in `data_dir` and recover every durable definition and message.
    pub fn open(data_dir: &Path, config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        let started = Instant::now();
        let store = Store::open(data_dir, config.store_options.clone())?;
        let alarms = Alarms::new(data_dir, &config.alarms);
        let alarm_monitor = alarms.start_monitor(config.alarms.check_interval);
        let broker = Broker {
            vhosts: DashMap::new(),
            store,
            memory: Arc::new(MessageMemory::new(config.message_memory)),
            config,
            next_connection: AtomicU64::new(1),
            alarms,
            _alarm_monitor: alarm_monitor,
        };
        broker.recover()?;
        tracing::info!(
            data_dir = %data_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened and definitions recovered"
        );
        Ok(Arc::new(broker))
    }

    fn recover(&self) -> Result<(), BrokerError> {
        // Paged-out transient messages of the previous run are garbage now.
        let stored_ids = self.store.stored_queue_ids()?;
        for &id in &stored_ids {
            if id >= TRANSIENT_ID_BASE {
                self.store.submit(WriteOp::DeleteQueue { queue_id: id });
            }
        }
        let default = VHost::new(
            "/",
            self.store.clone(),
            self.config.queue_limits,
            Arc::clone(&self.memory),
        );
        self.vhosts.insert(Arc::clone(&default.name), default);
        let split = |key: &str| -> Option<(String, String)> {
            key.split_once('\u{1f}')
                .map(|(v, n)| (v.to_owned(), n.to_owned()))
        };
        for (key, value) in self.store.definitions(DefinitionKind::Exchange)? {
            let (Some((vhost, _)), Ok(spec)) =
                (split(&key), serde_json::from_slice::<ExchangeSpec>(&value))
            else {
                tracing::warn!(key, "skipping unreadable exchange definition");
                continue;
            };
            self.vhost_or_create(&vhost).restore_exchange(spec);
        }
        let mut messages = 0usize;
        let mut queues = 0usize;
        let mut owned_ids = std::collections::HashSet::new();
        let mut unreadable_queues = false;
        for (key, value) in self.store.definitions(DefinitionKind::Queue)? {
            let (Some((vhost, _)), Ok(def)) =
                (split(&key), serde_json::from_slice::<QueueDef>(&value))
            else {
                tracing::warn!(key, "skipping unreadable queue definition");
                unreadable_queues = true;
                continue;
            };
            let store_id = def.store_id;
            owned_ids.insert(store_id);
            let queue = self.vhost_or_create(&vhost).restore_queue(def);
            let index = self.store.queue_index(store_id)?;
            messages += index.len();
            queues += 1;
            queue.recover(index, self.store.delivered_mark(store_id));
        }
        // Messages of a durable queue whose definition is gone: the queue was deleted and the
        // process died before the commit loop wrote the range delete (the definition delete is
        // synchronous, the range delete is not). Nothing can reach them; give the disk back.
        // Not when a definition was unreadable: its messages would look orphaned.
        if !unreadable_queues {
            for &id in &stored_ids {
                if id < TRANSIENT_ID_BASE && !owned_ids.contains(&id) {
                    tracing::info!(
                        store_id = id,
                        "removing the stored messages of a queue deleted before the last stop"
                    );
                    self.store.submit(WriteOp::DeleteQueue { queue_id: id });
                    if let Err(error) = self.store.forget_delivered(id) {
                        tracing::warn!(store_id = id, %error, "cannot drop a deleted queue's delivered watermark");
                    }
                }
            }
        }
        for (key, value) in self.store.definitions(DefinitionKind::Binding)? {
            let (Some((vhost, _)), Ok(def)) =
                (split(&key), serde_json::from_slice::<BindingDef>(&value))
            else {
                tracing::warn!(key, "skipping unreadable binding definition");
                continue;
            };
            self.vhost_or_create(&vhost).restore_binding(def);
        }
        tracing::info!(queues, messages, "recovered durable queues");
        Ok(())
    }

    fn vhost_or_create(&self, name: &str) -> Arc<VHost> {
        if let Some(v) = self.vhosts.get(name) {
            return Arc::clone(v.value());
        }
        let vhost = VHost::new(
            name,
            self.store.clone(),
            self.config.queue_limits,
            Arc::clone(&self.memory),
        );
        self.vhosts
            .insert(Arc::clone(&vhost.name), Arc::clone(&vhost));
        vhost
    }

    /// A virtual host by name.
    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| Arc::clone(v.value()))
    }

    /// Every virtual host, cloned out of the map (so no map guard is held while the caller
    /// takes other locks).
    fn all_vhosts(&self) -> Vec<Arc<VHost>> {
        self.vhosts.iter().map(|v| Arc::clone(v.value())).collect()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The broker-wide message memory budget and its use.
    pub fn message_memory(&self) -> &MessageMemory {
        &self.memory
    }

    /// The resource alarms (memory, disk): their state, readings and thresholds.
    pub fn alarms(&self) -> &Arc<Alarms> {
        &self.alarms
    }

    /// Settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// A fresh connection id.
    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Check a login. Returns the user name.
    pub fn authenticate(
        &self,
        mechanism: &str,
        user: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<String, AuthError> {
        if user != self.config.default_user || password != self.config.default_pass {
            return Err(AuthError::BadCredentials {
                mechanism: mechanism.to_owned(),
            });
        }
        if self.config.loopback_users.iter().any(|u| u == user) && !peer.is_loopback() {
            return Err(AuthError::LoopbackOnly {
                user: user.to_owned(),
            });
        }
        Ok(user.to_owned())
    }

    /// A connection closed: delete its exclusive queues. Returns consumers to notify
    /// (none in practice: exclusive queues' consumers are on the same connection).
    pub fn connection_closed(&self, connection: ConnectionId) {
        for vhost in self.all_vhosts() {
            for queue in vhost.queues() {
                if queue.spec.exclusive_owner == Some(connection)
                    && let Err(e) = vhost.remove_queue(&queue)
                {
                    tracing::error!(queue = %queue.name(), error = %e, "cannot delete exclusive queue");
                }
            }
        }
    }

    /// Flush and close the store (graceful stop). Each durable queue first sets its delivered
    /// watermark to what it really delivered (see `Queue::settle_delivered_mark`).
    pub fn close(&self) -> Result<(), BrokerError> {
        for queue in self.all_vhosts().iter().flat_map(|vhost| vhost.queues()) {
            queue.settle_delivered_mark();
        }
        self.store.close()?;
        Ok(())
    }
}
