//! Permission checks: a user's three regular expressions (configure, write, read) over
//! resource names in one vhost, and topic permissions over routing keys, compiled once per
//! (user, vhost) and checked with RabbitMQ's 403 texts.
//!
//! A [`Permissions`] is immutable; the registry compiles it on first use and caches it until
//! the next change. A connection keeps its `Arc` and asks the registry again only when the
//! registry's generation moved ([`ConnectionAccess`]), so a check on the publish path is one
//! relaxed atomic load and one match, never a compile.

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use super::state::AccessState;
use crate::error::BrokerError;

/// Compile a permission pattern as RabbitMQ reads it: unanchored, and the empty pattern
/// means "nothing" (`^$`).
pub fn compile_pattern(pattern: &str) -> Result<Pattern, String> {
    match pattern {
        ".*" | "^.*" | "^.*$" | ".*$" => Ok(Pattern::Any),
        "" => Ok(Pattern::Regex(Regex::new("^$").map_err(|e| e.to_string())?)),
        _ => Regex::new(pattern)
            .map(Pattern::Regex)
            .map_err(|e| e.to_string()),
    }
}

/// A compiled pattern. `.*` (what most users have) needs no regex at all.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Matches every name.
    Any,
    /// Matches no name (a user without permissions in the vhost).
    Nothing,
    /// A regular expression, searched anywhere in the name (as Erlang's `re:run`).
    Regex(Regex),
}

impl Pattern {
    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Nothing => false,
            Pattern::Regex(re) => re.is_match(name),
        }
    }
}

/// Which permission a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Create and delete resources.
    Configure,
    /// Inject messages into a resource.
    Write,
    /// Take messages out of a resource.
    Read,
}

/// What kind of resource is checked (it is named in the refusal text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A queue.
    Queue,
    /// An exchange (`""`, the default exchange, is checked as `amq.default`).
    Exchange,
}

impl ResourceKind {
    fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Queue => "queue",
            ResourceKind::Exchange => "exchange",
        }
    }
}

#[derive(Debug)]
struct TopicPatterns {
    write: Pattern,
    read: Pattern,
}

/// One user's compiled permissions in one vhost.
#[derive(Debug)]
pub struct Permissions {
    user: Arc<str>,
    vhost: Arc<str>,
    /// Whether the user has a permission record in the vhost (may open it).
    granted: bool,
    /// The user has the `impersonator` tag (may publish with another `user_id`).
    impersonator: bool,
    configure: Pattern,
    write: Pattern,
    read: Pattern,
    topic: HashMap<String, TopicPatterns>,
}

impl Permissions {
    /// Compile `user`'s permissions in `vhost` from `state`. Without a permission record
    /// every check fails. Topic patterns get `{username}`, `{vhost}` and, when the
    /// connection has one, `{client_id}` substituted (literally, as RabbitMQ does) before
    /// they are compiled. A pattern that no longer compiles (it compiled when it was set)
    /// denies.
    pub fn compile(
        state: &AccessState,
        user: &str,
        vhost: &str,
        client_id: Option<&str>,
    ) -> Permissions {
        let compile = |p: &str| compile_pattern(p).unwrap_or(Pattern::Nothing);
        let record = state.permissions.get(&(vhost.to_owned(), user.to_owned()));
        let expand = |p: &str| {
            let mut p = p.replace("{username}", user).replace("{vhost}", vhost);
            if let Some(id) = client_id {
                p = p.replace("{client_id}", id);
            }
            p
        };
        let topic = state
            .topic_permissions
            .iter()
            .filter(|((v, u, _), _)| v == vhost && u == user)
            .map(|((_, _, exchange), r)| {
                (
                    exchange.clone(),
                    TopicPatterns {
                        write: compile(&expand(&r.write)),
                        read: compile(&expand(&r.read)),
                    },
                )
            })
            .collect();
        Permissions {
            user: Arc::from(user),
            vhost: Arc::from(vhost),
            granted: record.is_some(),
            impersonator: state
                .users
                .get(user)
                .is_some_and(|u| u.tags.iter().any(|t| t == "impersonator")),
            configure: record.map_or(Pattern::Nothing, |r| compile(&r.configure)),
            write: record.map_or(Pattern::Nothing, |r| compile(&r.write)),
            read: record.map_or(Pattern::Nothing, |r| compile(&r.read)),
            topic,
        }
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The vhost.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// May the user open the vhost at all (has it any permission record there)?
    pub fn may_open_vhost(&self) -> bool {
        self.granted
    }

    /// May the user publish messages whose `user_id` property names another user (the
    /// `impersonator` tag, as RabbitMQ)?
    pub fn may_impersonate(&self) -> bool {
        self.impersonator
    }

    /// Does the user hold `permission` on resource `name` of `kind`? Otherwise the 403
    /// RabbitMQ sends: `access to queue 'q' in vhost '/' refused for user 'u'`.
    pub fn check(
        &self,
        permission: Permission,
        kind: ResourceKind,
        name: &str,
    ) -> Result<(), BrokerError> {
        let name = if kind == ResourceKind::Exchange && name.is_empty() {
            "amq.default"
        } else {
            name
        };
        let pattern = match permission {
            Permission::Configure => &self.configure,
            Permission::Write => &self.write,
            Permission::Read => &self.read,
        };
        if pattern.matches(name) {
            Ok(())
        } else {
            Err(BrokerError::AccessRefused(format!(
                "access to {} '{name}' in vhost '{}' refused for user '{}'",
                kind.as_str(),
                self.vhost,
                self.user
            )))
        }
    }

    /// Topic permission on a *topic* exchange (the caller checks the type): may the user
    /// publish with (`Write`) or bind / consume with (`Read`) `routing_key`? Granted when the
    /// user has no topic permission on that exchange, as in RabbitMQ.
    pub fn check_topic(
        &self,
        permission: Permission,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BrokerError> {
        let Some(patterns) = self.topic.get(exchange) else {
            return Ok(());
        };
        let pattern = match permission {
            Permission::Write => &patterns.write,
            Permission::Read | Permission::Configure => &patterns.read,
        };
        if pattern.matches(routing_key) {
            Ok(())
        } else {
            Err(BrokerError::AccessRefused(format!(
                "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{}' refused for user '{}'",
                self.vhost, self.user
            )))
        }
    }

    /// Whether any topic permission applies (lets a caller skip routing-key checks).
    pub fn has_topic_permissions(&self) -> bool {
        !self.topic.is_empty()
    }

    /// Whether the user has topic permissions on `exchange` (otherwise every routing key
    /// is granted there, and a caller need not look the exchange's type up).
    pub fn has_topic_permissions_on(&self, exchange: &str) -> bool {
        self.topic.contains_key(exchange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::records::{PermissionRecord, TopicPermissionRecord};

    fn state(configure: &str, write: &str, read: &str) -> AccessState {
        let mut state = AccessState::default();
        state.permissions.insert(
            ("/".into(), "alice".into()),
            PermissionRecord {
                configure: configure.into(),
                write: write.into(),
                read: read.into(),
            },
        );
        state
    }

    #[test]
    fn patterns_are_unanchored_like_erlang_re_run() {
        let p = Permissions::compile(&state("app", "^app-", ""), "alice", "/", None);
        assert!(
            p.check(Permission::Configure, ResourceKind::Queue, "my-app-queue")
                .is_ok()
        );
        assert!(
            p.check(Permission::Write, ResourceKind::Exchange, "app-x")
                .is_ok()
        );
        let refused = p
            .check(Permission::Write, ResourceKind::Exchange, "x-app-")
            .expect_err("anchored");
        assert_eq!(
            refused.to_string(),
            "ACCESS_REFUSED - access to exchange 'x-app-' in vhost '/' refused for user 'alice'"
        );
    }

    #[test]
    fn an_empty_pattern_grants_nothing_and_the_default_exchange_is_amq_default() {
        let p = Permissions::compile(&state("", "amq\\.default", ""), "alice", "/", None);
        assert!(p.check(Permission::Read, ResourceKind::Queue, "q").is_err());
        assert!(
            p.check(Permission::Write, ResourceKind::Exchange, "")
                .is_ok()
        );
        let p = Permissions::compile(&state(".*", "^$", ".*"), "alice", "/", None);
        let refused = p
            .check(Permission::Write, ResourceKind::Exchange, "")
            .expect_err("refused");
        assert!(refused.to_string().contains("exchange 'amq.default'"));
    }

    #[test]
    fn a_user_without_a_record_is_refused_everything() {
        let p = Permissions::compile(&state(".*", ".*", ".*"), "bob", "/", None);
        assert!(!p.may_open_vhost());
        assert!(p.check(Permission::Read, ResourceKind::Queue, "q").is_err());
    }

    #[test]
    fn topic_patterns_expand_username_vhost_and_client_id() {
        let mut s = state(".*", ".*", ".*");
        s.topic_permissions.insert(
            ("/".into(), "alice".into(), "amq.topic".into()),
            TopicPermissionRecord {
                write: "^{username}\\.{client_id}\\.".into(),
                read: "^{vhost}".into(),
            },
        );
        let p = Permissions::compile(&s, "alice", "/", Some("c1"));
        assert!(
            p.check_topic(Permission::Write, "amq.topic", "alice.c1.x")
                .is_ok()
        );
        let refused = p
            .check_topic(Permission::Write, "amq.topic", "bob.c1.x")
            .expect_err("refused");
        assert_eq!(
            refused.to_string(),
            "ACCESS_REFUSED - access to topic 'bob.c1.x' in exchange 'amq.topic' in vhost '/' refused for user 'alice'"
        );
        assert!(p.check_topic(Permission::Read, "amq.topic", "/a").is_ok());
        assert!(
            p.check_topic(Permission::Write, "other", "anything")
                .is_ok()
        );
    }
}
