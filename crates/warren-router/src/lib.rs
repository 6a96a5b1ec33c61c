//! Exchanges and bindings: which queues a published message goes to.
//!
//! This crate is pure routing logic: no I/O, no async, no locks, no knowledge of frames or
//! of how queues store messages. The broker keeps one [`BindingTable`] per exchange behind
//! its own lock and calls in.
//!
//! # How data enters and leaves
//!
//! * **In:** `exchange.declare`'s type string becomes an [`ExchangeKind`]
//!   ([`ExchangeKind::parse`]; `None` means 503 COMMAND_INVALID). `queue.bind` /
//!   `exchange.bind` become [`BindingTable::bind`] after [`ExchangeKind::validate_binding`]
//!   (an error means 406 PRECONDITION_FAILED); `*.unbind` becomes [`BindingTable::unbind`];
//!   deleting a queue or exchange becomes [`BindingTable::remove_destination`] on every
//!   table that may bind it.
//! * **Out:** [`BindingTable::route`] appends the destinations one exchange matches, each
//!   once. [`route`] walks a whole virtual host through an [`ExchangeGraph`] the broker
//!   implements (exchange-to-exchange bindings, alternate exchanges, cycles) and appends
//!   each reached queue once.
//!
//! ```
//! use amq_protocol_types::FieldTable;
//! use warren_router::{BindingTable, ExchangeKind};
//!
//! let mut table = BindingTable::new(ExchangeKind::Topic);
//! let none = FieldTable::default();
//! assert!(table.bind("errors", "*.error.#", &none));
//! assert!(!table.bind("errors", "*.error.#", &none)); // idempotent
//! assert!(table.bind("all", "#", &none));
//!
//! let mut out = Vec::new();
//! table.route("kern.error.disk", None, &mut out);
//! out.sort();
//! assert_eq!(out, ["all", "errors"]);
//! ```
//!
//! # API
//!
//! ```text
//! ExchangeKind::{parse(&str) -> Option<Self>, as_str(&self) -> &'static str,
//!                validate_binding(self, &FieldTable) -> Result<(), BindingError>}
//! BindingTable<D: Clone + Eq + Hash>:
//!     new(ExchangeKind) -> Self
//!     bind(&mut self, D, routing_key: &str, &FieldTable) -> bool           // false: existed
//!     unbind(&mut self, &D, routing_key: &str, &FieldTable) -> bool        // true: existed
//!     remove_destination(&mut self, &D) -> usize
//!     len, is_empty, kind, has_destination(&D) -> bool
//!     route(&self, routing_key, Option<&FieldTable>, out: &mut Vec<D>)
//!     route_each(&self, routing_key, Option<&FieldTable>, impl FnMut(&D))
//!     bindings(&self) -> impl Iterator<Item = (&D, &str, &FieldTable)>
//!     bindings_to(&self, &D) -> impl Iterator<Item = (&str, &FieldTable)>
//! BindingTable<Destination<Q, E>>::route_split(&self, rk, headers, &mut Vec<Q>, &mut Vec<E>)
//! trait ExchangeGraph { type Queue; type Exchange;
//!     route_from(&self, &Exchange, rk, headers, &mut Vec<Queue>, &mut Vec<Exchange>) -> bool;
//!     alternate(&self, &Exchange) -> Option<Exchange>; }
//! route(&G, source: &G::Exchange, rk, headers, queues: &mut Vec<G::Queue>) -> usize
//! ```
//!
//! # Layout
//!
//! * [`kind`]: [`ExchangeKind`], the exchange type names.
//! * `table`: [`BindingTable`], the bindings of one exchange, direct and fanout routing, and
//!   the dispatch to the kind-specific matchers.
//! * `topic`: the topic trie and its matching rules (empty words, `*`, `#`).
//! * [`headers`]: headers-exchange patterns, `x-match` modes and value comparison.
//! * [`graph`]: [`ExchangeGraph`] and [`route`], the walk across exchanges.
//! * `arguments`: when two argument tables name the same binding.
//! * `seen`: the small "at most once" set used on the routing path.
//! * `error`: [`BindingError`].
//!
//! The exact RabbitMQ rules each matcher follows are written at the top of its module.

mod arguments;
mod error;
pub mod graph;
pub mod headers;
pub mod kind;
mod seen;
mod table;
mod topic;

pub use error::BindingError;
pub use graph::{Destination, ExchangeGraph, route};
pub use headers::MatchMode;
pub use kind::ExchangeKind;
pub use table::BindingTable;
