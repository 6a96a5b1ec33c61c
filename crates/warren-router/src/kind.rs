//! Exchange types: the four AMQP 0-9-1 routing algorithms Warren implements.
//!
//! This module owns only the name <-> variant mapping. The routing itself lives in
//! `table` (direct, fanout, and the dispatch), `topic` and [`crate::headers`].

use std::fmt;

use amq_protocol_types::FieldTable;

use crate::error::BindingError;

/// The routing algorithm of an exchange, chosen by the `type` field of `exchange.declare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// `"direct"`: a binding matches when its key equals the routing key exactly.
    Direct,
    /// `"fanout"`: every binding matches; the routing key is ignored.
    Fanout,
    /// `"topic"`: the binding key is a dot-separated pattern with `*` and `#` wildcards.
    Topic,
    /// `"headers"`: the binding arguments are matched against the message headers.
    Headers,
}

impl ExchangeKind {
    /// All kinds, in declaration order.
    pub const ALL: [ExchangeKind; 4] = [Self::Direct, Self::Fanout, Self::Topic, Self::Headers];

    /// Parses the AMQP exchange type string. Case-sensitive, as in RabbitMQ.
    ///
    /// Returns `None` for anything else (including plugin types such as
    /// `x-delayed-message`); the broker answers that with 503 COMMAND_INVALID.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "fanout" => Some(Self::Fanout),
            "topic" => Some(Self::Topic),
            "headers" => Some(Self::Headers),
            _ => None,
        }
    }

    /// The AMQP type string, the inverse of [`ExchangeKind::parse`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }

    /// Checks binding arguments as RabbitMQ's `validate_binding` does for this kind: only
    /// headers exchanges have rules (`x-match`, see [`crate::headers::validate`]). The broker
    /// calls this before [`crate::BindingTable::bind`] and answers an error with 406
    /// PRECONDITION_FAILED.
    pub fn validate_binding(self, arguments: &FieldTable) -> Result<(), BindingError> {
        match self {
            Self::Headers => crate::headers::validate(arguments),
            Self::Direct | Self::Fanout | Self::Topic => Ok(()),
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_every_kind() {
        for kind in ExchangeKind::ALL {
            assert_eq!(ExchangeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn parse_rejects_unknown_and_differently_cased_types() {
        for s in [
            "",
            "Direct",
            "TOPIC",
            "x-delayed-message",
            "match",
            "system",
        ] {
            assert_eq!(ExchangeKind::parse(s), None, "{s:?}");
        }
    }
}
