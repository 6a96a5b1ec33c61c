//! Topic exchange behaviour, and the trie checked against a naive recursive matcher.
#![allow(clippy::unwrap_used)]

use amq_protocol_types::FieldTable;
use proptest::prelude::*;
use warren_router::{BindingTable, ExchangeKind};

/// The reference model: RabbitMQ's rules written as plainly as possible.
fn naive_words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

fn naive_match(pattern: &[&str], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((&"#", rest)) => (0..=words.len()).any(|skip| naive_match(rest, &words[skip..])),
        Some((&"*", rest)) => !words.is_empty() && naive_match(rest, &words[1..]),
        Some((literal, rest)) => words.first() == Some(literal) && naive_match(rest, &words[1..]),
    }
}

fn naive(binding_key: &str, routing_key: &str) -> bool {
    naive_match(&naive_words(binding_key), &naive_words(routing_key))
}

fn matches(binding_key: &str, routing_key: &str) -> bool {
    let mut table = BindingTable::new(ExchangeKind::Topic);
    table.bind("q", binding_key, &FieldTable::default());
    let mut out = Vec::new();
    table.route(routing_key, None, &mut out);
    assert!(out.len() <= 1);
    assert_eq!(
        naive(binding_key, routing_key),
        !out.is_empty(),
        "reference model disagrees on {binding_key:?} vs {routing_key:?}"
    );
    !out.is_empty()
}

fn routed(table: &BindingTable<&'static str>, routing_key: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    table.route(routing_key, None, &mut out);
    out.sort_unstable();
    out
}

#[test]
fn literal_key_matches_only_itself() {
    assert!(matches("a.b.c", "a.b.c"));
    assert!(!matches("a.b.c", "a.b"));
    assert!(!matches("a.b.c", "a.b.c.d"));
    assert!(!matches("a.b.c", "a.b.x"));
}

#[test]
fn star_matches_exactly_one_word() {
    assert!(matches("a.*", "a.b"));
    assert!(matches("*.b", "a.b"));
    assert!(!matches("a.*", "a.b.c"));
    assert!(!matches("a.*.c", "a.c"));
}

#[test]
fn star_does_not_match_empty_sequence() {
    assert!(!matches("*", ""));
    assert!(!matches("a.*", "a"));
}

#[test]
fn star_matches_an_empty_word() {
    assert!(matches("a.*", "a."));
    assert!(matches("*.b", ".b"));
    assert!(matches("a.*.c", "a..c"));
}

#[test]
fn hash_matches_zero_words() {
    assert!(matches("#", ""));
    assert!(matches("a.#", "a"));
    assert!(matches("#.a", "a"));
    assert!(matches("a.#.b", "a.b"));
}

#[test]
fn hash_matches_many_words() {
    assert!(matches("#", "a.b.c"));
    assert!(matches("a.#", "a.b.c"));
    assert!(matches("a.#.z", "a.b.c.d.z"));
    assert!(!matches("a.#.z", "a.b.c.d"));
}

#[test]
fn hash_backtracks_over_repeated_words() {
    assert!(matches("#.a.#", "a"));
    assert!(matches("#.a.#", "x.a.y"));
    assert!(matches("#.a.#", "a.a.a"));
    assert!(!matches("#.a.#", "x.y"));
    assert!(matches("#.a.b", "a.b.a.b"));
    assert!(matches("#.a.b", "a.a.b"));
    assert!(!matches("#.a.b", "a.b.a"));
    assert!(matches("a.#.#.b", "a.b"));
    assert!(matches("a.#.#.b", "a.x.y.b"));
    assert!(matches("#.*.#", "x"));
    assert!(!matches("#.*.#", ""));
    assert!(matches("*.#.*", "a.b"));
    assert!(!matches("*.#.*", "a"));
}

#[test]
fn empty_routing_key_is_zero_words() {
    assert!(matches("", ""));
    assert!(matches("#", ""));
    assert!(!matches("*", ""));
    assert!(!matches("", "a"));
    assert!(!matches("a", ""));
}

#[test]
fn dot_alone_is_two_empty_words() {
    assert!(matches(".", "."));
    assert!(matches("*.*", "."));
    assert!(matches("#", "."));
    assert!(!matches("*", "."));
    assert!(!matches("", "."));
}

#[test]
fn wildcards_inside_a_word_are_literal() {
    assert!(matches("a*", "a*"));
    assert!(!matches("a*", "ab"));
    assert!(!matches("a#", "a.b"));
    assert!(matches("a#.b", "a#.b"));
}

#[test]
fn routing_key_wildcard_words_are_plain_words() {
    assert!(matches("*", "*"));
    assert!(matches("#", "#"));
    assert!(!matches("a", "*"));
    assert!(!matches("a.b", "#"));
}

#[test]
fn destination_reported_once_when_several_patterns_match() {
    let mut table = BindingTable::new(ExchangeKind::Topic);
    let none = FieldTable::default();
    for key in ["#", "a.#", "*.b", "a.b", "#.b", "a.#.#.b"] {
        assert!(table.bind("q", key, &none));
    }
    table.bind("r", "a.*", &none);
    assert_eq!(routed(&table, "a.b"), ["q", "r"]);
}

#[test]
fn unbinding_one_pattern_keeps_the_others_routing() {
    let mut table = BindingTable::new(ExchangeKind::Topic);
    let none = FieldTable::default();
    table.bind("q", "a.#", &none);
    table.bind("q", "a.*", &none);
    table.bind("p", "a.#.#", &none);
    assert!(table.unbind(&"q", "a.#", &none));
    assert_eq!(routed(&table, "a.b"), ["p", "q"]);
    assert_eq!(routed(&table, "a.b.c"), ["p"]);
    assert!(table.unbind(&"p", "a.#.#", &none));
    assert_eq!(routed(&table, "a.b.c"), Vec::<&str>::new());
    assert!(table.unbind(&"q", "a.*", &none));
    assert!(routed(&table, "a.b").is_empty());
    assert!(table.is_empty());
}

#[test]
fn collapsed_hash_runs_stay_distinct_bindings() {
    let mut table = BindingTable::new(ExchangeKind::Topic);
    let none = FieldTable::default();
    assert!(table.bind("q", "a.#", &none));
    assert!(table.bind("q", "a.#.#", &none));
    assert_eq!(table.len(), 2);
    assert!(table.unbind(&"q", "a.#.#", &none));
    assert_eq!(routed(&table, "a.b"), ["q"]);
    assert!(!table.unbind(&"q", "a.#.#", &none));
    assert!(table.unbind(&"q", "a.#", &none));
    assert!(routed(&table, "a.b").is_empty());
}

#[test]
fn pathological_hash_patterns_route_quickly() {
    let mut table = BindingTable::new(ExchangeKind::Topic);
    table.bind("q", "#.a.#.a.#.a.#.a.#.a.#.a.#.b", &FieldTable::default());
    let key = vec!["a"; 120].join(".");
    assert!(routed(&table, &key).is_empty());
    assert_eq!(routed(&table, &format!("{key}.b")), ["q"]);
}

#[test]
fn hundred_thousand_bindings_route_by_trie() {
    let none = FieldTable::default();
    let mut table: BindingTable<u32> = BindingTable::new(ExchangeKind::Topic);
    for i in 0..100_000u32 {
        let key = match i % 4 {
            0 => format!("stock.{i}.nyse"),
            1 => format!("stock.*.{i}"),
            2 => format!("{i}.#"),
            _ => format!("#.{i}.#"),
        };
        assert!(table.bind(i, &key, &none));
    }
    assert_eq!(table.len(), 100_000);
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    for i in 0..10_000u32 {
        out.clear();
        table.route(&format!("stock.{i}.nyse"), None, &mut out);
        // `stock.{i}.nyse` exists for i % 4 == 0, `#.{i}.#` for i % 4 == 3.
        assert_eq!(out.is_empty(), matches!(i % 4, 1 | 2), "{i}");
    }
    out.clear();
    table.route("stock.8.nyse", None, &mut out);
    out.sort_unstable();
    assert_eq!(out, [8]);
    out.clear();
    table.route("stock.x.5", None, &mut out);
    out.sort_unstable();
    assert_eq!(out, [5]);
    out.clear();
    table.route("x.7.y", None, &mut out);
    assert_eq!(out, [7]);
    // Generous even for an unoptimised build; a regex list would take minutes.
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

/// Words from a tiny alphabet (so patterns and keys collide often), empty word included.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![Just(""), Just("a"), Just("b"), Just("ab")].prop_map(str::to_owned)
}

fn pattern_word() -> impl Strategy<Value = String> {
    prop_oneof![3 => word(), 1 => Just("*".to_owned()), 2 => Just("#".to_owned())]
}

fn key_of(words: Vec<String>) -> String {
    words.join(".")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn trie_agrees_with_naive_matcher(
        pattern in prop::collection::vec(pattern_word(), 0..7).prop_map(key_of),
        key in prop::collection::vec(word(), 0..8).prop_map(key_of),
    ) {
        matches(&pattern, &key);
    }

    #[test]
    fn table_of_many_patterns_agrees_with_naive_matcher(
        patterns in prop::collection::vec(
            prop::collection::vec(pattern_word(), 0..6).prop_map(key_of), 1..24),
        keys in prop::collection::vec(prop::collection::vec(word(), 0..7).prop_map(key_of), 1..16),
        unbind_mask in prop::collection::vec(any::<bool>(), 24),
    ) {
        let none = FieldTable::default();
        let mut table = BindingTable::new(ExchangeKind::Topic);
        // Destination = pattern index modulo 5, so destinations share patterns.
        for (i, p) in patterns.iter().enumerate() {
            table.bind(i % 5, p, &none);
        }
        let mut live: Vec<(usize, &str)> = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if !live.contains(&(i % 5, p.as_str())) {
                live.push((i % 5, p.as_str()));
            }
        }
        for (i, p) in patterns.iter().enumerate() {
            if unbind_mask[i] {
                let existed = live.contains(&(i % 5, p.as_str()));
                prop_assert_eq!(table.unbind(&(i % 5), p, &none), existed);
                live.retain(|l| *l != (i % 5, p.as_str()));
            }
        }
        prop_assert_eq!(table.len(), live.len());
        for key in &keys {
            let mut expected: Vec<usize> = live
                .iter()
                .filter(|(_, p)| naive(p, key))
                .map(|(d, _)| *d)
                .collect();
            expected.sort_unstable();
            expected.dedup();
            let mut out = Vec::new();
            table.route(key, None, &mut out);
            out.sort_unstable();
            prop_assert_eq!(out, expected, "key {:?}", key);
        }
    }
}
