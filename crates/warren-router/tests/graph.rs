//! The whole-vhost walk: exchange-to-exchange bindings, alternate exchanges, cycles.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use amq_protocol_types::FieldTable;
use warren_router::{BindingTable, Destination, ExchangeGraph, ExchangeKind, route};

type Dest = Destination<&'static str, &'static str>;

/// A toy vhost: the shape the broker will have, minus the locks.
#[derive(Default)]
struct Vhost {
    exchanges: HashMap<&'static str, (BindingTable<Dest>, Option<&'static str>)>,
    calls: std::cell::Cell<usize>,
}

impl Vhost {
    fn declare(&mut self, name: &'static str, kind: ExchangeKind, alternate: Option<&'static str>) {
        self.exchanges
            .insert(name, (BindingTable::new(kind), alternate));
    }

    fn bind(&mut self, source: &'static str, destination: Dest, key: &str) {
        self.exchanges
            .get_mut(source)
            .unwrap()
            .0
            .bind(destination, key, &FieldTable::default());
    }

    fn route(&self, source: &'static str, key: &str) -> Vec<&'static str> {
        let mut queues = vec!["preexisting"];
        let n = route(self, &source, key, None, &mut queues);
        assert_eq!(queues.remove(0), "preexisting");
        assert_eq!(n, queues.len());
        queues
    }
}

impl ExchangeGraph for Vhost {
    type Queue = &'static str;
    type Exchange = &'static str;

    fn route_from(
        &self,
        exchange: &&'static str,
        routing_key: &str,
        headers: Option<&FieldTable>,
        queues: &mut Vec<&'static str>,
        exchanges: &mut Vec<&'static str>,
    ) -> bool {
        self.calls.set(self.calls.get() + 1);
        let Some((table, _)) = self.exchanges.get(exchange) else {
            return false;
        };
        table.route_split(routing_key, headers, queues, exchanges);
        true
    }

    fn alternate(&self, exchange: &&'static str) -> Option<&'static str> {
        self.exchanges.get(exchange).and_then(|(_, ae)| *ae)
    }
}

use Destination::{Exchange, Queue};

#[test]
fn single_exchange_routes_to_its_queues() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Direct, None);
    v.bind("x", Queue("q1"), "k");
    v.bind("x", Queue("q2"), "k");
    let mut got = v.route("x", "k");
    got.sort_unstable();
    assert_eq!(got, ["q1", "q2"]);
}

#[test]
fn exchange_to_exchange_binding_forwards_with_same_key() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, None);
    v.declare("y", ExchangeKind::Topic, None);
    v.bind("x", Exchange("y"), "");
    v.bind("x", Queue("q0"), "");
    v.bind("y", Queue("q1"), "a.*");
    v.bind("y", Queue("q2"), "b.*");
    assert_eq!(v.route("x", "a.z"), ["q0", "q1"]);
}

#[test]
fn queue_reached_twice_is_reported_once() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, None);
    v.declare("y", ExchangeKind::Fanout, None);
    v.declare("z", ExchangeKind::Fanout, None);
    v.bind("x", Queue("q"), "");
    v.bind("x", Exchange("y"), "");
    v.bind("x", Exchange("z"), "");
    v.bind("y", Queue("q"), "");
    v.bind("y", Queue("r"), "");
    v.bind("z", Queue("r"), "");
    v.bind("z", Queue("q"), "");
    assert_eq!(v.route("x", ""), ["q", "r"]);
}

#[test]
fn many_queues_through_two_exchanges_are_deduplicated() {
    const NAMES: [&str; 40] = [
        "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q12", "q13",
        "q14", "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22", "q23", "q24", "q25", "q26",
        "q27", "q28", "q29", "q30", "q31", "q32", "q33", "q34", "q35", "q36", "q37", "q38", "q39",
    ];
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, None);
    v.declare("y", ExchangeKind::Fanout, None);
    v.bind("x", Exchange("y"), "");
    for q in NAMES {
        v.bind("x", Queue(q), "");
        v.bind("y", Queue(q), "");
    }
    let mut got = v.route("x", "");
    got.sort_unstable();
    let mut want = NAMES.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn binding_cycle_visits_each_exchange_once() {
    let mut v = Vhost::default();
    v.declare("a", ExchangeKind::Fanout, None);
    v.declare("b", ExchangeKind::Fanout, None);
    v.declare("c", ExchangeKind::Fanout, None);
    v.bind("a", Exchange("b"), "");
    v.bind("b", Exchange("c"), "");
    v.bind("c", Exchange("a"), "");
    v.bind("c", Queue("q"), "");
    v.bind("a", Exchange("a"), "");
    assert_eq!(v.route("a", ""), ["q"]);
    assert_eq!(v.calls.get(), 3);
}

#[test]
fn unroutable_message_goes_to_alternate_exchange() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Direct, Some("ae"));
    v.declare("ae", ExchangeKind::Fanout, None);
    v.bind("x", Queue("q"), "k");
    v.bind("ae", Queue("unrouted"), "");
    assert_eq!(v.route("x", "k"), ["q"]);
    assert_eq!(v.route("x", "other"), ["unrouted"]);
}

#[test]
fn alternate_exchanges_chain_recursively() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Direct, Some("ae1"));
    v.declare("ae1", ExchangeKind::Direct, Some("ae2"));
    v.declare("ae2", ExchangeKind::Fanout, None);
    v.bind("ae2", Queue("last"), "");
    assert_eq!(v.route("x", "k"), ["last"]);
}

#[test]
fn alternate_exchange_cycle_is_harmless() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Direct, Some("y"));
    v.declare("y", ExchangeKind::Direct, Some("x"));
    assert!(v.route("x", "k").is_empty());
    assert_eq!(v.calls.get(), 2);
}

#[test]
fn missing_alternate_exchange_is_ignored() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Direct, Some("gone"));
    assert!(v.route("x", "k").is_empty());
}

#[test]
fn missing_source_routes_nowhere() {
    let v = Vhost::default();
    assert!(v.route("nope", "k").is_empty());
}

#[test]
fn matching_an_exchange_that_routes_nowhere_does_not_use_the_alternate() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, Some("ae"));
    v.declare("empty", ExchangeKind::Fanout, None);
    v.declare("ae", ExchangeKind::Fanout, None);
    v.bind("x", Exchange("empty"), "");
    v.bind("ae", Queue("unrouted"), "");
    assert!(v.route("x", "k").is_empty());
}

#[test]
fn binding_to_a_missing_exchange_still_counts_as_routed() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, Some("ae"));
    v.declare("ae", ExchangeKind::Fanout, None);
    v.bind("x", Exchange("deleted"), "");
    v.bind("ae", Queue("unrouted"), "");
    assert!(v.route("x", "k").is_empty());
}

#[test]
fn downstream_exchange_uses_its_own_alternate() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, Some("ae-x"));
    v.declare("y", ExchangeKind::Direct, Some("ae-y"));
    v.declare("ae-x", ExchangeKind::Fanout, None);
    v.declare("ae-y", ExchangeKind::Fanout, None);
    v.bind("x", Exchange("y"), "");
    v.bind("ae-x", Queue("from-x"), "");
    v.bind("ae-y", Queue("from-y"), "");
    assert_eq!(v.route("x", "k"), ["from-y"]);
}

#[test]
fn alternate_already_visited_is_not_walked_again() {
    let mut v = Vhost::default();
    v.declare("x", ExchangeKind::Fanout, None);
    v.declare("y", ExchangeKind::Direct, Some("x"));
    v.bind("x", Exchange("y"), "");
    v.bind("x", Queue("q"), "");
    assert_eq!(v.route("x", "k"), ["q"]);
    assert_eq!(v.calls.get(), 2);
}
