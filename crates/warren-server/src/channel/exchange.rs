//! The exchange class: exchange.declare, exchange.delete, exchange.bind and
//! exchange.unbind (exchange-to-exchange bindings), run against the vhost after the
//! permission checks RabbitMQ makes, in its order:
//! - declare (active): the type (503), the default exchange (403), configure on the
//!   exchange; for a new exchange the `amq.` prefix (403, in the vhost) and, with an
//!   `alternate-exchange` argument, read on the exchange and write on the alternate.
//!   A passive declare checks no permission.
//! - delete: the default exchange and `amq.` names (403, in the vhost), then configure,
//!   before the exchange is looked up (so a missing one is a 403 without permission).
//! - bind / unbind: `Channel::permit_binding` (write on the destination, read on the
//!   source, topic read on the routing key).

use std::sync::Arc;

use warren_broker::access::{Permission, ResourceKind};
use warren_broker::{Destination, ExchangeSpec, VHost, exchange_argument};
use warren_protocol::{AMQPClass, exchange};

use super::permissions::{BindingEnd, permit};
use super::{Channel, not_from_client};
use crate::connection::ConnCtx;
use crate::error::Exception;

impl Channel {
    pub(super) fn exchange_method(
        &mut self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        m: exchange::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            exchange::AMQPMethod::Declare(d) => {
                if !d.passive {
                    self.permit_exchange_declare(ctx, vhost, &d)?;
                }
                let spec = ExchangeSpec {
                    name: d.exchange.as_str().to_owned(),
                    kind: d.kind.as_str().to_owned(),
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: d.arguments,
                };
                vhost.declare_exchange(spec, d.passive)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(
                            exchange::DeclareOk {},
                        )),
                    );
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                let name = d.exchange.as_str();
                if !name.is_empty() && !name.starts_with("amq.") {
                    permit(ctx, Permission::Configure, ResourceKind::Exchange, name)?;
                }
                vhost.delete_exchange(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Bind(b) => {
                Self::permit_binding(
                    ctx,
                    vhost,
                    b.source.as_str(),
                    BindingEnd::Exchange(b.destination.as_str()),
                    b.routing_key.as_str(),
                )?;
                let dest = Destination::Exchange(Arc::from(b.destination.as_str()));
                vhost.bind(
                    b.source.as_str(),
                    dest,
                    b.routing_key.as_str(),
                    &b.arguments,
                    ctx.id,
                )?;
                if !b.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Unbind(b) => {
                Self::permit_binding(
                    ctx,
                    vhost,
                    b.source.as_str(),
                    BindingEnd::Exchange(b.destination.as_str()),
                    b.routing_key.as_str(),
                )?;
                let dest = Destination::Exchange(Arc::from(b.destination.as_str()));
                vhost.unbind(
                    b.source.as_str(),
                    dest,
                    b.routing_key.as_str(),
                    &b.arguments,
                    ctx.id,
                )?;
                if !b.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})),
                    );
                }
            }
            other => return Err(not_from_client(AMQPClass::Exchange(other))),
        }
        Ok(())
    }

    /// The checks of an active exchange.declare that come before the vhost's (see the
    /// module docs).
    fn permit_exchange_declare(
        &self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        d: &exchange::Declare,
    ) -> Result<(), Exception> {
        if !warren_broker::delayed::is_known_type(d.kind.as_str()) {
            return Err(warren_broker::BrokerError::CommandInvalid(format!(
                "unknown exchange type '{}'",
                d.kind
            ))
            .into());
        }
        let name = d.exchange.as_str();
        if name.is_empty() {
            // The vhost refuses the default exchange.
            return Ok(());
        }
        permit(ctx, Permission::Configure, ResourceKind::Exchange, name)?;
        if vhost.exchange(name).is_some() || name.starts_with("amq.") {
            return Ok(());
        }
        let owner = format!("exchange '{name}' in vhost '{}'", vhost.name);
        if let Some(alternate) = exchange_argument(&d.arguments, "alternate-exchange", &owner)? {
            permit(ctx, Permission::Read, ResourceKind::Exchange, name)?;
            permit(ctx, Permission::Write, ResourceKind::Exchange, &alternate)?;
        }
        Ok(())
    }
}
