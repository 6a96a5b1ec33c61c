//! The access registry: vhosts, users, permissions, topic permissions, limits, policies and
//! parameters, as one durable state with one change path.
//!
//! ```text
//!   AccessCommand ──plan(state)──> [Effect] ──store.write_definitions (one synced batch)──>
//!                                      └──────────────apply(state)──────> generation += 1
//! ```
//!
//! Every change, whoever asks for it (the boot-time definitions file, the default-user
//! seed, `Broker::add_vhost` / `delete_vhost`, later the HTTP API), is an
//! [`AccessCommand`] given to [`Access::apply`] or [`Access::apply_all`]. The command is
//! validated against the current state and turned into record puts and deletes
//! (`state.rs`), the records are written in one synced RocksDB batch (`records.rs` has the
//! layout), and only then applied in memory; a refused command or a failed write changes
//! nothing. Commands are deterministic and self-contained (passwords arrive hashed), so a
//! Raft log could carry and replay them.
//!
//! Reads are cheap: [`Access::read`] runs a closure under a read lock, and permission checks
//! use [`Permissions`] compiled once per (user, vhost, client id) and cached until the next
//! change; each connection holds a [`ConnectionAccess`] that re-fetches them only when the
//! registry's generation moved.
//!
//! # Layout
//! - `command.rs`: [`AccessCommand`], [`AccessError`].
//! - `records.rs`: the stored records and their keys ([`Record`], [`Effect`]).
//! - `state.rs`: [`AccessState`], `plan` and `apply`.
//! - `password.rs`: RabbitMQ-compatible password hashes.
//! - `permissions.rs`: compiled permissions and the checks with RabbitMQ's texts.

mod command;
mod password;
mod permissions;
mod records;
mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use warren_store::{DefinitionChange, Store};

pub use command::{AccessCommand, AccessError};
pub use password::{HashingAlgorithm, PasswordHash};
pub use permissions::{Pattern, Permission, Permissions, ResourceKind, compile_pattern};
pub(crate) use records::under_limit;
pub use records::{
    Effect, PermissionRecord, PolicyKind, PolicyRecord, Record, RecordKey, TopicPermissionRecord,
    UserLimits, UserRecord, VhostLimits, VhostRecord,
};
pub use state::AccessState;

use crate::error::BrokerError;

type CompiledKey = (String, String, Option<String>);

/// The registry; see the module docs.
#[derive(Debug)]
pub struct Access {
    state: RwLock<AccessState>,
    store: Store,
    /// Bumped after every applied change (Release), read by connections (Acquire).
    generation: AtomicU64,
    /// Compiled permissions, emptied on every change.
    compiled: Mutex<HashMap<CompiledKey, Arc<Permissions>>>,
}

impl Access {
    /// Load every stored record. Unreadable records are skipped with a warning naming them.
    pub(crate) fn open(store: Store) -> Result<Access, BrokerError> {
        let mut state = AccessState::default();
        for kind in records::STORED_KINDS {
            for (key, value) in store.definitions(kind)? {
                match Record::load(kind, &key, &value) {
                    Some(record) => state.put(record),
                    None => tracing::warn!(
                        kind = kind.as_str(),
                        key = %key.replace(records::SEP, "/"),
                        "skipping an unreadable access record"
                    ),
                }
            }
        }
        Ok(Access {
            state: RwLock::new(state),
            store,
            generation: AtomicU64::new(1),
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// Validate, store and apply one command.
    pub fn apply(&self, command: AccessCommand) -> Result<(), AccessError> {
        self.apply_with(std::slice::from_ref(&command), Vec::new())
    }

    /// Validate, store and apply a sequence of commands atomically: each is validated
    /// against the state the ones before it leave, and either all are stored (in one batch)
    /// and applied, or none.
    pub fn apply_all(&self, commands: &[AccessCommand]) -> Result<(), AccessError> {
        self.apply_with(commands, Vec::new())
    }

    /// As `apply_all`, writing `extra` store changes in the same batch (the seed marker).
    pub(crate) fn apply_with(
        &self,
        commands: &[AccessCommand],
        extra: Vec<DefinitionChange>,
    ) -> Result<(), AccessError> {
        let mut state = self.state.write();
        let effects = match commands {
            [one] => state.plan(one)?,
            many => {
                let mut scratch = state.clone();
                let mut effects = Vec::new();
                for command in many {
                    let step = scratch.plan(command)?;
                    scratch.apply(&step);
                    effects.extend(step);
                }
                effects
            }
        };
        let mut changes = extra;
        for effect in &effects {
            changes.push(match effect {
                Effect::Put(record) => {
                    let (kind, key) = record.key().stored();
                    let value = record
                        .value()
                        .map_err(|e| AccessError::Store(e.to_string()))?;
                    DefinitionChange {
                        kind,
                        key,
                        value: Some(value),
                    }
                }
                Effect::Delete(key) => {
                    let (kind, key) = key.stored();
                    DefinitionChange {
                        kind,
                        key,
                        value: None,
                    }
                }
            });
        }
        self.store
            .write_definitions(&changes)
            .map_err(|e| AccessError::Store(e.to_string()))?;
        state.apply(&effects);
        self.compiled.lock().clear();
        self.generation.fetch_add(1, Ordering::Release);
        for command in commands {
            tracing::info!(command = ?Redacted(command), "access registry changed");
        }
        Ok(())
    }

    /// Read the state.
    pub fn read<R>(&self, f: impl FnOnce(&AccessState) -> R) -> R {
        f(&self.state.read())
    }

    /// Changes so far (moves on every applied command).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A user's record.
    pub fn user(&self, name: &str) -> Option<UserRecord> {
        self.state.read().users.get(name).cloned()
    }

    /// A vhost's record.
    pub fn vhost(&self, name: &str) -> Option<VhostRecord> {
        self.state.read().vhosts.get(name).cloned()
    }

    /// `user`'s compiled permissions in `vhost` (cached).
    pub fn permissions(
        &self,
        user: &str,
        vhost: &str,
        client_id: Option<&str>,
    ) -> Arc<Permissions> {
        let state = self.state.read();
        let key = (
            user.to_owned(),
            vhost.to_owned(),
            client_id.map(str::to_owned),
        );
        let mut compiled = self.compiled.lock();
        if let Some(p) = compiled.get(&key) {
            return Arc::clone(p);
        }
        let p = Arc::new(Permissions::compile(&state, user, vhost, client_id));
        compiled.insert(key, Arc::clone(&p));
        p
    }
}

/// Debug output of a command without its password hash.
struct Redacted<'a>(&'a AccessCommand);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            AccessCommand::PutUser { name, tags, .. } => f
                .debug_struct("PutUser")
                .field("name", name)
                .field("tags", tags)
                .finish_non_exhaustive(),
            other => other.fmt(f),
        }
    }
}

/// A connection's view of its user's permissions in its vhost: re-fetched from the
/// registry only when the registry changed since the last check.
#[derive(Debug)]
pub struct ConnectionAccess {
    access: Arc<Access>,
    client_id: Option<String>,
    generation: u64,
    current: Arc<Permissions>,
}

impl ConnectionAccess {
    /// The view of `user` in `vhost`.
    pub fn new(access: Arc<Access>, user: &str, vhost: &str, client_id: Option<String>) -> Self {
        let generation = access.generation();
        let current = access.permissions(user, vhost, client_id.as_deref());
        ConnectionAccess {
            access,
            client_id,
            generation,
            current,
        }
    }

    /// The vhost's `default_queue_type` metadata, if set (read from the registry: for
    /// `queue.declare`, not a per-message path).
    pub fn default_queue_type(&self) -> Option<String> {
        self.access
            .vhost(self.current.vhost())
            .and_then(|record| record.default_queue_type)
    }

    /// The current permissions (one atomic load when nothing changed).
    pub fn get(&mut self) -> &Permissions {
        self.refresh();
        &self.current
    }

    /// The registry generation the current permissions were fetched at (refreshing them
    /// first if the registry moved). Permissions do not change while it stays the same, so
    /// a caller may remember a granted check under it (a channel's publish cache does).
    pub fn generation(&mut self) -> u64 {
        self.refresh();
        self.generation
    }

    fn refresh(&mut self) {
        let now = self.access.generation();
        if now != self.generation {
            let user = self.current.user().to_owned();
            let vhost = self.current.vhost().to_owned();
            self.current = self
                .access
                .permissions(&user, &vhost, self.client_id.as_deref());
            self.generation = now;
        }
    }
}

impl From<AccessError> for BrokerError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::NoSuchVhost(_) | AccessError::NoSuchUser(_) => {
                BrokerError::NotFound(e.to_string())
            }
            AccessError::Store(_) => BrokerError::Internal(e.to_string()),
            AccessError::InvalidRegex { .. } | AccessError::Invalid(_) => {
                BrokerError::PreconditionFailed(e.to_string())
            }
        }
    }
}
