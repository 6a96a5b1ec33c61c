//! What a queue or an exchange acts on once its policies apply: RabbitMQ 3.10's
//! `rabbit_policy:effective_definition/get` and the queue's `process_args_policy`.
//!
//! ```text
//!   policy definition ─┐
//!                      ├─ merged definition ─┐
//!   operator policy ───┘  (min / op wins)    ├─ QueueArgs (settings the queue acts on)
//!   queue arguments (x-...) ─────────────────┘  (per key: the lower, or the argument)
//! ```
//!
//! Merging the two kinds (`merge_operator_definitions`): every key of either; a key in
//! both takes the lower value for `expires`, `message-ttl`, `max-length`,
//! `max-length-bytes`, `max-in-memory-length`, `max-in-memory-bytes` and
//! `delivery-limit` (the keys operator policies may set), the operator's for booleans.
//!
//! Against the queue's own arguments (`process_args_policy`): `expires`, `message-ttl`,
//! `max-length` and `max-length-bytes` take the lower of the argument and the policy;
//! `dead-letter-exchange`, `dead-letter-routing-key`, `overflow` and `queue-mode` take the
//! argument when there is one, else the policy's (the two dead-letter keys separately, so
//! a policy's exchange can go with an argument's routing key). Classic queues page the
//! same way in both queue modes, so `queue-mode` changes nothing. Other keys (quorum
//! queues' `delivery-limit`, streams' `max-age`, mirroring's `ha-*`, ...) are kept in the
//! effective definition and have no effect on a classic queue, as in RabbitMQ.
//!
//! Quorum queues (`quorum_settings`) follow `rabbit_quorum_queue:ra_machine_config`
//! instead where it differs: the policy's `overflow` and `expires` win, and
//! `delivery-limit` and `dead-letter-strategy` apply.
//!
//! Exchanges: the `alternate-exchange` argument wins over the policy's
//! (`rabbit_policy:get_arg`).

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use serde_json::{Map, Value};

use super::matching::Applied;
use crate::arguments::{DeadLetterStrategy, DeadLetterTarget, Overflow, QueueArgs, QueueType};

/// Keys whose policy and operator policy values merge to the lower one.
const MIN_KEYS: [&str; 7] = [
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// The definition in effect: the policy's and the operator policy's merged (see the
/// module docs). Empty when neither applies.
pub(crate) fn merged_definition(applied: &Applied) -> Map<String, Value> {
    let mut out = applied
        .policy
        .as_ref()
        .map(|p| (*p.definition).clone())
        .unwrap_or_default();
    if let Some(op) = &applied.operator {
        for (key, op_value) in op.definition.iter() {
            let merged = match out.get(key) {
                Some(value) => merge_value(key, value, op_value),
                None => op_value.clone(),
            };
            out.insert(key.clone(), merged);
        }
    }
    out
}

/// `merge_policy_value`: the lower of two numbers for the keys in [`MIN_KEYS`], the
/// operator's value otherwise.
fn merge_value(key: &str, value: &Value, op_value: &Value) -> Value {
    if MIN_KEYS.contains(&key)
        && let (Some(a), Some(b)) = (value.as_f64(), op_value.as_f64())
    {
        return if a <= b {
            value.clone()
        } else {
            op_value.clone()
        };
    }
    op_value.clone()
}

/// The settings a queue with `declared` arguments (already parsed from `arguments`) acts
/// on under the merged policy `definition`.
pub(crate) fn queue_settings(
    declared: &QueueArgs,
    arguments: &FieldTable,
    definition: &Map<String, Value>,
) -> QueueArgs {
    let policy_number = |key: &str| definition.get(key).and_then(Value::as_u64);
    let policy_string = |key: &str| definition.get(key).and_then(Value::as_str);
    let min = |arg: Option<u64>, key: &str| match (arg, policy_number(key)) {
        (Some(a), Some(p)) => Some(a.min(p)),
        (a, p) => a.or(p),
    };
    let table = arguments.inner();
    let arg_string = |key: &str| match table.get(key) {
        Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    let dlx = arg_string("x-dead-letter-exchange")
        .or_else(|| policy_string("dead-letter-exchange").map(str::to_owned));
    let dlrk = arg_string("x-dead-letter-routing-key")
        .or_else(|| policy_string("dead-letter-routing-key").map(str::to_owned));
    let overflow = if table.contains_key("x-overflow") {
        declared.overflow
    } else {
        match policy_string("overflow") {
            Some("reject-publish") => Overflow::RejectPublish,
            Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
            _ => Overflow::DropHead,
        }
    };
    let settings = QueueArgs {
        message_ttl: min(declared.message_ttl, "message-ttl"),
        expires: min(declared.expires, "expires"),
        dead_letter: dlx.map(|exchange| DeadLetterTarget {
            exchange: Arc::from(exchange.as_str()),
            routing_key: dlrk.map(ShortString::from),
        }),
        max_length: min(declared.max_length, "max-length"),
        max_length_bytes: min(declared.max_length_bytes, "max-length-bytes"),
        overflow,
        ..declared.clone()
    };
    match declared.queue_type {
        QueueType::Classic => settings,
        QueueType::Quorum => quorum_settings(settings, declared, arguments, definition),
    }
}

/// A quorum queue's differences, as RabbitMQ's `rabbit_quorum_queue:ra_machine_config`:
/// the policy's `overflow` and `expires` win over the arguments; `delivery-limit` is the
/// lower of the two unless one is negative (RabbitMQ 4's `resolve_delivery_limit`: then
/// the higher, so a negative one means unlimited only when nothing sets a limit);
/// `dead-letter-strategy` is the argument's, else the policy's.
fn quorum_settings(
    mut settings: QueueArgs,
    declared: &QueueArgs,
    arguments: &FieldTable,
    definition: &Map<String, Value>,
) -> QueueArgs {
    match definition.get("overflow").and_then(Value::as_str) {
        Some("reject-publish") => settings.overflow = Overflow::RejectPublish,
        Some("drop-head") => settings.overflow = Overflow::DropHead,
        Some("reject-publish-dlx") => settings.overflow = Overflow::RejectPublishDlx,
        _ => {}
    }
    if let Some(expires) = definition.get("expires").and_then(Value::as_u64) {
        settings.expires = Some(expires);
    }
    let policy_limit = definition.get("delivery-limit").and_then(Value::as_i64);
    settings.delivery_limit = match (declared.delivery_limit, policy_limit) {
        (Some(a), Some(p)) if a < 0 || p < 0 => Some(a.max(p)),
        (Some(a), Some(p)) => Some(a.min(p)),
        (a, p) => a.or(p),
    };
    if !arguments.inner().contains_key("x-dead-letter-strategy") {
        settings.dead_letter_strategy = match definition
            .get("dead-letter-strategy")
            .and_then(Value::as_str)
        {
            Some("at-least-once") => DeadLetterStrategy::AtLeastOnce,
            _ => DeadLetterStrategy::AtMostOnce,
        };
    }
    settings
}

/// The alternate exchange of an exchange whose own argument is `declared`, under the
/// merged policy `definition`: the argument wins.
pub(crate) fn exchange_alternate(
    declared: Option<&Arc<str>>,
    definition: &Map<String, Value>,
) -> Option<Arc<str>> {
    declared.cloned().or_else(|| {
        definition
            .get("alternate-exchange")
            .and_then(Value::as_str)
            .map(Arc::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::matching::Named;
    use serde_json::json;

    fn named(name: &str, definition: Value) -> Option<Named> {
        Some(Named {
            name: Arc::from(name),
            definition: Arc::new(definition.as_object().cloned().unwrap_or_default()),
        })
    }

    fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert(ShortString::from(*k), v.clone());
        }
        t
    }

    #[test]
    fn operator_policy_caps_numbers_and_adds_keys() {
        let applied = Applied {
            policy: named(
                "p",
                json!({"max-length": 10, "message-ttl": 100, "overflow": "reject-publish"}),
            ),
            operator: named(
                "op",
                json!({"max-length": 5, "message-ttl": 500, "expires": 9000}),
            ),
        };
        let merged = merged_definition(&applied);
        assert_eq!(
            Value::Object(merged),
            json!({"max-length": 5, "message-ttl": 100, "overflow": "reject-publish", "expires": 9000})
        );
    }

    #[test]
    fn lower_of_argument_and_policy_wins_for_limits_and_ttls() {
        let args = table(&[
            ("x-max-length", AMQPValue::LongInt(3)),
            ("x-message-ttl", AMQPValue::LongInt(50_000)),
        ]);
        let declared = QueueArgs::parse(&args);
        let def = json!({"max-length": 7, "message-ttl": 1000, "max-length-bytes": 64});
        let s = queue_settings(&declared, &args, def.as_object().unwrap_or(&Map::new()));
        assert_eq!(s.max_length, Some(3));
        assert_eq!(s.message_ttl, Some(1000));
        assert_eq!(s.max_length_bytes, Some(64));
        assert_eq!(s.expires, None);
    }

    #[test]
    fn argument_wins_for_overflow_and_dead_letter_keys_separately() {
        let args = table(&[
            ("x-overflow", AMQPValue::LongString("drop-head".into())),
            (
                "x-dead-letter-routing-key",
                AMQPValue::LongString("rk-arg".into()),
            ),
        ]);
        let declared = QueueArgs::parse(&args);
        let def = json!({"overflow": "reject-publish", "dead-letter-exchange": "dlx",
                         "dead-letter-routing-key": "rk-pol"});
        let s = queue_settings(&declared, &args, def.as_object().unwrap_or(&Map::new()));
        assert_eq!(s.overflow, Overflow::DropHead);
        let target = s.dead_letter.expect("a dead-letter target");
        assert_eq!(&*target.exchange, "dlx");
        assert_eq!(
            target.routing_key.as_ref().map(|k| k.as_str()),
            Some("rk-arg")
        );
    }

    #[test]
    fn no_policy_leaves_the_arguments() {
        let args = table(&[("x-max-length", AMQPValue::LongInt(3))]);
        let declared = QueueArgs::parse(&args);
        assert_eq!(queue_settings(&declared, &args, &Map::new()), declared);
    }

    #[test]
    fn alternate_exchange_argument_wins() {
        let def = json!({"alternate-exchange": "pol"});
        let def = def.as_object().cloned().unwrap_or_default();
        assert_eq!(exchange_alternate(None, &def).as_deref(), Some("pol"));
        let arg: Arc<str> = Arc::from("arg");
        assert_eq!(exchange_alternate(Some(&arg), &def).as_deref(), Some("arg"));
    }
}
