//! The whole-vhost walk: exchange-to-exchange bindings and alternate exchanges.
//!
//! A message published to one exchange may reach queues through other exchanges it is
//! bound to, and, when an exchange matches nothing at all, through that exchange's
//! alternate exchange. [`route`] does this walk over any [`ExchangeGraph`], which the
//! broker implements on its registry of exchanges; this module owns no state.
//!
//! # Semantics (RabbitMQ's `rabbit_exchange:route/2`)
//!
//! * Each exchange is visited at most once per message (the source included), so binding
//!   cycles and alternate-exchange cycles are harmless.
//! * Each queue is reported once, in the order first reached (breadth first from the source).
//! * An exchange whose own bindings match no destination at all (no queue and no exchange)
//!   hands the message to its alternate exchange, which is walked like any other exchange
//!   (and may have its own alternate). Matching only an exchange that then routes nowhere
//!   does **not** trigger the alternate exchange, nor does matching only a queue that was
//!   already reached through another exchange.
//! * An exchange that does not exist (an alternate exchange never declared, a binding to an
//!   exchange being deleted) is skipped silently.

use std::collections::VecDeque;
use std::hash::Hash;

use amq_protocol_types::FieldTable;

use crate::seen::SeenSet;
use crate::table::BindingTable;

/// Where a binding points: a queue or another exchange (exchange-to-exchange binding).
///
/// A ready-made destination type for [`BindingTable`]; the broker may use its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination<Q, E> {
    /// A queue, by name (or handle).
    Queue(Q),
    /// An exchange, by name (or handle).
    Exchange(E),
}

impl<Q: Clone + Eq + Hash, E: Clone + Eq + Hash> BindingTable<Destination<Q, E>> {
    /// [`BindingTable::route`], with the matched destinations sorted into queues and
    /// exchanges: the body of a typical [`ExchangeGraph::route_from`].
    pub fn route_split(
        &self,
        routing_key: &str,
        headers: Option<&FieldTable>,
        queues: &mut Vec<Q>,
        exchanges: &mut Vec<E>,
    ) {
        self.route_each(routing_key, headers, |destination| match destination {
            Destination::Queue(q) => queues.push(q.clone()),
            Destination::Exchange(e) => exchanges.push(e.clone()),
        });
    }
}

/// The exchanges of one virtual host, as [`route`] needs to see them.
///
/// Written for a broker that keeps `DashMap<Arc<str>, Arc<Exchange>>` with a
/// `parking_lot::RwLock<BindingTable<_>>` in each exchange: `route_from` looks the exchange
/// up, takes the read lock, routes, and releases both before returning, so [`route`] never
/// holds two exchanges at once and no lock order between exchanges can deadlock. The same
/// shape with std types:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, RwLock};
///
/// use amq_protocol_types::FieldTable;
/// use warren_router::{BindingTable, Destination, ExchangeGraph, ExchangeKind, route};
///
/// struct Exchange {
///     bindings: RwLock<BindingTable<Destination<Arc<str>, Arc<str>>>>,
///     alternate: Option<Arc<str>>,
/// }
/// struct Vhost {
///     exchanges: HashMap<Arc<str>, Arc<Exchange>>, // a DashMap in the broker
/// }
///
/// impl ExchangeGraph for Vhost {
///     type Queue = Arc<str>;
///     type Exchange = Arc<str>;
///
///     fn route_from(
///         &self,
///         exchange: &Arc<str>,
///         routing_key: &str,
///         headers: Option<&FieldTable>,
///         queues: &mut Vec<Arc<str>>,
///         exchanges: &mut Vec<Arc<str>>,
///     ) -> bool {
///         let Some(x) = self.exchanges.get(exchange) else { return false };
///         let Ok(table) = x.bindings.read() else { return false };
///         table.route_split(routing_key, headers, queues, exchanges);
///         true
///     }
///
///     fn alternate(&self, exchange: &Arc<str>) -> Option<Arc<str>> {
///         self.exchanges.get(exchange)?.alternate.clone()
///     }
/// }
///
/// let mut orders = BindingTable::new(ExchangeKind::Direct);
/// orders.bind(Destination::Queue("billing".into()), "new", &FieldTable::default());
/// let mut vhost = Vhost { exchanges: HashMap::new() };
/// vhost.exchanges.insert(
///     "orders".into(),
///     Arc::new(Exchange { bindings: RwLock::new(orders), alternate: Some("unrouted".into()) }),
/// );
/// let mut unrouted = BindingTable::new(ExchangeKind::Fanout);
/// unrouted.bind(Destination::Queue("dead-ends".into()), "", &FieldTable::default());
/// vhost.exchanges.insert(
///     "unrouted".into(),
///     Arc::new(Exchange { bindings: RwLock::new(unrouted), alternate: None }),
/// );
///
/// let mut queues = Vec::new();
/// route(&vhost, &"orders".into(), "new", None, &mut queues);
/// assert_eq!(queues, [Arc::from("billing")]);
/// queues.clear();
/// route(&vhost, &"orders".into(), "old", None, &mut queues);
/// assert_eq!(queues, [Arc::from("dead-ends")]);
/// ```
pub trait ExchangeGraph {
    /// How a queue is named in the results (e.g. `Arc<str>`).
    type Queue: Clone + Eq + Hash;
    /// How an exchange is named (e.g. `Arc<str>`).
    type Exchange: Clone + Eq + Hash;

    /// Routes the message through the one exchange `exchange`, appending the queues and
    /// exchanges its bindings match (each at most once, as [`BindingTable::route`] does).
    /// Returns `false` if there is no such exchange.
    ///
    /// The default exchange (`""`) is the broker's to implement here: it routes to the
    /// queue named by the routing key, if that queue exists.
    fn route_from(
        &self,
        exchange: &Self::Exchange,
        routing_key: &str,
        headers: Option<&FieldTable>,
        queues: &mut Vec<Self::Queue>,
        exchanges: &mut Vec<Self::Exchange>,
    ) -> bool;

    /// The alternate exchange of `exchange` (its `alternate-exchange` argument, or a
    /// policy's), whether or not that exchange exists. Asked only when `exchange` matched
    /// nothing.
    fn alternate(&self, exchange: &Self::Exchange) -> Option<Self::Exchange>;
}

/// Routes a message published to `source` through the graph, appending to `queues` every
/// queue it reaches, each once (queues already in `queues` before the call are not looked
/// at). Returns how many queues were appended; zero means unroutable (`basic.return` 312
/// NO_ROUTE for a mandatory publish).
///
/// See the [module documentation](self) for the exact rules.
pub fn route<G: ExchangeGraph + ?Sized>(
    graph: &G,
    source: &G::Exchange,
    routing_key: &str,
    headers: Option<&FieldTable>,
    queues: &mut Vec<G::Queue>,
) -> usize {
    let start = queues.len();
    // Nothing below allocates for the common publish that stays in one exchange: the
    // worklist, the seen sets and the matched-exchange buffer stay empty.
    let mut pending = VecDeque::new();
    let mut seen_exchanges = SeenSet::new();
    let mut matched_exchanges = Vec::new();
    let mut seen_queues: Option<SeenSet<G::Queue>> = None;
    let mut visited = 0usize;
    let mut first = Some(source.clone());

    while let Some(exchange) = first.take().or_else(|| pending.pop_front()) {
        let before = queues.len();
        matched_exchanges.clear();
        if !graph.route_from(
            &exchange,
            routing_key,
            headers,
            queues,
            &mut matched_exchanges,
        ) {
            continue;
        }
        visited += 1;
        let matched_nothing = queues.len() == before && matched_exchanges.is_empty();

        if visited > 1 {
            let seen = seen_queues.get_or_insert_with(|| {
                let mut seen = SeenSet::new();
                for queue in queues.get(start..before).unwrap_or_default() {
                    seen.insert(queue.clone());
                }
                seen
            });
            retain_new(queues, before, seen);
        }

        if matched_nothing && let Some(alternate) = graph.alternate(&exchange) {
            matched_exchanges.push(alternate);
        }
        if visited == 1 && !matched_exchanges.is_empty() {
            // Only now can an exchange be reached twice; the source counts as seen.
            seen_exchanges.insert(source.clone());
        }
        for next in matched_exchanges.drain(..) {
            if seen_exchanges.insert(next.clone()) {
                pending.push_back(next);
            }
        }
    }
    queues.len() - start
}

/// Keeps, among `queues[from..]`, the first occurrence of each queue not yet in `seen`.
fn retain_new<Q: Clone + Eq + Hash>(queues: &mut Vec<Q>, from: usize, seen: &mut SeenSet<Q>) {
    let mut kept = from;
    for i in from..queues.len() {
        if queues.get(i).is_some_and(|q| seen.insert(q.clone())) {
            queues.swap(kept, i);
            kept += 1;
        }
    }
    queues.truncate(kept);
}
