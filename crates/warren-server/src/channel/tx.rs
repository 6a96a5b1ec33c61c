//! Transactions: tx.select, tx.commit, tx.rollback, and the operations a transactional
//! channel holds until commit ([`TxOp`]).
//!
//! A publish on a transactional channel is checked and held (`publish.rs`); an ack, nack or
//! reject takes its deliveries off the unacked list at once and holds them
//! ([`Channel::settle_or_hold`]). Commit routes the publishes and settles the deliveries, and
//! its commit-ok waits for the store like a confirm (`confirm.rs`); rollback, and closing the
//! channel, put the held deliveries back on the unacked list.

use warren_broker::Ticket;
use warren_protocol::{AMQPClass, Content, basic, tx};

use super::confirm::Pending;
use super::delivery::{Settle, Unacked, settle};
use super::{Channel, not_from_client};
use crate::connection::ConnCtx;
use crate::error::Exception;

/// An operation held by a transaction until commit.
pub(super) enum TxOp {
    Publish(Box<Content<basic::Publish>>),
    /// The deliveries an ack, nack or reject named. As in RabbitMQ they leave the unacked
    /// list at once (an unknown tag fails then, not at commit); commit settles them,
    /// rollback and channel close put them back.
    Settle {
        items: Vec<Unacked>,
        how: Settle,
    },
}

impl Channel {
    /// Put the deliveries held by discarded transaction operations back on the unacked
    /// list, in tag order.
    pub(super) fn restore_unacked(&mut self, ops: Vec<TxOp>) {
        let mut restored = false;
        for op in ops {
            if let TxOp::Settle { items, .. } = op {
                restored |= !items.is_empty();
                self.unacked.extend(items);
            }
        }
        if restored {
            self.unacked.make_contiguous().sort_by_key(|u| u.tag);
        }
    }

    /// Settle now, or hold until commit on a transactional channel.
    pub(super) fn settle_or_hold(&mut self, items: Vec<Unacked>, how: Settle) {
        match self.tx.as_mut() {
            Some(ops) => {
                let op = TxOp::Settle { items, how };
                self.stats.tx_holds(&op);
                ops.push(op);
            }
            None => settle(items, how),
        }
    }

    pub(super) fn tx_method(
        &mut self,
        ctx: &mut ConnCtx,
        m: tx::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            tx::AMQPMethod::Select(_) => {
                if self.confirm {
                    return Err(Exception::precondition(
                        "cannot switch from confirm to tx mode",
                    ));
                }
                if self.tx.is_none() {
                    self.tx = Some(Vec::new());
                    self.info
                        .transactional
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                ctx.send(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
                );
            }
            tx::AMQPMethod::Commit(_) => {
                let Some(ops) = self.tx.replace(Vec::new()) else {
                    return Err(Exception::precondition("channel is not transactional"));
                };
                self.stats.tx_cleared();
                let mut ticket: Option<Ticket> = None;
                for op in ops {
                    match op {
                        TxOp::Publish(content) => {
                            if let Some(t) = self.route_and_enqueue(ctx, *content)?.ticket {
                                ticket = Some(ticket.map_or(t, |old| old.max(t)));
                            }
                        }
                        TxOp::Settle { items, how } => settle(items, how),
                    }
                }
                self.pending.push_back(Pending::CommitOk { ticket });
            }
            tx::AMQPMethod::Rollback(_) => {
                let Some(ops) = self.tx.replace(Vec::new()) else {
                    return Err(Exception::precondition("channel is not transactional"));
                };
                self.stats.tx_cleared();
                self.restore_unacked(ops);
                ctx.send(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
                );
            }
            other => return Err(not_from_client(AMQPClass::Tx(other))),
        }
        Ok(())
    }
}
