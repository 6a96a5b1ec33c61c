//! Checks a policy before it is set, as RabbitMQ 3.10 does (`rabbit_policy:validate`, the
//! `policy_validator` registrations of `rabbit_policies`, `rabbit_mirror_queue_misc` and
//! `rabbit_queue_location_validator`), with RabbitMQ's texts.
//!
//! The top-level fields are checked first, every failure kept, and reported in
//! RabbitMQ's order (definition, apply-to, pattern). Within the definition the first bad
//! value wins (keys in sorted order, RabbitMQ's core keys, then the `ha-*` group, then
//! `queue-master-locator`), and keys no validator knows are reported last, all at once.
//! An operator policy accepts only `expires`, `message-ttl`, `max-length`,
//! `max-length-bytes`, `max-in-memory-length`, `max-in-memory-bytes` and
//! `delivery-limit`.
//!
//! Patterns are Rust `regex` patterns where RabbitMQ's are PCRE: the common syntax is the
//! same and the common errors get PCRE's words and offsets (`{"missing )",1}`), but
//! look-around and back-references, which PCRE accepts, are refused.

use serde_json::{Map, Value};

use super::erlang_term::{Term, flat, pretty};
use crate::access::{PolicyKind, PolicyRecord};

/// Keys RabbitMQ's own validator (`rabbit_policies`) knows, for user policies.
const CORE_KEYS: [&str; 18] = [
    "alternate-exchange",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "dead-letter-strategy",
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "queue-mode",
    "queue-version",
    "overflow",
    "delivery-limit",
    "max-age",
    "stream-max-segment-size-bytes",
    "queue-leader-locator",
    "initial-cluster-size",
];

/// Keys an operator policy may set.
const OPERATOR_KEYS: [&str; 7] = [
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// Classic mirroring's keys (validated, kept, no effect in Warren).
const HA_KEYS: [&str; 6] = [
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
];

const LOCATOR: &str = "queue-master-locator";

/// RabbitMQ's largest stream segment (`?MAX_STREAM_MAX_SEGMENT_SIZE`, 3 GB).
const MAX_SEGMENT: i64 = 3_000_000_000;

/// Check a policy of `kind`; `Err` holds RabbitMQ's error texts, in its order.
pub(crate) fn validate(kind: PolicyKind, record: &PolicyRecord) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if let Err(e) = definition(kind, &record.definition) {
        errors.push(e);
    }
    if !matches!(record.apply_to.as_str(), "all" | "exchanges" | "queues") {
        errors.push(format!(
            "apply-to '{}' unrecognised; should be 'queues', 'exchanges' or 'all'",
            record.apply_to
        ));
    }
    if let Err(e) = pattern(&record.pattern) {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The pattern compiles (RabbitMQ: `rabbit_parameter_validation:regex`).
fn pattern(pattern: &str) -> Result<(), String> {
    let Err(error) = regex::Regex::new(pattern) else {
        return Ok(());
    };
    let (reason, offset) = pcre_error(pattern).unwrap_or_else(|| (error.to_string(), 0));
    let prefix = "pattern should be regular expression but is invalid: ";
    let term = Term::Tuple(vec![Term::String(reason), Term::Int(offset as i64)]);
    Err(format!("{prefix}{}", pretty(&term, prefix.len())))
}

/// PCRE's words and offset for the common syntax errors.
fn pcre_error(pattern: &str) -> Option<(String, usize)> {
    use regex_syntax::ast::ErrorKind as K;
    let error = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .err()?;
    let at = error.span().start.offset;
    Some(match error.kind() {
        K::GroupUnclosed => ("missing )".into(), pattern.len()),
        K::GroupUnopened => ("unmatched parentheses".into(), at),
        K::RepetitionMissing => ("nothing to repeat".into(), at),
        K::ClassUnclosed => (
            "missing terminating ] for character class".into(),
            pattern.len(),
        ),
        other => (other.to_string(), at),
    })
}

/// The definition (`rabbit_policy:validation/3`).
fn definition(kind: PolicyKind, def: &Map<String, Value>) -> Result<(), String> {
    if def.is_empty() {
        return Err("no policy provided".into());
    }
    let core: &[&str] = match kind {
        PolicyKind::Policy => &CORE_KEYS,
        PolicyKind::OperatorPolicy => &OPERATOR_KEYS,
    };
    for (key, value) in def.iter().filter(|(k, _)| core.contains(&k.as_str())) {
        core_value(key, value)?;
    }
    if kind == PolicyKind::Policy {
        if def.keys().any(|k| HA_KEYS.contains(&k.as_str())) {
            mirroring(def)?;
        }
        if let Some(value) = def.get(LOCATOR)
            && !matches!(
                value.as_str(),
                Some("client-local" | "min-masters" | "random")
            )
        {
            return Err(format!("{} invalid queue-master-locator value", p(value)));
        }
    }
    let known = |k: &str| {
        core.contains(&k) || (kind == PolicyKind::Policy && (HA_KEYS.contains(&k) || k == LOCATOR))
    };
    let unknown: Vec<Term<'_>> = def
        .iter()
        .filter(|(k, _)| !known(k))
        .map(|(k, v)| Term::Tuple(vec![Term::Binary(k), Term::Json(v)]))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} are not recognised policy settings",
            pretty(&Term::List(unknown), 0)
        ))
    }
}

/// A JSON integer (not a float such as `1.0`, which Erlang keeps a float).
fn is_int(value: &Value) -> bool {
    value.is_i64() || value.is_u64()
}

fn p(value: &Value) -> String {
    pretty(&Term::Json(value), 0)
}

/// One key of `rabbit_policies:validate_policy0`.
fn core_value(key: &str, value: &Value) -> Result<(), String> {
    let int = if is_int(value) {
        Some(value.as_i64().unwrap_or(i64::MAX))
    } else {
        None
    };
    let int_at_least = |min: i64| int.is_some_and(|i| i >= min);
    let one_of = |allowed: &[&str]| value.as_str().is_some_and(|s| allowed.contains(&s));
    let (ok, what) = match key {
        "alternate-exchange" => (value.is_string(), "is not a valid alternate exchange name"),
        "dead-letter-exchange" => (
            value.is_string(),
            "is not a valid dead letter exchange name",
        ),
        "dead-letter-routing-key" => (value.is_string(), "is not a valid dead letter routing key"),
        "dead-letter-strategy" => (
            one_of(&["at-most-once", "at-least-once"]),
            "is not a valid dead letter strategy",
        ),
        "message-ttl" => (int_at_least(0), "is not a valid message TTL"),
        "expires" => (int_at_least(1), "is not a valid queue expiry"),
        "max-length" => (int_at_least(0), "is not a valid maximum length"),
        "max-length-bytes" => (int_at_least(0), "is not a valid maximum length in bytes"),
        "max-in-memory-length" | "max-in-memory-bytes" => {
            (int_at_least(0), "is not a valid maximum memory in bytes")
        }
        "queue-mode" => (
            one_of(&["default", "lazy"]),
            "is not a valid queue-mode value",
        ),
        "queue-version" => (
            matches!(int, Some(1 | 2)),
            "is not a valid queue-version value",
        ),
        "overflow" => (
            one_of(&["drop-head", "reject-publish", "reject-publish-dlx"]),
            "is not a valid overflow value",
        ),
        "delivery-limit" => (int_at_least(0), "is not a valid delivery limit"),
        "max-age" => (
            value.as_str().is_some_and(valid_max_age),
            "is not a valid max age",
        ),
        "stream-max-segment-size-bytes" => (
            int.is_some_and(|i| (0..=MAX_SEGMENT).contains(&i)),
            "is not a valid segment size",
        ),
        "queue-leader-locator" => (
            one_of(&["client-local", "balanced", "random", "least-leaders"]),
            "is not a valid queue leader locator value",
        ),
        "initial-cluster-size" => (int_at_least(0), "is not a valid cluster size"),
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} {what}", p(value)))
    }
}

/// `rabbit_amqqueue:check_max_age`: a positive number followed by Y, M, D, h, m or s.
fn valid_max_age(s: &str) -> bool {
    let Some(unit) = s.chars().last() else {
        return false;
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    matches!(unit, 'Y' | 'M' | 'D' | 'h' | 'm' | 's')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u64>().is_ok_and(|n| n > 0)
}

/// Classic mirroring's group (`rabbit_mirror_queue_misc:validate_policy`).
fn mirroring(def: &Map<String, Value>) -> Result<(), String> {
    let Some(mode) = def.get("ha-mode") else {
        return Err(
            "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"
                .into(),
        );
    };
    let none = "none".to_owned();
    let shown = |key: &str| def.get(key).map_or_else(|| none.clone(), p);
    let mode = match mode.as_str() {
        Some(m @ ("all" | "exactly" | "nodes")) => m,
        _ => return Err(format!("{} is not a valid ha-mode value", p(mode))),
    };
    let params = def.get("ha-params");
    match mode {
        "all" if params.is_some() => {
            return Err("ha-mode=\"all\" does not take parameters".into());
        }
        "exactly" if !params.is_some_and(|v| is_int(v) && v.as_i64().is_none_or(|n| n > 0)) => {
            return Err(format!(
                "ha-mode=\"exactly\" takes an integer, {} given",
                shown("ha-params")
            ));
        }
        "nodes" => match params {
            Some(Value::Array(nodes)) if nodes.is_empty() => {
                return Err("ha-mode=\"nodes\" list must be non-empty".into());
            }
            Some(Value::Array(nodes)) => {
                let bad: Vec<Term<'_>> = nodes
                    .iter()
                    .filter(|n| !n.is_string())
                    .map(Term::Json)
                    .collect();
                if !bad.is_empty() {
                    return Err(format!(
                        "ha-mode=\"nodes\" takes a list of strings, {} was not a string",
                        flat(&Term::List(bad))
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "ha-mode=\"nodes\" takes a list, {} given",
                    shown("ha-params")
                ));
            }
        },
        _ => {}
    }
    if let Some(v) = def.get("ha-sync-mode")
        && !matches!(v.as_str(), Some("automatic" | "manual"))
    {
        return Err(format!(
            "ha-sync-mode must be \"manual\" or \"automatic\", got {}",
            p(v)
        ));
    }
    if let Some(v) = def.get("ha-sync-batch-size")
        && !(is_int(v) && v.as_i64().is_none_or(|n| n > 0))
    {
        return Err(format!(
            "ha-sync-batch-size takes an integer greater than 0, {} given",
            p(v)
        ));
    }
    for (key, what) in [
        ("ha-promote-on-shutdown", "ha-promote-on-shutdown"),
        ("ha-promote-on-failure", "ha-promote-on-failure"),
    ] {
        if let Some(v) = def.get(key)
            && !matches!(v.as_str(), Some("always" | "when-synced"))
        {
            return Err(format!(
                "{what} must be \"always\" or \"when-synced\", got {}",
                p(v)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(pattern: &str, apply_to: &str, def: Value) -> PolicyRecord {
        PolicyRecord {
            pattern: pattern.into(),
            apply_to: apply_to.into(),
            priority: 0,
            definition: def.as_object().cloned().unwrap_or_default(),
        }
    }

    fn errors(kind: PolicyKind, record: &PolicyRecord) -> Vec<String> {
        validate(kind, record).err().unwrap_or_default()
    }

    #[test]
    fn rabbitmq_texts_for_bad_values() {
        let cases = [
            (
                json!({"foo": 1}),
                "[{<<\"foo\">>,1}] are not recognised policy settings",
            ),
            (
                json!({"max-length": -1}),
                "-1 is not a valid maximum length",
            ),
            (
                json!({"max-length": "x"}),
                "<<\"x\">> is not a valid maximum length",
            ),
            (
                json!({"max-length": 1.5}),
                "1.5 is not a valid maximum length",
            ),
            (json!({}), "no policy provided"),
            (
                json!({"alternate-exchange": 5}),
                "5 is not a valid alternate exchange name",
            ),
            (
                json!({"message-ttl": -5, "max-length": -1, "expires": 0}),
                "0 is not a valid queue expiry",
            ),
            (
                json!({"ha-params": 1}),
                "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown",
            ),
            (
                json!({"ha-mode": "exactly"}),
                "ha-mode=\"exactly\" takes an integer, none given",
            ),
            (
                json!({"queue-mode": "x"}),
                "<<\"x\">> is not a valid queue-mode value",
            ),
        ];
        for (def, text) in cases {
            let record = policy(".*", "all", def.clone());
            assert_eq!(
                errors(PolicyKind::Policy, &record),
                vec![text.to_owned()],
                "{def}"
            );
        }
    }

    #[test]
    fn every_failing_field_is_reported_in_rabbitmq_order() {
        let record = policy("(", "bogus", json!({"foo": 1}));
        assert_eq!(
            errors(PolicyKind::Policy, &record),
            vec![
                "[{<<\"foo\">>,1}] are not recognised policy settings".to_owned(),
                "apply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'"
                    .to_owned(),
                "pattern should be regular expression but is invalid: {\"missing )\",1}".to_owned(),
            ]
        );
    }

    #[test]
    fn regex_errors_use_pcre_words() {
        let text = |pattern: &str| {
            errors(
                PolicyKind::Policy,
                &policy(pattern, "all", json!({"max-length": 1})),
            )
        };
        assert_eq!(
            text("*a"),
            vec![
                "pattern should be regular expression but is invalid: {\"nothing to repeat\",0}"
                    .to_owned()
            ]
        );
        assert_eq!(
            text("a)"),
            vec![format!(
                "pattern should be regular expression but is invalid: {{\"unmatched parentheses\",\n{}1}}",
                " ".repeat(54)
            )]
        );
    }

    #[test]
    fn operator_policies_take_only_their_keys() {
        let record = policy(
            ".*",
            "all",
            json!({"overflow": "drop-head", "max-length": 3}),
        );
        assert_eq!(
            errors(PolicyKind::OperatorPolicy, &record),
            vec![
                "[{<<\"overflow\">>,<<\"drop-head\">>}] are not recognised policy settings"
                    .to_owned()
            ]
        );
        let ok = policy(
            ".*",
            "queues",
            json!({"max-length": 3, "delivery-limit": 2}),
        );
        assert!(validate(PolicyKind::OperatorPolicy, &ok).is_ok());
    }

    #[test]
    fn later_apply_to_values_are_refused() {
        let record = policy(".*", "classic_queues", json!({"max-length": 1}));
        assert_eq!(
            errors(PolicyKind::Policy, &record),
            vec![
                "apply-to 'classic_queues' unrecognised; should be 'queues', 'exchanges' or 'all'"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn valid_policies_pass() {
        let record = policy(
            "^q\\.",
            "queues",
            json!({"max-length": 10, "overflow": "reject-publish", "dead-letter-exchange": "dlx",
                   "queue-mode": "lazy", "delivery-limit": 3, "max-age": "7D",
                   "ha-mode": "exactly", "ha-params": 2, "queue-master-locator": "min-masters"}),
        );
        assert!(validate(PolicyKind::Policy, &record).is_ok());
    }
}
