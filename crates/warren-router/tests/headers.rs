//! Headers exchange behaviour, and matching checked against a naive reference model.
#![allow(clippy::unwrap_used)]

use amq_protocol_types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use proptest::prelude::*;
use warren_router::{BindingError, BindingTable, ExchangeKind};

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

fn x_match(mode: &str) -> (&'static str, AMQPValue) {
    ("x-match", s(mode))
}

/// Whether a single binding with `args` matches a message with `headers`.
fn matches(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let mut t = BindingTable::new(ExchangeKind::Headers);
    t.bind("q", "", args);
    let mut out = Vec::new();
    t.route("ignored", headers, &mut out);
    !out.is_empty()
}

#[test]
fn all_requires_every_header() {
    let args = table(&[x_match("all"), ("a", s("1")), ("b", s("2"))]);
    assert!(matches(
        &args,
        Some(&table(&[("a", s("1")), ("b", s("2")), ("c", s("3"))]))
    ));
    assert!(!matches(&args, Some(&table(&[("a", s("1"))]))));
    assert!(!matches(
        &args,
        Some(&table(&[("a", s("1")), ("b", s("x"))]))
    ));
}

#[test]
fn missing_x_match_means_all() {
    let args = table(&[("a", s("1")), ("b", s("2"))]);
    assert!(!matches(&args, Some(&table(&[("a", s("1"))]))));
    assert!(matches(
        &args,
        Some(&table(&[("a", s("1")), ("b", s("2"))]))
    ));
}

#[test]
fn any_requires_one_header() {
    let args = table(&[x_match("any"), ("a", s("1")), ("b", s("2"))]);
    assert!(matches(&args, Some(&table(&[("b", s("2"))]))));
    assert!(!matches(
        &args,
        Some(&table(&[("a", s("2")), ("b", s("1"))]))
    ));
    assert!(!matches(&args, Some(&FieldTable::default())));
}

#[test]
fn routing_key_is_ignored() {
    let mut t = BindingTable::new(ExchangeKind::Headers);
    t.bind("q", "some.key", &table(&[("a", s("1"))]));
    let mut out = Vec::new();
    t.route("other", Some(&table(&[("a", s("1"))])), &mut out);
    assert_eq!(out, ["q"]);
}

#[test]
fn message_without_headers_matches_only_empty_all_binding() {
    assert!(matches(&FieldTable::default(), None));
    assert!(matches(&table(&[x_match("all")]), None));
    assert!(matches(
        &table(&[x_match("all"), ("x-ignored", s("v"))]),
        None
    ));
    assert!(!matches(&table(&[x_match("any")]), None));
    assert!(!matches(&table(&[("a", AMQPValue::Void)]), None));
    assert!(!matches(&table(&[x_match("any"), ("a", s("1"))]), None));
    assert!(!matches(
        &table(&[x_match("all-with-x"), ("x-a", s("1"))]),
        None
    ));
}

#[test]
fn empty_any_binding_matches_nothing() {
    let args = table(&[x_match("any")]);
    assert!(!matches(&args, Some(&table(&[("a", s("1"))]))));
}

#[test]
fn all_and_any_ignore_x_arguments() {
    let all = table(&[x_match("all"), ("x-a", s("1")), ("b", s("2"))]);
    assert!(matches(&all, Some(&table(&[("b", s("2"))]))));
    let any = table(&[x_match("any"), ("x-a", s("1")), ("b", s("2"))]);
    assert!(!matches(&any, Some(&table(&[("x-a", s("1"))]))));
}

#[test]
fn any_with_x_considers_x_headers() {
    let args = table(&[x_match("any-with-x"), ("x-a", s("1")), ("b", s("2"))]);
    assert!(matches(&args, Some(&table(&[("x-a", s("1"))]))));
    assert!(!matches(&args, Some(&table(&[("x-a", s("2"))]))));
}

#[test]
fn all_with_x_requires_x_headers() {
    let args = table(&[x_match("all-with-x"), ("x-a", s("1")), ("b", s("2"))]);
    assert!(!matches(&args, Some(&table(&[("b", s("2"))]))));
    assert!(matches(
        &args,
        Some(&table(&[("x-a", s("1")), ("b", s("2"))]))
    ));
}

#[test]
fn x_match_header_in_message_is_never_a_condition() {
    let args = table(&[x_match("all-with-x")]);
    assert!(matches(&args, Some(&table(&[("x-match", s("any"))]))));
    assert!(matches(&args, None));
}

#[test]
fn void_binding_value_matches_presence_of_any_value() {
    let args = table(&[("a", AMQPValue::Void)]);
    assert!(matches(&args, Some(&table(&[("a", s("anything"))]))));
    assert!(matches(
        &args,
        Some(&table(&[("a", AMQPValue::LongLongInt(7))]))
    ));
    assert!(matches(&args, Some(&table(&[("a", AMQPValue::Void)]))));
    assert!(!matches(&args, Some(&table(&[("b", s("1"))]))));
}

#[test]
fn void_header_does_not_equal_a_value() {
    let args = table(&[("a", s(""))]);
    assert!(!matches(&args, Some(&table(&[("a", AMQPValue::Void)]))));
}

#[test]
fn integers_compare_by_value_across_widths() {
    let args = table(&[("n", AMQPValue::LongInt(1))]);
    for header in [
        AMQPValue::ShortShortInt(1),
        AMQPValue::ShortShortUInt(1),
        AMQPValue::ShortInt(1),
        AMQPValue::ShortUInt(1),
        AMQPValue::LongUInt(1),
        AMQPValue::LongLongInt(1),
        AMQPValue::Timestamp(1),
    ] {
        assert!(
            matches(&args, Some(&table(&[("n", header.clone())]))),
            "{header:?}"
        );
    }
    assert!(!matches(
        &args,
        Some(&table(&[("n", AMQPValue::LongLongInt(2))]))
    ));
    let negative = table(&[("n", AMQPValue::ShortShortInt(-1))]);
    assert!(matches(
        &negative,
        Some(&table(&[("n", AMQPValue::LongLongInt(-1))]))
    ));
    assert!(!matches(
        &negative,
        Some(&table(&[("n", AMQPValue::LongUInt(u32::MAX))]))
    ));
}

#[test]
fn integer_never_equals_float_boolean_or_string() {
    let args = table(&[("n", AMQPValue::LongInt(1))]);
    for header in [AMQPValue::Double(1.0), AMQPValue::Boolean(true), s("1")] {
        assert!(
            !matches(&args, Some(&table(&[("n", header.clone())]))),
            "{header:?}"
        );
    }
}

#[test]
fn floats_compare_by_value_across_widths() {
    let args = table(&[("f", AMQPValue::Double(1.5))]);
    assert!(matches(
        &args,
        Some(&table(&[("f", AMQPValue::Float(1.5))]))
    ));
    assert!(!matches(
        &args,
        Some(&table(&[("f", AMQPValue::Float(1.25))]))
    ));
    // 0.1f32 widened is not 0.1f64.
    let tenth = table(&[("f", AMQPValue::Double(0.1))]);
    assert!(!matches(
        &tenth,
        Some(&table(&[("f", AMQPValue::Float(0.1))]))
    ));
}

#[test]
fn strings_and_byte_arrays_compare_by_bytes() {
    let args = table(&[("k", s("abc"))]);
    assert!(matches(
        &args,
        Some(&table(&[(
            "k",
            AMQPValue::ByteArray(ByteArray::from(b"abc".to_vec()))
        )]))
    ));
    assert!(matches(
        &args,
        Some(&table(&[(
            "k",
            AMQPValue::ShortString(ShortString::from("abc"))
        )]))
    ));
    assert!(!matches(&args, Some(&table(&[("k", s("abd"))]))));
}

#[test]
fn decimals_compare_scale_and_digits() {
    let d = |scale, value| AMQPValue::DecimalValue(DecimalValue { scale, value });
    let args = table(&[("d", d(2, 150))]);
    assert!(matches(&args, Some(&table(&[("d", d(2, 150))]))));
    assert!(!matches(&args, Some(&table(&[("d", d(1, 15))]))));
}

#[test]
fn nested_values_compare_with_their_types() {
    let array = |v: AMQPValue| AMQPValue::FieldArray(FieldArray::from(vec![v]));
    let args = table(&[("a", array(AMQPValue::LongInt(1)))]);
    assert!(matches(
        &args,
        Some(&table(&[("a", array(AMQPValue::LongInt(1)))]))
    ));
    assert!(!matches(
        &args,
        Some(&table(&[("a", array(AMQPValue::LongLongInt(1)))]))
    ));
    let inner = table(&[("k", s("v"))]);
    let args = table(&[("t", AMQPValue::FieldTable(inner.clone()))]);
    assert!(matches(
        &args,
        Some(&table(&[("t", AMQPValue::FieldTable(inner))]))
    ));
}

#[test]
fn unknown_x_match_routes_as_all_but_fails_validation() {
    let args = table(&[x_match("most"), ("a", s("1")), ("b", s("2"))]);
    assert!(!matches(&args, Some(&table(&[("a", s("1"))]))));
    assert!(matches(
        &args,
        Some(&table(&[("a", s("1")), ("b", s("2"))]))
    ));
    assert_eq!(
        ExchangeKind::Headers.validate_binding(&args),
        Err(BindingError::InvalidXMatchValue {
            value: "most".into()
        })
    );
    assert_eq!(
        BindingError::InvalidXMatchValue {
            value: "most".into()
        }
        .to_string(),
        "Invalid x-match field value <<\"most\">>; expected all, any, all-with-x, or any-with-x"
    );
}

#[test]
fn validation_accepts_the_four_modes_and_absence() {
    for mode in ["all", "any", "all-with-x", "any-with-x"] {
        assert_eq!(
            ExchangeKind::Headers.validate_binding(&table(&[x_match(mode)])),
            Ok(())
        );
    }
    assert_eq!(
        ExchangeKind::Headers.validate_binding(&FieldTable::default()),
        Ok(())
    );
}

#[test]
fn validation_rejects_non_string_x_match() {
    let args = table(&[("x-match", AMQPValue::Boolean(true))]);
    assert!(matches!(
        ExchangeKind::Headers.validate_binding(&args),
        Err(BindingError::InvalidXMatchType { .. })
    ));
    // RabbitMQ's words, no Rust debug output.
    let int = table(&[("x-match", AMQPValue::LongInt(1))]);
    assert_eq!(
        ExchangeKind::Headers
            .validate_binding(&int)
            .map_err(|e| e.to_string()),
        Err("Invalid x-match field type signedint (value 1); expected longstr".to_owned())
    );
    // Other kinds have no argument rules.
    assert_eq!(ExchangeKind::Topic.validate_binding(&args), Ok(()));
}

#[test]
fn destination_reported_once_when_several_bindings_match() {
    let mut t = BindingTable::new(ExchangeKind::Headers);
    t.bind("q", "", &table(&[("a", s("1"))]));
    t.bind(
        "q",
        "",
        &table(&[x_match("any"), ("a", s("1")), ("b", s("2"))]),
    );
    t.bind("q", "other", &FieldTable::default());
    t.bind("r", "", &table(&[("b", s("2"))]));
    assert_eq!(t.len(), 4);
    let mut out = Vec::new();
    t.route("", Some(&table(&[("a", s("1"))])), &mut out);
    assert_eq!(out, ["q"]);
}

#[test]
fn unbind_needs_identical_arguments() {
    let mut t = BindingTable::new(ExchangeKind::Headers);
    let args = table(&[("a", AMQPValue::LongInt(1))]);
    assert!(t.bind("q", "", &args));
    assert!(!t.unbind(&"q", "", &table(&[("a", AMQPValue::LongLongInt(1))])));
    assert!(!t.unbind(
        &"q",
        "",
        &table(&[("a", AMQPValue::LongInt(1)), x_match("all")])
    ));
    assert!(t.unbind(&"q", "", &args));
    assert!(t.is_empty());
    let mut out = Vec::new();
    t.route("", Some(&table(&[("a", AMQPValue::LongInt(1))])), &mut out);
    assert!(out.is_empty());
}

// ---- property test against a naive model -------------------------------------------

/// A reference value: what RabbitMQ's `=:=` sees after stripping the AMQP type.
#[derive(Debug, PartialEq)]
enum Term {
    Int(i128),
    Float(f64),
    Bin(Vec<u8>),
    Bool(bool),
    Undefined,
}

fn term(v: &AMQPValue) -> Term {
    match v {
        AMQPValue::LongInt(i) => Term::Int((*i).into()),
        AMQPValue::ShortInt(i) => Term::Int((*i).into()),
        AMQPValue::LongLongInt(i) => Term::Int((*i).into()),
        AMQPValue::Timestamp(i) => Term::Int((*i).into()),
        AMQPValue::Double(f) => Term::Float(*f),
        AMQPValue::Float(f) => Term::Float((*f).into()),
        AMQPValue::LongString(b) => Term::Bin(b.as_bytes().to_vec()),
        AMQPValue::ByteArray(b) => Term::Bin(b.as_slice().to_vec()),
        AMQPValue::Boolean(b) => Term::Bool(*b),
        AMQPValue::Void => Term::Undefined,
        other => panic!("not generated: {other:?}"),
    }
}

/// RabbitMQ 4.x `route/3` + `match/2` + `match_x/2`, transcribed loosely.
fn naive(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let empty = FieldTable::default();
    let headers = headers.unwrap_or(&empty).inner();
    let mode = match args.inner().get("x-match") {
        Some(AMQPValue::LongString(m)) => m.as_bytes().to_vec(),
        _ => b"all".to_vec(),
    };
    let with_x = mode.ends_with(b"-with-x");
    let any = mode.starts_with(b"any");
    let mut results = args.inner().iter().filter_map(|(k, v)| {
        let k = k.as_str();
        if k == "x-match" || (!with_x && k.starts_with("x-")) {
            return None; // skip
        }
        Some(match (v, headers.get(k)) {
            (_, None) => false,
            (AMQPValue::Void, Some(_)) => true,
            (v, Some(h)) => term(v) == term(h),
        })
    });
    if any {
        results.any(|r| r)
    } else {
        results.all(|r| r)
    }
}

fn value() -> impl Strategy<Value = AMQPValue> {
    prop_oneof![
        (0i32..3).prop_map(AMQPValue::LongInt),
        (0i16..3).prop_map(AMQPValue::ShortInt),
        (0i64..3).prop_map(AMQPValue::LongLongInt),
        (0u64..3).prop_map(AMQPValue::Timestamp),
        (0u8..3).prop_map(|f| AMQPValue::Double(f64::from(f))),
        (0u8..3).prop_map(|f| AMQPValue::Float(f32::from(f))),
        prop_oneof![Just("0"), Just("1"), Just("a")].prop_map(s),
        prop_oneof![Just("0"), Just("1")]
            .prop_map(|b| AMQPValue::ByteArray(ByteArray::from(b.as_bytes().to_vec()))),
        any::<bool>().prop_map(AMQPValue::Boolean),
        Just(AMQPValue::Void),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("x-a"), Just("x-b")].prop_map(str::to_owned)
}

fn field_table() -> impl Strategy<Value = FieldTable> {
    prop::collection::btree_map(key(), value(), 0..4).prop_map(|m| {
        let mut t = FieldTable::default();
        for (k, v) in m {
            t.insert(k.as_str().into(), v);
        }
        t
    })
}

fn binding_args() -> impl Strategy<Value = FieldTable> {
    (
        field_table(),
        prop::option::of(prop_oneof![
            Just("all"),
            Just("any"),
            Just("all-with-x"),
            Just("any-with-x"),
            Just("bogus")
        ]),
    )
        .prop_map(|(mut t, mode)| {
            if let Some(mode) = mode {
                t.insert("x-match".into(), s(mode));
            }
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn matching_agrees_with_naive_model(
        args in binding_args(),
        headers in prop::option::of(field_table()),
    ) {
        prop_assert_eq!(matches(&args, headers.as_ref()), naive(&args, headers.as_ref()));
    }

    #[test]
    fn table_of_bindings_agrees_with_naive_model(
        bindings in prop::collection::vec((0u8..4, binding_args()), 1..12),
        headers in prop::option::of(field_table()),
    ) {
        let mut t = BindingTable::new(ExchangeKind::Headers);
        for (d, args) in &bindings {
            t.bind(*d, "", args);
        }
        let mut expected: Vec<u8> = bindings
            .iter()
            .filter(|(_, args)| naive(args, headers.as_ref()))
            .map(|(d, _)| *d)
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let mut out = Vec::new();
        t.route("", headers.as_ref(), &mut out);
        out.sort_unstable();
        prop_assert_eq!(out, expected);
    }
}
