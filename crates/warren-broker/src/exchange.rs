//! Exchanges: a declared kind and flags plus a binding table from `warren-router`.
//!
//! The binding table sits behind a `parking_lot::RwLock`: publishes take the read lock
//! for the length of one table lookup, binds and unbinds take the write lock.
//!
//! A delayed exchange (`crate::delayed`) also has a [`Hold`]; a publish to any other
//! exchange pays one `Option` check for it.
//!
//! The alternate exchange is the `alternate-exchange` argument or, without one, the
//! policy's (`crate::policy`); it is replaced when the policies change and read only when
//! a publish matched nothing.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use warren_router::{BindingTable, Destination, ExchangeKind};

use crate::delayed::Hold;
use crate::policy::{Applied, PolicyView, exchange_alternate, merged_definition};
use crate::stats::MessageCounters;

/// A binding destination: a queue or an exchange, by name.
pub type Dest = Destination<Arc<str>, Arc<str>>;

/// Declared properties of an exchange (also its stored definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeSpec {
    /// Name.
    pub name: String,
    /// Kind as its AMQP name.
    pub kind: String,
    /// Survives restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Cannot be published to directly.
    pub internal: bool,
    /// Arguments.
    pub arguments: FieldTable,
}

/// One exchange.
#[derive(Debug)]
pub struct Exchange {
    /// Name.
    pub name: Arc<str>,
    /// Kind.
    pub kind: ExchangeKind,
    /// Declared properties.
    pub spec: ExchangeSpec,
    /// The `alternate-exchange` argument.
    declared_alternate: Option<Arc<str>>,
    /// The alternate exchange in effect (argument, else policy).
    alternate: RwLock<Option<Arc<str>>>,
    /// The policy and operator policy that apply.
    applied: Mutex<Applied>,
    /// Bindings from this exchange.
    pub bindings: RwLock<BindingTable<Dest>>,
    /// `publish_in` / `publish_out`, added by publishing channels once per batch.
    pub stats: MessageCounters,
    /// The held messages of a delayed exchange.
    hold: Option<Arc<Hold>>,
}

impl Exchange {
    /// Build from a spec whose kind was validated.
    pub fn new(kind: ExchangeKind, spec: ExchangeSpec) -> Self {
        let alternate = match spec.arguments.inner().get("alternate-exchange") {
            Some(AMQPValue::LongString(s)) => {
                Some(Arc::from(String::from_utf8_lossy(s.as_bytes()).as_ref()))
            }
            Some(AMQPValue::ShortString(s)) => Some(Arc::from(s.as_str())),
            _ => None,
        };
        Self {
            name: Arc::from(spec.name.as_str()),
            kind,
            alternate: RwLock::new(alternate.clone()),
            declared_alternate: alternate,
            applied: Mutex::new(Applied::default()),
            bindings: RwLock::new(BindingTable::new(kind)),
            stats: MessageCounters::default(),
            hold: None,
            spec,
        }
    }

    /// The same exchange, delaying messages into `hold`.
    pub(crate) fn with_hold(mut self, hold: Arc<Hold>) -> Self {
        self.hold = Some(hold);
        self
    }

    /// The held messages of a delayed exchange; `None` for every other exchange.
    pub fn hold(&self) -> Option<&Arc<Hold>> {
        self.hold.as_ref()
    }

    /// The alternate exchange in effect: the `alternate-exchange` argument, else the
    /// policy's.
    pub fn alternate(&self) -> Option<Arc<str>> {
        self.alternate.read().clone()
    }

    /// Apply the policies that match this exchange now.
    pub(crate) fn apply_policy(&self, applied: Applied) {
        let definition = merged_definition(&applied);
        *self.alternate.write() = exchange_alternate(self.declared_alternate.as_ref(), &definition);
        *self.applied.lock() = applied;
    }

    /// The policy and operator policy that apply, and their merged definition (the
    /// management API shows `policy`).
    pub fn policy_view(&self) -> PolicyView {
        PolicyView::of(&self.applied.lock())
    }

    /// True for the predeclared `amq.*` exchanges and the default exchange.
    pub fn is_builtin(&self) -> bool {
        self.name.is_empty() || self.name.starts_with("amq.")
    }
}
