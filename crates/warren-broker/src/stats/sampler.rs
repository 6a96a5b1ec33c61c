//! The sampling task: every [`Stats::interval`] it snapshots the broker-wide totals and
//! every vhost, queue, exchange, connection and channel into the [`History`] rings (see
//! `history.rs`), then drops the rings of objects that went away.
//!
//! Values are gathered first, without the history mutex (a queue's lengths take its lock
//! for a moment), and pushed in one short critical section, so API readers never wait for
//! queues.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Churn, History, MessageCounts, ObjectKey, Sample, Stats, slot};
use crate::broker::Broker;
use crate::connections::ConnectionInfo;
use crate::vhost::VHost;

impl Broker {
    /// Start the sampling task on the current tokio runtime (once; later calls do nothing).
    /// It holds only a weak reference and ends when the broker is dropped. Returns false
    /// when there is no runtime to run it on.
    pub fn start_sampler(self: &Arc<Self>) -> bool {
        let stats = self.stats();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: statistics are not sampled");
            return false;
        };
        if stats.sampler_started.swap(true, Ordering::AcqRel) {
            return true;
        }
        let every = stats.interval();
        let broker = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                broker.sample_stats();
            }
        });
        true
    }

    /// Take one sample of everything now (the sampler's round; tests may call it).
    pub fn sample_stats(&self) {
        let at_ms = crate::message::now_ms();
        let mut gathered: Vec<(ObjectKey, Vec<u64>)> = Vec::new();
        let mut totals_lengths = [0u64; 3];
        let connections = self.connections().list();
        for vhost in self.all_vhosts() {
            let mut lengths = [0u64; 3];
            for queue in vhost.queues() {
                let (ready, unacked, dlx) = queue.depth();
                let q = [ready + unacked + dlx, ready, unacked];
                let mut values = queue.stats.snapshot().0.to_vec();
                values.extend_from_slice(&q);
                gathered.push((
                    ObjectKey::Queue(Arc::clone(&vhost.name), Arc::clone(queue.name())),
                    values,
                ));
                for (l, v) in lengths.iter_mut().zip(q) {
                    *l += v;
                }
            }
            for exchange in vhost.exchanges() {
                gathered.push((
                    ObjectKey::Exchange(Arc::clone(&vhost.name), Arc::clone(&exchange.name)),
                    exchange.stats.snapshot().0.to_vec(),
                ));
            }
            let mut values = vhost.stats.snapshot().0.to_vec();
            values.extend_from_slice(&lengths);
            let io = vhost_io(&vhost, &connections);
            values.extend_from_slice(&[io[0], io[1]]);
            gathered.push((ObjectKey::VHost(Arc::clone(&vhost.name)), values));
            for (t, v) in totals_lengths.iter_mut().zip(lengths) {
                *t += v;
            }
        }
        for connection in &connections {
            gathered.push((
                ObjectKey::Connection(connection.id),
                connection.io.snapshot().to_vec(),
            ));
            for channel in connection.channel_list() {
                gathered.push((
                    ObjectKey::Channel(connection.id, channel.number),
                    channel.counters.snapshot().0.to_vec(),
                ));
            }
        }
        let alarms = self.alarms().status();
        let mut node = vec![0u64; slot::NODE_WIDTH];
        node[slot::MEM_USED] = alarms
            .memory_used
            .or_else(|| crate::alarms::read_rss().ok())
            .unwrap_or(0);
        node[slot::DISK_FREE] = alarms.disk_free.unwrap_or(0);
        node[slot::FD_USED] = open_fds();
        node[slot::SOCKETS_USED] = self.connections().list().len() as u64;
        node[slot::PROC_USED] = threads();
        gathered.push((ObjectKey::Node, node));
        let stats = self.stats();
        let mut broker = broker_sample(stats, stats.totals.snapshot(), totals_lengths);
        debug_assert_eq!(broker.len(), slot::BROKER_WIDTH);
        broker.shrink_to_fit();
        let mut history = stats.history.lock();
        push_round(&mut history, at_ms, broker, gathered);
    }
}

/// `[recv_oct, send_oct, recv_cnt, send_cnt]` of `vhost`'s connections, closed and open.
pub fn vhost_io(vhost: &VHost, connections: &[Arc<ConnectionInfo>]) -> [u64; 4] {
    let mut io = vhost.closed_io.snapshot();
    for c in connections.iter().filter(|c| c.vhost == vhost.name) {
        for (sum, v) in io.iter_mut().zip(c.io.snapshot()) {
            *sum += v;
        }
    }
    io
}

/// Open file descriptors of this process (0 when `/proc` cannot be read).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Threads of this process (0 when `/proc` cannot be read).
pub fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn broker_sample(stats: &Stats, counts: MessageCounts, lengths: [u64; 3]) -> Vec<u64> {
    let mut values = counts.0.to_vec();
    values.extend_from_slice(&lengths);
    values.extend(Churn::ALL.iter().map(|c| stats.churn.get(*c)));
    values
}

fn push_round(
    history: &mut History,
    at_ms: u64,
    broker: Vec<u64>,
    gathered: Vec<(ObjectKey, Vec<u64>)>,
) {
    history.begin_round();
    history.push(
        ObjectKey::Broker,
        Sample {
            at_ms,
            values: broker.into_boxed_slice(),
        },
    );
    for (key, values) in gathered {
        history.push(
            key,
            Sample {
                at_ms,
                values: values.into_boxed_slice(),
            },
        );
    }
    history.end_round();
}
