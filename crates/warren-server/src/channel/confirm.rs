//! Publisher confirms: confirm.select, and the list of what waits for the store.
//!
//! In confirm mode every publish appends [`Pending::Confirm`] (with the store ticket of its
//! writes, if any) to the channel's pending list; tx.commit appends [`Pending::CommitOk`].
//! When the store's durability frontier moves, the connection calls
//! [`Channel::release_confirms`], which sends them in order: runs of acks coalesced into one
//! `basic.ack multiple=true`, a nack for a write the store failed or for a publish a queue
//! refused at its length limit ([`Pending::Rejected`]).

use warren_broker::stats::Counter;
use warren_broker::{Durability, Ticket, TicketStatus};
use warren_protocol::{AMQPClass, basic, confirm, tx};

use super::Channel;
use crate::connection::ConnCtx;
use crate::error::Exception;

/// Something released in order once the store has synced its ticket.
pub(super) enum Pending {
    Confirm {
        seq: u64,
        ticket: Option<Ticket>,
    },
    /// A publish a queue refused at its length limit: nacked in its turn.
    Rejected {
        seq: u64,
    },
    CommitOk {
        ticket: Option<Ticket>,
    },
}

impl Pending {
    fn ticket(&self) -> Option<Ticket> {
        match self {
            Pending::Confirm { ticket, .. } | Pending::CommitOk { ticket } => *ticket,
            Pending::Rejected { .. } => None,
        }
    }
}

impl Channel {
    /// confirm.select: put the channel in confirm mode (refused on a transactional one).
    pub(super) fn confirm_select(
        &mut self,
        ctx: &mut ConnCtx,
        select: confirm::Select,
    ) -> Result<(), Exception> {
        if self.tx.is_some() {
            return Err(Exception::precondition(
                "cannot switch from tx to confirm mode",
            ));
        }
        self.confirm = true;
        self.info
            .confirm
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !select.nowait {
            ctx.send(
                self.id,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }

    /// True if the oldest pending confirm or commit-ok has a store ticket to wait for.
    pub(crate) fn awaits_durability(&self) -> bool {
        self.pending.front().is_some_and(|p| p.ticket().is_some())
    }

    /// Send the confirms (and tx.commit-ok) whose writes the store has synced, coalescing
    /// runs of acks into one `basic.ack multiple=true`.
    pub(crate) fn release_confirms(&mut self, durability: &Durability, ctx: &mut ConnCtx) {
        let mut run: Option<(u64, u64)> = None; // (first, last) seq of acks not yet sent
        while let Some(front) = self.pending.front() {
            let status = match (front, front.ticket()) {
                (Pending::Rejected { .. }, _) => TicketStatus::Failed,
                (_, Some(t)) => durability.status(t),
                (_, None) => TicketStatus::Synced,
            };
            if status == TicketStatus::Pending {
                break;
            }
            let Some(item) = self.pending.pop_front() else {
                break;
            };
            if !matches!(item, Pending::CommitOk { .. }) {
                self.stats.count(Counter::Confirm, 1);
            }
            match item {
                Pending::Confirm { seq, .. } if status == TicketStatus::Synced => {
                    run = Some(run.map_or((seq, seq), |(first, _)| (first, seq)));
                }
                Pending::Confirm { seq, .. } | Pending::Rejected { seq } => {
                    self.flush_acks(ctx, run.take());
                    ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                            delivery_tag: seq,
                            multiple: false,
                            requeue: false,
                        })),
                    );
                }
                Pending::CommitOk { .. } => {
                    self.flush_acks(ctx, run.take());
                    if status == TicketStatus::Synced {
                        ctx.send(
                            self.id,
                            AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
                        );
                    } else {
                        let e = Exception::new(541, "INTERNAL_ERROR - the message store failed; the transaction was not committed").on(90, 20);
                        self.close_with(ctx, &e);
                        return;
                    }
                }
            }
        }
        self.flush_acks(ctx, run);
    }

    fn flush_acks(&self, ctx: &mut ConnCtx, run: Option<(u64, u64)>) {
        if let Some((first, last)) = run {
            ctx.send(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                    delivery_tag: last,
                    multiple: last > first,
                })),
            );
        }
    }
}
