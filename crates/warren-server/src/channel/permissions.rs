//! Permission checks as the channel methods make them, at the points where RabbitMQ 3.10's
//! `rabbit_channel` makes them (the method files call these; this file only says *how* a
//! check is made, not *when*).
//!
//! - [`permit`]: configure / write / read on a queue or an exchange (`""` is checked as
//!   `amq.default`), 403 `access to queue 'q' in vhost '/' refused for user 'u'`.
//! - [`Channel::permit_binding`]: queue.bind/unbind and exchange.bind/unbind, RabbitMQ's
//!   `binding_action` order: write on the destination, the default-exchange refusal for
//!   either end, read on the source, then the topic read permission on the routing key
//!   when the source is a topic exchange.
//! - [`Channel::permit_publish`]: basic.publish: write on the exchange, remembered per
//!   channel (below), then, only for an exchange the user has topic permissions on, the
//!   exchange's existence, internal flag and the topic write permission on the routing key.
//!
//! The publish path pays one atomic load (the registry generation) and one string compare
//! when a channel publishes to the exchange it published to last: a granted write check is
//! remembered with the generation it was granted under, and any change to the access
//! registry (a permission revoked, a user deleted) moves the generation, so the next
//! publish checks again. Topic permissions depend on the routing key and are checked on
//! every publish, but only for users that have them on that exchange.

use warren_broker::access::{Permission, ResourceKind};
use warren_broker::{ExchangeKind, VHost};
use warren_protocol::{ShortString, basic};

use super::Channel;
use crate::connection::ConnCtx;
use crate::error::Exception;

/// Does the connection's user hold `permission` on resource `name`?
pub(super) fn permit(
    ctx: &mut ConnCtx,
    permission: Permission,
    kind: ResourceKind,
    name: &str,
) -> Result<(), Exception> {
    ctx.access
        .get()
        .check(permission, kind, name)
        .map_err(Exception::from)
}

/// The refusal RabbitMQ gives for the default exchange as either end of a binding.
fn default_exchange_refused() -> Exception {
    Exception::from(warren_broker::BrokerError::AccessRefused(
        "operation not permitted on the default exchange".into(),
    ))
}

/// The exchange a channel last published to with a granted write check, and the access
/// registry generation it was granted under.
#[derive(Debug)]
pub(super) struct PublishGrant {
    generation: u64,
    exchange: ShortString,
}

/// One end of a binding, for the permission check.
pub(super) enum BindingEnd<'a> {
    Queue(&'a str),
    Exchange(&'a str),
}

impl Channel {
    /// The checks of RabbitMQ's `binding_action`, before the binding is looked at.
    pub(super) fn permit_binding(
        ctx: &mut ConnCtx,
        vhost: &VHost,
        source: &str,
        destination: BindingEnd<'_>,
        routing_key: &str,
    ) -> Result<(), Exception> {
        let destination_is_default = match destination {
            BindingEnd::Queue(name) => {
                permit(ctx, Permission::Write, ResourceKind::Queue, name)?;
                false
            }
            BindingEnd::Exchange(name) => {
                permit(ctx, Permission::Write, ResourceKind::Exchange, name)?;
                name.is_empty()
            }
        };
        if destination_is_default || source.is_empty() {
            return Err(default_exchange_refused());
        }
        permit(ctx, Permission::Read, ResourceKind::Exchange, source)?;
        let permissions = ctx.access.get();
        if permissions.has_topic_permissions_on(source)
            && vhost
                .exchange(source)
                .is_some_and(|x| x.kind == ExchangeKind::Topic)
        {
            permissions.check_topic(Permission::Read, source, routing_key)?;
        }
        Ok(())
    }

    /// The permission checks of basic.publish, in RabbitMQ's order; see the module docs.
    pub(super) fn permit_publish(
        &mut self,
        ctx: &mut ConnCtx,
        publish: &basic::Publish,
    ) -> Result<(), Exception> {
        let generation = ctx.access.generation();
        let remembered = self
            .publish_grant
            .as_ref()
            .is_some_and(|g| g.generation == generation && g.exchange == publish.exchange);
        if !remembered {
            permit(
                ctx,
                Permission::Write,
                ResourceKind::Exchange,
                publish.exchange.as_str(),
            )?;
            self.publish_grant = Some(PublishGrant {
                generation,
                exchange: publish.exchange.clone(),
            });
        }
        let name = publish.exchange.as_str();
        let permissions = ctx.access.get();
        if !name.is_empty() && permissions.has_topic_permissions_on(name) {
            // RabbitMQ looks the exchange up (404, then 403 for an internal one) before
            // the topic check; routing looks it up again, as for every publish.
            let exchange = ctx.vhost.publish_target(name)?;
            if exchange.kind == ExchangeKind::Topic {
                permissions.check_topic(Permission::Write, name, publish.routing_key.as_str())?;
            }
        }
        Ok(())
    }
}
