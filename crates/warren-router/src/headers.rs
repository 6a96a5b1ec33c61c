//! Headers routing: binding arguments parsed once into a pattern, matched per message.
//!
//! # Semantics (RabbitMQ 4.x `rabbit_exchange_type_headers`)
//!
//! * `x-match` is `all` (also the default, and the fallback for an unknown value on a
//!   binding that skipped validation), `any`, `all-with-x` or `any-with-x`. [`validate`]
//!   refuses other values as RabbitMQ does.
//! * The `x-match` entry itself never takes part. With `all` / `any`, every other binding
//!   argument whose key starts with `x-` is ignored too; with the `-with-x` modes they are
//!   conditions like any other (and are compared with the message's `x-` headers).
//! * A condition whose value is `Void` requires only that the message has that header,
//!   with any value (`Void` included).
//! * Any other condition requires the header with an equal value. RabbitMQ strips the AMQP
//!   type from both sides and compares the decoded Erlang terms exactly (`=:=`), so:
//!   - integers compare by value across widths and signedness (`short-int 1` equals
//!     `long-long-int 1` and `unsigned-byte 1`); a timestamp is an integer of seconds;
//!   - floats compare by value across `float`/`double` (the `f32` widened exactly), and
//!     never equal an integer (`1.0` is not `1`);
//!   - long strings, short strings and byte arrays compare by bytes with one another;
//!   - booleans equal only booleans; decimals equal only decimals with the same scale and
//!     digits;
//!   - arrays and tables keep their element types inside (RabbitMQ compares the tagged
//!     lists), so they match only a structurally identical value, types included.
//! * A message without headers is a message with no headers: it matches an `all` binding
//!   with no conditions, and nothing else.
//!
//! One deliberate divergence: RabbitMQ 4.1+ multiplies a message's `timestamp` header by
//! 1000 before comparing (an artefact of its AMQP 1.0 conversion), so a timestamp header
//! never equals the same timestamp in a binding. Warren compares the seconds.

use amq_protocol_types::{AMQPValue, FieldTable};

use crate::error::BindingError;

/// The `x-match` mode of a headers binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchMode {
    /// Every condition must hold; `x-` arguments are ignored.
    All,
    /// At least one condition must hold; `x-` arguments are ignored.
    Any,
    /// Every condition must hold; `x-` arguments are conditions too.
    AllWithX,
    /// At least one condition must hold; `x-` arguments are conditions too.
    AnyWithX,
}

impl MatchMode {
    /// The mode named by an `x-match` string value, if it is one of the four.
    pub fn parse(s: &[u8]) -> Option<Self> {
        match s {
            b"all" => Some(Self::All),
            b"any" => Some(Self::Any),
            b"all-with-x" => Some(Self::AllWithX),
            b"any-with-x" => Some(Self::AnyWithX),
            _ => None,
        }
    }

    /// The mode of a binding's arguments, as routing sees it: `all` unless `x-match` is a
    /// string naming another mode.
    pub fn of(arguments: &FieldTable) -> Self {
        arguments
            .inner()
            .get(X_MATCH)
            .and_then(string_bytes)
            .and_then(Self::parse)
            .unwrap_or(Self::All)
    }

    fn requires_all(self) -> bool {
        matches!(self, Self::All | Self::AllWithX)
    }

    fn includes_x_arguments(self) -> bool {
        matches!(self, Self::AllWithX | Self::AnyWithX)
    }
}

const X_MATCH: &str = "x-match";

/// Checks a headers binding's `x-match` as RabbitMQ's `validate_binding` does: absent, or
/// a string naming one of the four modes.
pub fn validate(arguments: &FieldTable) -> Result<(), BindingError> {
    let Some(value) = arguments.inner().get(X_MATCH) else {
        return Ok(());
    };
    match string_bytes(value) {
        Some(bytes) if MatchMode::parse(bytes).is_some() => Ok(()),
        Some(bytes) => Err(BindingError::InvalidXMatchValue {
            value: String::from_utf8_lossy(bytes).into_owned(),
        }),
        None => {
            let (amqp_type, value) = rabbit_type_and_text(value);
            Err(BindingError::InvalidXMatchType { amqp_type, value })
        }
    }
}

/// RabbitMQ's name for a value's type and the value as it prints it, for error texts.
fn rabbit_type_and_text(value: &AMQPValue) -> (String, String) {
    use AMQPValue as V;
    let (kind, text) = match value {
        V::Boolean(b) => ("bool", b.to_string()),
        V::ShortShortInt(i) => ("byte", i.to_string()),
        V::ShortShortUInt(i) => ("unsignedbyte", i.to_string()),
        V::ShortInt(i) => ("short", i.to_string()),
        V::ShortUInt(i) => ("unsignedshort", i.to_string()),
        V::LongInt(i) => ("signedint", i.to_string()),
        V::LongUInt(i) => ("unsignedint", i.to_string()),
        V::LongLongInt(i) => ("long", i.to_string()),
        V::Timestamp(t) => ("timestamp", t.to_string()),
        V::Float(f) => ("float", format!("{f:?}")),
        V::Double(f) => ("double", format!("{f:?}")),
        V::DecimalValue(d) => ("decimal", format!("{{{},{}}}", d.scale, d.value)),
        V::ShortString(s) => ("shortstr", s.as_str().to_owned()),
        V::LongString(s) => (
            "longstr",
            String::from_utf8_lossy(s.as_bytes()).into_owned(),
        ),
        V::ByteArray(b) => ("binary", String::from_utf8_lossy(b.as_slice()).into_owned()),
        V::FieldArray(_) => ("array", "[...]".to_owned()),
        V::FieldTable(_) => ("table", "[...]".to_owned()),
        V::Void => ("void", "undefined".to_owned()),
    };
    (kind.to_owned(), text)
}

/// The bytes of a string-like value. Short strings never come off the wire (amq-protocol
/// decodes `s` as a short int, as RabbitMQ does) but are accepted for in-process callers.
fn string_bytes(value: &AMQPValue) -> Option<&[u8]> {
    match value {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

/// A headers binding's arguments, pre-parsed for routing.
#[derive(Clone, Debug)]
pub(crate) struct HeadersPattern {
    requires_all: bool,
    conditions: Box<[(Box<str>, Condition)]>,
}

/// What one binding argument asks of the message's header with the same key.
#[derive(Clone, Debug)]
enum Condition {
    /// `Void` in the binding: the header must be present.
    Present,
    /// The header must be present with an equal value.
    Equals(Comparable),
}

/// A value reduced to what RabbitMQ's comparison sees: the AMQP type is forgotten where the
/// decoded Erlang term forgets it.
#[derive(Clone, Debug)]
enum Comparable {
    Integer(i128),
    Float(f64),
    Bytes(Box<[u8]>),
    Boolean(bool),
    Decimal {
        scale: u8,
        value: u32,
    },
    /// Nothing (RabbitMQ's `undefined`); no binding condition holds this, only headers.
    Void,
    /// Arrays and tables, compared structurally with their inner types.
    Structured(AMQPValue),
}

impl Comparable {
    fn of(value: &AMQPValue) -> Self {
        use AMQPValue as V;
        match value {
            V::Boolean(b) => Self::Boolean(*b),
            V::ShortShortInt(i) => Self::Integer(i128::from(*i)),
            V::ShortShortUInt(i) => Self::Integer(i128::from(*i)),
            V::ShortInt(i) => Self::Integer(i128::from(*i)),
            V::ShortUInt(i) => Self::Integer(i128::from(*i)),
            V::LongInt(i) => Self::Integer(i128::from(*i)),
            V::LongUInt(i) => Self::Integer(i128::from(*i)),
            V::LongLongInt(i) => Self::Integer(i128::from(*i)),
            V::Timestamp(t) => Self::Integer(i128::from(*t)),
            V::Float(f) => Self::Float(f64::from(*f)),
            V::Double(f) => Self::Float(*f),
            V::DecimalValue(d) => Self::Decimal {
                scale: d.scale,
                value: d.value,
            },
            V::ShortString(s) => Self::Bytes(s.as_str().as_bytes().into()),
            V::LongString(s) => Self::Bytes(s.as_bytes().into()),
            V::ByteArray(b) => Self::Bytes(b.as_slice().into()),
            V::Void => Self::Void,
            V::FieldArray(_) | V::FieldTable(_) => Self::Structured(value.clone()),
        }
    }

    /// Whether a message header value equals this binding value. Borrows the header: no
    /// allocation per message.
    fn matches(&self, header: &AMQPValue) -> bool {
        use AMQPValue as V;
        match (self, header) {
            (Self::Integer(want), _) => integer(header) == Some(*want),
            (Self::Float(want), V::Float(f)) => f64::from(*f) == *want,
            (Self::Float(want), V::Double(f)) => f == want,
            (Self::Bytes(want), _) => string_or_bytes(header) == Some(&want[..]),
            (Self::Boolean(want), V::Boolean(b)) => b == want,
            (Self::Decimal { scale, value }, V::DecimalValue(d)) => {
                d.scale == *scale && d.value == *value
            }
            (Self::Structured(want), _) => want == header,
            _ => false,
        }
    }
}

fn integer(value: &AMQPValue) -> Option<i128> {
    use AMQPValue as V;
    Some(match value {
        V::ShortShortInt(i) => i128::from(*i),
        V::ShortShortUInt(i) => i128::from(*i),
        V::ShortInt(i) => i128::from(*i),
        V::ShortUInt(i) => i128::from(*i),
        V::LongInt(i) => i128::from(*i),
        V::LongUInt(i) => i128::from(*i),
        V::LongLongInt(i) => i128::from(*i),
        V::Timestamp(t) => i128::from(*t),
        _ => return None,
    })
}

fn string_or_bytes(value: &AMQPValue) -> Option<&[u8]> {
    match value {
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        other => string_bytes(other),
    }
}

impl HeadersPattern {
    /// Parses a binding's arguments. Never fails: an invalid `x-match` means `all`, as in
    /// RabbitMQ for bindings that predate validation; call [`validate`] to refuse it.
    pub(crate) fn parse(arguments: &FieldTable) -> Self {
        let mode = MatchMode::of(arguments);
        let conditions = arguments
            .inner()
            .iter()
            .filter(|(key, _)| {
                let key = key.as_str();
                key != X_MATCH && (mode.includes_x_arguments() || !key.starts_with("x-"))
            })
            .map(|(key, value)| {
                let condition = match value {
                    AMQPValue::Void => Condition::Present,
                    other => Condition::Equals(Comparable::of(other)),
                };
                (Box::from(key.as_str()), condition)
            })
            .collect();
        Self {
            requires_all: mode.requires_all(),
            conditions,
        }
    }

    /// Whether a message with these headers (`None`: no headers property) matches.
    pub(crate) fn matches(&self, headers: Option<&FieldTable>) -> bool {
        let holds = |(key, condition): &(Box<str>, Condition)| {
            let Some(value) = headers.and_then(|h| h.inner().get(&**key)) else {
                return false;
            };
            match condition {
                Condition::Present => true,
                Condition::Equals(want) => want.matches(value),
            }
        };
        if self.requires_all {
            self.conditions.iter().all(holds)
        } else {
            self.conditions.iter().any(holds)
        }
    }
}
