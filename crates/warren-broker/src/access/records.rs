//! The records the access registry is made of, one per entity, each stored as one JSON value
//! under its own key in the store's `meta` column family.
//!
//! The registry's whole state is the set of these records; a command turns into puts and
//! deletes of records ([`Effect`]), which are written to the store in one atomic batch and
//! then applied to the in-memory state, so memory and disk never disagree.

use serde::{Deserialize, Serialize};
use warren_store::DefinitionKind;

use super::password::PasswordHash;

/// Key separator inside a stored key (unit separator: cannot appear in AMQP short strings
/// users type, and sorts before printable characters).
pub(crate) const SEP: char = '\u{1f}';

/// A virtual host's metadata and limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VhostRecord {
    /// Free text.
    pub description: String,
    /// Tags (free text).
    pub tags: Vec<String>,
    /// The queue type a queue.declare without `x-queue-type` gets (RabbitMQ 3.10 metadata).
    pub default_queue_type: Option<String>,
    /// `max-connections` / `max-queues`.
    pub limits: VhostLimits,
}

/// Vhost limits (RabbitMQ's `vhost-limits`). A negative value, like an absent one, means no
/// limit; 0 refuses every connection (or queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VhostLimits {
    /// `max-connections`.
    #[serde(rename = "max-connections", skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// `max-queues`.
    #[serde(rename = "max-queues", skip_serializing_if = "Option::is_none")]
    pub max_queues: Option<i64>,
}

/// User limits (RabbitMQ's `user-limits`); negative or absent = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserLimits {
    /// `max-connections`.
    #[serde(rename = "max-connections", skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// `max-channels` (over all of the user's connections).
    #[serde(rename = "max-channels", skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<i64>,
}

/// The limit `value` allows `count` more? (negative or absent = unlimited)
pub(crate) fn under_limit(limit: Option<i64>, count: usize) -> Result<(), i64> {
    match limit {
        Some(max) if max >= 0 && count as u64 >= max as u64 => Err(max),
        _ => Ok(()),
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    /// Password hash (empty = EXTERNAL only).
    #[serde(flatten)]
    pub password: PasswordHash,
    /// Tags: `administrator`, `monitoring`, `policymaker`, `management`, `impersonator`, or
    /// any other string (kept, meaning nothing to Warren).
    pub tags: Vec<String>,
    /// Limits.
    pub limits: UserLimits,
}

/// A user's permissions in one vhost: three regular expressions over resource names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRecord {
    /// Declare and delete queues and exchanges; bind's destination... (see `permissions.rs`).
    pub configure: String,
    /// Publish to exchanges, bind from a queue's side...
    pub write: String,
    /// Consume, get, purge, bind's source...
    pub read: String,
}

/// A user's topic permissions on one topic exchange of one vhost: two regular expressions
/// over routing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPermissionRecord {
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind (and consume) with.
    pub read: String,
}

/// A policy or an operator policy (kept as RabbitMQ defines it; applied by later work).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// Regular expression over queue / exchange names.
    pub pattern: String,
    /// `queues`, `exchanges`, `all`, `classic_queues`, `quorum_queues`, `streams`.
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    /// Higher wins.
    pub priority: i64,
    /// Keys and values, e.g. `{"max-length": 10}`.
    pub definition: serde_json::Map<String, serde_json::Value>,
}

/// Which kind of policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// A user policy (`policies` in definitions).
    Policy,
    /// An operator policy (`operator_policies`), which caps what policies allow.
    OperatorPolicy,
}

impl PolicyKind {
    fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Policy => "policy",
            PolicyKind::OperatorPolicy => "operator_policy",
        }
    }

    fn from_str(s: &str) -> Option<PolicyKind> {
        match s {
            "policy" => Some(PolicyKind::Policy),
            "operator_policy" => Some(PolicyKind::OperatorPolicy),
            _ => None,
        }
    }
}

/// The identity of a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    /// A vhost by name.
    Vhost(String),
    /// A user by name.
    User(String),
    /// (vhost, user).
    Permission(String, String),
    /// (vhost, user, exchange).
    TopicPermission(String, String, String),
    /// (kind, vhost, name).
    Policy(PolicyKind, String, String),
    /// (component, vhost, name).
    Parameter(String, String, String),
    /// A global parameter by name.
    GlobalParameter(String),
}

/// A record and its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A vhost.
    Vhost(String, VhostRecord),
    /// A user.
    User(String, UserRecord),
    /// Permissions of (vhost, user).
    Permission(String, String, PermissionRecord),
    /// Topic permissions of (vhost, user, exchange).
    TopicPermission(String, String, String, TopicPermissionRecord),
    /// A policy.
    Policy(PolicyKind, String, String, PolicyRecord),
    /// A runtime parameter.
    Parameter(String, String, String, serde_json::Value),
    /// A global parameter.
    GlobalParameter(String, serde_json::Value),
}

/// One change to the state: what a command becomes once validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create or replace a record.
    Put(Record),
    /// Remove a record (no-op if absent).
    Delete(RecordKey),
}

impl RecordKey {
    /// Where the record lives in the store.
    pub(crate) fn stored(&self) -> (DefinitionKind, String) {
        let join = |parts: &[&str]| parts.join(&SEP.to_string());
        match self {
            RecordKey::Vhost(name) => (DefinitionKind::Vhost, name.clone()),
            RecordKey::User(name) => (DefinitionKind::User, name.clone()),
            RecordKey::Permission(vhost, user) => {
                (DefinitionKind::Permission, join(&[vhost, user]))
            }
            RecordKey::TopicPermission(vhost, user, exchange) => (
                DefinitionKind::TopicPermission,
                join(&[vhost, user, exchange]),
            ),
            RecordKey::Policy(kind, vhost, name) => {
                (DefinitionKind::Policy, join(&[kind.as_str(), vhost, name]))
            }
            RecordKey::Parameter(component, vhost, name) => {
                (DefinitionKind::Parameter, join(&[component, vhost, name]))
            }
            RecordKey::GlobalParameter(name) => (DefinitionKind::GlobalParameter, name.clone()),
        }
    }
}

impl Record {
    /// The record's identity.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Vhost(name, _) => RecordKey::Vhost(name.clone()),
            Record::User(name, _) => RecordKey::User(name.clone()),
            Record::Permission(v, u, _) => RecordKey::Permission(v.clone(), u.clone()),
            Record::TopicPermission(v, u, x, _) => {
                RecordKey::TopicPermission(v.clone(), u.clone(), x.clone())
            }
            Record::Policy(k, v, n, _) => RecordKey::Policy(*k, v.clone(), n.clone()),
            Record::Parameter(c, v, n, _) => RecordKey::Parameter(c.clone(), v.clone(), n.clone()),
            Record::GlobalParameter(n, _) => RecordKey::GlobalParameter(n.clone()),
        }
    }

    /// The stored value (JSON).
    pub(crate) fn value(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Record::Vhost(_, r) => serde_json::to_vec(r),
            Record::User(_, r) => serde_json::to_vec(r),
            Record::Permission(_, _, r) => serde_json::to_vec(r),
            Record::TopicPermission(_, _, _, r) => serde_json::to_vec(r),
            Record::Policy(_, _, _, r) => serde_json::to_vec(r),
            Record::Parameter(_, _, _, v) | Record::GlobalParameter(_, v) => serde_json::to_vec(v),
        }
    }

    /// Read a stored record back; `None` if key or value is unreadable.
    pub(crate) fn load(kind: DefinitionKind, key: &str, value: &[u8]) -> Option<Record> {
        let parts: Vec<&str> = key.split(SEP).collect();
        let owned = |i: usize| parts.get(i).map(|s| (*s).to_owned());
        Some(match (kind, parts.len()) {
            (DefinitionKind::Vhost, 1) => {
                Record::Vhost(owned(0)?, serde_json::from_slice(value).ok()?)
            }
            (DefinitionKind::User, 1) => {
                Record::User(owned(0)?, serde_json::from_slice(value).ok()?)
            }
            (DefinitionKind::Permission, 2) => {
                Record::Permission(owned(0)?, owned(1)?, serde_json::from_slice(value).ok()?)
            }
            (DefinitionKind::TopicPermission, 3) => Record::TopicPermission(
                owned(0)?,
                owned(1)?,
                owned(2)?,
                serde_json::from_slice(value).ok()?,
            ),
            (DefinitionKind::Policy, 3) => Record::Policy(
                PolicyKind::from_str(parts[0])?,
                owned(1)?,
                owned(2)?,
                serde_json::from_slice(value).ok()?,
            ),
            (DefinitionKind::Parameter, 3) => Record::Parameter(
                owned(0)?,
                owned(1)?,
                owned(2)?,
                serde_json::from_slice(value).ok()?,
            ),
            (DefinitionKind::GlobalParameter, 1) => {
                Record::GlobalParameter(owned(0)?, serde_json::from_slice(value).ok()?)
            }
            _ => return None,
        })
    }
}

/// The kinds the registry is stored under.
pub(crate) const STORED_KINDS: [DefinitionKind; 7] = [
    DefinitionKind::Vhost,
    DefinitionKind::User,
    DefinitionKind::Permission,
    DefinitionKind::TopicPermission,
    DefinitionKind::Policy,
    DefinitionKind::Parameter,
    DefinitionKind::GlobalParameter,
];
