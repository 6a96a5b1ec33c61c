//! The broker: virtual hosts, the access registry, open connections, the store, and
//! start-up recovery.
//!
//! At open: the store, then the access registry (`access/`), seeded with the default vhost
//! and user on a fresh data directory (as RabbitMQ does, and not when definitions are to be
//! loaded), then every durable exchange, queue (with its message index) and binding of a
//! vhost the registry knows. Topology left behind by a vhost whose deletion was cut short
//! by a crash is removed then (the registry record goes first, so the deletion is decided
//! once it is on disk).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use warren_store::{DefinitionChange, DefinitionKind, Store, StoreOptions, WriteOp};

use crate::access::{
    Access, AccessCommand, ConnectionAccess, HashingAlgorithm, PasswordHash, PermissionRecord,
    UserLimits, VhostLimits,
};
use crate::alarms::{AlarmConfig, AlarmMonitor, Alarms};
use crate::connections::{ConnectionDetails, ConnectionHandle, Connections};
use crate::consumer::ConnectionId;
use crate::definitions::{Definitions, DefinitionsError};
use crate::error::BrokerError;
use crate::exchange::ExchangeSpec;
use crate::memory::MessageMemory;
use crate::queue::{QueueLimits, TRANSIENT_ID_BASE};
use crate::stats::Stats;
use crate::vhost::{BindingDef, HOLD_PREFIX, QueueDef, VHost};

/// Broker-wide settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The vhost created on a fresh data directory.
    pub default_vhost: String,
    /// The user created on a fresh data directory (with `default_permissions` on the
    /// default vhost).
    pub default_user: String,
    /// Its password.
    pub default_pass: String,
    /// Its tags.
    pub default_user_tags: Vec<String>,
    /// Its permissions on the default vhost (RabbitMQ's `default_permissions.*`): `.*`
    /// each unless configured.
    pub default_permissions: PermissionRecord,
    /// Seed the default vhost and user on a fresh data directory. Never done when
    /// `load_definitions` is set, as RabbitMQ skips the seed then.
    pub seed_defaults: bool,
    /// A RabbitMQ definitions file imported at every start, after recovery (RabbitMQ's
    /// `load_definitions`; see `definitions.rs`). A file that does not parse or does not
    /// apply stops the start and changes nothing.
    pub load_definitions: Option<PathBuf>,
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
    /// How often the statistics sampler runs once started (RabbitMQ's
    /// `collect_statistics_interval`, 5 s); see `stats/`.
    pub stats_interval: std::time::Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            default_vhost: "/".into(),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_user_tags: vec!["administrator".into()],
            default_permissions: PermissionRecord {
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            },
            seed_defaults: true,
            load_definitions: None,
            loopback_users: vec!["guest".into()],
            max_message_size: 16 * 1024 * 1024,
            queue_limits: QueueLimits::default(),
            message_memory: 256 * 1024 * 1024,
            store_options: StoreOptions::default(),
            alarms: AlarmConfig::default(),
            stats_interval: crate::stats::DEFAULT_INTERVAL,
        }
    }
}

/// Why the broker did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store or recovery failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The definitions file to load at boot is unreadable, malformed or does not apply;
    /// nothing of it was imported.
    #[error("cannot load definitions from {}: {error}", path.display())]
    Definitions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: DefinitionsError,
    },
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

/// What connection.open gets: the vhost, the user's permissions there, and the
/// registration (held while the connection is open).
#[derive(Debug)]
pub struct OpenedConnection {
    /// The vhost.
    pub vhost: Arc<VHost>,
    /// The user's permissions in it.
    pub access: ConnectionAccess,
    /// The registration; dropping it unregisters the connection.
    pub handle: ConnectionHandle,
}

/// The broker; see the crate docs.
#[derive(Debug)]
pub struct Broker {
    vhosts: DashMap<Arc<str>, Arc<VHost>>,
    access: Arc<Access>,
    connections: Arc<Connections>,
    store: Store,
    memory: Arc<MessageMemory>,
    config: BrokerConfig,
    next_connection: AtomicU64,
    alarms: Arc<Alarms>,
    /// Counters, churn and their sampled history.
    stats: Arc<Stats>,
    /// When the broker opened.
    started: Instant,
    /// Samples memory and disk while the broker lives (stopped when it is dropped).
    _alarm_monitor: AlarmMonitor,
}

impl Broker {
    /// Open the store in `data_dir` and recover every durable definition and message.
    /// With `load_definitions`, the file is read and parsed before the store is opened (a
    /// malformed one leaves the data directory untouched) and imported after recovery.
    pub fn open(data_dir: &Path, config: BrokerConfig) -> Result<Arc<Broker>, OpenError> {
        let started = Instant::now();
        let definitions = match &config.load_definitions {
            Some(path) => Some((
                path.clone(),
                Definitions::read(path).map_err(|error| OpenError::Definitions {
                    path: path.clone(),
                    error,
                })?,
            )),
            None => None,
        };
        let store =
            Store::open(data_dir, config.store_options.clone()).map_err(BrokerError::from)?;
        let access = Arc::new(Access::open(store.clone())?);
        let alarms = Alarms::new(data_dir, &config.alarms);
        let alarm_monitor = alarms.start_monitor(config.alarms.check_interval);
        let stats = Arc::new(Stats::new(config.stats_interval));
        let broker = Broker {
            vhosts: DashMap::new(),
            access,
            connections: Arc::new(Connections::new(Arc::clone(&stats))),
            stats,
            started,
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
        if let Some((path, definitions)) = definitions {
            tracing::info!(file = %path.display(), "importing definitions");
            broker
                .import_definitions(&definitions)
                .map_err(|error| OpenError::Definitions { path, error })?;
        }
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
        self.seed_access()?;
        for name in self
            .access
            .read(|state| state.vhosts.keys().cloned().collect::<Vec<_>>())
        {
            self.vhost_or_create(&name);
        }
        let split = |key: &str| -> Option<(String, String)> {
            key.split_once('\u{1f}')
                .map(|(v, n)| (v.to_owned(), n.to_owned()))
        };
        // Durable delayed exchanges' hold ids, by vhost then exchange name.
        let mut hold_ids: HashMap<String, HashMap<String, u64>> = HashMap::new();
        let mut hold_records = Vec::new();
        for (key, value) in self.store.definitions(DefinitionKind::Internal)? {
            let Some(exchange_key) = key.strip_prefix(HOLD_PREFIX) else {
                continue;
            };
            match (
                split(exchange_key),
                std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.parse().ok()),
            ) {
                (Some((vhost, name)), Some(id)) => {
                    hold_ids.entry(vhost).or_default().insert(name, id);
                    hold_records.push(key.clone());
                }
                _ => tracing::warn!(key, "skipping an unreadable delayed exchange record"),
            }
        }
        let no_holds = HashMap::new();
        let mut holds = Vec::new();
        for (key, value) in self.store.definitions(DefinitionKind::Exchange)? {
            let (Some((vhost, _)), Ok(spec)) =
                (split(&key), serde_json::from_slice::<ExchangeSpec>(&value))
            else {
                tracing::warn!(key, "skipping unreadable exchange definition");
                continue;
            };
            match self.vhost(&vhost) {
                Some(v) => {
                    let ids = hold_ids.get(&vhost).unwrap_or(&no_holds);
                    holds.extend(v.restore_exchange(spec, ids)?);
                }
                None => self.drop_orphan(DefinitionKind::Exchange, &key)?,
            }
        }
        // A record whose exchange did not come back (its deletion was cut short).
        for key in hold_records {
            let owned =
                key.strip_prefix(HOLD_PREFIX)
                    .and_then(split)
                    .is_some_and(|(vhost, name)| {
                        self.vhost(&vhost)
                            .and_then(|v| v.exchange(&name))
                            .and_then(|x| {
                                x.hold().map(|h| {
                                    Some(h.hold_id())
                                        == hold_ids.get(&vhost).and_then(|m| m.get(&name)).copied()
                                })
                            })
                            .unwrap_or(false)
                    });
            if !owned {
                self.store
                    .delete_definition(DefinitionKind::Internal, &key)?;
            }
        }
        let mut messages = 0usize;
        let mut queues = 0usize;
        let mut owned_ids = std::collections::HashSet::new();
        let mut unreadable_queues = false;
        // Quorum queues with work to do once the bindings are back (`Queue::after_recovery`).
        let mut needs_pass = Vec::new();
        for (key, value) in self.store.definitions(DefinitionKind::Queue)? {
            let (Some((vhost, _)), Ok(def)) =
                (split(&key), serde_json::from_slice::<QueueDef>(&value))
            else {
                tracing::warn!(key, "skipping unreadable queue definition");
                unreadable_queues = true;
                continue;
            };
            let store_id = def.store_id;
            let Some(owner) = self.vhost(&vhost) else {
                // Its messages go with the other unowned ids below.
                self.drop_orphan(DefinitionKind::Queue, &key)?;
                continue;
            };
            owned_ids.insert(store_id);
            let queue = owner.restore_queue(def);
            let index = self.store.queue_index_entries(store_id)?;
            messages += index.len();
            queues += 1;
            if queue.recover(index, self.store.delivered_mark(store_id)) {
                needs_pass.push(queue);
            }
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
            match self.vhost(&vhost) {
                Some(v) => v.restore_binding(def),
                None => self.drop_orphan(DefinitionKind::Binding, &key)?,
            }
        }
        // Held messages of delayed exchanges, once their bindings are back.
        let held = crate::delayed::recover_holds(&self.store, &holds)?;
        if held > 0 {
            tracing::info!(held, "recovered held messages of delayed exchanges");
        }
        // Queues got their policies' settings as they were restored; now that their
        // messages and the bindings are back, a pass enforces them (a limit lowered by a
        // policy, messages that expired while the broker was down) and may dead-letter.
        for vhost in self.all_vhosts() {
            vhost.apply_policies();
        }
        // Quorum queues: messages a crash counted past the delivery limit go, and dead
        // letters that no queue took before the stop get a first attempt, now that the
        // bindings are back (RabbitMQ's dead-letter worker starts with the queue).
        for queue in needs_pass {
            queue.after_recovery();
        }
        tracing::info!(queues, messages, "recovered durable queues");
        Ok(())
    }

    /// On a data directory whose registry was never seeded: register every vhost the stored
    /// topology names (data directories from before the registry existed), and, unless
    /// definitions are loaded at boot, the default vhost and user with full permissions on
    /// it. One batch, marker included, so a crash halfway seeds again from scratch.
    fn seed_access(&self) -> Result<(), BrokerError> {
        const MARKER: &str = "access-seeded";
        let seeded = self
            .store
            .definitions(DefinitionKind::Internal)?
            .iter()
            .any(|(key, _)| key == MARKER);
        if seeded {
            return Ok(());
        }
        let mut names = std::collections::BTreeSet::new();
        for kind in [
            DefinitionKind::Exchange,
            DefinitionKind::Queue,
            DefinitionKind::Binding,
        ] {
            for (key, _) in self.store.definitions(kind)? {
                if let Some((vhost, _)) = key.split_once('\u{1f}') {
                    names.insert(vhost.to_owned());
                }
            }
        }
        let c = &self.config;
        let seed_defaults = c.seed_defaults && c.load_definitions.is_none();
        if seed_defaults {
            names.insert(c.default_vhost.clone());
        }
        let mut commands: Vec<AccessCommand> = names
            .into_iter()
            .map(|name| AccessCommand::PutVhost {
                description: if name == c.default_vhost {
                    "Default virtual host".into()
                } else {
                    String::new()
                },
                name,
                tags: Vec::new(),
                default_queue_type: None,
            })
            .collect();
        if seed_defaults {
            tracing::info!(user = %c.default_user, vhost = %c.default_vhost, "seeding the default virtual host and user");
            commands.push(AccessCommand::PutUser {
                name: c.default_user.clone(),
                password: PasswordHash::new(HashingAlgorithm::Sha256, &c.default_pass),
                tags: c.default_user_tags.clone(),
            });
            commands.push(AccessCommand::SetPermissions {
                user: c.default_user.clone(),
                vhost: c.default_vhost.clone(),
                configure: c.default_permissions.configure.clone(),
                write: c.default_permissions.write.clone(),
                read: c.default_permissions.read.clone(),
            });
        } else {
            tracing::info!(
                "not seeding the default virtual host and user: definitions are loaded at boot"
            );
        }
        self.access.apply_with(
            &commands,
            vec![DefinitionChange {
                kind: DefinitionKind::Internal,
                key: MARKER.into(),
                value: Some(b"1".to_vec()),
            }],
        )?;
        Ok(())
    }

    /// A stored exchange, queue or binding of a vhost the registry does not know: left by a
    /// vhost deletion that a crash cut short. Remove it.
    fn drop_orphan(&self, kind: DefinitionKind, key: &str) -> Result<(), BrokerError> {
        tracing::info!(
            kind = kind.as_str(),
            key = %key.replace('\u{1f}', "/"),
            "removing a definition of a deleted vhost"
        );
        self.store.delete_definition(kind, key)?;
        Ok(())
    }

    pub(crate) fn vhost_or_create(&self, name: &str) -> Arc<VHost> {
        if let Some(v) = self.vhosts.get(name) {
            return Arc::clone(v.value());
        }
        let vhost = VHost::new(
            name,
            self.store.clone(),
            self.config.queue_limits,
            Arc::clone(&self.memory),
            Arc::clone(&self.access),
            Arc::clone(&self.stats),
        );
        self.vhosts
            .insert(Arc::clone(&vhost.name), Arc::clone(&vhost));
        vhost
    }

    /// Counters, churn and their sampled history (see `stats/`).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// How long the broker has been open.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The access registry (vhosts, users, permissions, limits, policies, parameters).
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// Open connections.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// Create a vhost (or update its metadata): the registry record, then its exchanges.
    pub fn add_vhost(
        &self,
        name: &str,
        description: &str,
        tags: Vec<String>,
        default_queue_type: Option<String>,
    ) -> Result<Arc<VHost>, BrokerError> {
        self.access.apply(AccessCommand::PutVhost {
            name: name.to_owned(),
            description: description.to_owned(),
            tags,
            default_queue_type,
        })?;
        Ok(self.vhost_or_create(name))
    }

    /// Delete a vhost and everything in it, durably: the registry record (with the vhost's
    /// permissions, limits, policies and parameters) goes first, in one synced batch; from
    /// then on the deletion survives a crash (recovery removes what is left). Then its
    /// connections are closed with 320 CONNECTION_FORCED, and its queues (with their
    /// messages), exchanges and bindings are deleted.
    pub fn delete_vhost(&self, name: &str) -> Result<(), BrokerError> {
        self.access.apply(AccessCommand::DeleteVhost {
            name: name.to_owned(),
        })?;
        let closed = self.connections.close_where(
            |c| &*c.vhost == name,
            320,
            &format!("CONNECTION_FORCED - vhost '{name}' is deleted"),
        );
        tracing::info!(
            vhost = name,
            connections = closed,
            "deleting vhost; closing its connections"
        );
        if let Some((_, vhost)) = self.vhosts.remove(name) {
            vhost.destroy()?;
        }
        Ok(())
    }

    /// Delete a user with its permissions, and close its connections with 320 (as RabbitMQ).
    pub fn delete_user(&self, name: &str) -> Result<(), BrokerError> {
        self.access.apply(AccessCommand::DeleteUser {
            name: name.to_owned(),
        })?;
        let closed = self.connections.close_where(
            |c| &*c.user == name,
            320,
            &format!("CONNECTION_FORCED - user '{name}' is deleted"),
        );
        tracing::info!(
            user = name,
            connections = closed,
            "deleted user; closing its connections"
        );
        Ok(())
    }

    /// connection.open: may `user` open `vhost`? Checks, in RabbitMQ's order, the vhost's
    /// connection limit (530 "vhost X not found" if it does not exist), the user's, and the
    /// user's permission to the vhost, then registers the connection.
    pub fn open_connection(
        &self,
        id: ConnectionId,
        user: &str,
        vhost_name: &str,
        details: ConnectionDetails,
        client_id: Option<String>,
    ) -> Result<OpenedConnection, BrokerError> {
        let (vhost_limits, user_limits) = self.access.read(|state| {
            (
                state.vhosts.get(vhost_name).map(|v| v.limits),
                state.users.get(user).map(|u| u.limits).unwrap_or_default(),
            )
        });
        let (Some(vhost_limits), Some(vhost)) = (vhost_limits, self.vhost(vhost_name)) else {
            return Err(BrokerError::NotAllowed(format!(
                "vhost {vhost_name} not found"
            )));
        };
        let access = ConnectionAccess::new(Arc::clone(&self.access), user, vhost_name, client_id);
        let handle =
            self.connections
                .register(id, user, vhost_name, details, vhost_limits, user_limits)?;
        let mut access = access;
        if !access.get().may_open_vhost() {
            return Err(BrokerError::NotAllowed(format!(
                "access to vhost '{vhost_name}' refused for user '{user}'"
            )));
        }
        Ok(OpenedConnection {
            vhost,
            access,
            handle,
        })
    }

    /// The limits of `user` now (checked at channel.open).
    pub fn user_limits(&self, user: &str) -> UserLimits {
        self.access
            .read(|state| state.users.get(user).map(|u| u.limits))
            .unwrap_or_default()
    }

    /// The limits of `vhost` now.
    pub fn vhost_limits(&self, vhost: &str) -> VhostLimits {
        self.access
            .read(|state| state.vhosts.get(vhost).map(|v| v.limits))
            .unwrap_or_default()
    }

    /// A virtual host by name.
    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| Arc::clone(v.value()))
    }

    /// Every virtual host, cloned out of the map (so no map guard is held while the caller
    /// takes other locks).
    pub fn all_vhosts(&self) -> Vec<Arc<VHost>> {
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

    /// Check a password login (PLAIN, AMQPLAIN, update-secret). Returns the user name.
    /// Unknown user, wrong or blank password, or a user without a password: the same
    /// refusal (the log says which); then the loopback-only check, as RabbitMQ orders them.
    pub fn authenticate(
        &self,
        mechanism: &str,
        user: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<String, AuthError> {
        let verified = self
            .access
            .user(user)
            .is_some_and(|record| record.password.verify(password));
        if !verified {
            tracing::debug!(user, mechanism, %peer, "invalid credentials");
            return Err(AuthError::BadCredentials {
                mechanism: mechanism.to_owned(),
            });
        }
        self.check_loopback(user, peer)?;
        Ok(user.to_owned())
    }

    /// Check an EXTERNAL login (the user named by a verified TLS client certificate): the
    /// user must exist; it needs no password. Returns the user name.
    pub fn authenticate_external(&self, user: &str, peer: IpAddr) -> Result<String, AuthError> {
        if self.access.user(user).is_none() {
            return Err(AuthError::BadCredentials {
                mechanism: "EXTERNAL".into(),
            });
        }
        self.check_loopback(user, peer)?;
        Ok(user.to_owned())
    }

    fn check_loopback(&self, user: &str, peer: IpAddr) -> Result<(), AuthError> {
        if self.config.loopback_users.iter().any(|u| u == user) && !peer.is_loopback() {
            return Err(AuthError::LoopbackOnly {
                user: user.to_owned(),
            });
        }
        Ok(())
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
        // Delayed exchanges' timers stop routing: what is still held stays in the store.
        for exchange in self.all_vhosts().iter().flat_map(|vhost| vhost.exchanges()) {
            if let Some(hold) = exchange.hold() {
                hold.stop();
            }
        }
        self.store.close()?;
        Ok(())
    }
}
