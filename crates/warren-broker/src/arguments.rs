//! Queue arguments (`x-...`): which ones Warren knows, how they are validated at declare
//! time ([`validate`], RabbitMQ 3.10's checks, order and words), what a queue makes of
//! them ([`QueueArgs`]), and RabbitMQ's equivalence check on redeclare.
//!
//! Classic queues take `x-expires`, `x-message-ttl`, `x-dead-letter-exchange`,
//! `x-dead-letter-routing-key`, `x-max-length`, `x-max-length-bytes`, `x-overflow`,
//! `x-max-priority`, `x-single-active-consumer`, `x-queue-mode` / `x-queue-version`
//! (classic queues always page to disk past their memory window, so both modes behave
//! alike), `x-queue-master-locator` and `x-queue-type` (classic). Quorum queues
//! (`x-queue-type: quorum`) take `x-expires`, `x-message-ttl`, the dead-letter pair,
//! `x-dead-letter-strategy`, `x-max-length`, `x-max-length-bytes`,
//! `x-max-in-memory-length` / `-bytes` (accepted and checked; a quorum queue pages like a
//! classic one), `x-overflow`, `x-single-active-consumer`, `x-quorum-initial-group-size`,
//! `x-delivery-limit` and `x-queue-leader-locator`. Each type refuses the others'
//! arguments with RabbitMQ 3.10's words (`... of queue type rabbit_quorum_queue`); the
//! lists are the types' `capabilities()` in 3.10.
//!
//! RabbitMQ compares, when a queue is declared again, only the arguments its type knows,
//! in the type's order (an unknown `x-foo` may differ freely), and treats an absent
//! `x-queue-type` on a classic queue as `classic`.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

use crate::error::BrokerError;

/// A classic queue's arguments, in the order of RabbitMQ 3.10's
/// `rabbit_classic_queue:capabilities()` (the order of the redeclare comparison).
const CLASSIC_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
];

/// A quorum queue's arguments, in the order of RabbitMQ 3.10's
/// `rabbit_quorum_queue:capabilities()`.
const QUORUM_ARGS: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-ttl",
    "x-queue-leader-locator",
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

/// Arguments of the other queue types, refused on a quorum queue ("... of queue type
/// rabbit_quorum_queue"): classic-only and stream-only ones.
const NOT_QUORUM: &[&str] = &[
    "x-initial-cluster-size",
    "x-max-age",
    "x-max-priority",
    "x-queue-master-locator",
    "x-queue-mode",
    "x-queue-version",
    "x-stream-max-segment-size-bytes",
];

/// The delivery limit a quorum queue gets when neither an argument nor a policy sets one:
/// RabbitMQ 4's default (3.10 had none). A negative limit means unlimited, as in 4.x.
pub const DEFAULT_DELIVERY_LIMIT: u64 = 20;

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
const DELIVERY_LIMIT: &str = "x-delivery-limit";
const DEAD_LETTER_STRATEGY: &str = "x-dead-letter-strategy";
const MAX_IN_MEMORY_LENGTH: &str = "x-max-in-memory-length";
const MAX_IN_MEMORY_BYTES: &str = "x-max-in-memory-bytes";
const QUORUM_INITIAL_GROUP_SIZE: &str = "x-quorum-initial-group-size";
const QUEUE_LEADER_LOCATOR: &str = "x-queue-leader-locator";

/// A queue's type (`x-queue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// RabbitMQ's classic queue (the default).
    #[default]
    Classic,
    /// A quorum queue (one node: every message stored, delivery counts, poison-message
    /// handling; see `queue/quorum/`).
    Quorum,
}

impl QueueType {
    /// The name clients and the management API use.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }

    /// RabbitMQ's module name for the type, as its error texts print it.
    pub fn module(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
        }
    }

    /// The type an argument table declares (absent or not understood: classic; the
    /// declare checks refuse what is not understood).
    pub fn of(args: &FieldTable) -> QueueType {
        match queue_type(args).as_deref() {
            Some("quorum") => QueueType::Quorum,
            _ => QueueType::Classic,
        }
    }
}

/// How a quorum queue dead-letters (`x-dead-letter-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeadLetterStrategy {
    /// Dead letters that reach no queue are dropped (the default, as classic queues).
    #[default]
    AtMostOnce,
    /// A dead letter leaves its queue only once a target queue holds it; one that reaches
    /// no queue stays and is retried. Effective only with `x-overflow: reject-publish`.
    AtLeastOnce,
}

impl DeadLetterStrategy {
    /// The argument's value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStrategy::AtMostOnce => "at-most-once",
            DeadLetterStrategy::AtLeastOnce => "at-least-once",
        }
    }
}

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
    /// `x-queue-type`.
    pub queue_type: QueueType,
    /// `x-delivery-limit` (quorum) as set: `None` when absent (the default applies,
    /// [`DEFAULT_DELIVERY_LIMIT`]), a negative value for unlimited. RabbitMQ 3.10 accepts
    /// any value; one that is not an integer never compares below a count, so it reads as
    /// unlimited (`i64::MAX`).
    pub delivery_limit: Option<i64>,
    /// `x-dead-letter-strategy` (quorum) as declared; see [`QueueArgs::at_least_once`]
    /// for when it takes effect.
    pub dead_letter_strategy: DeadLetterStrategy,
}

impl QueueArgs {
    /// Read a validated argument table (see [`validate`]; values that would not pass it
    /// are ignored here).
    pub fn parse(args: &FieldTable) -> QueueArgs {
        let table = args.inner();
        let non_negative = |key: &str| {
            table
                .get(key)
                .and_then(integer)
                .and_then(|v| u64::try_from(v).ok())
        };
        let dead_letter = table
            .get(DLX)
            .and_then(string)
            .map(|exchange| DeadLetterTarget {
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
            queue_type: QueueType::of(args),
            delivery_limit: table
                .get(DELIVERY_LIMIT)
                .map(|v| integer(v).unwrap_or(i64::MAX)),
            dead_letter_strategy: match table.get(DEAD_LETTER_STRATEGY).and_then(string).as_deref()
            {
                Some("at-least-once") => DeadLetterStrategy::AtLeastOnce,
                _ => DeadLetterStrategy::AtMostOnce,
            },
        }
    }

    /// Whether the queue has a length limit.
    pub fn has_length_limit(&self) -> bool {
        self.max_length.is_some() || self.max_length_bytes.is_some()
    }

    /// The delivery limit in force (quorum queues): `None` = unlimited. A message whose
    /// delivery count passes it is dropped or dead-lettered (`delivery_limit`).
    pub fn effective_delivery_limit(&self) -> Option<u64> {
        match self.delivery_limit {
            None => Some(DEFAULT_DELIVERY_LIMIT),
            Some(n) => u64::try_from(n).ok(),
        }
    }

    /// Whether dead-lettering is at-least-once: asked for, with a dead-letter exchange,
    /// and with `reject-publish` overflow (RabbitMQ 3.10 falls back to at-most-once
    /// otherwise).
    pub fn at_least_once(&self) -> bool {
        self.dead_letter_strategy == DeadLetterStrategy::AtLeastOnce
            && self.overflow == Overflow::RejectPublish
            && self.dead_letter.is_some()
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
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => match string(value).as_deref() {
            Some("drop-head" | "reject-publish" | "reject-publish-dlx") => Ok(()),
            _ => Err("invalid_overflow".into()),
        },
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_queue_mode(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => match string(value).as_deref() {
            Some("default" | "lazy") => Ok(()),
            _ => Err(format!("\"unsupported queue mode '{}'\"", text(value))),
        },
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

fn check_dlx_strategy(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => match string(value).as_deref() {
            Some("at-most-once" | "at-least-once") => Ok(()),
            _ => Err("invalid_dlx_strategy".into()),
        },
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

/// `check_initial_cluster_size_arg`: a positive integer.
fn check_positive(value: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    check_non_negative(value, args)?;
    match check_int(value)? {
        0 => Err("{value_zero,0}".into()),
        _ => Ok(()),
    }
}

fn check_leader_locator(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => match string(value).as_deref() {
            Some("client-local" | "balanced" | "random" | "least-leaders") => Ok(()),
            _ => Err("invalid_queue_locator_arg".into()),
        },
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

/// Quorum queues' arguments that RabbitMQ 3.10 checks, in `declare_args/0`'s order
/// (`x-delivery-limit` has no check there: any value is accepted).
const QUORUM_CHECKS: &[(&str, Check)] = &[
    (EXPIRES, check_expires),
    (MESSAGE_TTL, check_message_ttl),
    (DLX, check_dlx_name),
    (DLRK, check_dlx_routing_key),
    (DEAD_LETTER_STRATEGY, check_dlx_strategy),
    (MAX_LENGTH, check_non_negative),
    (MAX_LENGTH_BYTES, check_non_negative),
    (MAX_IN_MEMORY_LENGTH, check_non_negative),
    (MAX_IN_MEMORY_BYTES, check_non_negative),
    (OVERFLOW, check_overflow),
    (SINGLE_ACTIVE_CONSUMER, check_bool),
    (QUORUM_INITIAL_GROUP_SIZE, check_positive),
    (QUEUE_LEADER_LOCATOR, check_leader_locator),
];

/// Check the arguments of a new queue, as RabbitMQ 3.10's `check_declare_arguments`:
/// the queue type first, then each argument of the type in RabbitMQ's order, then the
/// arguments that belong to other queue types.
pub(crate) fn validate(name: &str, vhost: &str, args: &FieldTable) -> Result<(), BrokerError> {
    let (checks, refused, kind) = match queue_type(args).as_deref() {
        Some("classic") => (CLASSIC_CHECKS, NOT_CLASSIC, QueueType::Classic),
        Some("quorum") => (QUORUM_CHECKS, NOT_QUORUM, QueueType::Quorum),
        Some(t @ "stream") => {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{QUEUE_TYPE}' for queue '{name}' in vhost '{vhost}': queue type '{t}' is not supported by Warren; declare a classic or quorum queue"
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
    };
    for (key, check) in checks {
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
        if refused.contains(&key.as_str()) {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{key}' for queue '{name}' in vhost '{vhost}' of queue type {}",
                kind.module()
            )));
        }
    }
    Ok(())
}

/// A quorum queue's properties, checked after its arguments as RabbitMQ 3.10's
/// `rabbit_quorum_queue:declare` does (auto-delete, then exclusive, then durable; an
/// exclusive declare is never durable). Nothing to check for a classic queue.
pub(crate) fn check_properties(
    name: &str,
    vhost: &str,
    args: &FieldTable,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
) -> Result<(), BrokerError> {
    if QueueType::of(args) != QueueType::Quorum {
        return Ok(());
    }
    let property = if auto_delete {
        "auto-delete"
    } else if exclusive {
        "exclusive-owner"
    } else if !durable {
        "non-durable"
    } else {
        return Ok(());
    };
    Err(BrokerError::PreconditionFailed(format!(
        "invalid property '{property}' for queue '{name}' in vhost '{vhost}'"
    )))
}

/// RabbitMQ 3.10's `rabbit_amqqueue:augment_declare_args`, applied to an active AMQP
/// `queue.declare` (not a passive one) and to the management API's queue PUT (which 3.10
/// sends as one): when the vhost has a
/// `default_queue_type` and the arguments name no `x-queue-type`, the declare gets
/// `x-queue-type` = that type if the type fits the declare (quorum and stream: durable,
/// not exclusive, not auto-delete; classic: always). The queue then records the argument,
/// and a redeclare is compared with it.
pub fn with_default_queue_type(
    default_queue_type: Option<&str>,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    mut args: FieldTable,
) -> FieldTable {
    let Some(kind) = default_queue_type else {
        return args;
    };
    if args.inner().contains_key(QUEUE_TYPE) {
        return args;
    }
    let fits = match kind {
        "classic" => true,
        "quorum" | "stream" => durable && !exclusive && !auto_delete,
        _ => false,
    };
    if fits {
        args.insert(QUEUE_TYPE.into(), AMQPValue::LongString(kind.into()));
    }
    args
}

/// A server-named queue ("" declared) of a type that cannot have one: RabbitMQ 3.10's
/// channel refuses it before anything else.
pub fn check_server_named(args: &FieldTable) -> Result<(), BrokerError> {
    match QueueType::of(args) {
        QueueType::Classic => Ok(()),
        kind => Err(BrokerError::PreconditionFailed(format!(
            "Cannot declare a server-named queue for type {}",
            kind.module()
        ))),
    }
}

/// RabbitMQ 3.10's redeclare check: the existing queue's type's arguments, in that
/// type's order; on a classic queue an absent `x-queue-type` equals `classic`.
pub(crate) fn check_equivalent(
    name: &str,
    vhost: &str,
    current: &FieldTable,
    received: &FieldTable,
) -> Result<(), BrokerError> {
    let keys = match QueueType::of(current) {
        QueueType::Classic => CLASSIC_ARGS,
        QueueType::Quorum => QUORUM_ARGS,
    };
    for key in keys {
        if *key == QUEUE_TYPE {
            let classic = |t: Option<&AMQPValue>| t.is_none_or(|v| bytes_of(v) == Some(b"classic"));
            let (r, c) = (
                received.inner().get(QUEUE_TYPE),
                current.inner().get(QUEUE_TYPE),
            );
            if classic(r) && classic(c) {
                continue;
            }
        }
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
        // RabbitMQ compares the bare values when the types differ: strings and byte
        // arrays holding the same bytes are the same binary.
        _ => match (bytes_of(a), bytes_of(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// The bytes of a string or byte-array value.
fn bytes_of(value: &AMQPValue) -> Option<&[u8]> {
    match value {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        _ => None,
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
