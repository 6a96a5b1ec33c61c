//! JSON shape comparison: does Warren's management API answer with the same structure as
//! RabbitMQ 3.10's, recorded in `integration/tests/fixtures/management/`?
//!
//! [`shape_differences`] walks the fixture and the actual value together and lists every
//! [`ShapeDifference`]; [`assert_same_shape`] panics with that list (one line per difference)
//! when it is not empty. Values are never compared, only structure:
//! - objects: the same keys, recursively; a key of the fixture missing from the actual value
//!   and an extra key of the actual value are both reported, with their JSON paths;
//! - scalars: the same JSON type (number, string, bool); integers and floats are both numbers;
//! - `null` in the fixture accepts any value (RabbitMQ gives `null` where a value is unknown,
//!   e.g. a connection's `peer_cert_subject` without TLS), but a `null` in the actual value
//!   where the fixture has something else is a difference;
//! - arrays: every element of the actual array is compared with the fixture's elements
//!   merged into one shape (lists such as `/api/queues` are homogeneous, so that is the
//!   fixture's first element's shape), with one allowance: a key that some fixture elements
//!   lack, at any depth, is optional (RabbitMQ leaves `message_stats` out of a queue that
//!   never had traffic, and lists in it only the counters that moved): neither missing when
//!   absent nor extra when present. A place where the fixture's elements hold values of
//!   different types (a runtime parameter's `value`: an object or a string) accepts any. An
//!   empty fixture array accepts any elements; an empty actual array has nothing to compare.
//!   A fixture array whose own elements are of different types is an Erlang tuple rendered
//!   as a list (a queue's `backing_queue_status.delta`): compared position by position.
//!
//! Differences are listed in key order (serde_json's maps are sorted).
//!
//! Paths read `$.queue_totals.messages`, `$[2].arguments`, `$.items[0].name`. An `ignore`
//! pattern is one of:
//! - a key name, `message_stats`: that key, at any depth, is neither required nor compared;
//! - a path with `[]` for any array index and no `$.`, `items[].message_stats` or
//!   `[].node`: that one place, neither required nor compared;
//! - either of those ending in `.*`, `arguments.*`: the key must be there and be an object
//!   (or null where the fixture has null), but its keys are free: a map such as a queue's
//!   `arguments`, a policy's `definition`, a message's `headers`.

use std::collections::BTreeMap;

use serde_json::Value;

/// One structural difference between the actual value and the fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeDifference {
    /// The fixture has this key, the actual value does not.
    Missing {
        /// JSON path of the missing key.
        path: String,
    },
    /// The actual value has this key, the fixture does not.
    Extra {
        /// JSON path of the extra key.
        path: String,
    },
    /// Both have a value here, of different JSON types.
    Type {
        /// JSON path of the value.
        path: String,
        /// The fixture's type.
        expected: &'static str,
        /// The actual type.
        actual: &'static str,
    },
}

impl std::fmt::Display for ShapeDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeDifference::Missing { path } => write!(f, "missing key {path}"),
            ShapeDifference::Extra { path } => write!(f, "extra key {path}"),
            ShapeDifference::Type {
                path,
                expected,
                actual,
            } => write!(f, "{path}: expected {expected}, got {actual}"),
        }
    }
}

/// Panic, listing every difference, unless `actual` has the structure of `fixture` (see the
/// module docs for the rules and the `ignore` patterns).
#[track_caller]
pub fn assert_same_shape(actual: &Value, fixture: &Value, ignore: &[&str]) {
    let differences = shape_differences(actual, fixture, ignore);
    if !differences.is_empty() {
        let lines: Vec<String> = differences.iter().map(|d| format!("  {d}")).collect();
        panic!(
            "JSON shape differs from the fixture ({} difference(s)):\n{}\nactual: {}",
            differences.len(),
            lines.join("\n"),
            truncate(&actual.to_string(), 2000)
        );
    }
}

/// Every structural difference between `actual` and `fixture`, in key order.
pub fn shape_differences(actual: &Value, fixture: &Value, ignore: &[&str]) -> Vec<ShapeDifference> {
    let rules = Rules::new(ignore);
    let mut out = Vec::new();
    compare(
        actual,
        &Shape::of(fixture),
        &mut Path::root(),
        &rules,
        &mut out,
    );
    out
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// The `ignore` patterns, split into "skip" and "free map" rules.
struct Rules<'a> {
    skip: Vec<&'a str>,
    free_map: Vec<&'a str>,
}

impl<'a> Rules<'a> {
    fn new(ignore: &[&'a str]) -> Self {
        let mut skip = Vec::new();
        let mut free_map = Vec::new();
        for pattern in ignore {
            match pattern.strip_suffix(".*") {
                Some(map) => free_map.push(map),
                None => skip.push(*pattern),
            }
        }
        Rules { skip, free_map }
    }

    fn skips(&self, path: &Path) -> bool {
        self.skip.iter().any(|p| path.matches(p))
    }

    fn is_free_map(&self, path: &Path) -> bool {
        self.free_map.iter().any(|p| path.matches(p))
    }
}

/// A JSON path as segments, shown as `$.a[0].b` and matched (indices as `[]`) as `a[].b`.
struct Path {
    segments: Vec<Segment>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Path {
    fn root() -> Path {
        Path {
            segments: Vec::new(),
        }
    }

    fn last_key(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// `items[].name`: the form `ignore` patterns are written in.
    fn pattern_form(&self) -> String {
        let mut s = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Segment::Index(_) => s.push_str("[]"),
            }
        }
        s
    }

    fn matches(&self, pattern: &str) -> bool {
        if pattern.contains('.') || pattern.contains('[') {
            self.pattern_form() == pattern
        } else {
            self.last_key() == Some(pattern)
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$")?;
        for seg in &self.segments {
            match seg {
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The structure a fixture value allows.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Anything: the fixture has null here, or values of different types at this place in
    /// different elements of a list (a runtime parameter's `value`).
    Any,
    /// A number, string or bool.
    Scalar(&'static str),
    /// An object: each key's shape, and whether some fixture elements lack it.
    Object(BTreeMap<String, Field>),
    /// A homogeneous list: the merged shape of its elements (None: the fixture's is empty).
    List(Option<Box<Shape>>),
    /// An Erlang tuple rendered as a list: a shape per position.
    Tuple(Vec<Shape>),
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    shape: Shape,
    optional: bool,
}

impl Shape {
    fn of(v: &Value) -> Shape {
        match v {
            Value::Null => Shape::Any,
            Value::Bool(_) | Value::Number(_) | Value::String(_) => Shape::Scalar(type_name(v)),
            Value::Object(map) => Shape::Object(
                map.iter()
                    .map(|(k, v)| {
                        let field = Field {
                            shape: Shape::of(v),
                            optional: false,
                        };
                        (k.clone(), field)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                let Some(first) = items.first() else {
                    return Shape::List(None);
                };
                if items.iter().any(|v| type_name(v) != type_name(first)) {
                    return Shape::Tuple(items.iter().map(Shape::of).collect());
                }
                let merged = items
                    .iter()
                    .map(Shape::of)
                    .reduce(Shape::merge)
                    .unwrap_or(Shape::Any);
                Shape::List(Some(Box::new(merged)))
            }
        }
    }

    /// The shape that accepts what either accepts: the union of keys (a key one side lacks
    /// is optional), recursively.
    fn merge(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Any, _) | (_, Shape::Any) => Shape::Any,
            (Shape::Scalar(a), Shape::Scalar(b)) if a == b => Shape::Scalar(a),
            (Shape::Object(mut a), Shape::Object(mut b)) => {
                for (k, field) in a.iter_mut() {
                    match b.remove(k) {
                        Some(other) => {
                            let shape = std::mem::replace(&mut field.shape, Shape::Any);
                            field.shape = shape.merge(other.shape);
                            field.optional |= other.optional;
                        }
                        None => field.optional = true,
                    }
                }
                for (k, mut field) in b {
                    field.optional = true;
                    a.insert(k, field);
                }
                Shape::Object(a)
            }
            (Shape::List(a), Shape::List(b)) => match (a, b) {
                (Some(a), Some(b)) => Shape::List(Some(Box::new(a.merge(*b)))),
                (a, b) => Shape::List(a.or(b)),
            },
            (Shape::Tuple(a), Shape::Tuple(b)) if a.len() == b.len() => {
                Shape::Tuple(a.into_iter().zip(b).map(|(a, b)| a.merge(b)).collect())
            }
            _ => Shape::Any,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Shape::Any => "any",
            Shape::Scalar(t) => t,
            Shape::Object(_) => "object",
            Shape::List(_) | Shape::Tuple(_) => "array",
        }
    }
}

fn compare(
    actual: &Value,
    shape: &Shape,
    path: &mut Path,
    rules: &Rules,
    out: &mut Vec<ShapeDifference>,
) {
    if *shape == Shape::Any {
        return;
    }
    if type_name(actual) != shape.type_name() {
        out.push(ShapeDifference::Type {
            path: path.to_string(),
            expected: shape.type_name(),
            actual: type_name(actual),
        });
        return;
    }
    if rules.is_free_map(path) {
        return;
    }
    match (actual, shape) {
        (Value::Object(a), Shape::Object(fields)) => {
            for (key, field) in fields {
                path.segments.push(Segment::Key(key.clone()));
                if !rules.skips(path) {
                    match a.get(key) {
                        Some(av) => compare(av, &field.shape, path, rules, out),
                        None if field.optional => {}
                        None => out.push(ShapeDifference::Missing {
                            path: path.to_string(),
                        }),
                    }
                }
                path.segments.pop();
            }
            for key in a.keys().filter(|k| !fields.contains_key(*k)) {
                path.segments.push(Segment::Key(key.clone()));
                if !rules.skips(path) {
                    out.push(ShapeDifference::Extra {
                        path: path.to_string(),
                    });
                }
                path.segments.pop();
            }
        }
        (Value::Array(a), Shape::List(Some(element))) => {
            for (i, av) in a.iter().enumerate() {
                path.segments.push(Segment::Index(i));
                compare(av, element, path, rules, out);
                path.segments.pop();
            }
        }
        (Value::Array(a), Shape::Tuple(positions)) => {
            for (i, (av, shape)) in a.iter().zip(positions).enumerate() {
                path.segments.push(Segment::Index(i));
                compare(av, shape, path, rules, out);
                path.segments.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn diffs(actual: Value, fixture: Value, ignore: &[&str]) -> Vec<String> {
        shape_differences(&actual, &fixture, ignore)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn same_structure_with_other_values_is_the_same_shape() {
        let fixture = json!({"name": "q", "messages": 3, "durable": true, "ratio": 0.5,
                             "items": [{"a": 1}], "node": {"x": "y"}});
        let actual = json!({"name": "other", "messages": 0, "durable": false, "ratio": 7,
                            "items": [{"a": 2}, {"a": 3}], "node": {"x": "z"}});
        assert_eq!(diffs(actual, fixture, &[]), Vec::<String>::new());
    }

    #[test]
    fn missing_key_is_reported_with_its_path() {
        let fixture = json!({"queue_totals": {"messages": 1, "messages_ready": 1}});
        let actual = json!({"queue_totals": {"messages": 1}});
        assert_eq!(
            diffs(actual, fixture, &[]),
            vec!["missing key $.queue_totals.messages_ready"]
        );
    }

    #[test]
    #[should_panic(expected = "missing key $[0].consumers")]
    fn assert_same_shape_panics_on_a_missing_key() {
        let fixture = json!([{"name": "q", "consumers": 0}]);
        let actual = json!([{"name": "q"}]);
        assert_same_shape(&actual, &fixture, &[]);
    }

    #[test]
    fn extra_key_is_reported_with_its_path() {
        let fixture = json!({"items": [{"name": "q"}]});
        let actual = json!({"items": [{"name": "q"}, {"name": "r", "warren": 1}]});
        assert_eq!(
            diffs(actual, fixture, &[]),
            vec!["extra key $.items[1].warren"]
        );
    }

    #[test]
    fn type_mismatch_is_reported() {
        let fixture = json!({"messages": 1, "durable": true, "name": "q", "args": {}, "l": []});
        let actual = json!({"messages": "1", "durable": 1, "name": null, "args": [], "l": {}});
        assert_eq!(
            diffs(actual, fixture, &[]),
            vec![
                "$.args: expected object, got array",
                "$.durable: expected bool, got number",
                "$.l: expected array, got object",
                "$.messages: expected number, got string",
                "$.name: expected string, got null",
            ]
        );
    }

    #[test]
    fn null_in_the_fixture_accepts_any_value() {
        let fixture = json!({"peer_cert_subject": null, "policy": null});
        let actual = json!({"peer_cert_subject": "CN=x", "policy": {"a": 1}});
        assert_eq!(diffs(actual, fixture, &[]), Vec::<String>::new());
    }

    #[test]
    fn array_elements_are_compared_with_the_fixtures_first_element() {
        let fixture = json!([{"name": "a", "vhost": "/"}, {"name": "z", "vhost": "/"}]);
        let actual = json!([{"name": "b", "vhost": "/"}, {"name": "c"}]);
        assert_eq!(diffs(actual, fixture, &[]), vec!["missing key $[1].vhost"]);
        // An empty fixture array accepts anything; an empty actual array has nothing to check.
        assert!(diffs(json!([1, "x"]), json!([]), &[]).is_empty());
        assert!(diffs(json!([]), json!([{"a": 1}]), &[]).is_empty());
    }

    #[test]
    fn key_only_some_fixture_elements_have_is_optional() {
        let fixture = json!([{"name": "a"}, {"name": "b", "message_stats": {"publish": 1}}]);
        assert!(diffs(json!([{"name": "x"}]), fixture.clone(), &[]).is_empty());
        assert!(
            diffs(
                json!([{"name": "x", "message_stats": {"publish": 2}}]),
                fixture.clone(),
                &[]
            )
            .is_empty()
        );
        assert_eq!(
            diffs(
                json!([{"name": "x", "message_stats": {}}]),
                fixture.clone(),
                &[]
            ),
            vec!["missing key $[0].message_stats.publish"]
        );
        assert_eq!(
            diffs(json!([{"message_stats": 1}]), fixture, &[]),
            vec![
                "$[0].message_stats: expected object, got number",
                "missing key $[0].name"
            ]
        );
    }

    /// RabbitMQ's maps (their keys are data): what a test of the API passes as `ignore`.
    const FREE_MAPS: &[&str] = &["arguments.*"];

    /// RabbitMQ's own answers are self-consistent under these rules: a fixture compared
    /// with itself has no difference once its maps are declared.
    #[test]
    fn every_recorded_fixture_has_its_own_shape() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/management");
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).expect("index"))
                .expect("index parses");
        let entries = index.as_object().expect("index is an object");
        assert!(entries.len() > 50, "{} entries", entries.len());
        let mut failures = Vec::new();
        for (name, entry) in entries {
            let Some(file) = entry["body_file"].as_str() else {
                continue;
            };
            let text = std::fs::read_to_string(dir.join(file)).expect("body file listed exists");
            // Error bodies and others may not be JSON only where RabbitMQ sent another type.
            let Ok(fixture) = serde_json::from_str::<Value>(&text) else {
                assert!(
                    !entry["content_type"]
                        .as_str()
                        .unwrap_or("")
                        .contains("json"),
                    "{name}"
                );
                continue;
            };
            for d in shape_differences(&fixture, &fixture, FREE_MAPS) {
                failures.push(format!("{name}: {d}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn mixed_type_fixture_array_is_compared_position_by_position() {
        let fixture = json!(["delta", "undefined", 0, 0]);
        assert!(diffs(json!(["delta", 1, 0, 5]), fixture.clone(), &[]).len() == 1);
        assert_eq!(
            diffs(json!(["delta", "undefined", "0", 0]), fixture, &[]),
            vec!["$[2]: expected number, got string"]
        );
    }

    #[test]
    fn ignored_key_name_is_skipped_at_any_depth() {
        let fixture = json!({"message_stats": {"publish": 1}, "q": [{"message_stats": {}}]});
        let actual = json!({"q": [{"message_stats": 5}]});
        assert!(diffs(actual.clone(), fixture.clone(), &["message_stats"]).is_empty());
        assert_eq!(diffs(actual, fixture, &[]).len(), 2);
    }

    #[test]
    fn ignored_path_skips_only_that_place() {
        let fixture = json!({"items": [{"node": "a"}], "node": "a"});
        let actual = json!({"items": [{}], "node": "a", "items_extra": 1});
        assert_eq!(
            diffs(actual, fixture, &["items[].node", "items_extra"]),
            Vec::<String>::new()
        );
        let fixture = json!({"items": [{"node": "a"}], "node": "a"});
        assert_eq!(
            diffs(
                json!({"items": [{"node": "a"}]}),
                fixture,
                &["items[].node"]
            ),
            vec!["missing key $.node"]
        );
    }

    #[test]
    fn free_map_pattern_requires_an_object_but_not_its_keys() {
        let fixture = json!([{"arguments": {"x-max-length": 1}}]);
        assert!(
            diffs(
                json!([{"arguments": {}}]),
                fixture.clone(),
                &["arguments.*"]
            )
            .is_empty()
        );
        assert!(
            diffs(
                json!([{"arguments": {"x-queue-type": "classic"}}]),
                fixture.clone(),
                &["[].arguments.*"]
            )
            .is_empty()
        );
        assert_eq!(
            diffs(
                json!([{"arguments": []}]),
                fixture.clone(),
                &["arguments.*"]
            ),
            vec!["$[0].arguments: expected object, got array"]
        );
        assert_eq!(
            diffs(json!([{}]), fixture, &["arguments.*"]),
            vec!["missing key $[0].arguments"]
        );
    }

    #[test]
    fn recorded_rabbitmq_fixture_has_its_own_shape_and_not_a_trimmed_one() {
        let text = include_str!("../tests/fixtures/management/queue.json");
        let fixture: Value = serde_json::from_str(text).expect("fixture parses");
        assert_same_shape(&fixture, &fixture, &[]);
        let mut trimmed = fixture.clone();
        if let Value::Object(map) = &mut trimmed {
            map.remove("consumers");
        }
        assert_eq!(
            diffs(trimmed, fixture, &[]),
            vec!["missing key $.consumers"]
        );
    }
}
