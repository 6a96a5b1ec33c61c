//! Consumers and the path from a queue to a connection.
//!
//! A queue dispatches under its own lock: it picks a [`Consumer`] with credit (prefetch,
//! channel-wide prefetch, flow, and the connection's backlog of undelivered events) and
//! sends a [`ConsumerEvent`] down the consumer's [`ConnectionSink`], an unbounded channel
//! read by the connection task. The connection task assigns the delivery tag, records the
//! unacked delivery and writes the frames; it gives credit back on ack, reject or requeue.
//! Credit lives in atomics so the queue can check it without touching connection state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use amq_protocol::types::{FieldTable, ShortString};
use tokio::sync::mpsc;

use crate::queue::{Entry, Queue};

/// Identifies a client connection within the broker.
pub type ConnectionId = u64;

/// How many dispatched-but-unwritten events a connection may have before queues stop
/// handing it deliveries for no-ack consumers (flow control towards slow readers).
pub const SINK_HIGH_WATER: usize = 4096;

/// What a queue tells a connection.
#[derive(Debug)]
pub enum ConsumerEvent {
    /// Deliver `entry` from `queue` to `consumer`.
    Deliver {
        /// The consumer it was dispatched to.
        consumer: Arc<Consumer>,
        /// The queue it came from.
        queue: Arc<Queue>,
        /// The message and its queue position.
        entry: Entry,
    },
    /// The queue was deleted under the consumer (basic.cancel for clients that asked).
    Cancelled {
        /// The consumer that no longer exists.
        consumer: Arc<Consumer>,
    },
}

/// The receiving end is the connection task; the queue side is shared by all consumers of
/// the connection.
#[derive(Debug)]
pub struct ConnectionSink {
    tx: mpsc::UnboundedSender<ConsumerEvent>,
    /// Events sent and not yet processed by the connection task.
    pending: AtomicUsize,
    /// A queue skipped one of this connection's consumers because `pending` was high.
    starved: AtomicBool,
}

impl ConnectionSink {
    /// A sink and the receiver the connection task reads.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<ConsumerEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                tx,
                pending: AtomicUsize::new(0),
                starved: AtomicBool::new(false),
            }),
            rx,
        )
    }

    pub(crate) fn send(&self, event: ConsumerEvent) -> bool {
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.tx.send(event).is_ok()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.pending.load(Ordering::Relaxed) >= SINK_HIGH_WATER
    }

    /// The connection task processed `n` events. Returns true when queues were starved
    /// and should be kicked now that there is room.
    pub fn processed(&self, n: usize) -> bool {
        let before = self.pending.fetch_sub(n, Ordering::Relaxed);
        before.saturating_sub(n) < SINK_HIGH_WATER / 2
            && self.starved.swap(false, Ordering::Relaxed)
    }
}

/// Per-channel state that queues need to see: channel-wide prefetch and flow.
#[derive(Debug)]
pub struct ChannelCredit {
    /// basic.qos global=true prefetch count (0 = unlimited).
    pub global_prefetch: AtomicU32,
    /// Unacked deliveries on the channel (consumers with acks).
    pub in_flight: AtomicU32,
    /// channel.flow active.
    pub flow_active: AtomicBool,
}

impl Default for ChannelCredit {
    fn default() -> Self {
        Self {
            global_prefetch: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            flow_active: AtomicBool::new(true),
        }
    }
}

/// One basic.consume subscription.
#[derive(Debug)]
pub struct Consumer {
    /// Consumer tag (unique on its channel).
    pub tag: ShortString,
    /// Channel number on its connection.
    pub channel: u16,
    /// Connection it belongs to.
    pub connection: ConnectionId,
    /// no-ack (auto-ack) mode.
    pub no_ack: bool,
    /// Exclusive consumer.
    pub exclusive: bool,
    /// Per-consumer prefetch (basic.qos global=false at consume time; 0 = unlimited).
    pub prefetch: u32,
    /// `x-priority`: a queue serves its highest-priority consumers with credit first.
    pub priority: i64,
    in_flight: AtomicU32,
    /// Set once the consumer is cancelled (by the client, its channel closing, or its
    /// queue going away): deliveries still on their way to it are returned to the queue.
    cancelled: AtomicBool,
    /// Channel-wide credit.
    pub credit: Arc<ChannelCredit>,
    /// Where deliveries go.
    pub sink: Arc<ConnectionSink>,
    /// The basic.consume arguments (for the management API's consumer list).
    pub arguments: FieldTable,
}

impl Consumer {
    /// A new consumer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tag: ShortString,
        channel: u16,
        connection: ConnectionId,
        no_ack: bool,
        exclusive: bool,
        prefetch: u32,
        priority: i64,
        credit: Arc<ChannelCredit>,
        sink: Arc<ConnectionSink>,
    ) -> Self {
        Self {
            tag,
            channel,
            connection,
            no_ack,
            exclusive,
            prefetch,
            priority,
            in_flight: AtomicU32::new(0),
            cancelled: AtomicBool::new(false),
            credit,
            sink,
            arguments: FieldTable::default(),
        }
    }

    /// The same consumer with its basic.consume `arguments` kept for listing.
    pub fn with_arguments(mut self, arguments: FieldTable) -> Self {
        self.arguments = arguments;
        self
    }

    /// Whether the queue may hand this consumer one more message now.
    pub(crate) fn has_credit(&self) -> bool {
        if !self.credit.flow_active.load(Ordering::Relaxed) {
            return false;
        }
        if self.sink.is_full() {
            self.sink.starved.store(true, Ordering::Relaxed);
            return false;
        }
        if self.no_ack {
            return true;
        }
        let own_ok = self.prefetch == 0 || self.in_flight.load(Ordering::Relaxed) < self.prefetch;
        let global = self.credit.global_prefetch.load(Ordering::Relaxed);
        own_ok && (global == 0 || self.credit.in_flight.load(Ordering::Relaxed) < global)
    }

    pub(crate) fn take_credit(&self) {
        if !self.no_ack {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            self.credit.in_flight.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Give back credit for `n` settled deliveries (ack, reject, requeue).
    pub fn release(&self, n: u32) {
        if !self.no_ack && n > 0 {
            self.in_flight.fetch_sub(n, Ordering::Relaxed);
            self.credit.in_flight.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Mark the consumer cancelled.
    pub fn mark_cancelled(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether the consumer was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Unacked deliveries of this consumer.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}
