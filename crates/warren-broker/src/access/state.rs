//! [`AccessState`]: every vhost, user, permission, limit, policy and parameter, and the
//! deterministic step from a command to its effects.
//!
//! `plan` reads the state and a command and returns the record changes ([`Effect`]s) or
//! why the command is refused; `apply` makes the changes. The registry (`mod.rs`) stores
//! the effects between the two, so a refused command or a failed write changes nothing.

use std::collections::BTreeMap;

use super::command::{AccessCommand, AccessError};
use super::permissions::compile_pattern;
use super::records::{
    Effect, PermissionRecord, PolicyKind, PolicyRecord, Record, RecordKey, TopicPermissionRecord,
    UserRecord, VhostRecord,
};

/// The whole registry, in memory. Maps are ordered so listings and exports are stable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessState {
    /// Vhosts by name.
    pub vhosts: BTreeMap<String, VhostRecord>,
    /// Users by name.
    pub users: BTreeMap<String, UserRecord>,
    /// Permissions by (vhost, user).
    pub permissions: BTreeMap<(String, String), PermissionRecord>,
    /// Topic permissions by (vhost, user, exchange).
    pub topic_permissions: BTreeMap<(String, String, String), TopicPermissionRecord>,
    /// Policies and operator policies by (kind, vhost, name).
    pub policies: BTreeMap<(PolicyKind, String, String), PolicyRecord>,
    /// Runtime parameters by (component, vhost, name).
    pub parameters: BTreeMap<(String, String, String), serde_json::Value>,
    /// Global parameters by name.
    pub global_parameters: BTreeMap<String, serde_json::Value>,
}

const APPLY_TO: [&str; 6] = [
    "queues",
    "exchanges",
    "all",
    "classic_queues",
    "quorum_queues",
    "streams",
];

fn check_regex(pattern: &str) -> Result<(), AccessError> {
    // Topic patterns may hold `{username}`-style variables; check them as expanded.
    let expanded = pattern
        .replace("{username}", "u")
        .replace("{vhost}", "v")
        .replace("{client_id}", "c");
    compile_pattern(&expanded)
        .map(drop)
        .map_err(|reason| AccessError::InvalidRegex {
            pattern: pattern.to_owned(),
            reason,
        })
}

fn check_name(what: &str, name: &str) -> Result<(), AccessError> {
    if name.is_empty() {
        return Err(AccessError::Invalid(format!(
            "{what} name must not be empty"
        )));
    }
    if name.contains(super::records::SEP) {
        return Err(AccessError::Invalid(format!(
            "{what} name must not contain the control character U+001F"
        )));
    }
    Ok(())
}

impl AccessState {
    fn need_vhost(&self, vhost: &str) -> Result<(), AccessError> {
        if self.vhosts.contains_key(vhost) {
            Ok(())
        } else {
            Err(AccessError::NoSuchVhost(vhost.to_owned()))
        }
    }

    fn need_user(&self, user: &str) -> Result<&UserRecord, AccessError> {
        self.users
            .get(user)
            .ok_or_else(|| AccessError::NoSuchUser(user.to_owned()))
    }

    /// What `command` changes, or why it is refused. Reads only `self`.
    pub fn plan(&self, command: &AccessCommand) -> Result<Vec<Effect>, AccessError> {
        use AccessCommand as C;
        Ok(match command {
            C::PutVhost {
                name,
                description,
                tags,
                default_queue_type,
            } => {
                check_name("vhost", name)?;
                let limits = self.vhosts.get(name).map(|v| v.limits).unwrap_or_default();
                vec![Effect::Put(Record::Vhost(
                    name.clone(),
                    VhostRecord {
                        description: description.clone(),
                        tags: tags.clone(),
                        default_queue_type: default_queue_type.clone(),
                        limits,
                    },
                ))]
            }
            C::DeleteVhost { name } => {
                self.need_vhost(name)?;
                let mut effects = vec![Effect::Delete(RecordKey::Vhost(name.clone()))];
                effects.extend(
                    self.permissions
                        .keys()
                        .filter(|(v, _)| v == name)
                        .map(|(v, u)| Effect::Delete(RecordKey::Permission(v.clone(), u.clone()))),
                );
                effects.extend(self.topic_permissions.keys().filter(|k| &k.0 == name).map(
                    |(v, u, x)| {
                        Effect::Delete(RecordKey::TopicPermission(v.clone(), u.clone(), x.clone()))
                    },
                ));
                effects.extend(
                    self.policies
                        .keys()
                        .filter(|k| &k.1 == name)
                        .map(|(k, v, n)| {
                            Effect::Delete(RecordKey::Policy(*k, v.clone(), n.clone()))
                        }),
                );
                effects.extend(
                    self.parameters
                        .keys()
                        .filter(|k| &k.1 == name)
                        .map(|(c, v, n)| {
                            Effect::Delete(RecordKey::Parameter(c.clone(), v.clone(), n.clone()))
                        }),
                );
                effects
            }
            C::PutUser {
                name,
                password,
                tags,
            } => {
                check_name("user", name)?;
                let limits = self.users.get(name).map(|u| u.limits).unwrap_or_default();
                vec![Effect::Put(Record::User(
                    name.clone(),
                    UserRecord {
                        password: password.clone(),
                        tags: tags.clone(),
                        limits,
                    },
                ))]
            }
            C::DeleteUser { name } => {
                self.need_user(name)?;
                let mut effects = vec![Effect::Delete(RecordKey::User(name.clone()))];
                effects.extend(
                    self.permissions
                        .keys()
                        .filter(|(_, u)| u == name)
                        .map(|(v, u)| Effect::Delete(RecordKey::Permission(v.clone(), u.clone()))),
                );
                effects.extend(self.topic_permissions.keys().filter(|k| &k.1 == name).map(
                    |(v, u, x)| {
                        Effect::Delete(RecordKey::TopicPermission(v.clone(), u.clone(), x.clone()))
                    },
                ));
                effects
            }
            C::SetPermissions {
                user,
                vhost,
                configure,
                write,
                read,
            } => {
                self.need_user(user)?;
                self.need_vhost(vhost)?;
                for pattern in [configure, write, read] {
                    check_regex(pattern)?;
                }
                vec![Effect::Put(Record::Permission(
                    vhost.clone(),
                    user.clone(),
                    PermissionRecord {
                        configure: configure.clone(),
                        write: write.clone(),
                        read: read.clone(),
                    },
                ))]
            }
            C::ClearPermissions { user, vhost } => {
                self.need_user(user)?;
                self.need_vhost(vhost)?;
                vec![Effect::Delete(RecordKey::Permission(
                    vhost.clone(),
                    user.clone(),
                ))]
            }
            C::SetTopicPermissions {
                user,
                vhost,
                exchange,
                write,
                read,
            } => {
                self.need_user(user)?;
                self.need_vhost(vhost)?;
                for pattern in [write, read] {
                    check_regex(pattern)?;
                }
                vec![Effect::Put(Record::TopicPermission(
                    vhost.clone(),
                    user.clone(),
                    exchange.clone(),
                    TopicPermissionRecord {
                        write: write.clone(),
                        read: read.clone(),
                    },
                ))]
            }
            C::ClearTopicPermissions {
                user,
                vhost,
                exchange,
            } => {
                self.need_user(user)?;
                self.need_vhost(vhost)?;
                self.topic_permissions
                    .keys()
                    .filter(|(v, u, x)| {
                        v == vhost && u == user && exchange.as_ref().is_none_or(|e| e == x)
                    })
                    .map(|(v, u, x)| {
                        Effect::Delete(RecordKey::TopicPermission(v.clone(), u.clone(), x.clone()))
                    })
                    .collect()
            }
            C::SetVhostLimits { vhost, limits } => {
                let Some(record) = self.vhosts.get(vhost) else {
                    return Err(AccessError::NoSuchVhost(vhost.clone()));
                };
                vec![Effect::Put(Record::Vhost(
                    vhost.clone(),
                    VhostRecord {
                        limits: *limits,
                        ..record.clone()
                    },
                ))]
            }
            C::SetUserLimits { user, limits } => {
                let record = self.need_user(user)?;
                vec![Effect::Put(Record::User(
                    user.clone(),
                    UserRecord {
                        limits: *limits,
                        ..record.clone()
                    },
                ))]
            }
            C::SetPolicy {
                kind,
                vhost,
                name,
                policy,
            } => {
                self.need_vhost(vhost)?;
                check_name("policy", name)?;
                check_regex(&policy.pattern)?;
                if !APPLY_TO.contains(&policy.apply_to.as_str()) {
                    return Err(AccessError::Invalid(format!(
                        "'{}' is not a valid apply-to value (one of: {})",
                        policy.apply_to,
                        APPLY_TO.join(", ")
                    )));
                }
                if policy.definition.is_empty() {
                    return Err(AccessError::Invalid(format!(
                        "policy '{name}' has an empty definition"
                    )));
                }
                vec![Effect::Put(Record::Policy(
                    *kind,
                    vhost.clone(),
                    name.clone(),
                    policy.clone(),
                ))]
            }
            C::ClearPolicy { kind, vhost, name } => {
                self.need_vhost(vhost)?;
                vec![Effect::Delete(RecordKey::Policy(
                    *kind,
                    vhost.clone(),
                    name.clone(),
                ))]
            }
            C::SetParameter {
                component,
                vhost,
                name,
                value,
            } => {
                self.need_vhost(vhost)?;
                check_name("parameter component", component)?;
                check_name("parameter", name)?;
                vec![Effect::Put(Record::Parameter(
                    component.clone(),
                    vhost.clone(),
                    name.clone(),
                    value.clone(),
                ))]
            }
            C::ClearParameter {
                component,
                vhost,
                name,
            } => {
                self.need_vhost(vhost)?;
                vec![Effect::Delete(RecordKey::Parameter(
                    component.clone(),
                    vhost.clone(),
                    name.clone(),
                ))]
            }
            C::SetGlobalParameter { name, value } => {
                check_name("global parameter", name)?;
                vec![Effect::Put(Record::GlobalParameter(
                    name.clone(),
                    value.clone(),
                ))]
            }
            C::ClearGlobalParameter { name } => {
                vec![Effect::Delete(RecordKey::GlobalParameter(name.clone()))]
            }
        })
    }

    /// Make the changes. Infallible: `plan` validated them.
    pub fn apply(&mut self, effects: &[Effect]) {
        for effect in effects {
            match effect.clone() {
                Effect::Put(record) => self.put(record),
                Effect::Delete(key) => self.delete(&key),
            }
        }
    }

    pub(crate) fn put(&mut self, record: Record) {
        match record {
            Record::Vhost(name, r) => {
                self.vhosts.insert(name, r);
            }
            Record::User(name, r) => {
                self.users.insert(name, r);
            }
            Record::Permission(v, u, r) => {
                self.permissions.insert((v, u), r);
            }
            Record::TopicPermission(v, u, x, r) => {
                self.topic_permissions.insert((v, u, x), r);
            }
            Record::Policy(k, v, n, r) => {
                self.policies.insert((k, v, n), r);
            }
            Record::Parameter(c, v, n, value) => {
                self.parameters.insert((c, v, n), value);
            }
            Record::GlobalParameter(n, value) => {
                self.global_parameters.insert(n, value);
            }
        }
    }

    fn delete(&mut self, key: &RecordKey) {
        match key.clone() {
            RecordKey::Vhost(name) => {
                self.vhosts.remove(&name);
            }
            RecordKey::User(name) => {
                self.users.remove(&name);
            }
            RecordKey::Permission(v, u) => {
                self.permissions.remove(&(v, u));
            }
            RecordKey::TopicPermission(v, u, x) => {
                self.topic_permissions.remove(&(v, u, x));
            }
            RecordKey::Policy(k, v, n) => {
                self.policies.remove(&(k, v, n));
            }
            RecordKey::Parameter(c, v, n) => {
                self.parameters.remove(&(c, v, n));
            }
            RecordKey::GlobalParameter(n) => {
                self.global_parameters.remove(&n);
            }
        }
    }
}
