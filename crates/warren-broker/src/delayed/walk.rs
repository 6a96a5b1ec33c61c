//! A publish's (or dead letter's) walk through the exchange graph, holding at the
//! delayed exchanges it meets.
//!
//! RabbitMQ's `rabbit_exchange:route/2` calls each visited exchange's type module, so an
//! `x-delayed-message` exchange reached through an exchange-to-exchange binding runs the
//! plugin's `route/2` too: a message with a positive `x-delay` is held there (the plugin
//! writes it with the delayed exchange's record and routes it from that exchange when
//! due) and the exchange contributes no destination. The rest of the walk goes on: the
//! queues reached by other paths get the message at once, the same publish.
//!
//! [`PublishWalk`] is the [`ExchangeGraph`] a publish routes through: the vhost's own
//! graph, plus that interception. An exchange is held at once per publish, whatever
//! number of routing keys (`CC` / `BCC`) reach it, with all of the publish's keys (the
//! plugin holds the whole delivery). An exchange that held gives no alternate-exchange
//! hop (as for a publish straight to it; README "Differences from the plugin").
//!
//! Only the plugin's form holds here: LavinMQ's `find_queues` walk follows a delayed
//! exchange's bindings without delaying (it delays only in `publish`, the exchange a
//! client named), and so does Warren for `x-delayed-exchange: true`.
//!
//! A dead letter walks the same way from its dead-letter exchange (the exchange itself
//! included: RabbitMQ's dead lettering calls `rabbit_exchange:route/2` too), but the holds
//! it meets are returned ([`DeferredHold`]) rather than written: the dead letter's move
//! writes them in its one `WriteBatch` with the source's delete and the queues' puts.
//!
//! Cost for every other exchange: one `Option` check per exchange visited, on the
//! exchange the walk looked up anyway; nothing is allocated unless a message is held.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use warren_router::ExchangeGraph;

use super::{DelayForm, Held, Hold, delay_of};
use crate::message::Message;
use crate::vhost::VHost;

/// A hold a dead letter's walk met: the message is to be held there for `delay_ms`, written
/// in the dead letter's move (`queue/dead_letter/`) with [`Hold::put_op`].
#[derive(Debug)]
pub(crate) struct DeferredHold {
    pub(crate) hold: Arc<Hold>,
    pub(crate) delay_ms: u64,
}

/// What a walk does at a delayed exchange that takes the message.
enum Mode<'a> {
    /// A publish: hold at once, merging the outcomes.
    Publish {
        message: &'a Message,
        extra_keys: &'a [String],
        outcome: Cell<Option<Held>>,
    },
    /// A dead letter: note the hold; the caller writes it with the move.
    DeadLetter {
        deferred: RefCell<Vec<DeferredHold>>,
    },
}

/// The graph one publish or dead letter routes through (see the module documentation).
pub(crate) struct PublishWalk<'a> {
    vhost: &'a VHost,
    mode: Mode<'a>,
    /// The exchanges that took the message in this walk.
    held: RefCell<Vec<Arc<str>>>,
}

impl<'a> PublishWalk<'a> {
    pub(crate) fn new(vhost: &'a VHost, message: &'a Message, extra_keys: &'a [String]) -> Self {
        Self {
            vhost,
            mode: Mode::Publish {
                message,
                extra_keys,
                outcome: Cell::new(None),
            },
            held: RefCell::new(Vec::new()),
        }
    }

    /// The walk of a dead letter: the holds it meets are returned by
    /// [`PublishWalk::into_deferred`], not written.
    pub(crate) fn dead_letter(vhost: &'a VHost) -> Self {
        Self {
            vhost,
            mode: Mode::DeadLetter {
                deferred: RefCell::new(Vec::new()),
            },
            held: RefCell::new(Vec::new()),
        }
    }

    /// What the delayed exchanges met on the way did: `None` if none held the message.
    pub(crate) fn into_held(self) -> Option<Held> {
        match self.mode {
            Mode::Publish { outcome, .. } => outcome.into_inner(),
            Mode::DeadLetter { .. } => None,
        }
    }

    /// The holds a dead letter's walk met (empty for a publish).
    pub(crate) fn into_deferred(self) -> Vec<DeferredHold> {
        match self.mode {
            Mode::Publish { .. } => Vec::new(),
            Mode::DeadLetter { deferred } => deferred.into_inner(),
        }
    }

    /// Holds the message at `exchange` if it is a plugin-form delayed exchange and the
    /// message asks for a delay; `true` when the exchange took it (no destinations).
    fn intercept(
        &self,
        exchange: &crate::exchange::Exchange,
        headers: Option<&FieldTable>,
    ) -> bool {
        let Some(hold) = exchange.hold() else {
            return false;
        };
        if hold.form() != DelayForm::Plugin {
            return false;
        }
        let Some(delay) = delay_of(headers, hold.form()) else {
            return false;
        };
        let mut held = self.held.borrow_mut();
        if held.contains(&exchange.name) {
            // Reached again by another routing key: held once already.
            return true;
        }
        held.push(Arc::clone(&exchange.name));
        match &self.mode {
            Mode::Publish {
                message,
                extra_keys,
                outcome,
            } => {
                let new = hold.hold(message, extra_keys, delay);
                outcome.set(Some(match outcome.get() {
                    None => new,
                    Some(mut merged) => {
                        merged.merge(new);
                        merged
                    }
                }));
            }
            Mode::DeadLetter { deferred } => deferred.borrow_mut().push(DeferredHold {
                hold: Arc::clone(hold),
                delay_ms: delay,
            }),
        }
        true
    }

    fn held_at(&self, exchange: &str) -> bool {
        self.held
            .borrow()
            .iter()
            .any(|name| name.as_ref() == exchange)
    }
}

impl ExchangeGraph for PublishWalk<'_> {
    type Queue = Arc<str>;
    type Exchange = Arc<str>;

    fn route_from(
        &self,
        exchange: &Arc<str>,
        routing_key: &str,
        headers: Option<&FieldTable>,
        queues: &mut Vec<Arc<str>>,
        exchanges: &mut Vec<Arc<str>>,
    ) -> bool {
        self.vhost
            .route_through(exchange, routing_key, headers, queues, exchanges, |x| {
                self.intercept(x, headers)
            })
    }

    fn alternate(&self, exchange: &Arc<str>) -> Option<Arc<str>> {
        if self.held_at(exchange) {
            return None;
        }
        self.vhost.alternate_of(exchange)
    }
}
