//! A publish's walk through the exchange graph, holding at the delayed exchanges it meets.
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
//! Cost for every other exchange: one `Option` check per exchange visited, on the
//! exchange the walk looked up anyway; nothing is allocated unless a message is held.

use std::cell::RefCell;
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use warren_router::ExchangeGraph;

use super::{DelayForm, Held, delay_of};
use crate::message::Message;
use crate::vhost::VHost;

/// The graph one publish routes through (see the module documentation).
pub(crate) struct PublishWalk<'a> {
    vhost: &'a VHost,
    message: &'a Message,
    extra_keys: &'a [String],
    /// The exchanges that held the message in this walk, and the merged outcome.
    held: RefCell<Option<(Vec<Arc<str>>, Held)>>,
}

impl<'a> PublishWalk<'a> {
    pub(crate) fn new(vhost: &'a VHost, message: &'a Message, extra_keys: &'a [String]) -> Self {
        Self {
            vhost,
            message,
            extra_keys,
            held: RefCell::new(None),
        }
    }

    /// What the delayed exchanges met on the way did: `None` if none held the message.
    pub(crate) fn into_held(self) -> Option<Held> {
        self.held.into_inner().map(|(_, held)| held)
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
        let mut state = self.held.borrow_mut();
        if let Some((exchanges, _)) = state.as_ref()
            && exchanges.contains(&exchange.name)
        {
            // Reached again by another routing key: held once already.
            return true;
        }
        let new = hold.hold(self.message, self.extra_keys, delay);
        match state.as_mut() {
            None => *state = Some((vec![Arc::clone(&exchange.name)], new)),
            Some((exchanges, held)) => {
                exchanges.push(Arc::clone(&exchange.name));
                held.merge(new);
            }
        }
        true
    }

    fn held_at(&self, exchange: &str) -> bool {
        self.held
            .borrow()
            .as_ref()
            .is_some_and(|(exchanges, _)| exchanges.iter().any(|name| name.as_ref() == exchange))
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
