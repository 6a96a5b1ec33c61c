//! RabbitMQ definitions: the JSON document `rabbitmqctl export_definitions` writes and
//! `load_definitions` names, imported into and exported from a [`Broker`].
//!
//! ```text
//!   bytes ──Definitions::parse──> Definitions ──Broker::import_definitions──>
//!      (a) plan: every entry checked against the file and the broker (nothing changes yet)
//!      (b) access: users, vhosts, permissions, topic permissions, limits, policies,
//!          operator policies, parameters, global parameters: one `Access::apply_all`
//!          (one synced batch: all or nothing)
//!      (c) topology: exchanges, then queues, then bindings, through the vhost API
//!   Broker::export_definitions ──> Definitions ──serde_json──> bytes (RabbitMQ can import it)
//! ```
//!
//! **Parsing** walks the JSON by hand rather than through serde's derive so that every
//! error names its place (`users[2].tags: expected a list of strings or a comma-separated
//! string, got a number`). Fields RabbitMQ added over the versions and Warren does not use
//! are ignored; a known field of the wrong type is an error. The shapes RabbitMQ has written
//! over the years are accepted: tags as a list or as one comma-separated string, limits and
//! policy definitions as an object or as a list of `[key, value]` pairs (RabbitMQ 3.10
//! exports operator policies, vhost `limits` and some global parameters that way), vhost
//! description and tags at the top level or under `metadata`.
//!
//! **Where each section goes.** Users (hash, algorithm, tags, `limits`), vhosts (metadata,
//! `limits`), permissions, topic permissions, policies and global parameters become the
//! matching [`AccessCommand`]s. `parameters` holds three kinds RabbitMQ stores as runtime
//! parameters: component `vhost-limits` (the vhost's limits), `operator_policy` (operator
//! policies) and any other component (kept as a parameter for the feature that will read it,
//! e.g. `federation-upstream`). Queues, exchanges and bindings are declared.
//!
//! **Import semantics follow RabbitMQ 3.10's `rabbit_definitions`.** A user without a
//! `hashing_algorithm` gets MD5 when the file comes from RabbitMQ 3.0 - 3.5 and SHA-256
//! (Warren's default) otherwise; a user with a cleartext `password` gets it hashed with
//! SHA-256; a user with neither has no password (EXTERNAL only). The default exchange,
//! `amq.*` exchanges and `amq.*` queues are skipped with a warning. An exchange or queue that
//! exists already is kept as it is (a differing one is logged). Unlike RabbitMQ, which
//! applies entries one by one and stops at the first failure, everything is checked before
//! anything is applied, so a bad file changes nothing: queue arguments (the same checks as
//! `queue.declare`), exchange types, binding ends (in the file or in the broker), binding
//! arguments, the vhosts' queue limits, and every access command against the registry as the
//! file leaves it. Only a failing disk can stop step (c) halfway.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warren_router::{Destination, ExchangeKind};

use crate::access::{
    AccessCommand, AccessState, HashingAlgorithm, PasswordHash, PolicyKind, PolicyRecord,
    UserLimits, VhostLimits,
};
use crate::broker::Broker;
use crate::consumer::ConnectionId;
use crate::error::BrokerError;
use crate::exchange::{Dest, ExchangeSpec};
use crate::vhost::QueueDeclare;

/// The connection id imports declare with: no real connection has it (ids start at 1), so
/// an exclusive queue of a client is never taken for the import's.
const IMPORT_CONNECTION: ConnectionId = 0;

/// The RabbitMQ version whose format exports follow. RabbitMQ reads `rabbitmq_version` to
/// choose the hashing algorithm of users that have none (exports always name it).
pub const FORMAT_VERSION: &str = "3.10.0";

/// Why a definitions document was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionsError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// Not JSON at all.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// An entry is malformed or cannot be applied; `path` names it (`users[2].tags`).
    #[error("{path}: {reason}")]
    Invalid {
        /// Where in the document.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Storing the change failed (the disk, not the file).
    #[error("cannot apply the definitions: {0}")]
    Apply(String),
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> DefinitionsError {
    DefinitionsError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

// ------------------------------------------------------------------------------- the document

/// A definitions document, in RabbitMQ's shape (field names and nesting as RabbitMQ 3.10
/// exports them, so the serialised form imports into RabbitMQ).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Definitions {
    /// RabbitMQ's version (old name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    /// RabbitMQ's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    /// Product name (RabbitMQ 3.9+ when set; "Warren" in Warren's exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Product version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    /// Users.
    pub users: Vec<UserDefinition>,
    /// Virtual hosts.
    pub vhosts: Vec<VhostDefinition>,
    /// Permissions.
    pub permissions: Vec<PermissionDefinition>,
    /// Topic permissions.
    pub topic_permissions: Vec<TopicPermissionDefinition>,
    /// Runtime parameters (vhost limits and operator policies included, as RabbitMQ).
    pub parameters: Vec<ParameterDefinition>,
    /// Global parameters.
    pub global_parameters: Vec<GlobalParameterDefinition>,
    /// Policies.
    pub policies: Vec<PolicyDefinition>,
    /// Queues.
    pub queues: Vec<QueueDefinition>,
    /// Exchanges.
    pub exchanges: Vec<ExchangeDefinition>,
    /// Bindings.
    pub bindings: Vec<BindingDefinition>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserDefinition {
    /// Name.
    pub name: String,
    /// Base64 of salt ++ digest; empty for no password.
    pub password_hash: String,
    /// `rabbit_password_hashing_sha256` ...; `None` when the file has none (see the module
    /// docs for the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// A cleartext password (hand-written files; never exported).
    #[serde(skip)]
    pub password: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Limits (only the keys present in the file replace the user's current ones).
    pub limits: UserLimits,
}

/// A virtual host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VhostDefinition {
    /// Name.
    pub name: String,
    /// Limits (RabbitMQ exports them here too; its import reads them from `parameters`).
    pub limits: VhostLimits,
    /// Description, tags, default queue type.
    pub metadata: VhostMetadata,
}

/// A vhost's metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VhostMetadata {
    /// Free text.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `classic`, `quorum`, `stream`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
}

/// A user's permissions in a vhost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PermissionDefinition {
    /// User.
    pub user: String,
    /// Vhost.
    pub vhost: String,
    /// Configure regex.
    pub configure: String,
    /// Write regex.
    pub write: String,
    /// Read regex.
    pub read: String,
}

/// A user's topic permissions on an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicPermissionDefinition {
    /// User.
    pub user: String,
    /// Vhost.
    pub vhost: String,
    /// Exchange.
    pub exchange: String,
    /// Write regex.
    pub write: String,
    /// Read regex.
    pub read: String,
}

/// A runtime parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParameterDefinition {
    /// Vhost.
    pub vhost: String,
    /// Component (`vhost-limits`, `operator_policy`, `federation-upstream`, ...).
    pub component: String,
    /// Name.
    pub name: String,
    /// Value.
    pub value: Value,
}

/// A global parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GlobalParameterDefinition {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Value,
}

/// A policy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PolicyDefinition {
    /// Vhost.
    pub vhost: String,
    /// Name.
    pub name: String,
    /// Regex over names.
    pub pattern: String,
    /// `queues`, `exchanges`, `all`, ...
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    /// Priority.
    pub priority: i64,
    /// Keys and values.
    pub definition: Map<String, Value>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueueDefinition {
    /// Vhost.
    pub vhost: String,
    /// Name.
    pub name: String,
    /// `classic` (RabbitMQ 3.8+ exports it; its import ignores it).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub queue_type: Option<String>,
    /// Durable.
    pub durable: bool,
    /// Auto-delete.
    pub auto_delete: bool,
    /// Arguments, as JSON.
    pub arguments: Map<String, Value>,
}

/// An exchange.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExchangeDefinition {
    /// Vhost.
    pub vhost: String,
    /// Name.
    pub name: String,
    /// `direct`, `fanout`, `topic`, `headers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Durable.
    pub durable: bool,
    /// Auto-delete.
    pub auto_delete: bool,
    /// Internal (RabbitMQ's exports leave internal exchanges out; its import reads this).
    pub internal: bool,
    /// Arguments, as JSON.
    pub arguments: Map<String, Value>,
}

/// A binding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BindingDefinition {
    /// Vhost.
    pub vhost: String,
    /// Source exchange.
    pub source: String,
    /// Destination name.
    pub destination: String,
    /// `queue` or `exchange`.
    pub destination_type: String,
    /// Routing key.
    pub routing_key: String,
    /// Arguments, as JSON.
    pub arguments: Map<String, Value>,
}

// ------------------------------------------------------------------------------- parsing

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn expected(path: &str, what: &str, got: &Value) -> DefinitionsError {
    invalid(path, format!("expected {what}, got {}", kind_of(got)))
}

/// An object's fields, with typed, path-naming accessors.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// The object at `path`.
    fn new(path: String, value: &'a Value) -> Result<Obj<'a>, DefinitionsError> {
        match value {
            Value::Object(map) => Ok(Obj { path, map }),
            other => Err(expected(&path, "an object", other)),
        }
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A present, non-null field.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>, DefinitionsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(expected(&self.field_path(key), "a string", other)),
        }
    }

    fn str(&self, key: &str) -> Result<String, DefinitionsError> {
        self.opt_str(key)?
            .ok_or_else(|| invalid(self.field_path(key), "missing"))
    }

    fn str_or(&self, key: &str, default: &str) -> Result<String, DefinitionsError> {
        Ok(self.opt_str(key)?.unwrap_or_else(|| default.to_owned()))
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, DefinitionsError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(expected(&self.field_path(key), "true or false", other)),
        }
    }

    fn int_or(&self, key: &str, default: i64) -> Result<i64, DefinitionsError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| expected(&self.field_path(key), "an integer", v)),
        }
    }

    /// A list of objects (absent = empty).
    fn list(&self, key: &str) -> Result<Vec<Obj<'a>>, DefinitionsError> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, value)| Obj::new(format!("{path}[{i}]"), value))
                .collect(),
            Some(other) => Err(expected(&path, "a list", other)),
        }
    }

    /// An object, or a list of `[key, value]` pairs (absent = empty).
    fn pairs(&self, key: &str) -> Result<Map<String, Value>, DefinitionsError> {
        match self.get(key) {
            None => Ok(Map::new()),
            Some(value) => pairs(&self.field_path(key), value),
        }
    }

    /// Tags: a list of strings or one comma-separated string (absent = `None`).
    fn tags(&self, key: &str) -> Result<Option<Vec<String>>, DefinitionsError> {
        let path = self.field_path(key);
        let tags: Vec<String> = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(expected(&format!("{path}[{i}]"), "a string", other)),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(expected(
                    &path,
                    "a list of strings or a comma-separated string",
                    other,
                ));
            }
        };
        Ok(Some(
            tags.iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        ))
    }
}

/// An object, or RabbitMQ's list of `[key, value]` pairs, as an object.
fn pairs(path: &str, value: &Value) -> Result<Map<String, Value>, DefinitionsError> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        Value::Array(items) => {
            let mut map = Map::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), v]) => {
                        map.insert(k.clone(), v.clone());
                    }
                    _ => {
                        return Err(expected(
                            &format!("{path}[{i}]"),
                            "a [\"key\", value] pair",
                            item,
                        ));
                    }
                }
            }
            Ok(map)
        }
        other => Err(expected(path, "an object", other)),
    }
}

/// Limits from an object or pair list: each known key an integer, no other key.
fn limits(
    path: &str,
    map: &Map<String, Value>,
    known: &[&str],
) -> Result<BTreeMap<String, i64>, DefinitionsError> {
    let mut out = BTreeMap::new();
    for (key, value) in map {
        if !known.contains(&key.as_str()) {
            return Err(invalid(
                format!("{path}.{key}"),
                format!("unknown limit (known: {})", known.join(", ")),
            ));
        }
        let n = value
            .as_i64()
            .ok_or_else(|| expected(&format!("{path}.{key}"), "an integer", value))?;
        out.insert(key.clone(), n);
    }
    Ok(out)
}

fn user_limits(path: &str, map: &Map<String, Value>) -> Result<UserLimits, DefinitionsError> {
    let l = limits(path, map, &["max-connections", "max-channels"])?;
    Ok(UserLimits {
        max_connections: l.get("max-connections").copied(),
        max_channels: l.get("max-channels").copied(),
    })
}

fn vhost_limits(path: &str, map: &Map<String, Value>) -> Result<VhostLimits, DefinitionsError> {
    let l = limits(path, map, &["max-connections", "max-queues"])?;
    Ok(VhostLimits {
        max_connections: l.get("max-connections").copied(),
        max_queues: l.get("max-queues").copied(),
    })
}

impl Definitions {
    /// Parse a document. Errors name the offending place; unknown fields are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Definitions, DefinitionsError> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| DefinitionsError::Json(e.to_string()))?;
        let root = Obj::new(String::new(), &root)
            .map_err(|_| DefinitionsError::Json("the document is not a JSON object".into()))?;
        Ok(Definitions {
            rabbit_version: root.opt_str("rabbit_version")?,
            rabbitmq_version: root.opt_str("rabbitmq_version")?,
            product_name: root.opt_str("product_name")?,
            product_version: root.opt_str("product_version")?,
            users: root
                .list("users")?
                .iter()
                .map(parse_user)
                .collect::<Result<_, _>>()?,
            vhosts: root
                .list("vhosts")?
                .iter()
                .map(parse_vhost)
                .collect::<Result<_, _>>()?,
            permissions: root
                .list("permissions")?
                .iter()
                .map(|o| {
                    Ok(PermissionDefinition {
                        user: o.str("user")?,
                        vhost: o.str("vhost")?,
                        configure: o.str("configure")?,
                        write: o.str("write")?,
                        read: o.str("read")?,
                    })
                })
                .collect::<Result<_, _>>()?,
            topic_permissions: root
                .list("topic_permissions")?
                .iter()
                .map(|o| {
                    Ok(TopicPermissionDefinition {
                        user: o.str("user")?,
                        vhost: o.str("vhost")?,
                        exchange: o.str("exchange")?,
                        write: o.str("write")?,
                        read: o.str("read")?,
                    })
                })
                .collect::<Result<_, _>>()?,
            parameters: root
                .list("parameters")?
                .iter()
                .map(|o| {
                    Ok(ParameterDefinition {
                        vhost: o.str("vhost")?,
                        component: o.str("component")?,
                        name: o.str("name")?,
                        value: o.get("value").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect::<Result<_, _>>()?,
            global_parameters: root
                .list("global_parameters")?
                .iter()
                .map(|o| {
                    Ok(GlobalParameterDefinition {
                        name: o.str("name")?,
                        value: o.get("value").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect::<Result<_, _>>()?,
            policies: root
                .list("policies")?
                .iter()
                .map(|o| {
                    Ok(PolicyDefinition {
                        vhost: o.str("vhost")?,
                        name: o.str("name")?,
                        pattern: o.str("pattern")?,
                        apply_to: o.str_or("apply-to", "all")?,
                        priority: o.int_or("priority", 0)?,
                        definition: o.pairs("definition")?,
                    })
                })
                .collect::<Result<_, _>>()?,
            queues: root
                .list("queues")?
                .iter()
                .map(|o| {
                    Ok(QueueDefinition {
                        vhost: o.str("vhost")?,
                        name: o.str("name")?,
                        queue_type: o.opt_str("type")?,
                        durable: o.bool_or("durable", true)?,
                        auto_delete: o.bool_or("auto_delete", false)?,
                        arguments: o.pairs("arguments")?,
                    })
                })
                .collect::<Result<_, _>>()?,
            exchanges: root
                .list("exchanges")?
                .iter()
                .map(|o| {
                    Ok(ExchangeDefinition {
                        vhost: o.str("vhost")?,
                        name: o.str("name")?,
                        kind: o.str("type")?,
                        durable: o.bool_or("durable", true)?,
                        auto_delete: o.bool_or("auto_delete", false)?,
                        internal: o.bool_or("internal", false)?,
                        arguments: o.pairs("arguments")?,
                    })
                })
                .collect::<Result<_, _>>()?,
            bindings: root
                .list("bindings")?
                .iter()
                .map(|o| {
                    Ok(BindingDefinition {
                        vhost: o.str("vhost")?,
                        source: o.str("source")?,
                        destination: o.str("destination")?,
                        destination_type: o.str("destination_type")?,
                        routing_key: o.str_or("routing_key", "")?,
                        arguments: o.pairs("arguments")?,
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// Read and parse a file.
    pub fn read(path: &std::path::Path) -> Result<Definitions, DefinitionsError> {
        let bytes = std::fs::read(path).map_err(|e| DefinitionsError::Io(e.to_string()))?;
        Definitions::parse(&bytes)
    }

    /// The document as pretty JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, DefinitionsError> {
        serde_json::to_vec_pretty(self).map_err(|e| DefinitionsError::Apply(e.to_string()))
    }

    fn version(&self) -> Option<&str> {
        self.rabbitmq_version
            .as_deref()
            .or(self.rabbit_version.as_deref())
    }
}

fn parse_user(o: &Obj<'_>) -> Result<UserDefinition, DefinitionsError> {
    // RabbitMQ's `put_user`: tags, or the pre-3.0 `administrator` flag; one is required.
    let tags = match o.tags("tags")? {
        Some(tags) => tags,
        None => match o.get("administrator") {
            Some(Value::Bool(true)) => vec!["administrator".into()],
            Some(Value::Bool(false)) => Vec::new(),
            Some(Value::String(s)) if s == "true" => vec!["administrator".into()],
            Some(Value::String(s)) if s == "false" => Vec::new(),
            Some(other) => {
                return Err(expected(
                    &o.field_path("administrator"),
                    "true or false",
                    other,
                ));
            }
            None => return Err(invalid(o.field_path("tags"), "missing")),
        },
    };
    let password = o.opt_str("password")?;
    let password_hash = o.opt_str("password_hash")?;
    if password.is_some() && password_hash.is_some() {
        return Err(invalid(
            o.path.clone(),
            "both password and password_hash are given",
        ));
    }
    let limits = o.pairs("limits")?;
    Ok(UserDefinition {
        name: o.str("name")?,
        password_hash: password_hash.unwrap_or_default(),
        hashing_algorithm: o.opt_str("hashing_algorithm")?,
        password,
        tags,
        limits: user_limits(&o.field_path("limits"), &limits)?,
    })
}

fn parse_vhost(o: &Obj<'_>) -> Result<VhostDefinition, DefinitionsError> {
    let metadata = match o.get("metadata") {
        Some(value) => Some(Obj::new(o.field_path("metadata"), value)?),
        None => None,
    };
    // RabbitMQ's `add_vhost`: top-level fields first, then `metadata`.
    let description = match o.opt_str("description")? {
        Some(d) => d,
        None => match &metadata {
            Some(m) => m.str_or("description", "")?,
            None => String::new(),
        },
    };
    let tags = match o.tags("tags")? {
        Some(t) => t,
        None => match &metadata {
            Some(m) => m.tags("tags")?.unwrap_or_default(),
            None => Vec::new(),
        },
    };
    let default_queue_type = match &metadata {
        Some(m) => m.opt_str("default_queue_type")?,
        None => None,
    };
    if o.bool_or("tracing", false)? {
        tracing::warn!(
            vhost = o.str("name")?,
            "definitions: the vhost asks for message tracing, which Warren does not have; imported without it"
        );
    }
    let limits = o.pairs("limits")?;
    Ok(VhostDefinition {
        name: o.str("name")?,
        limits: vhost_limits(&o.field_path("limits"), &limits)?,
        metadata: VhostMetadata {
            description,
            tags,
            default_queue_type,
        },
    })
}

/// A policy value as stored in a `policy` / `operator_policy` runtime parameter.
fn policy_value(path: &str, value: &Value) -> Result<PolicyRecord, DefinitionsError> {
    let o = Obj::new(path.to_owned(), value)?;
    Ok(PolicyRecord {
        pattern: o.str("pattern")?,
        apply_to: o.str_or("apply-to", "all")?,
        priority: o.int_or("priority", 0)?,
        definition: o.pairs("definition")?,
    })
}

// ------------------------------------------------------------------------------- AMQP values

/// JSON to an AMQP table, as RabbitMQ's `to_amqp_table`: strings are long strings,
/// integers signed 64-bit, other numbers doubles, objects tables, lists arrays; null is
/// refused.
pub fn json_to_table(path: &str, map: &Map<String, Value>) -> Result<FieldTable, DefinitionsError> {
    let mut table = FieldTable::default();
    for (key, value) in map {
        let name = ShortString::try_new(key.clone()).map_err(|_| {
            invalid(
                path,
                format!("argument name '{key}' is longer than 255 bytes"),
            )
        })?;
        table.insert(name, json_to_amqp(&format!("{path}.{key}"), value)?);
    }
    Ok(table)
}

fn json_to_amqp(path: &str, value: &Value) -> Result<AMQPValue, DefinitionsError> {
    Ok(match value {
        Value::Null => return Err(invalid(path, "null is not an AMQP value")),
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) => AMQPValue::Double(f),
            (None, None) => return Err(invalid(path, format!("number {n} is out of range"))),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.clone())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| json_to_amqp(&format!("{path}[{i}]"), v))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Value::Object(map) => AMQPValue::FieldTable(json_to_table(path, map)?),
    })
}

/// An AMQP table as JSON, as RabbitMQ's `amqp_table` writes it in exports.
pub fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), amqp_to_json(v)))
        .collect()
}

fn amqp_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(v) => Value::from(*v),
        AMQPValue::ShortShortUInt(v) => Value::from(*v),
        AMQPValue::ShortInt(v) => Value::from(*v),
        AMQPValue::ShortUInt(v) => Value::from(*v),
        AMQPValue::LongInt(v) => Value::from(*v),
        AMQPValue::LongUInt(v) => Value::from(*v),
        AMQPValue::LongLongInt(v) => Value::from(*v),
        AMQPValue::Timestamp(v) => Value::from(*v),
        AMQPValue::Float(v) => Value::from(f64::from(*v)),
        AMQPValue::Double(v) => Value::from(*v),
        AMQPValue::DecimalValue(d) => {
            Value::from(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ByteArray(b) => Value::from(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

// ------------------------------------------------------------------------------- import

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Access commands applied (users, vhosts, permissions, limits, policies, parameters).
    pub access_commands: usize,
    /// Exchanges declared (new ones; existing ones are kept).
    pub exchanges: usize,
    /// Queues declared (new ones).
    pub queues: usize,
    /// Bindings added (new ones).
    pub bindings: usize,
    /// Entries skipped (reserved names), or kept as they were because they already existed
    /// with other properties; each was logged.
    pub skipped: usize,
}

/// A checked exchange, queue or binding, ready to declare.
struct PlannedExchange {
    path: String,
    vhost: String,
    spec: ExchangeSpec,
}

struct PlannedQueue {
    path: String,
    vhost: String,
    declare: QueueDeclare,
}

struct PlannedBinding {
    path: String,
    vhost: String,
    source: String,
    dest: Dest,
    routing_key: String,
    arguments: FieldTable,
}

struct Plan {
    commands: Vec<AccessCommand>,
    vhosts: Vec<String>,
    exchanges: Vec<PlannedExchange>,
    queues: Vec<PlannedQueue>,
    bindings: Vec<PlannedBinding>,
    skipped: usize,
}

/// A broker error's text without its reply-code prefix.
fn reason(e: BrokerError) -> String {
    match e {
        BrokerError::AccessRefused(s)
        | BrokerError::NotFound(s)
        | BrokerError::ResourceLocked(s)
        | BrokerError::PreconditionFailed(s)
        | BrokerError::CommandInvalid(s)
        | BrokerError::NotAllowed(s)
        | BrokerError::NotImplemented(s)
        | BrokerError::Internal(s) => s,
    }
}

/// The hashing algorithm of an imported user (RabbitMQ's `hashing_algorithm/2`).
fn algorithm_for(
    path: &str,
    user: &UserDefinition,
    version: Option<&str>,
) -> Result<HashingAlgorithm, DefinitionsError> {
    match &user.hashing_algorithm {
        Some(name) => HashingAlgorithm::from_name(name).ok_or_else(|| {
            invalid(
                format!("{path}.hashing_algorithm"),
                format!(
                    "unknown hashing algorithm '{name}' (known: rabbit_password_hashing_sha256, rabbit_password_hashing_sha512, rabbit_password_hashing_md5)"
                ),
            )
        }),
        None => {
            let legacy = ["3.0.", "3.1.", "3.2.", "3.3.", "3.4.", "3.5."];
            Ok(match version {
                Some(v) if legacy.iter().any(|p| v.starts_with(p)) => HashingAlgorithm::Md5,
                _ => HashingAlgorithm::Sha256,
            })
        }
    }
}

impl Broker {
    /// Import a definitions document: check everything, then apply the access part in one
    /// atomic batch, then declare exchanges, queues and bindings. A refused document changes
    /// nothing. See the module docs.
    pub fn import_definitions(
        &self,
        definitions: &Definitions,
    ) -> Result<ImportSummary, DefinitionsError> {
        let plan = self.plan_import(definitions)?;
        self.access()
            .apply_all(&plan.commands)
            .map_err(|e| DefinitionsError::Apply(e.to_string()))?;
        let mut summary = ImportSummary {
            access_commands: plan.commands.len(),
            skipped: plan.skipped,
            ..ImportSummary::default()
        };
        for name in &plan.vhosts {
            self.vhost_or_create(name);
        }
        let vhost = |name: &str| {
            self.vhost(name).ok_or_else(|| {
                DefinitionsError::Apply(format!("vhost '{name}' vanished during the import"))
            })
        };
        // Existing entities that differ are kept (RabbitMQ skips any existing one); every
        // other failure here is the store's.
        let kept = |path: &str, e: BrokerError| -> Result<(), DefinitionsError> {
            match e {
                BrokerError::PreconditionFailed(_) | BrokerError::ResourceLocked(_) => {
                    tracing::warn!(entry = path, reason = %reason(e), "definitions: kept the existing entity");
                    Ok(())
                }
                other => Err(DefinitionsError::Apply(format!(
                    "{path}: {}",
                    reason(other)
                ))),
            }
        };
        for x in plan.exchanges {
            let v = vhost(&x.vhost)?;
            let existed = v.exchange(&x.spec.name).is_some();
            match v.declare_exchange(x.spec, false) {
                Ok(()) if !existed => summary.exchanges += 1,
                Ok(()) => {}
                Err(e) => {
                    kept(&x.path, e)?;
                    summary.skipped += 1;
                }
            }
        }
        for q in plan.queues {
            match vhost(&q.vhost)?.declare_queue(q.declare, IMPORT_CONNECTION) {
                Ok(declared) if declared.created => summary.queues += 1,
                Ok(_) => {}
                Err(e) => {
                    kept(&q.path, e)?;
                    summary.skipped += 1;
                }
            }
        }
        for b in plan.bindings {
            let v = vhost(&b.vhost)?;
            let existed = v.exchange(&b.source).is_some_and(|x| {
                x.bindings
                    .read()
                    .bindings_to(&b.dest)
                    .any(|(k, a)| k == b.routing_key && *a == b.arguments)
            });
            match v.bind(
                &b.source,
                b.dest,
                &b.routing_key,
                &b.arguments,
                IMPORT_CONNECTION,
            ) {
                Ok(()) if !existed => summary.bindings += 1,
                Ok(()) => {}
                Err(e) => {
                    kept(&b.path, e)?;
                    summary.skipped += 1;
                }
            }
        }
        // Policies (new or changed by the file) apply to every object of every vhost,
        // those that were there before the import included.
        for vhost in self.all_vhosts() {
            vhost.apply_policies();
        }
        tracing::info!(
            access_commands = summary.access_commands,
            exchanges = summary.exchanges,
            queues = summary.queues,
            bindings = summary.bindings,
            skipped = summary.skipped,
            "definitions imported"
        );
        Ok(summary)
    }

    /// Step (a): everything checked, nothing changed.
    fn plan_import(&self, defs: &Definitions) -> Result<Plan, DefinitionsError> {
        let version = defs.version();
        // Access commands, each with the path it came from, checked one by one against the
        // registry as the ones before leave it (so an error names its entry).
        let mut commands: Vec<(String, AccessCommand)> = Vec::new();
        for (i, u) in defs.users.iter().enumerate() {
            let path = format!("users[{i}]");
            let algorithm = algorithm_for(&path, u, version)?;
            let password = match &u.password {
                Some(clear) if !clear.is_empty() => {
                    PasswordHash::new(HashingAlgorithm::Sha256, clear)
                }
                Some(_) => PasswordHash::none(),
                None => PasswordHash::imported(&u.password_hash, algorithm).ok_or_else(|| {
                    invalid(
                        format!("{path}.password_hash"),
                        "not the base64 of a salted password hash",
                    )
                })?,
            };
            commands.push((
                path.clone(),
                AccessCommand::PutUser {
                    name: u.name.clone(),
                    password,
                    tags: u.tags.clone(),
                },
            ));
            if u.limits != UserLimits::default() {
                // Only the limits the file names replace the user's current ones.
                let current = self
                    .access()
                    .read(|s| s.users.get(&u.name).map(|r| r.limits))
                    .unwrap_or_default();
                commands.push((
                    format!("{path}.limits"),
                    AccessCommand::SetUserLimits {
                        user: u.name.clone(),
                        limits: UserLimits {
                            max_connections: u.limits.max_connections.or(current.max_connections),
                            max_channels: u.limits.max_channels.or(current.max_channels),
                        },
                    },
                ));
            }
        }
        for (i, v) in defs.vhosts.iter().enumerate() {
            let path = format!("vhosts[{i}]");
            commands.push((
                path.clone(),
                AccessCommand::PutVhost {
                    name: v.name.clone(),
                    description: v.metadata.description.clone(),
                    tags: v.metadata.tags.clone(),
                    default_queue_type: v.metadata.default_queue_type.clone(),
                },
            ));
            if v.limits != VhostLimits::default() {
                commands.push((
                    format!("{path}.limits"),
                    AccessCommand::SetVhostLimits {
                        vhost: v.name.clone(),
                        limits: v.limits,
                    },
                ));
            }
        }
        for (i, p) in defs.permissions.iter().enumerate() {
            commands.push((
                format!("permissions[{i}]"),
                AccessCommand::SetPermissions {
                    user: p.user.clone(),
                    vhost: p.vhost.clone(),
                    configure: p.configure.clone(),
                    write: p.write.clone(),
                    read: p.read.clone(),
                },
            ));
        }
        for (i, p) in defs.topic_permissions.iter().enumerate() {
            commands.push((
                format!("topic_permissions[{i}]"),
                AccessCommand::SetTopicPermissions {
                    user: p.user.clone(),
                    vhost: p.vhost.clone(),
                    exchange: p.exchange.clone(),
                    write: p.write.clone(),
                    read: p.read.clone(),
                },
            ));
        }
        for (i, g) in defs.global_parameters.iter().enumerate() {
            commands.push((
                format!("global_parameters[{i}]"),
                AccessCommand::SetGlobalParameter {
                    name: g.name.clone(),
                    value: g.value.clone(),
                },
            ));
        }
        for (i, p) in defs.policies.iter().enumerate() {
            commands.push((
                format!("policies[{i}]"),
                AccessCommand::SetPolicy {
                    kind: PolicyKind::Policy,
                    vhost: p.vhost.clone(),
                    name: p.name.clone(),
                    policy: PolicyRecord {
                        pattern: p.pattern.clone(),
                        apply_to: p.apply_to.clone(),
                        priority: p.priority,
                        definition: p.definition.clone(),
                    },
                },
            ));
        }
        for (i, p) in defs.parameters.iter().enumerate() {
            let path = format!("parameters[{i}]");
            let value_path = format!("{path}.value");
            let command = match p.component.as_str() {
                "vhost-limits" => AccessCommand::SetVhostLimits {
                    vhost: p.vhost.clone(),
                    limits: vhost_limits(&value_path, &pairs(&value_path, &p.value)?)?,
                },
                kind @ ("operator_policy" | "policy") => AccessCommand::SetPolicy {
                    kind: if kind == "policy" {
                        PolicyKind::Policy
                    } else {
                        PolicyKind::OperatorPolicy
                    },
                    vhost: p.vhost.clone(),
                    name: p.name.clone(),
                    policy: policy_value(&value_path, &p.value)?,
                },
                _ => AccessCommand::SetParameter {
                    component: p.component.clone(),
                    vhost: p.vhost.clone(),
                    name: p.name.clone(),
                    value: p.value.clone(),
                },
            };
            commands.push((path, command));
        }
        let mut state: AccessState = self.access().read(AccessState::clone);
        for (path, command) in &commands {
            // A policy is checked as when it is set (RabbitMQ refuses the import).
            if let AccessCommand::SetPolicy { kind, policy, .. } = command {
                crate::policy::validate(*kind, policy)
                    .map_err(|errors| invalid(path.clone(), errors.join("; ")))?;
            }
            let effects = state
                .plan(command)
                .map_err(|e| invalid(path.clone(), e.to_string()))?;
            state.apply(&effects);
        }

        // Topology, checked against the file and the broker.
        let mut skipped = 0;
        let need_vhost = |path: &str, vhost: &str| {
            if state.vhosts.contains_key(vhost) {
                Ok(())
            } else {
                Err(invalid(
                    format!("{path}.vhost"),
                    format!("vhost '{vhost}' is neither in the file nor in the broker"),
                ))
            }
        };
        let mut exchanges = Vec::new();
        // (vhost, name) -> kind, of the exchanges the file declares.
        let mut file_exchanges: HashMap<(String, String), ExchangeKind> = HashMap::new();
        for (i, x) in defs.exchanges.iter().enumerate() {
            let path = format!("exchanges[{i}]");
            need_vhost(&path, &x.vhost)?;
            if x.name.is_empty() || x.name.starts_with("amq.") {
                tracing::warn!(
                    entry = path,
                    vhost = x.vhost,
                    exchange = x.name,
                    "definitions: skipping the default exchange or an amq.* exchange (they are predeclared)"
                );
                skipped += 1;
                continue;
            }
            // LavinMQ exports its delayed exchanges as type `x-delayed-exchange` with the
            // routing in `x-delayed-type`: that is its `x-delayed-exchange: true` form.
            let lavinmq = x.kind == "x-delayed-exchange";
            let kind_text = if lavinmq {
                x.arguments
                    .get("x-delayed-type")
                    .and_then(|t| t.as_str())
                    .unwrap_or_default()
                    .to_owned()
            } else {
                x.kind.clone()
            };
            if !crate::delayed::is_known_type(&kind_text) {
                return Err(invalid(
                    format!("{path}.type"),
                    format!(
                        "unknown exchange type '{}' (Warren has direct, fanout, topic, headers, x-delayed-message)",
                        x.kind
                    ),
                ));
            }
            let mut arguments = json_to_table(&format!("{path}.arguments"), &x.arguments)?;
            if lavinmq {
                let mut kept: BTreeMap<_, _> = arguments
                    .inner()
                    .iter()
                    .filter(|(key, _)| key.as_str() != "x-delayed-type")
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                kept.insert("x-delayed-exchange".into(), AMQPValue::Boolean(true));
                arguments = FieldTable::from(kept);
            }
            // The routing (a delayed exchange's `x-delayed-type`), checked as a declare
            // checks it.
            let (kind, _) = crate::delayed::exchange_kind(&kind_text, &arguments)
                .map_err(|e| invalid(format!("{path}.arguments"), e.to_string()))?;
            file_exchanges.insert((x.vhost.clone(), x.name.clone()), kind);
            exchanges.push(PlannedExchange {
                path,
                vhost: x.vhost.clone(),
                spec: ExchangeSpec {
                    name: x.name.clone(),
                    kind: kind_text,
                    durable: x.durable,
                    auto_delete: x.auto_delete,
                    internal: x.internal,
                    arguments,
                },
            });
        }
        let mut queues = Vec::new();
        let mut file_queues: HashSet<(String, String)> = HashSet::new();
        let mut new_queues: BTreeMap<String, usize> = BTreeMap::new();
        for (i, q) in defs.queues.iter().enumerate() {
            let path = format!("queues[{i}]");
            need_vhost(&path, &q.vhost)?;
            if q.name.starts_with("amq.") {
                tracing::warn!(
                    entry = path,
                    vhost = q.vhost,
                    queue = q.name,
                    "definitions: skipping a queue whose name begins with 'amq.'"
                );
                skipped += 1;
                continue;
            }
            if q.name.is_empty() {
                return Err(invalid(format!("{path}.name"), "empty queue name"));
            }
            if let Some(t) = q
                .queue_type
                .as_deref()
                .filter(|t| !matches!(*t, "classic" | "quorum"))
            {
                return Err(invalid(
                    format!("{path}.type"),
                    format!(
                        "queue type '{t}' is not supported by Warren (classic and quorum queues only)"
                    ),
                ));
            }
            let mut arguments = json_to_table(&format!("{path}.arguments"), &q.arguments)?;
            // RabbitMQ exports a quorum queue with both; a file that only gives the type
            // still means a quorum queue.
            if q.queue_type.as_deref() == Some("quorum")
                && !arguments.inner().contains_key("x-queue-type")
            {
                arguments.insert(
                    "x-queue-type".into(),
                    amq_protocol::types::AMQPValue::LongString("quorum".into()),
                );
            }
            crate::arguments::validate(&q.name, &q.vhost, &arguments)
                .map_err(|e| invalid(format!("{path}.arguments"), reason(e)))?;
            crate::arguments::check_properties(
                &q.name,
                &q.vhost,
                &arguments,
                q.durable,
                false,
                q.auto_delete,
            )
            .map_err(|e| invalid(path.clone(), reason(e)))?;
            let exists = self
                .vhost(&q.vhost)
                .is_some_and(|v| v.queue(&q.name, IMPORT_CONNECTION).is_ok());
            let first = file_queues.insert((q.vhost.clone(), q.name.clone()));
            if first && !exists {
                *new_queues.entry(q.vhost.clone()).or_default() += 1;
            }
            queues.push(PlannedQueue {
                path,
                vhost: q.vhost.clone(),
                declare: QueueDeclare {
                    name: q.name.clone(),
                    passive: false,
                    durable: q.durable,
                    exclusive: false,
                    auto_delete: q.auto_delete,
                    arguments,
                },
            });
        }
        // RabbitMQ's `validate_limits`: the queues the file adds must fit each vhost's limit.
        for (vhost, adding) in &new_queues {
            let limit = state.vhosts.get(vhost).and_then(|v| v.limits.max_queues);
            let current = self.vhost(vhost).map(|v| v.queues().len()).unwrap_or(0);
            if let Some(max) = limit.filter(|m| *m >= 0)
                && current + adding > max as usize
            {
                return Err(invalid(
                    "queues",
                    format!(
                        "adding {adding} queue(s) to virtual host \"{vhost}\" would exceed the limit of {max} queue(s) (it has {current} now)"
                    ),
                ));
            }
        }
        let broker_exchange = |vhost: &str, name: &str| -> Option<ExchangeKind> {
            if let Some(kind) = file_exchanges.get(&(vhost.to_owned(), name.to_owned())) {
                return Some(*kind);
            }
            if let Some(x) = self.vhost(vhost).and_then(|v| v.exchange(name)) {
                return Some(x.kind);
            }
            // A vhost the file creates gets the predeclared exchanges.
            predeclared(name)
        };
        let mut bindings = Vec::new();
        for (i, b) in defs.bindings.iter().enumerate() {
            let path = format!("bindings[{i}]");
            need_vhost(&path, &b.vhost)?;
            if b.source.is_empty() {
                return Err(invalid(
                    format!("{path}.source"),
                    "bindings of the default exchange are implicit and cannot be declared",
                ));
            }
            let kind = broker_exchange(&b.vhost, &b.source).ok_or_else(|| {
                invalid(
                    format!("{path}.source"),
                    format!(
                        "exchange '{}' in vhost '{}' is neither in the file nor in the broker",
                        b.source, b.vhost
                    ),
                )
            })?;
            let dest = match b.destination_type.as_str() {
                "queue" => {
                    let known = file_queues.contains(&(b.vhost.clone(), b.destination.clone()))
                        || self
                            .vhost(&b.vhost)
                            .is_some_and(|v| v.queue(&b.destination, IMPORT_CONNECTION).is_ok());
                    if !known {
                        return Err(invalid(
                            format!("{path}.destination"),
                            format!(
                                "queue '{}' in vhost '{}' is neither in the file nor in the broker",
                                b.destination, b.vhost
                            ),
                        ));
                    }
                    Destination::Queue(Arc::from(b.destination.as_str()))
                }
                "exchange" => {
                    if b.destination.is_empty()
                        || broker_exchange(&b.vhost, &b.destination).is_none()
                    {
                        return Err(invalid(
                            format!("{path}.destination"),
                            format!(
                                "exchange '{}' in vhost '{}' is neither in the file nor in the broker",
                                b.destination, b.vhost
                            ),
                        ));
                    }
                    Destination::Exchange(Arc::from(b.destination.as_str()))
                }
                other => {
                    return Err(invalid(
                        format!("{path}.destination_type"),
                        format!("expected \"queue\" or \"exchange\", got \"{other}\""),
                    ));
                }
            };
            let arguments = json_to_table(&format!("{path}.arguments"), &b.arguments)?;
            kind.validate_binding(&arguments)
                .map_err(|e| invalid(format!("{path}.arguments"), e.to_string()))?;
            bindings.push(PlannedBinding {
                path,
                vhost: b.vhost.clone(),
                source: b.source.clone(),
                dest,
                routing_key: b.routing_key.clone(),
                arguments,
            });
        }
        Ok(Plan {
            commands: commands.into_iter().map(|(_, c)| c).collect(),
            vhosts: defs.vhosts.iter().map(|v| v.name.clone()).collect(),
            exchanges,
            queues,
            bindings,
            skipped,
        })
    }

    /// Everything a definitions document can hold, from the registry and the topology:
    /// users (with hash and algorithm), vhosts, permissions, topic permissions, limits,
    /// policies, operator policies, parameters, global parameters, and the exchanges,
    /// non-exclusive queues and bindings of every vhost. Sorted, so two exports of the same
    /// state are equal.
    pub fn export_definitions(&self) -> Definitions {
        let state = self.access().read(AccessState::clone);
        let mut defs = Definitions {
            rabbit_version: Some(FORMAT_VERSION.into()),
            rabbitmq_version: Some(FORMAT_VERSION.into()),
            product_name: Some("Warren".into()),
            product_version: Some(env!("CARGO_PKG_VERSION").into()),
            ..Definitions::default()
        };
        for (name, u) in &state.users {
            defs.users.push(UserDefinition {
                name: name.clone(),
                password_hash: u.password.password_hash.clone(),
                hashing_algorithm: Some(u.password.hashing_algorithm.as_str().into()),
                password: None,
                tags: u.tags.clone(),
                limits: u.limits,
            });
        }
        for (name, v) in &state.vhosts {
            defs.vhosts.push(VhostDefinition {
                name: name.clone(),
                limits: v.limits,
                metadata: VhostMetadata {
                    description: v.description.clone(),
                    tags: v.tags.clone(),
                    default_queue_type: v.default_queue_type.clone(),
                },
            });
            // RabbitMQ imports vhost limits from here, not from the vhost's `limits`.
            if v.limits != VhostLimits::default() {
                defs.parameters.push(ParameterDefinition {
                    vhost: name.clone(),
                    component: "vhost-limits".into(),
                    name: "limits".into(),
                    value: serde_json::to_value(v.limits).unwrap_or(Value::Null),
                });
            }
        }
        for ((vhost, user), p) in &state.permissions {
            defs.permissions.push(PermissionDefinition {
                user: user.clone(),
                vhost: vhost.clone(),
                configure: p.configure.clone(),
                write: p.write.clone(),
                read: p.read.clone(),
            });
        }
        for ((vhost, user, exchange), p) in &state.topic_permissions {
            defs.topic_permissions.push(TopicPermissionDefinition {
                user: user.clone(),
                vhost: vhost.clone(),
                exchange: exchange.clone(),
                write: p.write.clone(),
                read: p.read.clone(),
            });
        }
        for ((kind, vhost, name), p) in &state.policies {
            match kind {
                PolicyKind::Policy => defs.policies.push(PolicyDefinition {
                    vhost: vhost.clone(),
                    name: name.clone(),
                    pattern: p.pattern.clone(),
                    apply_to: p.apply_to.clone(),
                    priority: p.priority,
                    definition: p.definition.clone(),
                }),
                // As RabbitMQ: an operator policy is a runtime parameter. Its definition is
                // an object: RabbitMQ 3.10 exports a list of [key, value] pairs there but
                // refuses that form on import ("definition must be a dictionary").
                PolicyKind::OperatorPolicy => defs.parameters.push(ParameterDefinition {
                    vhost: vhost.clone(),
                    component: "operator_policy".into(),
                    name: name.clone(),
                    value: serde_json::json!({
                        "pattern": p.pattern,
                        "apply-to": p.apply_to,
                        "priority": p.priority,
                        "definition": p.definition,
                    }),
                }),
            }
        }
        for ((component, vhost, name), value) in &state.parameters {
            defs.parameters.push(ParameterDefinition {
                vhost: vhost.clone(),
                component: component.clone(),
                name: name.clone(),
                value: value.clone(),
            });
        }
        for (name, value) in &state.global_parameters {
            defs.global_parameters.push(GlobalParameterDefinition {
                name: name.clone(),
                value: value.clone(),
            });
        }
        for vhost in self.all_vhosts() {
            let mut exchanges = vhost.exchanges();
            exchanges.sort_by(|a, b| a.name.cmp(&b.name));
            for x in &exchanges {
                if !x.is_builtin() {
                    defs.exchanges.push(ExchangeDefinition {
                        vhost: vhost.name.to_string(),
                        name: x.name.to_string(),
                        kind: x.spec.kind.clone(),
                        durable: x.spec.durable,
                        auto_delete: x.spec.auto_delete,
                        internal: x.spec.internal,
                        arguments: table_to_json(&x.spec.arguments),
                    });
                }
                if x.name.is_empty() {
                    continue;
                }
                let mut bindings: Vec<BindingDefinition> = x
                    .bindings
                    .read()
                    .bindings()
                    .filter_map(|(dest, key, args)| {
                        let (destination, destination_type) = match dest {
                            Destination::Queue(q) => {
                                // Exclusive queues are not exported, nor their bindings.
                                let exclusive = vhost
                                    .queue(q, IMPORT_CONNECTION)
                                    .map_or(true, |q| q.spec.exclusive_owner.is_some());
                                if exclusive {
                                    return None;
                                }
                                (q.to_string(), "queue")
                            }
                            Destination::Exchange(e) => (e.to_string(), "exchange"),
                        };
                        Some(BindingDefinition {
                            vhost: vhost.name.to_string(),
                            source: x.name.to_string(),
                            destination,
                            destination_type: destination_type.into(),
                            routing_key: key.to_owned(),
                            arguments: table_to_json(args),
                        })
                    })
                    .collect();
                bindings.sort_by(|a, b| {
                    (&a.destination_type, &a.destination, &a.routing_key).cmp(&(
                        &b.destination_type,
                        &b.destination,
                        &b.routing_key,
                    ))
                });
                defs.bindings.extend(bindings);
            }
            let mut queues = vhost.queues();
            queues.sort_by(|a, b| a.name().cmp(b.name()));
            for q in queues {
                if q.spec.exclusive_owner.is_some() {
                    continue;
                }
                defs.queues.push(QueueDefinition {
                    vhost: vhost.name.to_string(),
                    name: q.name().to_string(),
                    queue_type: Some(q.queue_type().as_str().into()),
                    durable: q.spec.durable,
                    auto_delete: q.spec.auto_delete,
                    arguments: table_to_json(&q.spec.arguments),
                });
            }
        }
        defs.vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        defs.exchanges
            .sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        defs.queues
            .sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        defs.bindings.sort_by(|a, b| {
            (
                &a.vhost,
                &a.source,
                &a.destination_type,
                &a.destination,
                &a.routing_key,
            )
                .cmp(&(
                    &b.vhost,
                    &b.source,
                    &b.destination_type,
                    &b.destination,
                    &b.routing_key,
                ))
        });
        defs
    }
}

/// The kind of a predeclared exchange (every vhost has them).
fn predeclared(name: &str) -> Option<ExchangeKind> {
    Some(match name {
        "amq.direct" => ExchangeKind::Direct,
        "amq.fanout" => ExchangeKind::Fanout,
        "amq.topic" | "amq.rabbitmq.trace" => ExchangeKind::Topic,
        "amq.headers" | "amq.match" => ExchangeKind::Headers,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(json: &str) -> String {
        match Definitions::parse(json.as_bytes()) {
            Ok(_) => "parsed".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_its_path() {
        let json = r#"{"users": [
            {"name": "a", "password_hash": "", "tags": []},
            {"name": "b", "password_hash": "", "tags": []},
            {"name": "c", "password_hash": "", "tags": 7}]}"#;
        assert_eq!(
            error_of(json),
            "users[2].tags: expected a list of strings or a comma-separated string, got a number"
        );
        assert_eq!(
            error_of(r#"{"queues": [{"vhost": "/", "name": "q", "durable": "yes"}]}"#),
            "queues[0].durable: expected true or false, got a string"
        );
        assert_eq!(
            error_of(r#"{"bindings": {}}"#),
            "bindings: expected a list, got an object"
        );
        assert!(error_of("{ nope").starts_with("not valid JSON: "));
        assert_eq!(
            error_of("[]"),
            "not valid JSON: the document is not a JSON object"
        );
    }

    #[test]
    fn tags_are_a_list_or_a_comma_separated_string() {
        let defs = Definitions::parse(
            br#"{"users": [
                {"name": "a", "tags": ["administrator", "monitoring"]},
                {"name": "b", "tags": "administrator, monitoring"},
                {"name": "c", "tags": ""},
                {"name": "d", "administrator": true}]}"#,
        )
        .expect("parses");
        let tags: Vec<Vec<String>> = defs.users.iter().map(|u| u.tags.clone()).collect();
        assert_eq!(tags[0], ["administrator", "monitoring"]);
        assert_eq!(tags[1], ["administrator", "monitoring"]);
        assert!(tags[2].is_empty());
        assert_eq!(tags[3], ["administrator"]);
    }

    #[test]
    fn limits_and_definitions_may_be_objects_or_pair_lists() {
        let defs = Definitions::parse(
            br#"{"vhosts": [{"name": "v", "limits": [["max-queues", 3]]}],
                 "users": [{"name": "u", "tags": [], "limits": {"max-channels": 2}}],
                 "policies": [{"vhost": "v", "name": "p", "pattern": ".*",
                               "definition": [["max-length", 5]]}]}"#,
        )
        .expect("parses");
        assert_eq!(defs.vhosts[0].limits.max_queues, Some(3));
        assert_eq!(defs.users[0].limits.max_channels, Some(2));
        assert_eq!(
            defs.policies[0].definition.get("max-length"),
            Some(&Value::from(5))
        );
        assert_eq!(defs.policies[0].apply_to, "all");
        assert_eq!(
            error_of(r#"{"vhosts": [{"name": "v", "limits": {"max-bananas": 1}}]}"#),
            "vhosts[0].limits.max-bananas: unknown limit (known: max-connections, max-queues)"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let defs = Definitions::parse(
            br#"{"explanation": "x", "users": [{"name": "u", "tags": [], "colour": "red"}]}"#,
        )
        .expect("parses");
        assert_eq!(defs.users[0].name, "u");
    }

    #[test]
    fn amqp_values_round_trip_through_json() {
        let json: Map<String, Value> = serde_json::from_str(
            r#"{"s": "x", "i": -5, "f": 1.5, "b": true, "t": {"n": 1}, "a": [1, "two"]}"#,
        )
        .expect("json");
        let table = json_to_table("arguments", &json).expect("table");
        assert_eq!(
            table.inner().get("i"),
            Some(&AMQPValue::LongLongInt(-5)),
            "integers are signed 64-bit, as RabbitMQ's `long`"
        );
        assert_eq!(table_to_json(&table), json);
        let null: Map<String, Value> = serde_json::from_str(r#"{"x": null}"#).expect("json");
        assert_eq!(
            json_to_table("queues[0].arguments", &null)
                .err()
                .map(|e| e.to_string()),
            Some("queues[0].arguments.x: null is not an AMQP value".into())
        );
    }
}
