//! Single active consumer (`x-single-active-consumer: true`), as RabbitMQ 3.10.
//!
//! Such a queue registers every consumer but delivers only to one, the active consumer,
//! which is always `consumers[0]`: the first consumer registered while the queue had none.
//! The others wait behind it, ordered as RabbitMQ's consumer priority queue: by
//! `x-priority`, highest first, then by registration. A waiting consumer never takes over
//! while the active one is registered, whatever its priority (3.10 has no preemption).
//! When the active consumer goes (basic.cancel, its channel closing, its connection lost)
//! the first waiting one becomes active, and ready messages are dispatched to it at once:
//! the channel kicks the queue once it has cancelled the consumer and requeued what it held
//! (RabbitMQ 3.10.8 leaves them waiting until the next publish after a basic.cancel; Warren
//! does not). Exclusive consumers are refused on such a queue (403, as RabbitMQ).
//!
//! Unacked deliveries stay with the channel of the consumer that got them, as for any
//! consumer: after a basic.cancel until they are acked, rejected or the channel closes; a
//! closing channel requeues them before the next consumer is served (see the channel's
//! `release`), so the new active consumer gets them first, in queue order.

use super::{Queue, QueueState};
use crate::consumer::Consumer;

impl Queue {
    /// Whether the queue delivers to a single active consumer.
    pub fn is_single_active(&self) -> bool {
        self.args.single_active_consumer
    }

    /// Where a new consumer goes in a single-active queue: first (active) when there is
    /// none, else after the waiting consumers of the same or higher priority.
    pub(super) fn single_active_slot(st: &QueueState, consumer: &Consumer) -> usize {
        match st.consumers.split_first() {
            None => 0,
            Some((_, waiting)) => 1 + waiting.partition_point(|c| c.priority >= consumer.priority),
        }
    }

    /// The active consumer, if it may take one more message now. A consumer whose
    /// channel is going away (marked cancelled before its queue hears of it) takes none, so
    /// that what its channel requeues stays for the next one.
    pub(super) fn pick_single_active(st: &QueueState) -> Option<usize> {
        st.consumers
            .first()
            .filter(|c| !c.is_cancelled() && c.has_credit())
            .map(|_| 0)
    }
}
