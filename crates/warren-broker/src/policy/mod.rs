//! Policies and operator policies applied to queues and exchanges, as RabbitMQ 3.10 does.
//!
//! ```text
//!   Broker::set_policy / clear_policy ── validate (validate.rs, RabbitMQ's texts)
//!        │                                   │
//!        │      AccessCommand::SetPolicy / ClearPolicy (the registry's one change path,
//!        │      stored durably with the rest of the access registry)
//!        ▼
//!   VHost::apply_policies ── VhostPolicies (matching.rs: compiled, by priority)
//!        │                          │ one policy + one operator policy per object
//!        ▼                          ▼
//!   Exchange::apply_policy    Queue::apply_policy ── effective.rs: merged definition,
//!   (alternate exchange)      (TTL, expiry, DLX, limits; trims a live queue at once)
//! ```
//!
//! The registry holds the policies; this module decides which applies to what and what
//! that means. An object gets its policies when it is declared or recovered, and every
//! object of a vhost is matched again whenever a policy of that vhost is set, changed or
//! cleared, and after a definitions import. A queue keeps the result (its effective
//! settings and which policies apply) under its own lock, so the publish path reads the
//! same fields it always did: nothing is looked up per message.
//!
//! Classic queues act on `message-ttl`, `expires`, `max-length`, `max-length-bytes`,
//! `overflow`, `dead-letter-exchange`, `dead-letter-routing-key` (and accept
//! `queue-mode`, which changes nothing: they page the same in both modes); exchanges act
//! on `alternate-exchange`. Keys of other queue types and of mirroring (`delivery-limit`,
//! `max-age`, `ha-mode`, ...) are validated and stored and show in the effective
//! definition, with no effect on classic queues, as in RabbitMQ.
//!
//! # Layout
//! - `matching.rs`: [`VhostPolicies`]: which policy applies to an object.
//! - `effective.rs`: merging a policy with an operator policy and with the object's own
//!   arguments.
//! - `validate.rs`: the checks made when a policy is set.
//! - `erlang_term.rs`: values printed as RabbitMQ's error texts print them.

mod effective;
mod erlang_term;
mod matching;
mod validate;

use serde_json::{Map, Value};

pub(crate) use effective::{exchange_alternate, merged_definition, queue_settings};
pub(crate) use matching::{Applied, ObjectKind, VhostPolicies};
pub(crate) use validate::validate;

use crate::access::{AccessCommand, AccessError, PolicyKind, PolicyRecord};
use crate::broker::Broker;

/// Why a policy could not be set or cleared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy does not pass RabbitMQ's validation; one text per failing field, in
    /// RabbitMQ's order (see [`PolicyError::management_reason`]).
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// The vhost does not exist.
    #[error("vhost '{0}' does not exist")]
    NoSuchVhost(String),
    /// Clearing a policy that does not exist.
    #[error("policy '{name}' does not exist in vhost '{vhost}'")]
    NotFound {
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
    },
    /// The registry refused or could not store the change.
    #[error(transparent)]
    Access(#[from] AccessError),
}

impl PolicyError {
    /// For `Invalid`: the `reason` RabbitMQ's management API sends with its 400
    /// (`"Validation failed\n\n<text>\n"`, one line per failing field). The API
    /// HTML-escapes it for `/api/policies` (`<<` as `&lt;&lt;`) but not for
    /// `/api/operator-policies`.
    pub fn management_reason(&self) -> String {
        match self {
            PolicyError::Invalid(errors) => {
                let mut reason = String::from("Validation failed\n\n");
                for e in errors {
                    reason.push_str(e);
                    reason.push('\n');
                }
                reason
            }
            other => other.to_string(),
        }
    }
}

/// What applies to one queue or exchange, for the management API (RabbitMQ's `policy`,
/// `operator_policy` and `effective_policy_definition` fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyView {
    /// The policy's name, if one applies.
    pub policy: Option<String>,
    /// The operator policy's name, if one applies.
    pub operator_policy: Option<String>,
    /// The two definitions merged (empty when neither applies).
    pub effective_policy_definition: Map<String, Value>,
}

impl PolicyView {
    pub(crate) fn of(applied: &Applied) -> PolicyView {
        PolicyView {
            policy: applied.policy.as_ref().map(|p| p.name.to_string()),
            operator_policy: applied.operator.as_ref().map(|p| p.name.to_string()),
            effective_policy_definition: merged_definition(applied),
        }
    }
}

impl Broker {
    /// Set (create or replace) a policy or operator policy: validate it as RabbitMQ does,
    /// store it through the registry, then match every queue and exchange of the vhost
    /// again (live queues change behaviour at once).
    pub fn set_policy(
        &self,
        vhost: &str,
        name: &str,
        kind: PolicyKind,
        policy: PolicyRecord,
    ) -> Result<(), PolicyError> {
        if self.access().vhost(vhost).is_none() {
            return Err(PolicyError::NoSuchVhost(vhost.to_owned()));
        }
        validate(kind, &policy).map_err(PolicyError::Invalid)?;
        self.access().apply(AccessCommand::SetPolicy {
            kind,
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            policy,
        })?;
        self.apply_policies(vhost);
        Ok(())
    }

    /// Clear a policy or operator policy and match the vhost's objects again.
    pub fn clear_policy(
        &self,
        vhost: &str,
        name: &str,
        kind: PolicyKind,
    ) -> Result<(), PolicyError> {
        if self.access().vhost(vhost).is_none() {
            return Err(PolicyError::NoSuchVhost(vhost.to_owned()));
        }
        let key = (kind, vhost.to_owned(), name.to_owned());
        if !self
            .access()
            .read(|state| state.policies.contains_key(&key))
        {
            return Err(PolicyError::NotFound {
                vhost: vhost.to_owned(),
                name: name.to_owned(),
            });
        }
        self.access().apply(AccessCommand::ClearPolicy {
            kind,
            vhost: vhost.to_owned(),
            name: name.to_owned(),
        })?;
        self.apply_policies(vhost);
        Ok(())
    }

    /// Match every queue and exchange of `vhost` against its policies again (after any
    /// change of them: `set_policy`, `clear_policy`, a definitions import).
    pub fn apply_policies(&self, vhost: &str) {
        if let Some(v) = self.vhost(vhost) {
            v.apply_policies();
        }
    }
}
