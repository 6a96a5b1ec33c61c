//! Queue arguments (`x-...`): which ones Warren knows, how they are validated at declare
//! time ([`validate`], RabbitMQ 3.10's checks, order and words), what a queue makes of
//! them ([`QueueArgs`]), and RabbitMQ's equivalence check on redeclare.
//!
//! Classic queues take `x-expires`, `x-message-ttl`, `x-dead-letter-exchange`,
//! `x-dead-letter-routing-key`, `x-max-length`, `x-max-length-bytes`, `x-overflow`,
//! `x-max-priority`, `x-single-active-consumer`, `x-queue-mode` / `x-queue-version`
//! (classic queues always page to disk past their memory window, so both modes behave
//! alike) and `x-queue-type` (classic). Arguments of the other queue types (quorum's
//! `x-delivery-limit`, stream's `x-max-age`, ...) are refused on a classic queue as
//! RabbitMQ refuses them.
//!
//! RabbitMQ compares only the arguments it knows when a queue is declared again (an
//! unknown `x-foo` may differ freely), and treats an absent `x-queue-type` as the default
//! type, classic.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

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

/// Arguments of the other queue types, refused on a classic queue (RabbitMQ: "invalid
/// arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue").
const NOT_CLASSIC: &[&str] = &[
    "x-dead-letter-strategy",
    "x-delivery-limit",
    "x-initial-cluster-size",
    "x-max-age",
    "x-max-in-memory-bytes",
    "x-max-in-memory-length",
    "x-queue-leader-locator",
    "x-quorum-initial-group-size",
    "x-stream-max-segment-size-bytes",
];

/// The longest TTL or expiry RabbitMQ accepts: ten years, in milliseconds.
pub(crate) const MAX_EXPIRY_MS: u64 = 315_360_000_000;

/// The highest `x-max-priority` RabbitMQ supports.
pub const MAX_SUPPORTED_PRIORITY: i64 = 255;

const QUEUE_TYPE: &str = "x-queue-type";
const MESSAGE_TTL: &str = "x-message-ttl";
const EXPIRES: &str = "x-expires";
const QUEUE_MODE: &str = "x-queue-mode";
const QUEUE_VERSION: &str = "x-queue-version";
const DLX: &str = "x-dead-letter-exchange";
const DLRK: &str = "x-dead-letter-routing-key";
const MAX_LENGTH: &str = "x-max-length";
const MAX_LENGTH_BYTES: &str = "x-max-length-bytes";
const MAX_PRIORITY: &str = "x-max-priority";
const OVERFLOW: &str = "x-overflow";
const SINGLE_ACTIVE_CONSUMER: &str = "x-single-active-consumer";

/// What happens when a publish would take a queue past its length limit (`x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest ready messages (RabbitMQ's default).
    #[default]
    DropHead,
    /// Refuse the new message: nack under confirms, dropped otherwise.
    RejectPublish,
    /// Refuse the new message and dead-letter it.
    RejectPublishDlx,
}

/// Where a queue dead-letters to (`x-dead-letter-exchange`, `x-dead-letter-routing-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterTarget {
    /// The exchange (may not exist: then dead letters are dropped).
    pub exchange: Arc<str>,
    /// The routing key that replaces the message's own, if set.
    pub routing_key: Option<ShortString>,
}

/// What a queue's validated arguments ask of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueArgs {
    /// `x-message-ttl`, ms.
    pub message_ttl: Option<u64>,
    /// `x-expires`, ms.
    pub expires: Option<u64>,
    /// `x-dead-letter-exchange` and `-routing-key`.
    pub dead_letter: Option<DeadLetterTarget>,
    /// `x-max-length`, messages.
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`, body bytes.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`.
    pub overflow: Overflow,
    /// `x-max-priority` (0 when absent: no priorities).
    pub max_priority: u8,
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
}

impl QueueArgs {
    /// Read a validated argument table (see [`validate`]; values that would not pass it
    /// are ignored here).
    pub fn parse(args: &FieldTable) -> QueueArgs {
        let table = args.inner();
        let non_negative =
            |key: &str| table.get(key).and_then(integer).and_then(|v| u64::try_from(v).ok());
        let dead_letter = table.get(DLX).and_then(string).map(|exchange| DeadLetterTarget {
            exchange: Arc::from(exchange.as_str()),
            routing_key: table.get(DLRK).and_then(string).map(ShortString::from),
        });
        QueueArgs {
            message_ttl: non_negative(MESSAGE_TTL),
            expires: non_negative(EXPIRES),
            dead_letter,
            max_length: non_negative(MAX_LENGTH),
            max_length_bytes: non_negative(MAX_LENGTH_BYTES),
            overflow: match table.get(OVERFLOW).and_then(string).as_deref() {
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                _ => Overflow::DropHead,
            },
            max_priority: non_negative(MAX_PRIORITY)
                .map_or(0, |p| p.min(MAX_SUPPORTED_PRIORITY as u64) as u8),
            single_active_consumer: matches!(
                table.get(SINGLE_ACTIVE_CONSUMER),
                Some(AMQPValue::Boolean(true))
            ),
        }
    }

    /// Whether the queue has a length limit.
    pub fn has_length_limit(&self) -> bool {
        self.max_length.is_some() || self.max_length_bytes.is_some()
    }
}

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

/// A string argument (long or short string).
fn string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
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

/// One argument's check: `Err` carries RabbitMQ's reason as it prints it (`~255p`).
type Check = fn(&AMQPValue, &FieldTable) -> Result<(), String>;

/// RabbitMQ's `check_int_arg`: any integer type.
fn check_int(value: &AMQPValue) -> Result<i64, String> {
    integer(value).ok_or_else(|| format!("\"expected integer, got {}\"", type_name(value)))
}

fn check_non_negative(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match check_int(value)? {
        v if v < 0 => Err(format!("{{value_negative,{v}}}")),
        _ => Ok(()),
    }
}

/// `rabbit_misc:check_expiry`: 0 to ten years.
fn check_expiry(v: i64) -> Result<(), String> {
    if v < 0 {
        Err(format!("{{value_negative,{v}}}"))
    } else if v > MAX_EXPIRY_MS as i64 {
        Err(format!("{{value_too_large,{v}}}"))
    } else {
        Ok(())
    }
}

fn check_expires(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match check_int(value)? {
        0 => Err("{value_zero,0}".into()),
        v => check_expiry(v),
    }
}

fn check_message_ttl(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    check_expiry(check_int(value)?)
}

fn check_dlx_name(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => Ok(()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_dlx_routing_key(value: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            if args.inner().contains_key(DLX) {
                Ok(())
            } else {
                Err("routing_key_but_no_dlx_defined".into())
            }
        }
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_max_priority(value: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    check_non_negative(value, args)?;
    match check_int(value)? {
        v if v > MAX_SUPPORTED_PRIORITY => Err(format!("{{max_value_exceeded,{v}}}")),
        _ => Ok(()),
    }
}

fn check_overflow(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            match string(value).as_deref() {
                Some("drop-head" | "reject-publish" | "reject-publish-dlx") => Ok(()),
                _ => Err("invalid_overflow".into()),
            }
        }
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_queue_mode(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            match string(value).as_deref() {
                Some("default" | "lazy") => Ok(()),
                _ => Err(format!("\"unsupported queue mode '{}'\"", text(value))),
            }
        }
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_queue_version(value: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    check_non_negative(value, args)?;
    match check_int(value)? {
        1 | 2 => Ok(()),
        v => Err(format!("\"unsupported queue version '{v}'\"")),
    }
}

fn check_bool(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::Boolean(_) => Ok(()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

/// Classic queues' arguments and their checks, in the order RabbitMQ 3.10 runs them
/// (`rabbit_amqqueue:declare_args/0`), which decides the error a client sees first.
const CLASSIC_CHECKS: &[(&str, Check)] = &[
    (EXPIRES, check_expires),
    (MESSAGE_TTL, check_message_ttl),
    (DLX, check_dlx_name),
    (DLRK, check_dlx_routing_key),
    (MAX_LENGTH, check_non_negative),
    (MAX_LENGTH_BYTES, check_non_negative),
    (MAX_PRIORITY, check_max_priority),
    (OVERFLOW, check_overflow),
    (QUEUE_MODE, check_queue_mode),
    (QUEUE_VERSION, check_queue_version),
    (SINGLE_ACTIVE_CONSUMER, check_bool),
];

/// Check the arguments of a new queue, as RabbitMQ 3.10's `check_declare_arguments`:
/// the queue type first, then each argument of the type in RabbitMQ's order, then the
/// arguments that belong to other queue types.
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
    for (key, check) in CLASSIC_CHECKS {
        let Some(value) = args.inner().get(*key) else {
            continue;
        };
        if let Err(why) = check(value, args) {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{key}' for queue '{name}' in vhost '{vhost}': {why}"
            )));
        }
    }
    for key in args.inner().keys() {
        if NOT_CLASSIC.contains(&key.as_str()) {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{key}' for queue '{name}' in vhost '{vhost}' of queue type rabbit_classic_queue"
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
