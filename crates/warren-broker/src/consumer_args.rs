//! basic.consume arguments, checked as RabbitMQ 3.10 checks them.
//!
//! - `x-priority`: the consumer's priority, any AMQP integer (default 0, negative allowed).
//!   A queue hands messages to its highest-priority consumers with credit; lower ones get
//!   messages only while every higher one is blocked (see `Queue::pick_consumer`).
//! - `x-cancel-on-ha-failover`: must be a boolean; a no-op on a single node.
//! - `x-stream-offset`: stream queues only, so refused on the classic queues Warren has.
//! - Anything else is ignored, as RabbitMQ does.
//!
//! Every refusal is 406 PRECONDITION_FAILED with RabbitMQ's wording.

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::arguments::{integer, type_name};
use crate::error::BrokerError;

const PRIORITY: &str = "x-priority";
const CANCEL_ON_HA_FAILOVER: &str = "x-cancel-on-ha-failover";
const STREAM_OFFSET: &str = "x-stream-offset";

/// What basic.consume's arguments ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerArgs {
    /// `x-priority` (0 when absent).
    pub priority: i64,
}

impl ConsumerArgs {
    /// Check the arguments of a basic.consume on classic queue `queue` of `vhost`.
    pub fn parse(queue: &str, vhost: &str, args: &FieldTable) -> Result<Self, BrokerError> {
        let args = args.inner();
        if args.is_empty() {
            return Ok(Self::default());
        }
        let invalid = |key: &str, why: String| {
            BrokerError::PreconditionFailed(format!(
                "invalid arg '{key}' for queue '{queue}' in vhost '{vhost}': {why}"
            ))
        };
        let priority = match args.get(PRIORITY) {
            None => 0,
            Some(value) => integer(value).ok_or_else(|| {
                invalid(
                    PRIORITY,
                    format!("\"expected integer, got {}\"", type_name(value)),
                )
            })?,
        };
        if let Some(value) = args.get(CANCEL_ON_HA_FAILOVER)
            && !matches!(value, AMQPValue::Boolean(_))
        {
            return Err(invalid(
                CANCEL_ON_HA_FAILOVER,
                format!("{{unacceptable_type,{}}}", type_name(value)),
            ));
        }
        if args.contains_key(STREAM_OFFSET) {
            return Err(BrokerError::PreconditionFailed(format!(
                "invalid arg '{STREAM_OFFSET}' for queue '{queue}' in vhost '{vhost}' of queue type rabbit_classic_queue"
            )));
        }
        Ok(Self { priority })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn parse(entries: &[(&str, AMQPValue)]) -> Result<ConsumerArgs, BrokerError> {
        ConsumerArgs::parse("q", "/", &table(entries))
    }

    #[test]
    fn priority_of_any_integer_width() {
        assert_eq!(parse(&[]).unwrap().priority, 0);
        for (value, expected) in [
            (AMQPValue::ShortShortInt(-3), -3),
            (AMQPValue::ShortInt(7), 7),
            (AMQPValue::LongInt(-10), -10),
            (AMQPValue::LongLongInt(1 << 40), 1 << 40),
            (AMQPValue::ShortUInt(9), 9),
        ] {
            assert_eq!(parse(&[(PRIORITY, value)]).unwrap().priority, expected);
        }
    }

    #[test]
    fn non_integer_priority_is_406_with_rabbitmq_text() {
        let err = parse(&[(PRIORITY, AMQPValue::LongString("abc".into()))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': \"expected integer, got longstr\""
        );
        let err = parse(&[(PRIORITY, AMQPValue::Boolean(true))]).unwrap_err();
        assert_eq!(err.reply_code(), 406);
        assert!(err.to_string().ends_with("\"expected integer, got bool\""));
    }

    #[test]
    fn cancel_on_ha_failover_must_be_boolean() {
        assert!(parse(&[(CANCEL_ON_HA_FAILOVER, AMQPValue::Boolean(true))]).is_ok());
        let err = parse(&[(CANCEL_ON_HA_FAILOVER, AMQPValue::LongInt(1))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-cancel-on-ha-failover' for queue 'q' in vhost '/': {unacceptable_type,signedint}"
        );
    }

    #[test]
    fn stream_offset_is_refused_and_unknown_arguments_ignored() {
        let err = parse(&[(STREAM_OFFSET, AMQPValue::LongString("first".into()))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"
        );
        assert_eq!(
            parse(&[("x-foo", AMQPValue::LongString("bar".into()))]),
            Ok(ConsumerArgs::default())
        );
    }
}
