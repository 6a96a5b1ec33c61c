//! Churn counters: connections, channels and queues created and gone, broker-wide, as
//! RabbitMQ's overview `churn_rates`. Bumped where those objects are registered and
//! unregistered (never on the message path).

use std::sync::atomic::{AtomicU64, Ordering};

/// One churn counter, named as in RabbitMQ's `churn_rates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Churn {
    /// Connections opened (connection.open accepted).
    ConnectionCreated,
    /// Connections closed.
    ConnectionClosed,
    /// Channels opened.
    ChannelCreated,
    /// Channels closed.
    ChannelClosed,
    /// queue.declare calls that succeeded (new or existing queue).
    QueueDeclared,
    /// Queues created.
    QueueCreated,
    /// Queues deleted.
    QueueDeleted,
}

impl Churn {
    /// How many churn counters there are.
    pub const COUNT: usize = 7;
    /// Every churn counter, in index order.
    pub const ALL: [Churn; Churn::COUNT] = [
        Churn::ConnectionCreated,
        Churn::ConnectionClosed,
        Churn::ChannelCreated,
        Churn::ChannelClosed,
        Churn::QueueDeclared,
        Churn::QueueCreated,
        Churn::QueueDeleted,
    ];

    /// RabbitMQ's field name.
    pub fn name(self) -> &'static str {
        match self {
            Churn::ConnectionCreated => "connection_created",
            Churn::ConnectionClosed => "connection_closed",
            Churn::ChannelCreated => "channel_created",
            Churn::ChannelClosed => "channel_closed",
            Churn::QueueDeclared => "queue_declared",
            Churn::QueueCreated => "queue_created",
            Churn::QueueDeleted => "queue_deleted",
        }
    }
}

/// The broker's churn counters.
#[derive(Debug, Default)]
pub struct ChurnCounters {
    values: [AtomicU64; Churn::COUNT],
}

impl ChurnCounters {
    /// Count one `what`.
    pub fn bump(&self, what: Churn) {
        self.values[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One counter's value.
    pub fn get(&self, what: Churn) -> u64 {
        self.values[what as usize].load(Ordering::Relaxed)
    }
}

/// Bytes and socket operations of one connection (`recv_oct`, `recv_cnt`, `send_oct`,
/// `send_cnt`): the reader adds per socket read, the writer per socket write.
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Bytes read.
    pub recv_oct: AtomicU64,
    /// Socket reads.
    pub recv_cnt: AtomicU64,
    /// Bytes written.
    pub send_oct: AtomicU64,
    /// Socket writes.
    pub send_cnt: AtomicU64,
    /// Bytes handed to the writer and not written yet (RabbitMQ's `send_pend`), as of
    /// the writer's last turn.
    pub send_pend: AtomicU64,
}

impl IoCounters {
    /// A read of `n` bytes.
    #[inline]
    pub fn received(&self, n: usize) {
        self.recv_oct.fetch_add(n as u64, Ordering::Relaxed);
        self.recv_cnt.fetch_add(1, Ordering::Relaxed);
    }

    /// A write of `n` bytes.
    #[inline]
    pub fn sent(&self, n: usize) {
        self.send_oct.fetch_add(n as u64, Ordering::Relaxed);
        self.send_cnt.fetch_add(1, Ordering::Relaxed);
    }

    /// Add a closed connection's final counts.
    pub fn absorb(&self, counts: [u64; 4]) {
        self.recv_oct.fetch_add(counts[0], Ordering::Relaxed);
        self.send_oct.fetch_add(counts[1], Ordering::Relaxed);
        self.recv_cnt.fetch_add(counts[2], Ordering::Relaxed);
        self.send_cnt.fetch_add(counts[3], Ordering::Relaxed);
    }

    /// `[recv_oct, send_oct, recv_cnt, send_cnt]` now.
    pub fn snapshot(&self) -> [u64; 4] {
        [
            self.recv_oct.load(Ordering::Relaxed),
            self.send_oct.load(Ordering::Relaxed),
            self.recv_cnt.load(Ordering::Relaxed),
            self.send_cnt.load(Ordering::Relaxed),
        ]
    }
}
