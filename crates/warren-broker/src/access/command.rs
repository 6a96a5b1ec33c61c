//! The one way the access registry changes: an [`AccessCommand`].
//!
//! Commands are plain serialisable values, validated against the current state
//! (`AccessState::plan`) and turned into record puts and deletes. Nothing else mutates the
//! registry, and a command carries everything it needs (a password arrives already hashed,
//! with its salt), so replaying the same sequence of commands on an empty state always
//! yields the same state: a Raft log can carry them as they are.

use serde::{Deserialize, Serialize};

use super::password::PasswordHash;
use super::records::{PolicyKind, PolicyRecord, UserLimits, VhostLimits};

/// A change to vhosts, users, permissions, limits, policies or parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AccessCommand {
    /// Create a vhost, or update its metadata (limits are kept).
    PutVhost {
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Tags.
        tags: Vec<String>,
        /// Default queue type.
        default_queue_type: Option<String>,
    },
    /// Delete a vhost with its permissions, topic permissions, policies and parameters.
    /// (Its exchanges, queues and messages are the broker's to delete; see
    /// `Broker::delete_vhost`.)
    DeleteVhost {
        /// Name.
        name: String,
    },
    /// Create a user, or replace its password and tags (limits are kept).
    PutUser {
        /// Name.
        name: String,
        /// Password hash (`PasswordHash::none()` for EXTERNAL-only users).
        password: PasswordHash,
        /// Tags.
        tags: Vec<String>,
    },
    /// Delete a user with its permissions and topic permissions.
    DeleteUser {
        /// Name.
        name: String,
    },
    /// Set a user's permissions in a vhost.
    SetPermissions {
        /// User.
        user: String,
        /// Vhost.
        vhost: String,
        /// Configure regex.
        configure: String,
        /// Write regex.
        write: String,
        /// Read regex.
        read: String,
    },
    /// Remove a user's permissions in a vhost.
    ClearPermissions {
        /// User.
        user: String,
        /// Vhost.
        vhost: String,
    },
    /// Set a user's topic permissions on one exchange of a vhost.
    SetTopicPermissions {
        /// User.
        user: String,
        /// Vhost.
        vhost: String,
        /// Exchange.
        exchange: String,
        /// Write regex (routing keys of publishes).
        write: String,
        /// Read regex (routing keys of bindings).
        read: String,
    },
    /// Remove a user's topic permissions in a vhost: on one exchange, or on all.
    ClearTopicPermissions {
        /// User.
        user: String,
        /// Vhost.
        vhost: String,
        /// One exchange, or `None` for every exchange.
        exchange: Option<String>,
    },
    /// Replace a vhost's limits (`VhostLimits::default()` clears them).
    SetVhostLimits {
        /// Vhost.
        vhost: String,
        /// Limits.
        limits: VhostLimits,
    },
    /// Replace a user's limits (`UserLimits::default()` clears them).
    SetUserLimits {
        /// User.
        user: String,
        /// Limits.
        limits: UserLimits,
    },
    /// Create or replace a policy or operator policy.
    SetPolicy {
        /// Which kind.
        kind: PolicyKind,
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
        /// Pattern, apply-to, priority, definition.
        policy: PolicyRecord,
    },
    /// Remove a policy or operator policy.
    ClearPolicy {
        /// Which kind.
        kind: PolicyKind,
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
    },
    /// Set a runtime parameter (`component`, e.g. `federation-upstream`).
    SetParameter {
        /// Component.
        component: String,
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
        /// Value (any JSON).
        value: serde_json::Value,
    },
    /// Remove a runtime parameter.
    ClearParameter {
        /// Component.
        component: String,
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
    },
    /// Set a global parameter.
    SetGlobalParameter {
        /// Name.
        name: String,
        /// Value (any JSON).
        value: serde_json::Value,
    },
    /// Remove a global parameter.
    ClearGlobalParameter {
        /// Name.
        name: String,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The vhost does not exist.
    #[error("vhost '{0}' does not exist")]
    NoSuchVhost(String),
    /// The user does not exist.
    #[error("user '{0}' does not exist")]
    NoSuchUser(String),
    /// A pattern does not compile.
    #[error("invalid regular expression '{pattern}': {reason}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Any other invalid value (empty name, unknown apply-to, ...).
    #[error("{0}")]
    Invalid(String),
    /// The store could not write the change (nothing was applied).
    #[error("cannot store the change: {0}")]
    Store(String),
}
