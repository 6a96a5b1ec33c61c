//! Exchanges: a declared kind and flags plus a binding table from `warren-router`.
//!
//! The binding table sits behind a `parking_lot::RwLock`: publishes take the read lock
//! for the length of one table lookup, binds and unbinds take the write lock.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use warren_router::{BindingTable, Destination, ExchangeKind};

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
    pub alternate: Option<Arc<str>>,
    /// Bindings from this exchange.
    pub bindings: RwLock<BindingTable<Dest>>,
    /// `publish_in` / `publish_out`, added by publishing channels once per batch.
    pub stats: MessageCounters,
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
            alternate,
            bindings: RwLock::new(BindingTable::new(kind)),
            stats: MessageCounters::default(),
            spec,
        }
    }

    /// True for the predeclared `amq.*` exchanges and the default exchange.
    pub fn is_builtin(&self) -> bool {
        self.name.is_empty() || self.name.starts_with("amq.")
    }
}
