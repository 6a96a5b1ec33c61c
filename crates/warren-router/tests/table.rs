//! Binding-table behaviour common to all kinds: identity, direct and fanout routing,
//! removal and listing.
#![allow(clippy::unwrap_used)]

use amq_protocol_types::{AMQPValue, FieldTable, LongString};
use warren_router::{BindingTable, ExchangeKind};

fn none() -> FieldTable {
    FieldTable::default()
}

fn args(key: &str, value: AMQPValue) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(key.into(), value);
    t
}

fn routed(table: &BindingTable<&'static str>, key: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    table.route(key, None, &mut out);
    out.sort_unstable();
    out
}

#[test]
fn direct_routes_on_exact_key_only() {
    let mut t = BindingTable::new(ExchangeKind::Direct);
    t.bind("q1", "orange", &none());
    t.bind("q2", "black", &none());
    t.bind("q2", "green", &none());
    t.bind("q3", "orange", &none());
    assert_eq!(routed(&t, "orange"), ["q1", "q3"]);
    assert_eq!(routed(&t, "green"), ["q2"]);
    assert!(routed(&t, "Orange").is_empty());
    assert!(routed(&t, "orange.x").is_empty());
    assert!(routed(&t, "").is_empty());
}

#[test]
fn direct_empty_key_is_a_key_like_any_other() {
    let mut t = BindingTable::new(ExchangeKind::Direct);
    t.bind("q", "", &none());
    assert_eq!(routed(&t, ""), ["q"]);
    assert!(routed(&t, "a").is_empty());
}

#[test]
fn direct_wildcards_are_literal() {
    let mut t = BindingTable::new(ExchangeKind::Direct);
    t.bind("q", "#", &none());
    assert!(routed(&t, "a").is_empty());
    assert_eq!(routed(&t, "#"), ["q"]);
}

#[test]
fn fanout_ignores_the_routing_key() {
    let mut t = BindingTable::new(ExchangeKind::Fanout);
    t.bind("q1", "", &none());
    t.bind("q2", "whatever", &none());
    assert_eq!(routed(&t, "anything"), ["q1", "q2"]);
    assert_eq!(routed(&t, ""), ["q1", "q2"]);
}

#[test]
fn binding_is_idempotent() {
    for kind in ExchangeKind::ALL {
        let mut t = BindingTable::new(kind);
        assert!(t.bind("q", "k", &none()));
        assert!(!t.bind("q", "k", &none()), "{kind}");
        assert_eq!(t.len(), 1);
    }
}

#[test]
fn arguments_are_part_of_binding_identity() {
    let mut t = BindingTable::new(ExchangeKind::Direct);
    assert!(t.bind("q", "k", &none()));
    assert!(t.bind("q", "k", &args("a", AMQPValue::LongInt(1))));
    assert!(t.bind("q", "k", &args("a", AMQPValue::LongLongInt(1))));
    assert!(!t.bind("q", "k", &args("a", AMQPValue::LongInt(1))));
    assert_eq!(t.len(), 3);
    // Still one destination per route call.
    assert_eq!(routed(&t, "k"), ["q"]);
    assert!(!t.unbind(&"q", "k", &args("a", AMQPValue::LongInt(2))));
    assert!(t.unbind(&"q", "k", &args("a", AMQPValue::LongInt(1))));
    assert!(t.unbind(&"q", "k", &none()));
    assert_eq!(routed(&t, "k"), ["q"]);
    assert!(t.unbind(&"q", "k", &args("a", AMQPValue::LongLongInt(1))));
    assert!(routed(&t, "k").is_empty());
    assert!(t.is_empty());
}

#[test]
fn routing_key_is_part_of_binding_identity() {
    let mut t = BindingTable::new(ExchangeKind::Fanout);
    assert!(t.bind("q", "a", &none()));
    assert!(t.bind("q", "b", &none()));
    assert_eq!(routed(&t, "x"), ["q"]);
    assert!(!t.unbind(&"q", "c", &none()));
    assert!(t.unbind(&"q", "a", &none()));
    assert_eq!(routed(&t, "x"), ["q"]);
    assert!(t.unbind(&"q", "b", &none()));
    assert!(routed(&t, "x").is_empty());
}

#[test]
fn unbind_of_unknown_binding_changes_nothing() {
    let mut t = BindingTable::new(ExchangeKind::Direct);
    t.bind("q", "k", &none());
    assert!(!t.unbind(&"other", "k", &none()));
    assert!(!t.unbind(&"q", "other", &none()));
    assert_eq!(t.len(), 1);
    assert_eq!(routed(&t, "k"), ["q"]);
}

#[test]
fn remove_destination_drops_all_its_bindings() {
    for kind in ExchangeKind::ALL {
        let mut t = BindingTable::new(kind);
        t.bind("q", "a.b", &none());
        t.bind("q", "a.*", &none());
        t.bind("q", "a.b", &args("x", AMQPValue::Boolean(true)));
        t.bind("r", "a.b", &none());
        assert_eq!(t.remove_destination(&"q"), 3, "{kind}");
        assert_eq!(t.remove_destination(&"q"), 0);
        assert_eq!(t.len(), 1);
        assert!(!t.has_destination(&"q"));
        assert_eq!(routed(&t, "a.b"), ["r"], "{kind}");
        assert_eq!(t.remove_destination(&"r"), 1);
        assert!(t.is_empty());
        assert!(routed(&t, "a.b").is_empty());
    }
}

#[test]
fn bindings_lists_every_binding_once() {
    let mut t = BindingTable::new(ExchangeKind::Topic);
    let with_arg = args("k", AMQPValue::LongString(LongString::from("v")));
    t.bind("q", "a.#", &none());
    t.bind("q", "a.#", &with_arg);
    t.bind("r", "b", &none());
    let mut listed: Vec<(&str, &str, usize)> = t
        .bindings()
        .map(|(d, k, a)| (*d, k, a.inner().len()))
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, [("q", "a.#", 0), ("q", "a.#", 1), ("r", "b", 0)]);
    let mut to_q: Vec<(&str, usize)> = t
        .bindings_to(&"q")
        .map(|(k, a)| (k, a.inner().len()))
        .collect();
    to_q.sort_unstable();
    assert_eq!(to_q, [("a.#", 0), ("a.#", 1)]);
    assert_eq!(t.bindings_to(&"nobody").count(), 0);
}

#[test]
fn route_appends_without_touching_earlier_entries() {
    let mut t = BindingTable::new(ExchangeKind::Fanout);
    t.bind("q", "", &none());
    let mut out = vec!["q", "earlier"];
    t.route("", None, &mut out);
    assert_eq!(out, ["q", "earlier", "q"]);
}

#[test]
fn table_is_send_and_sync_for_the_broker_lock() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BindingTable<std::sync::Arc<str>>>();
}
