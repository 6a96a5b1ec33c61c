//! Statistics for the management API and metrics: counters, churn, and their history.
//!
//! Data flow:
//! - **Counting** (`counters.rs`, `churn.rs`). Every queue, exchange, channel and vhost
//!   has a [`MessageCounters`] set (RabbitMQ's `message_stats`), and the broker one more
//!   for its totals ([`Stats::totals`]). Queues bump theirs under the lock they already
//!   hold; the server counts a channel's events in a plain [`LocalCounts`] and adds them to
//!   the shared sets once per batch (a read buffer of frames, a batch of deliveries).
//!   Connections count socket bytes and operations in [`IoCounters`]. Creating and closing
//!   connections, channels and queues bumps [`ChurnCounters`]. All relaxed atomics: no
//!   lock and no allocation on the message path.
//! - **Sampling** (`sampler.rs`). A tokio task started by [`crate::Broker::start_sampler`]
//!   snapshots every live object's counters (and queue lengths, taken under each queue's
//!   lock for a moment) every [`Stats::interval`] (RabbitMQ's
//!   `collect_statistics_interval`, 5 s by default; `BrokerConfig::stats_interval`) into
//!   [`History`].
//! - **Reading** (`history.rs`). [`Stats::read`] gives the API the history under its
//!   mutex, held only while the caller formats rates; counters themselves are read live.
//!
//! # Layout
//! - `counters.rs`: [`Counter`], [`MessageCounters`], [`MessageCounts`], [`LocalCounts`].
//! - `churn.rs`: [`Churn`], [`ChurnCounters`], and a connection's [`IoCounters`].
//! - `history.rs`: [`History`], [`ObjectKey`], the sample layout ([`slot`]), rates and
//!   ranges ([`Details`], [`Range`]).
//! - `sampler.rs`: the sampling task (and the process readings it takes: descriptors,
//!   threads).

mod churn;
mod counters;
mod history;
mod sampler;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use parking_lot::Mutex;

pub use churn::{Churn, ChurnCounters, IoCounters};
pub use counters::{Counter, LocalCounts, MessageCounters, MessageCounts};
pub use history::{Details, History, ObjectKey, Range, RangeDetails, Sample, slot};
pub use sampler::{open_fds, threads, vhost_io};

/// RabbitMQ's default `collect_statistics_interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(5000);

/// The broker's statistics; see the module docs.
#[derive(Debug)]
pub struct Stats {
    /// Broker-wide message counters (overview `message_stats`).
    pub totals: MessageCounters,
    /// Broker-wide churn (overview `churn_rates`).
    pub churn: ChurnCounters,
    interval: Duration,
    history: Mutex<History>,
    sampler_started: AtomicBool,
}

impl Stats {
    /// Statistics sampled every `interval` once the sampler runs.
    pub fn new(interval: Duration) -> Self {
        Self {
            totals: MessageCounters::default(),
            churn: ChurnCounters::default(),
            interval: interval.max(Duration::from_millis(10)),
            history: Mutex::new(History::default()),
            sampler_started: AtomicBool::new(false),
        }
    }

    /// How often the sampler runs.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Look at the sampled history (under its mutex: format, do not wait).
    pub fn read<R>(&self, f: impl FnOnce(&History) -> R) -> R {
        f(&self.history.lock())
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new(DEFAULT_INTERVAL)
    }
}
