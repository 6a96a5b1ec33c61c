//! Queue arguments (`x-...`): which ones Warren knows, how they are validated at declare
//! time, and RabbitMQ's equivalence check on redeclare. Implemented: `x-message-ttl`,
//! `x-expires`, `x-queue-type` (classic), `x-queue-mode` / `x-queue-version` (classic
//! queues always page to disk past their memory window, so both modes behave alike).
//!
//! RabbitMQ compares only the arguments it knows when a queue is declared again (an
//! unknown `x-foo` may differ freely), and treats an absent `x-queue-type` as the default
//! type, classic. Arguments whose feature Warren does not implement yet are refused with
//! 406 rather than accepted and ignored: a client that asks for a message TTL or a
//! max-length must not get a queue that silently lacks it.

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::error::BrokerError;

/// Arguments RabbitMQ 3.10 checks for equivalence (`rabbit_amqqueue:declare_args/0`).
const KNOWN: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
    "x-queue-master-locator",
    "x-delivery-limit",
    "x-dead-letter-strategy",
];

/// Known arguments whose behaviour Warren does not implement yet.
const NOT_YET: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-dead-letter-strategy",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// The longest TTL or expiry RabbitMQ accepts: ten years, in milliseconds.
pub(crate) const MAX_EXPIRY_MS: u64 = 315_360_000_000;

const QUEUE_TYPE: &str = "x-queue-type";
const MESSAGE_TTL: &str = "x-message-ttl";
const EXPIRES: &str = "x-expires";
const QUEUE_MODE: &str = "x-queue-mode";

/// An AMQP integer of any width.
pub(crate) fn integer(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        _ => return None,
    })
}

/// `x-message-ttl` of a validated argument table, in ms.
pub(crate) fn message_ttl(args: &FieldTable) -> Option<u64> {
    args.inner()
        .get(MESSAGE_TTL)
        .and_then(integer)
        .and_then(|v| u64::try_from(v).ok())
}

/// `x-expires` of a validated argument table, in ms.
pub(crate) fn queue_expires(args: &FieldTable) -> Option<u64> {
    args.inner()
        .get(EXPIRES)
        .and_then(integer)
        .and_then(|v| u64::try_from(v).ok())
}

/// The queue type an argument table asks for (absent = classic).
fn queue_type(args: &FieldTable) -> Option<String> {
    match args.inner().get(QUEUE_TYPE) {
        None => Some("classic".into()),
        Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
        Some(AMQPValue::ByteArray(b)) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
        Some(_) => None,
    }
}

/// Check the arguments of a new queue.
pub(crate) fn validate(name: &str, vhost: &str, args: &FieldTable) -> Result<(), BrokerError> {
    match queue_type(args).as_deref() {
        Some("classic") => {}
        Some(t @ ("quorum" | "stream")) => {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{QUEUE_TYPE}' for queue '{name}' in vhost '{vhost}': queue type '{t}' is not supported by Warren; declare a classic queue"
            )));
        }
        Some(other) => {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{QUEUE_TYPE}' for queue '{name}' in vhost '{vhost}': \"unsupported queue type '{other}'\""
            )));
        }
        None => {
            let kind = args
                .inner()
                .get(QUEUE_TYPE)
                .map(type_name)
                .unwrap_or_default();
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{QUEUE_TYPE}' for queue '{name}' in vhost '{vhost}': {{unacceptable_type,{kind}}}"
            )));
        }
    }
    if let Some(mode) = args.inner().get(QUEUE_MODE) {
        let mode = text(mode);
        if mode != "default" && mode != "lazy" {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{QUEUE_MODE}' for queue '{name}' in vhost '{vhost}': \"unsupported queue mode '{mode}'\""
            )));
        }
    }
    let invalid = |key: &str, why: String| {
        BrokerError::PreconditionFailed(format!(
            "invalid arg '{key}' for queue '{name}' in vhost '{vhost}': {why}"
        ))
    };
    // Integer arguments and their allowed range, with RabbitMQ's limits and words: TTLs of
    // up to ten years (`{value_too_large,N}` beyond), `x-expires` of at least 1 ms.
    for (key, min) in [(MESSAGE_TTL, 0), (EXPIRES, 1)] {
        let Some(value) = args.inner().get(key) else {
            continue;
        };
        match integer(value) {
            Some(v) if v < 0 => return Err(invalid(key, format!("{{value_negative,{v}}}"))),
            Some(v) if v < min => return Err(invalid(key, format!("{{value_zero,{v}}}"))),
            Some(v) if v > MAX_EXPIRY_MS as i64 => {
                return Err(invalid(key, format!("{{value_too_large,{v}}}")));
            }
            Some(_) => {}
            None => {
                return Err(invalid(
                    key,
                    format!("\"expected integer, got {}\"", type_name(value)),
                ));
            }
        }
    }
    for key in args.inner().keys() {
        if NOT_YET.contains(&key.as_str()) {
            return Err(BrokerError::PreconditionFailed(format!(
                "queue argument '{key}' for queue '{name}' in vhost '{vhost}' is not supported by this Warren version"
            )));
        }
    }
    Ok(())
}

/// RabbitMQ's redeclare check over the arguments it knows.
pub(crate) fn check_equivalent(
    name: &str,
    vhost: &str,
    current: &FieldTable,
    received: &FieldTable,
) -> Result<(), BrokerError> {
    let (rt, ct) = (queue_type(received), queue_type(current));
    if rt != ct {
        return Err(BrokerError::PreconditionFailed(format!(
            "inequivalent arg '{QUEUE_TYPE}' for queue '{name}' in vhost '{vhost}': received '{}' but current is '{}'",
            rt.unwrap_or_default(),
            ct.unwrap_or_default()
        )));
    }
    for key in KNOWN.iter().filter(|k| **k != QUEUE_TYPE) {
        check_arg_equivalent("queue", name, vhost, key, current, received)?;
    }
    Ok(())
}

/// RabbitMQ's redeclare check of one argument of a queue or exchange (`what`).
pub(crate) fn check_arg_equivalent(
    what: &str,
    name: &str,
    vhost: &str,
    key: &str,
    current: &FieldTable,
    received: &FieldTable,
) -> Result<(), BrokerError> {
    match (received.inner().get(key), current.inner().get(key)) {
        (None, None) => Ok(()),
        // Both present: equal when of the same type class (every integer width is one
        // class) and value, as RabbitMQ's `assert_args_equivalence`; otherwise the short
        // form of the message.
        (Some(r), Some(c)) if equivalent(r, c) => Ok(()),
        (Some(r), Some(c)) => Err(BrokerError::PreconditionFailed(format!(
            "inequivalent arg '{key}' for {what} '{name}' in vhost '{vhost}': received '{}' but current is '{}'",
            text(r),
            text(c)
        ))),
        (r, c) => {
            let side = |v: Option<&AMQPValue>| v.map(describe).unwrap_or_else(|| "none".into());
            Err(BrokerError::PreconditionFailed(format!(
                "inequivalent arg '{key}' for {what} '{name}' in vhost '{vhost}': received {} but current is {}",
                side(r),
                side(c)
            )))
        }
    }
}

/// RabbitMQ's argument equivalence: integers of any width compare by value, other values
/// by type and value.
fn equivalent(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// "the value '5' of type 'signedint'", as RabbitMQ words it.
fn describe(value: &AMQPValue) -> String {
    let (text, kind) = text_and_type(value);
    format!("the value '{text}' of type '{kind}'")
}

/// A value as RabbitMQ prints it in an error message.
fn text(value: &AMQPValue) -> String {
    text_and_type(value).0
}

/// RabbitMQ's name for a value's type (`longstr`, `signedint`, ...).
pub(crate) fn type_name(value: &AMQPValue) -> &'static str {
    match value {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::ShortString(_) => "shortstr",
        AMQPValue::LongString(_) => "longstr",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Void => "void",
    }
}

/// A value's text and RabbitMQ's name for its type.
fn text_and_type(value: &AMQPValue) -> (String, &'static str) {
    let text = match value {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(v) => v.to_string(),
        AMQPValue::ShortShortUInt(v) => v.to_string(),
        AMQPValue::ShortInt(v) => v.to_string(),
        AMQPValue::ShortUInt(v) => v.to_string(),
        AMQPValue::LongInt(v) => v.to_string(),
        AMQPValue::LongUInt(v) => v.to_string(),
        AMQPValue::LongLongInt(v) => v.to_string(),
        AMQPValue::Float(v) => v.to_string(),
        AMQPValue::Double(v) => v.to_string(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::Timestamp(v) => v.to_string(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        AMQPValue::DecimalValue(d) => format!("{}e-{}", d.value, d.scale),
        AMQPValue::FieldTable(_) | AMQPValue::FieldArray(_) => "...".into(),
        AMQPValue::Void => String::new(),
    };
    (text, type_name(value))
}

/// An argument that names an exchange (`alternate-exchange`, `x-dead-letter-exchange`), as
/// RabbitMQ's `rabbit_misc:r_arg` reads it for a permission check: `None` when absent, the
/// name when it is a string, and otherwise 406 `invalid type 'signedint' for arg '{key}' in
/// {owner}` (`owner` as RabbitMQ prints a resource: `queue 'q' in vhost '/'`).
pub fn exchange_argument(
    args: &FieldTable,
    key: &str,
    owner: &str,
) -> Result<Option<String>, BrokerError> {
    match args.inner().get(key) {
        None => Ok(None),
        Some(AMQPValue::LongString(s)) => Ok(Some(String::from_utf8_lossy(s.as_bytes()).into())),
        Some(AMQPValue::ShortString(s)) => Ok(Some(s.as_str().to_owned())),
        Some(other) => Err(BrokerError::PreconditionFailed(format!(
            "invalid type '{}' for arg '{key}' in {owner}",
            type_name(other)
        ))),
    }
}
