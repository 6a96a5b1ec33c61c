//! A channel's statistics: its message counters and its live state for the management API.
//!
//! The channel counts publishes, returns, drops, confirms, deliveries, gets and acks in
//! plain integers ([`ChannelStats`]) while its connection handles a batch (a read buffer
//! of frames, a batch of deliveries, a release of confirms). At the end of the batch the
//! connection calls [`Channel::flush_stats`], which adds them with relaxed atomics to the
//! channel's, its vhost's and the broker's counter sets and adds `publish_in` /
//! `publish_out` to each exchange published to (one lookup per exchange per batch), and
//! stores the channel's consumer, unacked, unconfirmed and uncommitted counts in its
//! [`warren_broker::ChannelInfo`] when they changed. Nothing here takes a lock or
//! allocates per message (a new exchange name in a batch is one allocation per batch).

use std::sync::atomic::Ordering;

use warren_broker::stats::{Counter, LocalCounts};
use warren_protocol::ShortString;

use super::Channel;
use super::tx::TxOp;
use crate::connection::ConnCtx;

/// Counts of the current batch; see the module docs.
#[derive(Default)]
pub(crate) struct ChannelStats {
    counts: LocalCounts,
    /// `(exchange, publish_in, publish_out)` of this batch.
    exchanges: Vec<(ShortString, u64, u64)>,
    /// The gauges as last stored in the channel's record.
    gauges: [u32; 6],
    /// (publishes, acks) held by the open transaction.
    tx_held: (u32, u32),
}

impl ChannelStats {
    /// Count `n` of `counter`.
    #[inline]
    pub(crate) fn count(&mut self, counter: Counter, n: u64) {
        self.counts.add(counter, n);
    }

    /// A publish to `exchange` reached `routed` queues (on a channel in confirm mode when
    /// `confirm`).
    pub(crate) fn published(
        &mut self,
        exchange: &ShortString,
        routed: usize,
        mandatory: bool,
        confirm: bool,
    ) {
        self.counts.add(Counter::Publish, 1);
        self.counts.add(Counter::PublishOut, routed as u64);
        if confirm {
            self.counts.add(Counter::PublishConfirmMode, 1);
        }
        if routed == 0 {
            self.counts.add(
                if mandatory {
                    Counter::ReturnUnroutable
                } else {
                    Counter::DropUnroutable
                },
                1,
            );
        }
        let routed = routed as u64;
        match self
            .exchanges
            .iter_mut()
            .find(|(name, ..)| name == exchange)
        {
            Some((_, pin, pout)) => {
                *pin += 1;
                *pout += routed;
            }
            None => self.exchanges.push((exchange.clone(), 1, routed)),
        }
    }

    /// A delivery to a consumer was written.
    #[inline]
    pub(crate) fn delivered(&mut self, no_ack: bool, redelivered: bool) {
        self.counts.add(
            if no_ack {
                Counter::DeliverNoAck
            } else {
                Counter::Deliver
            },
            1,
        );
        if redelivered {
            self.counts.add(Counter::Redeliver, 1);
        }
    }

    /// The open transaction holds one more operation.
    pub(crate) fn tx_holds(&mut self, op: &TxOp) {
        match op {
            TxOp::Publish(_) => self.tx_held.0 += 1,
            TxOp::Settle { items, .. } => self.tx_held.1 += items.len() as u32,
        }
    }

    /// The transaction's operations were committed, rolled back or dropped.
    pub(crate) fn tx_cleared(&mut self) {
        self.tx_held = (0, 0);
    }

    /// basic.get answered: `Some(redelivered)` with a message, `None` with get-empty.
    pub(crate) fn got(&mut self, message: Option<bool>, no_ack: bool) {
        match message {
            None => self.counts.add(Counter::GetEmpty, 1),
            Some(redelivered) => {
                self.counts.add(
                    if no_ack {
                        Counter::GetNoAck
                    } else {
                        Counter::Get
                    },
                    1,
                );
                if redelivered {
                    self.counts.add(Counter::Redeliver, 1);
                }
            }
        }
    }
}

impl Channel {
    /// End of a batch: add the batch's counts to the shared sets and refresh the record's
    /// gauges (see the module docs).
    pub(crate) fn flush_stats(&mut self, ctx: &ConnCtx) {
        let stats = &mut self.stats;
        if stats.counts.is_dirty() {
            // One clock read per batch with activity.
            self.info
                .last_active
                .store(warren_broker::now_ms(), Ordering::Relaxed);
            stats.counts.flush(&[
                &self.info.counters,
                &ctx.vhost.stats,
                &ctx.broker_stats.totals,
            ]);
            for (name, published_in, published_out) in stats.exchanges.drain(..) {
                if let Some(exchange) = ctx.vhost.exchange(name.as_str()) {
                    exchange.stats.add(Counter::PublishIn, published_in);
                    exchange.stats.add(Counter::PublishOut, published_out);
                }
            }
        }
        let (uncommitted, acks_uncommitted) = stats.tx_held;
        let gauges = [
            self.consumers.len() as u32,
            self.unacked.len() as u32,
            self.pending.len() as u32,
            uncommitted,
            acks_uncommitted,
            u32::from(self.tx.is_some()),
        ];
        if gauges != stats.gauges {
            stats.gauges = gauges;
            let info = &self.info;
            info.consumers.store(gauges[0], Ordering::Relaxed);
            info.unacked.store(gauges[1], Ordering::Relaxed);
            info.unconfirmed.store(gauges[2], Ordering::Relaxed);
            info.uncommitted.store(gauges[3], Ordering::Relaxed);
            info.acks_uncommitted.store(gauges[4], Ordering::Relaxed);
            info.transactional.store(gauges[5] != 0, Ordering::Relaxed);
        }
    }
}
