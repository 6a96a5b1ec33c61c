//! The binding table of one exchange: its bindings, and routing a message through them.
//!
//! [`BindingTable`] is the only mutable state of the crate. It keeps every binding once,
//! grouped by destination (which answers identity, listing and "queue deleted" cheaply), plus
//! an index shaped for the exchange kind:
//!
//! | kind    | routing index                                    | cost per message           |
//! |---------|--------------------------------------------------|----------------------------|
//! | direct  | routing key -> destinations (hash map)           | one lookup                 |
//! | fanout  | none: the destinations of the bindings           | one step per destination   |
//! | topic   | `topic` module trie over binding-key words       | words x live trie states   |
//! | headers | none: each binding's pre-parsed `headers` pattern | one test per binding  |
//!
//! The table is plain data (`Send + Sync` when `D` is): the broker puts it behind its own
//! lock, takes a read lock to route and a write lock to bind.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use amq_protocol_types::FieldTable;

use crate::arguments::same_arguments;
use crate::headers::HeadersPattern;
use crate::kind::ExchangeKind;
use crate::topic::TopicTrie;

/// The bindings of one exchange, generic over the destination type `D` (a queue or exchange
/// name, or an enum of both such as [`crate::Destination`]).
///
/// A binding is identified, as in RabbitMQ, by destination + routing key + arguments
/// (argument types included: see [`BindingTable::bind`]).
#[derive(Debug)]
pub struct BindingTable<D> {
    kind: ExchangeKind,
    /// Every binding: destination -> routing key -> the distinct argument tables.
    bindings: HashMap<D, HashMap<Arc<str>, Vec<Arguments>>>,
    len: usize,
    index: Index<D>,
}

/// One binding's arguments, with the headers pattern parsed from them at bind time.
#[derive(Debug)]
struct Arguments {
    table: FieldTable,
    /// Set only in a headers exchange.
    headers: Option<HeadersPattern>,
}

/// The kind-specific routing index.
#[derive(Debug)]
enum Index<D> {
    /// Direct: routing key -> destination -> number of bindings (distinct arguments).
    Direct(HashMap<Arc<str>, HashMap<D, u32>>),
    /// Fanout and headers route from `BindingTable::bindings` directly.
    ByDestination,
    Topic(TopicTrie<D>),
}

impl<D: Clone + Eq + Hash> BindingTable<D> {
    /// An empty table for an exchange of this kind.
    pub fn new(kind: ExchangeKind) -> Self {
        let index = match kind {
            ExchangeKind::Direct => Index::Direct(HashMap::new()),
            ExchangeKind::Fanout | ExchangeKind::Headers => Index::ByDestination,
            ExchangeKind::Topic => Index::Topic(TopicTrie::new()),
        };
        Self {
            kind,
            bindings: HashMap::new(),
            len: 0,
            index,
        }
    }

    /// The exchange kind this table routes for.
    pub fn kind(&self) -> ExchangeKind {
        self.kind
    }

    /// Adds a binding. Returns `false`, changing nothing, if an identical binding (same
    /// destination, routing key and arguments) already exists: binding is idempotent.
    ///
    /// Arguments are identical when they have the same keys and, per key, the same AMQP
    /// type and value (`long-int 1` and `long-long-int 1` make two bindings, as in
    /// RabbitMQ). For a headers exchange the arguments are parsed here, once; call
    /// [`crate::ExchangeKind::validate_binding`] first to refuse a bad `x-match`.
    pub fn bind(&mut self, destination: D, routing_key: &str, arguments: &FieldTable) -> bool {
        let by_key = self.bindings.entry(destination.clone()).or_default();
        // One allocation of the key, shared by this map and the direct index.
        let key: Arc<str> = match by_key.get_key_value(routing_key) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(routing_key),
        };
        let list = by_key.entry(Arc::clone(&key)).or_default();
        if list.iter().any(|a| same_arguments(&a.table, arguments)) {
            return false;
        }
        let headers =
            (self.kind == ExchangeKind::Headers).then(|| HeadersPattern::parse(arguments));
        list.push(Arguments {
            table: arguments.clone(),
            headers,
        });
        self.len += 1;
        match &mut self.index {
            Index::Direct(map) => {
                *map.entry(key).or_default().entry(destination).or_insert(0) += 1;
            }
            Index::Topic(trie) => trie.insert(routing_key, destination),
            Index::ByDestination => {}
        }
        true
    }

    /// Removes a binding. Returns `true` if it existed. Identity is destination + routing
    /// key + arguments, as for [`BindingTable::bind`].
    pub fn unbind(&mut self, destination: &D, routing_key: &str, arguments: &FieldTable) -> bool {
        let Some(by_key) = self.bindings.get_mut(destination) else {
            return false;
        };
        let Some(list) = by_key.get_mut(routing_key) else {
            return false;
        };
        let Some(position) = list
            .iter()
            .position(|a| same_arguments(&a.table, arguments))
        else {
            return false;
        };
        list.swap_remove(position);
        if list.is_empty() {
            by_key.remove(routing_key);
            if by_key.is_empty() {
                self.bindings.remove(destination);
            }
        }
        self.len -= 1;
        self.unindex(destination, routing_key, 1);
        true
    }

    /// Removes every binding to `destination` (its queue or exchange was deleted). Returns
    /// how many bindings were removed.
    pub fn remove_destination(&mut self, destination: &D) -> usize {
        let Some(by_key) = self.bindings.remove(destination) else {
            return 0;
        };
        let mut removed = 0;
        for (key, list) in &by_key {
            removed += list.len();
            self.unindex(
                destination,
                key,
                u32::try_from(list.len()).unwrap_or(u32::MAX),
            );
        }
        self.len -= removed;
        removed
    }

    /// Drops `count` bindings of (`destination`, `routing_key`) from the routing index.
    fn unindex(&mut self, destination: &D, routing_key: &str, count: u32) {
        match &mut self.index {
            Index::Direct(map) => {
                if let Some(destinations) = map.get_mut(routing_key) {
                    if let Some(n) = destinations.get_mut(destination) {
                        *n = n.saturating_sub(count);
                        if *n == 0 {
                            destinations.remove(destination);
                        }
                    }
                    if destinations.is_empty() {
                        map.remove(routing_key);
                    }
                }
            }
            Index::Topic(trie) => trie.remove(routing_key, destination, count),
            Index::ByDestination => {}
        }
    }

    /// Whether the table has no bindings.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of bindings.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether some binding of this exchange points at `destination`.
    pub fn has_destination(&self, destination: &D) -> bool {
        self.bindings.contains_key(destination)
    }

    /// Appends to `out` every destination the message matches, each at most once per call
    /// even if several bindings match it. `headers` is the message's `headers` property;
    /// only a headers exchange reads it, only direct and topic read the routing key.
    ///
    /// Destinations already in `out` before the call are not looked at: deduplication
    /// across exchanges is [`crate::route`]'s job.
    pub fn route(&self, routing_key: &str, headers: Option<&FieldTable>, out: &mut Vec<D>) {
        self.route_each(routing_key, headers, |d| out.push(d.clone()));
    }

    /// Calls `f` once for each destination the message matches (the visitor form of
    /// [`BindingTable::route`], for callers that sort destinations as they come).
    pub fn route_each(
        &self,
        routing_key: &str,
        headers: Option<&FieldTable>,
        mut f: impl FnMut(&D),
    ) {
        match (&self.index, self.kind) {
            (Index::Direct(map), _) => {
                if let Some(destinations) = map.get(routing_key) {
                    destinations.keys().for_each(f);
                }
            }
            (Index::Topic(trie), _) => trie.route_each(routing_key, f),
            (Index::ByDestination, ExchangeKind::Headers) => {
                for (destination, by_key) in &self.bindings {
                    let matched = by_key.values().flatten().any(|a| {
                        a.headers
                            .as_ref()
                            .is_some_and(|pattern| pattern.matches(headers))
                    });
                    if matched {
                        f(destination);
                    }
                }
            }
            (Index::ByDestination, _) => self.bindings.keys().for_each(f),
        }
    }

    /// Every binding as (destination, routing key, arguments), in no particular order.
    pub fn bindings(&self) -> impl Iterator<Item = (&D, &str, &FieldTable)> {
        self.bindings.iter().flat_map(|(destination, by_key)| {
            by_key.iter().flat_map(move |(key, list)| {
                list.iter().map(move |a| (destination, &**key, &a.table))
            })
        })
    }

    /// The bindings to one destination, as (routing key, arguments).
    pub fn bindings_to(&self, destination: &D) -> impl Iterator<Item = (&str, &FieldTable)> {
        self.bindings
            .get(destination)
            .into_iter()
            .flat_map(|by_key| {
                by_key
                    .iter()
                    .flat_map(|(key, list)| list.iter().map(move |a| (&**key, &a.table)))
            })
    }
}
