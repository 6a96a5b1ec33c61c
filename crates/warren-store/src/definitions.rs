//! Definitions (vhosts, users, exchanges, queues, bindings, ...) and id counters in `meta`.
//!
//! These writes are rare, so they bypass the group-commit loop: each is one RocksDB write with
//! `sync = true` on the caller's thread, durable when the call returns. Values are opaque bytes
//! encoded by the broker; keys are the broker's names (e.g. `"/|orders"` for a queue in vhost
//! `/`), stored under a per-kind prefix (see `keys.rs`).

use rocksdb::{Direction, IteratorMode, ReadOptions};

use crate::Store;
use crate::error::StoreError;
use crate::keys::{counter_key, definition_key, definition_prefix, prefix_successor};

/// The kinds of definition the broker persists; each is its own key space in `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefinitionKind {
    /// Virtual hosts.
    Vhost,
    /// Users and their password hashes and tags.
    User,
    /// Per-vhost permissions of users.
    Permission,
    /// Durable exchanges.
    Exchange,
    /// Durable queues.
    Queue,
    /// Bindings between durable exchanges and durable queues or exchanges.
    Binding,
    /// Policies.
    Policy,
    /// Runtime parameters (e.g. per-vhost limits).
    Parameter,
    /// Per-vhost topic permissions of users (per exchange).
    TopicPermission,
    /// Global runtime parameters.
    GlobalParameter,
    /// Bookkeeping of the broker itself (e.g. "the access registry was seeded").
    Internal,
}

impl DefinitionKind {
    /// Every kind, in a stable order.
    pub const ALL: [DefinitionKind; 11] = [
        DefinitionKind::Vhost,
        DefinitionKind::User,
        DefinitionKind::Permission,
        DefinitionKind::Exchange,
        DefinitionKind::Queue,
        DefinitionKind::Binding,
        DefinitionKind::Policy,
        DefinitionKind::Parameter,
        DefinitionKind::TopicPermission,
        DefinitionKind::GlobalParameter,
        DefinitionKind::Internal,
    ];

    /// The kind's name, as stored in its key prefix. Never change these: they are on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::Vhost => "vhost",
            DefinitionKind::User => "user",
            DefinitionKind::Permission => "permission",
            DefinitionKind::Exchange => "exchange",
            DefinitionKind::Queue => "queue",
            DefinitionKind::Binding => "binding",
            DefinitionKind::Policy => "policy",
            DefinitionKind::Parameter => "parameter",
            DefinitionKind::TopicPermission => "topic-permission",
            DefinitionKind::GlobalParameter => "global-parameter",
            DefinitionKind::Internal => "internal",
        }
    }
}

/// One change of [`Store::write_definitions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionChange {
    /// The kind.
    pub kind: DefinitionKind,
    /// The key within the kind.
    pub key: String,
    /// The new value, or `None` to delete the key.
    pub value: Option<Vec<u8>>,
}

impl Store {
    /// Stores (or replaces) definition `key` of `kind`; durable when this returns.
    pub fn put_definition(
        &self,
        kind: DefinitionKind,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.db()
            .put_cf_opt(
                self.meta()?,
                definition_key(kind, key),
                value,
                self.sync_write(),
            )
            .map_err(|source| self.rocks("write definition", source))
    }

    /// Removes definition `key` of `kind` (no error if absent); durable when this returns.
    pub fn delete_definition(&self, kind: DefinitionKind, key: &str) -> Result<(), StoreError> {
        self.db()
            .delete_cf_opt(self.meta()?, definition_key(kind, key), self.sync_write())
            .map_err(|source| self.rocks("delete definition", source))
    }

    /// Applies several definition changes as one atomic, synced RocksDB write: after a
    /// crash either all of them are on disk or none. `None` deletes the key.
    pub fn write_definitions(&self, changes: &[DefinitionChange]) -> Result<(), StoreError> {
        let meta = self.meta()?;
        let mut batch = rocksdb::WriteBatch::default();
        for change in changes {
            let key = definition_key(change.kind, &change.key);
            match &change.value {
                Some(value) => batch.put_cf(meta, key, value),
                None => batch.delete_cf(meta, key),
            }
        }
        self.db()
            .write_opt(batch, self.sync_write())
            .map_err(|source| self.rocks("write definitions", source))
    }

    /// Every definition of `kind` as `(key, value)`, in key order.
    pub fn definitions(&self, kind: DefinitionKind) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = definition_prefix(kind);
        let mut read = ReadOptions::default();
        if let Some(end) = prefix_successor(&prefix) {
            read.set_iterate_upper_bound(end);
        }
        let iter = self.db().iterator_cf_opt(
            self.meta()?,
            read,
            IteratorMode::From(&prefix, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(|source| self.rocks("read definitions", source))?;
            let name = key.get(prefix.len()..).unwrap_or_default();
            let name =
                String::from_utf8(name.to_vec()).map_err(|error| StoreError::NonUtf8Key {
                    path: self.path().to_path_buf(),
                    key: error.into_bytes(),
                })?;
            out.push((name, value.into_vec()));
        }
        Ok(out)
    }

    /// Allocates the next value of the persisted counter `counter` (the first call returns 1).
    /// Durable before it returns, so an id is never handed out twice, even across crashes.
    pub fn next_id(&self, counter: &str) -> Result<u64, StoreError> {
        let _serialised = self.id_lock().lock();
        let meta = self.meta()?;
        let key = counter_key(counter);
        let current = match self
            .db()
            .get_cf(meta, &key)
            .map_err(|source| self.rocks("read id counter", source))?
        {
            None => 0,
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: "id counter",
                    path: self.path().to_path_buf(),
                    key: key.clone(),
                })?,
        };
        let next = current.saturating_add(1);
        self.db()
            .put_cf_opt(meta, &key, next.to_be_bytes(), self.sync_write())
            .map_err(|source| self.rocks("write id counter", source))?;
        Ok(next)
    }
}
