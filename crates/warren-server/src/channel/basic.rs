//! The basic class as a client sends it: basic.publish (the start of a message; its
//! content frames go to `publish.rs`), basic.qos, basic.consume (with direct reply-to
//! consumers), basic.cancel, basic.get, basic.ack, basic.nack, basic.reject and
//! basic.recover. What a delivery becomes once sent (the unacked list, settling) is
//! `delivery.rs`'s; an ack on a transactional channel is held by `tx.rs`.
//!
//! Permissions, where RabbitMQ checks them: basic.consume needs read on the queue (after
//! the consumer-tag reuse check, before the queue is looked up; a direct reply-to
//! consumer needs none); basic.get needs read on the queue, before it is looked up.
//! basic.publish's checks run once its content is complete (`publish.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use warren_broker::access::{Permission, ResourceKind};
use warren_broker::stats::Counter;
use warren_broker::{Consumer, ConsumerArgs, QueueType, REPLY_TO, REPLY_TO_PREFIX, VHost};
use warren_protocol::{AMQPClass, ShortString, basic, encode};

use super::delivery::{Settle, Unacked};
use super::permissions::permit;
use super::{Channel, not_from_client};
use crate::connection::ConnCtx;
use crate::error::Exception;

impl Channel {
    /// The name of this channel's direct reply-to queue, if it has a reply consumer.
    pub(super) fn reply_queue(&self) -> Option<Arc<str>> {
        self.consumers
            .values()
            .map(|(_, queue)| queue.name())
            .find(|name| name.starts_with(REPLY_TO_PREFIX))
            .cloned()
    }

    pub(super) fn basic_method(
        &mut self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        m: basic::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return Err(Exception::new(540, "NOT_IMPLEMENTED - immediate=true"));
                }
                self.assembler.start(p, 60, 40);
            }
            basic::AMQPMethod::Qos(q) => {
                // A non-zero prefetch-size never gets here: the frame decoder refuses it
                // with 540, as RabbitMQ (amq-protocol drops the field when parsing).
                if q.global {
                    self.credit
                        .global_prefetch
                        .store(u32::from(q.prefetch_count), Ordering::Relaxed);
                    self.kick_queues();
                } else {
                    self.prefetch = u32::from(q.prefetch_count);
                    self.info.prefetch.store(self.prefetch, Ordering::Relaxed);
                }
                ctx.send(
                    self.id,
                    AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
                );
            }
            basic::AMQPMethod::Consume(c) => {
                let name = self.queue_name(&c.queue)?;
                // As RabbitMQ, a reused tag is refused before anything else is checked.
                if self.consumers.contains_key(&c.consumer_tag) {
                    return Err(Exception::not_allowed(format!(
                        "attempt to reuse consumer tag '{}'",
                        c.consumer_tag
                    )));
                }
                let reply = name == REPLY_TO;
                let queue = if reply {
                    // Direct reply-to: checked here, the queue is made once the consumer is
                    // known to be valid.
                    if !c.no_ack {
                        return Err(Exception::precondition("reply consumer cannot acknowledge"));
                    }
                    if self.reply_queue().is_some() {
                        return Err(Exception::precondition("reply consumer already set"));
                    }
                    None
                } else {
                    permit(ctx, Permission::Read, ResourceKind::Queue, &name)?;
                    Some(vhost.queue(&name, ctx.id)?)
                };
                let tag: ShortString = if c.consumer_tag.as_str().is_empty() {
                    generate_consumer_tag().into()
                } else {
                    c.consumer_tag.clone()
                };
                let args = ConsumerArgs::parse(&name, &vhost.name, &c.arguments)?;
                // RabbitMQ 3.10: a quorum queue refuses a consumer on a channel with a
                // global prefetch limit (connection error 540).
                if let Some(queue) = &queue
                    && queue.queue_type() == QueueType::Quorum
                    && self.credit.global_prefetch.load(Ordering::Relaxed) > 0
                {
                    return Err(Exception::new(
                        540,
                        format!(
                            "NOT_IMPLEMENTED - queue '{name}' in vhost '{}' does not support global qos",
                            vhost.name
                        ),
                    ));
                }
                let consumer = Arc::new(
                    Consumer::new(
                        tag.clone(),
                        self.id,
                        ctx.id,
                        c.no_ack,
                        c.exclusive,
                        self.prefetch,
                        args.priority,
                        Arc::clone(&self.credit),
                        Arc::clone(&ctx.sink),
                    )
                    .with_arguments(c.arguments.clone()),
                );
                let queue = match queue {
                    Some(queue) => queue,
                    None => vhost.create_reply_queue(ctx.id),
                };
                // Registering may dispatch at once, but deliveries reach this connection as
                // events handled after this method, so consume-ok still goes out first.
                queue.consume(Arc::clone(&consumer))?;
                self.consumers.insert(tag.clone(), (consumer, queue));
                if !c.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                            consumer_tag: tag,
                        })),
                    );
                }
            }
            basic::AMQPMethod::Cancel(c) => {
                if let Some((consumer, queue)) = self.consumers.remove(&c.consumer_tag) {
                    if queue.cancel(&consumer) {
                        vhost.remove_queue(&queue)?;
                    } else if queue.is_single_active() {
                        // The next waiting consumer may be active now: serve it at once.
                        queue.kick();
                    }
                }
                if !c.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                            consumer_tag: c.consumer_tag,
                        })),
                    );
                }
            }
            basic::AMQPMethod::Get(g) => {
                let name = self.queue_name(&g.queue)?;
                permit(ctx, Permission::Read, ResourceKind::Queue, &name)?;
                let queue = vhost.queue(&name, ctx.id)?;
                let got = queue.get(g.no_ack);
                self.stats
                    .got(got.as_ref().map(|(e, _)| e.redelivered), g.no_ack);
                match got {
                    Some((entry, remaining)) => {
                        let Some(message) = entry.message.clone() else {
                            ctx.send(
                                self.id,
                                AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
                            );
                            return Ok(());
                        };
                        let tag = self.next_tag;
                        self.next_tag += 1;
                        ctx.send(
                            self.id,
                            AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
                                delivery_tag: tag,
                                redelivered: entry.redelivered,
                                exchange: message.exchange.clone(),
                                routing_key: message.routing_key.clone(),
                                message_count: remaining,
                            })),
                        );
                        encode::content(
                            &mut ctx.out,
                            self.id,
                            &message.raw_properties,
                            &message.body,
                            ctx.frame_max,
                        );
                        if !g.no_ack {
                            self.unacked.push_back(Unacked {
                                tag,
                                queue,
                                entry,
                                consumer: None,
                                delivered_at: warren_broker::now_ms(),
                            });
                        }
                    }
                    None => ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
                    ),
                }
            }
            basic::AMQPMethod::Ack(a) => {
                let taken = self.take_unacked(a.delivery_tag, a.multiple)?;
                self.stats.count(Counter::Ack, taken.len() as u64);
                self.settle_or_hold(taken, Settle::Ack);
            }
            basic::AMQPMethod::Nack(n) => {
                let taken = self.take_unacked(n.delivery_tag, n.multiple)?;
                self.settle_or_hold(taken, Settle::rejection(n.requeue));
            }
            basic::AMQPMethod::Reject(r) => {
                let taken = self.take_unacked(r.delivery_tag, false)?;
                self.settle_or_hold(taken, Settle::rejection(r.requeue));
            }
            basic::AMQPMethod::Recover(r) => {
                self.recover(r.requeue)?;
                ctx.send(
                    self.id,
                    AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
                );
            }
            basic::AMQPMethod::RecoverAsync(r) => self.recover(r.requeue)?,
            other => return Err(not_from_client(AMQPClass::Basic(other))),
        }
        Ok(())
    }
}

fn generate_consumer_tag() -> String {
    warren_broker::generate_name("amq.ctag-")
}
