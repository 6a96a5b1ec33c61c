//! Delayed exchanges: messages held until their `x-delay` has passed, then routed.
//!
//! Two ways to ask for one, one machinery:
//!
//! - **RabbitMQ's plugin** (rabbitmq-delayed-message-exchange): type `x-delayed-message`
//!   with the argument `x-delayed-type` naming the routing (direct, fanout, topic,
//!   headers). A held message looks unroutable at publish time (the plugin's `route`
//!   returns no queue), so a mandatory publish gets `basic.return` 312 NO_ROUTE at once,
//!   and when routed its `x-delay` header becomes `-delay`.
//! - **LavinMQ's form**: any exchange type with the argument `x-delayed-exchange: true`.
//!   A held message counts as routed (no return), and `x-delay` is removed when routed.
//!
//! [`DelayForm`] carries these differences; everything else is shared.
//!
//! # Data flow
//!
//! ```text
//! publish -> VHost::route -> exchange.hold? (one Option check; None for every other exchange)
//!         (and each exchange reached by an exchange-to-exchange binding, `walk.rs`)
//!         -> delay_of(headers) > 0 -> Hold::hold: WriteOp::PutHeld (group commit; fsynced
//!            when durable) -> Held { ticket } -> the channel confirms when the ticket syncs
//! timer task (one per delayed exchange) sleeps until the hold's earliest due time
//!         -> Store::due_held (a batch, on a blocking thread) -> rewrite x-delay
//!         -> VHost::route_dead_letter from the exchange -> Queue::publish
//!         -> WriteOp::DeleteHeld
//! dead letter (`queue/dead_letter/`) -> VHost::route_dead_letter with a `PublishWalk`
//!         that notes each hold it meets (`DeferredHold`) -> Hold::put_op joins the move's
//!         WriteOp::Group (source Delete + queue Puts) -> Hold::submitted(group ticket)
//! ```
//!
//! Nothing of a held message stays in RAM: the store keeps it keyed by (hold, due time,
//! seq), and a [`Hold`] keeps only its count, its earliest due time and its last ticket.
//!
//! # Layout
//!
//! - `mod.rs`: [`DelayForm`] and the declare rules ([`exchange_kind`]).
//! - `delay.rs`: reading `x-delay` as each form does, and rewriting it for routing.
//! - `record.rs`: the stored form of a held message.
//! - `hold.rs`: [`Hold`], one delayed exchange's held messages (publish side, counts,
//!   deletion).
//! - `timer.rs`: the timer task and the routing of due messages.
//! - `walk.rs`: a publish's (or dead letter's) walk through exchange-to-exchange bindings,
//!   holding at the plugin-form delayed exchanges it reaches (as the plugin's `route/2`
//!   does there).
//! - `recover.rs`: start-up: counting held messages, dropping transient and orphaned ones.

mod delay;
mod hold;
mod record;
mod recover;
mod timer;
mod walk;

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_router::ExchangeKind;

use crate::error::BrokerError;

pub(crate) use delay::delay_of;
pub(crate) use hold::HeldPlace;
pub use hold::{Held, Hold};
pub(crate) use recover::recover_holds;
pub(crate) use walk::{DeferredHold, PublishWalk};

/// The exchange type of RabbitMQ's delayed-message plugin.
pub const DELAYED_MESSAGE_TYPE: &str = "x-delayed-message";

/// Hold ids at or above this are per-process (non-durable exchanges): their messages are
/// dropped at the next start.
pub(crate) const TRANSIENT_HOLD_BASE: u64 = 1 << 63;

/// Which product's behaviour a delayed exchange follows where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayForm {
    /// `x-delayed-message` with `x-delayed-type` (RabbitMQ's plugin).
    Plugin,
    /// `x-delayed-exchange: true` on an exchange of any type (LavinMQ).
    LavinMq,
}

/// Whether `kind` is an exchange type Warren knows (the check RabbitMQ makes first, 503
/// otherwise); the arguments are checked later by [`exchange_kind`].
pub fn is_known_type(kind: &str) -> bool {
    kind == DELAYED_MESSAGE_TYPE || ExchangeKind::parse(kind).is_some()
}

/// The routing of an exchange declared as `kind` with `arguments`, and whether (and how)
/// it delays messages. The errors are the plugin's: 406 when `x-delayed-type` is missing
/// or not a string, or is `x-delayed-message` itself; 503 when it names no known type.
pub fn exchange_kind(
    kind: &str,
    arguments: &FieldTable,
) -> Result<(ExchangeKind, Option<DelayForm>), BrokerError> {
    let unknown =
        |kind: &str| BrokerError::CommandInvalid(format!("unknown exchange type '{kind}'"));
    if kind == DELAYED_MESSAGE_TYPE {
        let routing = match arguments.inner().get("x-delayed-type") {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            Some(AMQPValue::ByteArray(b)) => String::from_utf8_lossy(b.as_slice()).into_owned(),
            _ => {
                return Err(BrokerError::PreconditionFailed(
                    "Invalid argument, 'x-delayed-type' must be an existing exchange type".into(),
                ));
            }
        };
        if routing == DELAYED_MESSAGE_TYPE {
            return Err(BrokerError::PreconditionFailed(
                "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'".into(),
            ));
        }
        let routing_kind = ExchangeKind::parse(&routing).ok_or_else(|| unknown(&routing))?;
        return Ok((routing_kind, Some(DelayForm::Plugin)));
    }
    let routing_kind = ExchangeKind::parse(kind).ok_or_else(|| unknown(kind))?;
    // LavinMQ reads the argument as a boolean and ignores any other value.
    let lavinmq = matches!(
        arguments.inner().get("x-delayed-exchange"),
        Some(AMQPValue::Boolean(true))
    );
    Ok((routing_kind, lavinmq.then_some(DelayForm::LavinMq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut table = FieldTable::default();
        for (key, value) in pairs {
            table.insert((*key).into(), value.clone());
        }
        table
    }

    fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(s.into())
    }

    #[test]
    fn x_delayed_type_names_the_routing() {
        for kind in ExchangeKind::ALL {
            let found = exchange_kind(
                DELAYED_MESSAGE_TYPE,
                &args(&[("x-delayed-type", text(kind.as_str()))]),
            )
            .expect("valid");
            assert_eq!(found, (kind, Some(DelayForm::Plugin)));
        }
    }

    #[test]
    fn a_missing_or_bad_x_delayed_type_is_refused_as_the_plugin_does() {
        let missing = exchange_kind(DELAYED_MESSAGE_TYPE, &FieldTable::default());
        assert!(
            matches!(&missing, Err(BrokerError::PreconditionFailed(t)) if t == "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
            "{missing:?}"
        );
        let number = exchange_kind(
            DELAYED_MESSAGE_TYPE,
            &args(&[("x-delayed-type", AMQPValue::LongInt(1))]),
        );
        assert!(matches!(number, Err(BrokerError::PreconditionFailed(_))));
        let itself = exchange_kind(
            DELAYED_MESSAGE_TYPE,
            &args(&[("x-delayed-type", text(DELAYED_MESSAGE_TYPE))]),
        );
        assert!(
            matches!(&itself, Err(BrokerError::PreconditionFailed(t)) if t == "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"),
            "{itself:?}"
        );
        let unknown = exchange_kind(
            DELAYED_MESSAGE_TYPE,
            &args(&[("x-delayed-type", text("x-consistent-hash"))]),
        );
        assert!(
            matches!(&unknown, Err(BrokerError::CommandInvalid(t)) if t == "unknown exchange type 'x-consistent-hash'"),
            "{unknown:?}"
        );
    }

    #[test]
    fn lavinmq_form_is_a_true_boolean_on_any_type() {
        let on = args(&[("x-delayed-exchange", AMQPValue::Boolean(true))]);
        assert_eq!(
            exchange_kind("topic", &on).expect("valid"),
            (ExchangeKind::Topic, Some(DelayForm::LavinMq))
        );
        let off = args(&[("x-delayed-exchange", text("true"))]);
        assert_eq!(
            exchange_kind("fanout", &off).expect("valid"),
            (ExchangeKind::Fanout, None)
        );
        assert!(is_known_type(DELAYED_MESSAGE_TYPE));
        assert!(!is_known_type("x-delayed-exchange"));
    }
}
