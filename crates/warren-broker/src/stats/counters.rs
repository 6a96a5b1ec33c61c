//! Message counters: RabbitMQ's `message_stats` fields as relaxed atomics.
//!
//! One [`MessageCounters`] set lives in each queue, exchange, channel and vhost, and one
//! broker-wide. Queues bump their own set under the queue lock they already hold (one
//! relaxed add per event); a channel counts into a plain [`LocalCounts`] while its
//! connection handles a batch of frames or deliveries and adds the batch to its channel's,
//! its vhost's and the broker's sets once at the end ([`LocalCounts::flush`]). Readers
//! (the sampler, the HTTP API) take a [`MessageCounts`] snapshot with relaxed loads.

use std::sync::atomic::{AtomicU64, Ordering};

/// One message counter, named as in RabbitMQ's `message_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Counter {
    /// Messages published (channel, vhost, broker: by clients; queue: routed to it).
    Publish,
    /// Messages published into an exchange.
    PublishIn,
    /// Messages routed out of an exchange, one per destination queue (channel, vhost,
    /// broker: routed by their publishes).
    PublishOut,
    /// Publisher confirms sent (acks and nacks).
    Confirm,
    /// Mandatory messages returned unroutable.
    ReturnUnroutable,
    /// Unroutable messages dropped.
    DropUnroutable,
    /// Deliveries to consumers with acks.
    Deliver,
    /// Deliveries to no-ack consumers.
    DeliverNoAck,
    /// basic.get with acks answered with a message.
    Get,
    /// basic.get no-ack answered with a message.
    GetNoAck,
    /// basic.get answered with get-empty.
    GetEmpty,
    /// Deliveries and gets of messages flagged redelivered.
    Redeliver,
    /// Messages acknowledged.
    Ack,
    /// Messages published on channels in confirm mode (Prometheus'
    /// `messages_received_confirm`; not part of the API's `message_stats`).
    PublishConfirmMode,
}

impl Counter {
    /// How many counters there are.
    pub const COUNT: usize = 14;
    /// Every counter, in index order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::Publish,
        Counter::PublishIn,
        Counter::PublishOut,
        Counter::Confirm,
        Counter::ReturnUnroutable,
        Counter::DropUnroutable,
        Counter::Deliver,
        Counter::DeliverNoAck,
        Counter::Get,
        Counter::GetNoAck,
        Counter::GetEmpty,
        Counter::Redeliver,
        Counter::Ack,
        Counter::PublishConfirmMode,
    ];

    /// RabbitMQ's field name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Publish => "publish",
            Counter::PublishIn => "publish_in",
            Counter::PublishOut => "publish_out",
            Counter::Confirm => "confirm",
            Counter::ReturnUnroutable => "return_unroutable",
            Counter::DropUnroutable => "drop_unroutable",
            Counter::Deliver => "deliver",
            Counter::DeliverNoAck => "deliver_no_ack",
            Counter::Get => "get",
            Counter::GetNoAck => "get_no_ack",
            Counter::GetEmpty => "get_empty",
            Counter::Redeliver => "redeliver",
            Counter::Ack => "ack",
            Counter::PublishConfirmMode => "publish_confirm_mode",
        }
    }

    /// Index into a counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A shared set of counters; see the module docs.
#[derive(Debug, Default)]
pub struct MessageCounters {
    values: [AtomicU64; Counter::COUNT],
}

impl MessageCounters {
    /// Add `n` to `counter` (relaxed).
    #[inline]
    pub fn add(&self, counter: Counter, n: u64) {
        self.values[counter.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// One counter's value now.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index()].load(Ordering::Relaxed)
    }

    /// Every counter now.
    pub fn snapshot(&self) -> MessageCounts {
        let mut out = MessageCounts::default();
        for (v, a) in out.0.iter_mut().zip(&self.values) {
            *v = a.load(Ordering::Relaxed);
        }
        out
    }
}

/// A snapshot of a counter set, also used as a sum of several.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MessageCounts(pub [u64; Counter::COUNT]);

impl MessageCounts {
    /// One counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter.index()]
    }

    /// RabbitMQ's `deliver_get`: deliver + deliver_no_ack + get + get_no_ack.
    pub fn deliver_get(&self) -> u64 {
        self.get(Counter::Deliver)
            + self.get(Counter::DeliverNoAck)
            + self.get(Counter::Get)
            + self.get(Counter::GetNoAck)
    }

    /// Add another snapshot.
    pub fn add(&mut self, other: &MessageCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

/// Counts gathered by one owner (a channel) during a batch, added to shared sets at its
/// end; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalCounts {
    values: [u64; Counter::COUNT],
    dirty: bool,
}

impl LocalCounts {
    /// Count `n` more of `counter` (no atomic).
    #[inline]
    pub fn add(&mut self, counter: Counter, n: u64) {
        self.values[counter.index()] += n;
        self.dirty = true;
    }

    /// Whether anything was counted since the last flush.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Add what was counted to every set in `into` and start again from zero.
    pub fn flush(&mut self, into: &[&MessageCounters]) {
        if !self.dirty {
            return;
        }
        for (i, v) in self.values.iter_mut().enumerate() {
            if *v != 0 {
                for set in into {
                    set.values[i].fetch_add(*v, Ordering::Relaxed);
                }
                *v = 0;
            }
        }
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counts_reach_every_set_once_per_flush() {
        let (a, b) = (MessageCounters::default(), MessageCounters::default());
        let mut local = LocalCounts::default();
        local.add(Counter::Publish, 2);
        local.add(Counter::Ack, 1);
        local.flush(&[&a, &b]);
        local.flush(&[&a, &b]);
        assert_eq!(a.get(Counter::Publish), 2);
        assert_eq!(b.get(Counter::Ack), 1);
        assert!(!local.is_dirty());
    }

    #[test]
    fn deliver_get_sums_the_four_delivery_counters() {
        let set = MessageCounters::default();
        set.add(Counter::Deliver, 1);
        set.add(Counter::DeliverNoAck, 2);
        set.add(Counter::Get, 3);
        set.add(Counter::GetNoAck, 4);
        set.add(Counter::GetEmpty, 5);
        assert_eq!(set.snapshot().deliver_get(), 10);
    }
}
