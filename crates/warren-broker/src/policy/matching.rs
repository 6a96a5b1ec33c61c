//! Which policy applies to a queue or an exchange: RabbitMQ 3.10's `rabbit_policy:match`.
//!
//! A vhost's policies (and, separately, its operator policies) are compiled once per
//! registry change into a [`VhostPolicies`] list, sorted by priority, highest first. An
//! object gets the first policy of the list whose `apply-to` covers its kind and whose
//! pattern matches its name (an unanchored search, as Erlang's `re:run`); at most one
//! policy and one operator policy apply to any object. Exclusive and server-named
//! (`amq.gen-*`) queues and the `amq.*` and default exchanges are matched like any other
//! object, as in RabbitMQ.
//!
//! Ties: RabbitMQ sorts matching policies with a stable sort on priority over the order
//! its parameter table lists them in, which is the table's hash order (unspecified). Warren
//! breaks ties by name, ascending, so the choice is at least stable across restarts.
//!
//! `apply-to` in 3.10 is `queues`, `exchanges` or `all`; the values later versions added
//! (`classic_queues`, `quorum_queues`, `streams`) are refused when a policy is set
//! (`validate.rs`) and, should one come from an older store, match nothing.

use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Value};

use crate::access::{AccessState, PolicyKind, PolicyRecord};

/// What kind of object is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    /// A queue.
    Queue,
    /// An exchange.
    Exchange,
}

/// A policy that applies to an object: its name and definition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Named {
    /// The policy's name.
    pub name: Arc<str>,
    /// Its definition as set.
    pub definition: Arc<Map<String, Value>>,
}

/// The policy and the operator policy that apply to one object (either may be absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Applied {
    /// The user policy.
    pub policy: Option<Named>,
    /// The operator policy.
    pub operator: Option<Named>,
}

#[derive(Debug)]
struct Compiled {
    named: Named,
    queues: bool,
    exchanges: bool,
    /// `None`: a pattern that does not compile (refused when set; matches nothing).
    regex: Option<Regex>,
}

impl Compiled {
    fn new(name: &str, record: &PolicyRecord) -> Compiled {
        let (queues, exchanges) = match record.apply_to.as_str() {
            "all" => (true, true),
            "queues" => (true, false),
            "exchanges" => (false, true),
            _ => (false, false),
        };
        let regex = Regex::new(&record.pattern).ok();
        if regex.is_none() {
            tracing::warn!(policy = name, pattern = %record.pattern, "policy pattern does not compile; the policy matches nothing");
        }
        Compiled {
            named: Named {
                name: Arc::from(name),
                definition: Arc::new(record.definition.clone()),
            },
            queues,
            exchanges,
            regex,
        }
    }

    fn matches(&self, kind: ObjectKind, name: &str) -> bool {
        let kind_ok = match kind {
            ObjectKind::Queue => self.queues,
            ObjectKind::Exchange => self.exchanges,
        };
        kind_ok && self.regex.as_ref().is_some_and(|re| re.is_match(name))
    }
}

/// One vhost's policies and operator policies, compiled and sorted; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct VhostPolicies {
    policies: Vec<Compiled>,
    operator: Vec<Compiled>,
}

impl VhostPolicies {
    /// Compile the policies of `vhost` in `state`.
    pub fn compile(state: &AccessState, vhost: &str) -> VhostPolicies {
        let mut out = VhostPolicies::default();
        let mut sorted: Vec<(PolicyKind, &str, &PolicyRecord)> = state
            .policies
            .iter()
            .filter(|((_, v, _), _)| v == vhost)
            .map(|((kind, _, name), record)| (*kind, name.as_str(), record))
            .collect();
        // Highest priority first; equal priorities by name (the map's order, kept by a
        // stable sort).
        sorted.sort_by_key(|p| std::cmp::Reverse(p.2.priority));
        for (kind, name, record) in sorted {
            let compiled = Compiled::new(name, record);
            match kind {
                PolicyKind::Policy => out.policies.push(compiled),
                PolicyKind::OperatorPolicy => out.operator.push(compiled),
            }
        }
        out
    }

    /// The policy and operator policy that apply to the object `name` of `kind`.
    pub fn lookup(&self, kind: ObjectKind, name: &str) -> Applied {
        let first = |list: &[Compiled]| {
            list.iter()
                .find(|p| p.matches(kind, name))
                .map(|p| p.named.clone())
        };
        Applied {
            policy: first(&self.policies),
            operator: first(&self.operator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(pattern: &str, apply_to: &str, priority: i64) -> PolicyRecord {
        PolicyRecord {
            pattern: pattern.into(),
            apply_to: apply_to.into(),
            priority,
            definition: json!({"max-length": priority})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    fn state(policies: &[(PolicyKind, &str, &str, PolicyRecord)]) -> AccessState {
        let mut state = AccessState::default();
        for (kind, vhost, name, record) in policies {
            state.policies.insert(
                (*kind, (*vhost).to_owned(), (*name).to_owned()),
                record.clone(),
            );
        }
        state
    }

    fn name(applied: &Option<Named>) -> Option<&str> {
        applied.as_ref().map(|n| n.name.as_ref())
    }

    #[test]
    fn highest_priority_matching_policy_wins() {
        let s = state(&[
            (PolicyKind::Policy, "/", "low", record(".*", "all", 1)),
            (PolicyKind::Policy, "/", "high", record("^q", "queues", 5)),
            (PolicyKind::Policy, "/", "higher", record("^x", "queues", 9)),
        ]);
        let p = VhostPolicies::compile(&s, "/");
        assert_eq!(
            name(&p.lookup(ObjectKind::Queue, "q1").policy),
            Some("high")
        );
        assert_eq!(name(&p.lookup(ObjectKind::Queue, "z").policy), Some("low"));
        assert_eq!(
            name(&p.lookup(ObjectKind::Exchange, "q1").policy),
            Some("low")
        );
    }

    #[test]
    fn equal_priorities_break_by_name() {
        let s = state(&[
            (PolicyKind::Policy, "/", "b", record(".*", "all", 3)),
            (PolicyKind::Policy, "/", "a", record(".*", "all", 3)),
        ]);
        let p = VhostPolicies::compile(&s, "/");
        assert_eq!(name(&p.lookup(ObjectKind::Queue, "q").policy), Some("a"));
    }

    #[test]
    fn apply_to_and_vhost_limit_what_matches() {
        let s = state(&[
            (PolicyKind::Policy, "/", "ex", record(".*", "exchanges", 1)),
            (PolicyKind::Policy, "other", "q", record(".*", "queues", 1)),
            (
                PolicyKind::Policy,
                "/",
                "cq",
                record(".*", "classic_queues", 9),
            ),
            (
                PolicyKind::OperatorPolicy,
                "/",
                "op",
                record("^q", "queues", 0),
            ),
        ]);
        let p = VhostPolicies::compile(&s, "/");
        let q = p.lookup(ObjectKind::Queue, "q");
        assert_eq!(name(&q.policy), None);
        assert_eq!(name(&q.operator), Some("op"));
        assert_eq!(name(&p.lookup(ObjectKind::Exchange, "").policy), Some("ex"));
        assert_eq!(p.lookup(ObjectKind::Queue, "z"), Applied::default());
    }

    #[test]
    fn pattern_is_an_unanchored_search() {
        let s = state(&[(PolicyKind::Policy, "/", "p", record("mid", "all", 0))]);
        let p = VhostPolicies::compile(&s, "/");
        assert!(p.lookup(ObjectKind::Queue, "a-mid-b").policy.is_some());
        assert!(p.lookup(ObjectKind::Queue, "ab").policy.is_none());
    }
}
