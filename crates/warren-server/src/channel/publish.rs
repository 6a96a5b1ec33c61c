//! Publishing: content frames into a whole message, then into queues.
//!
//! basic.publish starts the channel's content assembler (`basic.rs`); the content header
//! and body frames come here, and a complete message is checked (size, permissions as
//! `permissions.rs` describes, user-id), held on a transactional channel (`tx.rs`), or
//! routed at once: CC/BCC routing keys, direct reply-to rewriting of `reply-to`, the
//! vhost's routing, one enqueue per destination queue, `basic.return` for a mandatory
//! unroutable message, and a pending confirm in confirm mode (`confirm.rs`). A delayed
//! exchange may hold the message instead (`warren_broker::delayed`): its store ticket is
//! then what the confirm waits for.

use std::sync::Arc;

use bytes::Bytes;
use warren_broker::{Message, REPLY_TO, Ticket, sender_selected};
use warren_protocol::{
    AMQPClass, Content, ContentEvent, ContentHeader, ProtocolError, basic, encode,
};

use super::confirm::Pending;
use super::tx::TxOp;
use super::{Channel, State};
use crate::connection::ConnCtx;
use crate::error::Exception;

impl Channel {
    /// A content header frame for the publish in progress.
    pub(crate) fn content_header(
        &mut self,
        ctx: &mut ConnCtx,
        header: ContentHeader,
    ) -> Result<(), Exception> {
        if self.state != State::Open {
            return Ok(());
        }
        match self.assembler.header(header) {
            Ok(ContentEvent::Pending) => Ok(()),
            Ok(ContentEvent::Complete(content)) => self.published(ctx, content),
            Err(e) => self.content_error(ctx, e),
        }
    }

    /// A content body frame for the publish in progress.
    pub(crate) fn content_body(
        &mut self,
        ctx: &mut ConnCtx,
        payload: Bytes,
    ) -> Result<(), Exception> {
        if self.state != State::Open {
            return Ok(());
        }
        match self.assembler.body(payload) {
            Ok(ContentEvent::Pending) => Ok(()),
            Ok(ContentEvent::Complete(content)) => self.published(ctx, content),
            Err(e) => self.content_error(ctx, e),
        }
    }

    fn content_error(&mut self, ctx: &mut ConnCtx, e: ProtocolError) -> Result<(), Exception> {
        match e {
            ProtocolError::MessageTooLarge { size, max } => {
                let e = Exception::precondition(format!(
                    "message size {size} is larger than configured max size {max}"
                ))
                .on(60, 40);
                self.close_with(ctx, &e);
                Ok(())
            }
            e => Err(e.into()),
        }
    }

    fn published(
        &mut self,
        ctx: &mut ConnCtx,
        content: Content<basic::Publish>,
    ) -> Result<(), Exception> {
        // RabbitMQ checks permissions first (the size was checked frame by frame).
        if let Err(e) = self.permit_publish(ctx, &content.method) {
            return self.soft(ctx, e.on(60, 40));
        }
        // As RabbitMQ: a user with the `impersonator` tag may publish as anyone.
        if let Some(user_id) = content.header.properties.user_id()
            && user_id.as_str() != ctx.user
            && !ctx.access.get().may_impersonate()
        {
            let e = Exception::precondition(format!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                ctx.user
            ))
            .on(60, 40);
            return self.soft(ctx, e);
        }
        if let Some(ops) = self.tx.as_mut() {
            // Check the exchange now, as RabbitMQ does, so the error comes at publish time.
            let name = content.method.exchange.as_str();
            if ctx.vhost.exchange(name).is_none() {
                return self.soft(
                    ctx,
                    Exception::from(warren_broker::BrokerError::NotFound(format!(
                        "no exchange '{name}' in vhost '{}'",
                        ctx.vhost.name
                    )))
                    .on(60, 40),
                );
            }
            let op = TxOp::Publish(Box::new(content));
            self.stats.tx_holds(&op);
            ops.push(op);
            return Ok(());
        }
        match self.route_and_enqueue(ctx, content) {
            Ok(routed) => {
                if self.confirm {
                    let seq = self.next_publish_seq;
                    self.next_publish_seq += 1;
                    self.pending.push_back(if routed.rejected {
                        Pending::Rejected { seq }
                    } else {
                        Pending::Confirm {
                            seq,
                            ticket: routed.ticket,
                        }
                    });
                }
                Ok(())
            }
            Err(e) => self.soft(ctx, e.on(60, 40)),
        }
    }

    pub(super) fn route_and_enqueue(
        &mut self,
        ctx: &mut ConnCtx,
        content: Content<basic::Publish>,
    ) -> Result<Routed, Exception> {
        let Content {
            method: publish,
            header,
            body,
        } = content;
        // CC / BCC: extra routing keys; BCC is removed before anyone sees the message.
        let extra_keys = sender_selected::extra_routing_keys(&header.properties)?;
        let (mut properties, mut raw_properties) = (header.properties, header.raw_properties);
        let mut rewritten = false;
        if let Some(without) = sender_selected::without_bcc(&properties) {
            properties = without;
            rewritten = true;
        }
        // Direct reply-to: `amq.rabbitmq.reply-to` becomes this channel's reply queue.
        if properties
            .reply_to()
            .as_ref()
            .is_some_and(|r| r.as_str() == REPLY_TO)
        {
            let Some(reply_queue) = self.reply_queue() else {
                return Err(Exception::precondition(
                    "fast reply consumer does not exist",
                ));
            };
            properties = properties.with_reply_to(reply_queue.as_ref().into());
            rewritten = true;
        }
        if rewritten {
            raw_properties = encode::properties(&properties).map_err(|e| {
                Exception::new(
                    541,
                    format!("INTERNAL_ERROR - cannot encode properties: {e}"),
                )
            })?;
        }
        let message = Arc::new(Message::new(
            publish.exchange,
            publish.routing_key,
            &properties,
            raw_properties,
            body,
            warren_broker::now_ms(),
        )?);
        self.routed.clear();
        let held = ctx.vhost.route(
            message.exchange.as_str(),
            &message,
            properties.headers().as_ref(),
            &extra_keys,
            &mut self.routed,
        )?;
        // A delayed exchange held it (the one published to, or one reached through an
        // exchange-to-exchange binding, beside the queues in `self.routed`). The plugin's
        // form counts as no route (a mandatory publish that reached no queue is returned,
        // though the message is routed when due); LavinMQ's counts as routed.
        let held_routes = held.map_or(0, |h| usize::from(!h.unroutable));
        self.stats.published(
            &message.exchange,
            self.routed.len() + held_routes,
            publish.mandatory,
            self.confirm,
        );
        let mut routed = Routed {
            ticket: held.and_then(|h| h.ticket),
            rejected: false,
        };
        if self.routed.is_empty() {
            if publish.mandatory && held_routes == 0 {
                self.return_no_route(ctx, &message);
            }
            return Ok(routed);
        }
        let mut encoded = None;
        for queue in self.routed.drain(..) {
            let enqueued = queue.publish(&message, &mut encoded);
            if let Some(t) = enqueued.ticket {
                routed.ticket = Some(routed.ticket.map_or(t, |old| old.max(t)));
            }
            routed.rejected |= enqueued.rejected;
        }
        Ok(routed)
    }
}

impl Channel {
    /// `basic.return` 312 NO_ROUTE with the message, for a mandatory publish.
    fn return_no_route(&self, ctx: &mut ConnCtx, message: &Message) {
        ctx.send(
            self.id,
            AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
            })),
        );
        encode::content(
            &mut ctx.out,
            self.id,
            &message.raw_properties,
            &message.body,
            ctx.frame_max,
        );
    }
}

/// What routing and enqueueing one publish produced.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Routed {
    /// The store ticket to wait for before confirming (the highest of its queues').
    pub(super) ticket: Option<Ticket>,
    /// A queue refused it at its length limit (`x-overflow` reject-publish): nacked in
    /// confirm mode, as RabbitMQ does when any of its queues refuses it.
    pub(super) rejected: bool,
}
