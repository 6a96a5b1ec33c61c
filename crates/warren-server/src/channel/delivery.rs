//! Deliveries to this channel's consumers, and the unacked list.
//!
//! Queues dispatch to a consumer through its connection; the connection loop hands each
//! delivery to [`Channel::deliver`], which gives it the next delivery tag, encodes
//! basic.deliver with its content, and (unless no-ack) records it as [`Unacked`], in tag
//! order, with the time it was sent (for the consumer timeout, `timeout.rs`).
//! basic.ack/nack/reject name deliveries by tag ([`Channel::take_unacked`]);
//! [`settle`] gives them back to their queues, settled for good or requeued. Also here:
//! a consumer the server cancelled (its queue was deleted...), basic.recover, and kicking
//! the channel's queues when its credit grows.

use std::sync::Arc;

use warren_broker::{Consumer, Entry, Queue};
use warren_protocol::{AMQPClass, basic, encode};

use super::{Channel, State};
use crate::connection::ConnCtx;
use crate::error::Exception;

/// A delivery the client has not acked, nacked or rejected yet.
pub(super) struct Unacked {
    pub(super) tag: u64,
    pub(super) queue: Arc<Queue>,
    pub(super) entry: Entry,
    pub(super) consumer: Option<Arc<Consumer>>,
    /// When it was sent (ms since the epoch; for a consumer's delivery, the clock read once
    /// per event batch, [`ConnCtx::now_ms`]): what the consumer timeout sweep checks.
    pub(super) delivered_at: u64,
}

impl Channel {
    /// Ask the queues this channel consumes from to dispatch again (its credit grew).
    pub(crate) fn kick_queues(&self) {
        for (_, queue) in self.consumers.values() {
            queue.kick();
        }
    }

    /// Send one delivery a queue dispatched to a consumer of this channel, or give it
    /// back if the consumer is gone or the channel is no longer open.
    pub(crate) fn deliver(
        &mut self,
        ctx: &mut ConnCtx,
        consumer: Arc<Consumer>,
        queue: Arc<Queue>,
        entry: Entry,
    ) {
        // Every path that removes a consumer marks it cancelled (Queue::cancel/delete).
        let registered = self.state == State::Open && !consumer.is_cancelled();
        let Some(message) = entry.message.as_ref().filter(|_| registered) else {
            consumer.release(1);
            queue.return_undelivered(entry, !consumer.no_ack);
            return;
        };
        let tag = self.next_tag;
        self.next_tag += 1;
        encode::deliver(
            &mut ctx.out,
            self.id,
            consumer.tag.as_str().as_bytes(),
            tag,
            entry.redelivered,
            message.exchange.as_str().as_bytes(),
            message.routing_key.as_str().as_bytes(),
            &message.raw_properties,
            &message.body,
            ctx.frame_max,
        );
        self.stats.delivered(consumer.no_ack, entry.redelivered);
        if consumer.no_ack {
            queue.auto_acked(&entry);
        } else {
            self.unacked.push_back(Unacked {
                tag,
                queue,
                entry,
                consumer: Some(consumer),
                delivered_at: ctx.now_ms,
            });
        }
    }

    /// The server cancelled a consumer (its queue went away): forget it, and tell a
    /// client that asked for cancel notifications.
    pub(crate) fn consumer_cancelled(&mut self, ctx: &mut ConnCtx, consumer: &Arc<Consumer>) {
        let ours = self
            .consumers
            .get(&consumer.tag)
            .is_some_and(|(c, _)| Arc::ptr_eq(c, consumer));
        if !ours {
            return;
        }
        self.consumers.remove(&consumer.tag);
        if ctx.cancel_notify && self.state == State::Open {
            ctx.send(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                    consumer_tag: consumer.tag.clone(),
                    nowait: true,
                })),
            );
        }
    }

    pub(super) fn recover(&mut self, requeue: bool) -> Result<(), Exception> {
        if !requeue {
            return Err(Exception::new(540, "NOT_IMPLEMENTED - requeue=false"));
        }
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        settle(all, Settle::Requeue);
        Ok(())
    }

    /// Remove the deliveries an ack/nack/reject names. Unknown tags are a 406.
    pub(super) fn take_unacked(
        &mut self,
        tag: u64,
        multiple: bool,
    ) -> Result<Vec<Unacked>, Exception> {
        let unknown = || Exception::precondition(format!("unknown delivery tag {tag}"));
        if multiple {
            if tag == 0 {
                return Ok(self.unacked.drain(..).collect());
            }
            // As RabbitMQ: the tag named must itself be outstanding, not just tags below it.
            let end = self.unacked.partition_point(|u| u.tag <= tag);
            if end == 0 || self.unacked[end - 1].tag != tag {
                return Err(unknown());
            }
            return Ok(self.unacked.drain(..end).collect());
        }
        let at = self
            .unacked
            .binary_search_by_key(&tag, |u| u.tag)
            .map_err(|_| unknown())?;
        Ok(self.unacked.remove(at).into_iter().collect())
    }
}

/// What an ack, nack, reject, recover or channel close does with deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// basic.ack: done with for good.
    Ack,
    /// nack / reject with requeue, recover: back to the queue.
    Requeue,
    /// Channel or connection close: back to the queue, as its consumer went away.
    Lost,
    /// nack / reject without requeue: dead-lettered where the queue has a DLX, else gone.
    Reject,
}

impl Settle {
    /// The settlement of a nack or reject with this `requeue` flag.
    pub(crate) fn rejection(requeue: bool) -> Settle {
        if requeue {
            Settle::Requeue
        } else {
            Settle::Reject
        }
    }
}

/// Give delivered messages back to their queues: settled for good, requeued, or rejected.
pub(super) fn settle(items: Vec<Unacked>, how: Settle) {
    let mut items = items.into_iter().peekable();
    while let Some(first) = items.next() {
        let queue = Arc::clone(&first.queue);
        let mut run = vec![first];
        while items.peek().is_some_and(|u| Arc::ptr_eq(&u.queue, &queue)) {
            if let Some(u) = items.next() {
                run.push(u);
            }
        }
        for u in &run {
            if let Some(c) = &u.consumer {
                c.release(1);
            }
        }
        match how {
            Settle::Requeue => queue.requeue(run.into_iter().map(|u| u.entry)),
            Settle::Lost => queue.requeue_lost(run.into_iter().map(|u| u.entry)),
            Settle::Ack => queue.settle(run.iter().map(|u| &u.entry)),
            Settle::Reject => queue.reject(run.iter().map(|u| &u.entry)),
        }
    }
}
