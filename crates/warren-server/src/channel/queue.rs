//! The queue class: queue.declare (server-named queues, the reserved `amq.` prefix, the
//! direct reply-to pseudo-queue), queue.bind, queue.unbind, queue.purge and queue.delete;
//! and the rule that "" names the channel's last declared queue ([`Channel::queue_name`],
//! which basic.consume and basic.get follow too).
//!
//! Permission checks, where RabbitMQ makes them (after the "" shortcut is expanded):
//! - declare (active): the `amq.` prefix (403), then configure on the queue, the
//!   server-named `amq.gen-...` one included, whether or not it exists; for a new queue,
//!   after the vhost's queue limit, an `x-dead-letter-exchange` argument needs read on
//!   the queue and write on that exchange. A passive declare, and any declare of the
//!   direct reply-to queues, check no permission.
//! - bind / unbind: `Channel::permit_binding` (write on the queue, read on the exchange,
//!   topic read on the routing key).
//! - purge: read; delete: configure; both before the queue is looked up.

use std::sync::Arc;

use warren_broker::access::{Permission, ResourceKind};
use warren_broker::{
    Destination, QueueDeclare, REPLY_TO, REPLY_TO_PREFIX, VHost, exchange_argument,
};
use warren_protocol::{AMQPClass, FieldTable, ShortString, queue};

use super::permissions::{BindingEnd, permit};
use super::{Channel, not_from_client};
use crate::connection::ConnCtx;
use crate::error::Exception;

impl Channel {
    /// The queue a method names, or the channel's last declared queue for "".
    pub(super) fn queue_name(&self, name: &ShortString) -> Result<String, Exception> {
        if !name.as_str().is_empty() {
            return Ok(name.as_str().to_owned());
        }
        self.last_queue.clone().ok_or_else(|| {
            Exception::from(warren_broker::BrokerError::NotFound(
                "no previously declared queue".into(),
            ))
        })
    }

    pub(super) fn queue_method(
        &mut self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        m: queue::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            queue::AMQPMethod::Declare(d) => {
                // Direct reply-to: the pseudo-queue always answers (RabbitMQ reports one
                // consumer), and a reply queue answers a passive declare while its consumer
                // lives (an RPC server's "is the caller still there?").
                let reply = d.queue.as_str() == REPLY_TO
                    || (d.passive
                        && d.queue.as_str().starts_with(REPLY_TO_PREFIX)
                        && vhost.reply_queue(d.queue.as_str()).is_some());
                if reply {
                    if !d.nowait {
                        ctx.send(
                            self.id,
                            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                                queue: d.queue,
                                message_count: 0,
                                consumer_count: 1,
                            })),
                        );
                    }
                    return Ok(());
                }
                // The vhost's default queue type, as RabbitMQ 3.10 adds it to an active
                // declare without `x-queue-type` (before the server-named check and the
                // redeclare comparison, which see the added argument).
                let mut d = d;
                if !d.passive {
                    let default = ctx.access.default_queue_type();
                    d.arguments = warren_broker::with_default_queue_type(
                        default.as_deref(),
                        d.durable,
                        d.exclusive,
                        d.auto_delete,
                        std::mem::take(&mut d.arguments),
                    );
                }
                // "" names a new server-named queue; a passive declare of "" looks for a
                // queue named "" (there is none: 404), as RabbitMQ, rather than the last
                // declared queue.
                let name = if d.queue.as_str().is_empty() && !d.passive {
                    // RabbitMQ 3.10: only classic queues may be server-named.
                    warren_broker::check_server_named(&d.arguments)?;
                    VHost::generate_queue_name()
                } else {
                    d.queue.as_str().to_owned()
                };
                // amq.* names are the server's (amq.gen-*): as RabbitMQ, a client may not
                // declare one actively, even an existing server-named queue by its name.
                if !d.passive && d.queue.as_str().starts_with("amq.") {
                    return Err(warren_broker::BrokerError::AccessRefused(format!(
                        "queue name '{}' contains reserved prefix 'amq.*'",
                        d.queue
                    ))
                    .into());
                }
                if !d.passive {
                    permit_new_queue(ctx, vhost, &name, &d.arguments)?;
                }
                let declared = vhost.declare_queue(
                    QueueDeclare {
                        name: name.clone(),
                        passive: d.passive,
                        durable: d.durable,
                        exclusive: d.exclusive,
                        auto_delete: d.auto_delete,
                        arguments: d.arguments,
                    },
                    ctx.id,
                )?;
                self.last_queue = Some(name.clone());
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                            queue: name.into(),
                            message_count: declared.message_count,
                            consumer_count: declared.consumer_count,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Bind(b) => {
                let name = self.queue_name(&b.queue)?;
                let key = if b.queue.as_str().is_empty() && b.routing_key.as_str().is_empty() {
                    name.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                Self::permit_binding(
                    ctx,
                    vhost,
                    b.exchange.as_str(),
                    BindingEnd::Queue(&name),
                    &key,
                )?;
                vhost.bind(
                    b.exchange.as_str(),
                    Destination::Queue(Arc::from(name.as_str())),
                    &key,
                    &b.arguments,
                    ctx.id,
                )?;
                if !b.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})),
                    );
                }
            }
            queue::AMQPMethod::Unbind(b) => {
                let name = self.queue_name(&b.queue)?;
                // The same shortcut as queue.bind: no queue and no key mean the last
                // declared queue, bound with its name.
                let key = if b.queue.as_str().is_empty() && b.routing_key.as_str().is_empty() {
                    name.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                Self::permit_binding(
                    ctx,
                    vhost,
                    b.exchange.as_str(),
                    BindingEnd::Queue(&name),
                    &key,
                )?;
                vhost.unbind(
                    b.exchange.as_str(),
                    Destination::Queue(Arc::from(name.as_str())),
                    &key,
                    &b.arguments,
                    ctx.id,
                )?;
                ctx.send(
                    self.id,
                    AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})),
                );
            }
            queue::AMQPMethod::Purge(p) => {
                let name = self.queue_name(&p.queue)?;
                permit(ctx, Permission::Read, ResourceKind::Queue, &name)?;
                let count = vhost.queue(&name, ctx.id)?.purge();
                if !p.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk {
                            message_count: count,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let name = self.queue_name(&d.queue)?;
                permit(ctx, Permission::Configure, ResourceKind::Queue, &name)?;
                let count = vhost.delete_queue(&name, d.if_unused, d.if_empty, ctx.id)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
                            message_count: count,
                        })),
                    );
                }
            }
            other => return Err(not_from_client(AMQPClass::Queue(other))),
        }
        Ok(())
    }
}

/// The permission checks of an active queue.declare (see the module docs): configure on
/// the queue; for a new one, the queue limit and then the dead-letter exchange's.
fn permit_new_queue(
    ctx: &mut ConnCtx,
    vhost: &VHost,
    name: &str,
    arguments: &FieldTable,
) -> Result<(), Exception> {
    permit(ctx, Permission::Configure, ResourceKind::Queue, name)?;
    if vhost.has_queue(name) {
        return Ok(());
    }
    vhost.check_queue_limit(name)?;
    let owner = format!("queue '{name}' in vhost '{}'", vhost.name);
    if let Some(dlx) = exchange_argument(arguments, "x-dead-letter-exchange", &owner)? {
        permit(ctx, Permission::Read, ResourceKind::Queue, name)?;
        permit(ctx, Permission::Write, ResourceKind::Exchange, &dlx)?;
    }
    Ok(())
}
