//! The exchange class: exchange.declare, exchange.delete, exchange.bind and
//! exchange.unbind (exchange-to-exchange bindings), run against the vhost.

use std::sync::Arc;

use warren_broker::{Destination, ExchangeSpec, VHost};
use warren_protocol::{AMQPClass, exchange};

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
                vhost.delete_exchange(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Bind(b) => {
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
}
