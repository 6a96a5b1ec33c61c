//! Sample history: a bounded ring of timestamped samples per object, and the rates and
//! ranges the management API reports from it.
//!
//! The sampler (`sampler.rs`) pushes one [`Sample`] per live object per interval, keyed by
//! [`ObjectKey`]; a sample is a fixed layout of values per kind of object (see
//! [`slot`]). An object not seen in a sampling round (it went away) loses its ring. Readers
//! ask [`History::details`] for one value's instant rate (last two samples, as RabbitMQ's
//! `*_details.rate`) and, with a [`Range`] (`lengths_age` / `lengths_incr`,
//! `msg_rates_age` / `msg_rates_incr`), its samples at `incr` steps over `age`, their
//! average and average rate.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::counters::Counter;
use crate::consumer::ConnectionId;

/// Where each value sits in a sample.
pub mod slot {
    use super::Counter;
    use crate::stats::Churn;

    /// Message counters (every kind but connections): `Counter::index()`.
    pub const fn counter(c: Counter) -> usize {
        c as usize
    }
    /// Queue, vhost and broker: messages (ready + unacked + a quorum queue's pending
    /// at-least-once dead letters).
    pub const MESSAGES: usize = Counter::COUNT;
    /// Queue, vhost and broker: messages ready.
    pub const READY: usize = Counter::COUNT + 1;
    /// Queue, vhost and broker: messages delivered and not acked.
    pub const UNACKED: usize = Counter::COUNT + 2;
    /// Broker only: churn counter `c`.
    pub const fn churn(c: Churn) -> usize {
        Counter::COUNT + 3 + c as usize
    }
    /// Values in a broker sample.
    pub const BROKER_WIDTH: usize = Counter::COUNT + 3 + Churn::COUNT;
    /// Values in a queue sample.
    pub const QUEUE_WIDTH: usize = Counter::COUNT + 3;
    /// Vhost: bytes read from its connections' sockets.
    pub const VHOST_RECV_OCT: usize = QUEUE_WIDTH;
    /// Vhost: bytes written to its connections' sockets.
    pub const VHOST_SEND_OCT: usize = QUEUE_WIDTH + 1;
    /// Values in a vhost sample.
    pub const VHOST_WIDTH: usize = QUEUE_WIDTH + 2;
    /// Values in an exchange or channel sample.
    pub const COUNTERS_WIDTH: usize = Counter::COUNT;
    /// Connection: bytes read.
    pub const RECV_OCT: usize = 0;
    /// Connection: bytes written.
    pub const SEND_OCT: usize = 1;
    /// Connection: socket reads.
    pub const RECV_CNT: usize = 2;
    /// Connection: socket writes.
    pub const SEND_CNT: usize = 3;
    /// Values in a connection sample.
    pub const CONNECTION_WIDTH: usize = 4;
    /// Node: resident memory (bytes).
    pub const MEM_USED: usize = 0;
    /// Node: free disk of the data directory (bytes).
    pub const DISK_FREE: usize = 1;
    /// Node: open file descriptors.
    pub const FD_USED: usize = 2;
    /// Node: open AMQP client sockets.
    pub const SOCKETS_USED: usize = 3;
    /// Node: threads of the process.
    pub const PROC_USED: usize = 4;
    /// Values in a node sample.
    pub const NODE_WIDTH: usize = 5;
}

/// Which object a ring belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    /// Broker-wide totals (overview).
    Broker,
    /// The node's readings (memory, disk, descriptors, sockets, threads).
    Node,
    /// A vhost.
    VHost(Arc<str>),
    /// A queue: (vhost, name).
    Queue(Arc<str>, Arc<str>),
    /// An exchange: (vhost, name).
    Exchange(Arc<str>, Arc<str>),
    /// A connection.
    Connection(ConnectionId),
    /// A channel: (connection, number).
    Channel(ConnectionId, u16),
}

/// One sampling of one object.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The values, laid out as [`slot`] says for the object's kind.
    pub values: Box<[u64]>,
}

/// A `*_age` / `*_incr` query: samples every `incr_ms` over the last `age_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// How far back.
    pub age_ms: u64,
    /// Step between samples.
    pub incr_ms: u64,
}

/// One value's history as the API reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    /// Per second, over the last interval.
    pub rate: f64,
    /// Present when a range was asked for and there are samples in it.
    pub range: Option<RangeDetails>,
}

/// The samples of a range, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeDetails {
    /// `(value, timestamp ms)`, newest first, `incr` apart.
    pub samples: Vec<(u64, u64)>,
    /// Mean of the sampled values.
    pub avg: f64,
    /// Per second between the oldest and the newest sample.
    pub avg_rate: f64,
}

/// The rings of one object.
#[derive(Debug)]
struct Series {
    samples: VecDeque<Sample>,
    /// The sampling round that last saw the object.
    round: u64,
}

/// Every object's ring; see the module docs.
#[derive(Debug, Default)]
pub struct History {
    series: HashMap<ObjectKey, Series>,
    round: u64,
}

/// How long per-object rings reach back (the management UI's default chart is the last
/// minute); the broker-wide ring keeps RabbitMQ's basic retention of ten minutes.
const OBJECT_SPAN_MS: u64 = 60_000;
const BROKER_SPAN_MS: u64 = 600_000;
/// Upper bound on samples per ring whatever the interval (short intervals in tests).
const MAX_OBJECT_SAMPLES: usize = 64;
const MAX_BROKER_SAMPLES: usize = 256;

impl History {
    /// Start a sampling round.
    pub(crate) fn begin_round(&mut self) {
        self.round += 1;
    }

    /// Record a sample of `key` in this round.
    pub(crate) fn push(&mut self, key: ObjectKey, sample: Sample) {
        let (span, max) = match key {
            ObjectKey::Broker | ObjectKey::Node => (BROKER_SPAN_MS, MAX_BROKER_SAMPLES),
            _ => (OBJECT_SPAN_MS, MAX_OBJECT_SAMPLES),
        };
        let round = self.round;
        let series = self.series.entry(key).or_insert_with(|| Series {
            samples: VecDeque::new(),
            round,
        });
        series.round = round;
        let oldest_kept = sample.at_ms.saturating_sub(span);
        series.samples.push_back(sample);
        // Keep one sample at or before the span's start, so a full range has its first point.
        while series.samples.len() > max
            || (series.samples.len() > 2 && series.samples[1].at_ms <= oldest_kept)
        {
            series.samples.pop_front();
        }
    }

    /// End a round: objects it did not see are gone, and so are their rings.
    pub(crate) fn end_round(&mut self) {
        let round = self.round;
        self.series.retain(|_, s| s.round == round);
    }

    /// Whether `key` has a ring.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.series.contains_key(key)
    }

    /// The latest sample of `key`.
    pub fn latest(&self, key: &ObjectKey) -> Option<&Sample> {
        self.series.get(key).and_then(|s| s.samples.back())
    }

    /// Value `slot` of `key`: its instant rate and, with `range`, its samples up to now.
    pub fn details(&self, key: &ObjectKey, slot: usize, range: Option<Range>) -> Details {
        self.details_at(key, slot, range, crate::message::now_ms())
    }

    /// As [`History::details`], with the range ending at `now_ms` (rounded down to its
    /// step, as RabbitMQ does). Steps before the object's first sample count as 0, as in
    /// RabbitMQ.
    pub fn details_at(
        &self,
        key: &ObjectKey,
        slot: usize,
        range: Option<Range>,
        now_ms: u64,
    ) -> Details {
        let Some(series) = self.series.get(key) else {
            return Details::default();
        };
        let samples = &series.samples;
        let value = |s: &Sample| s.values.get(slot).copied().unwrap_or(0);
        let rate = match (samples.len(), samples.back()) {
            (n, Some(last)) if n >= 2 => {
                let prev = &samples[n - 2];
                per_second(
                    value(prev),
                    value(last),
                    last.at_ms.saturating_sub(prev.at_ms),
                )
            }
            _ => 0.0,
        };
        let range = range.filter(|r| r.incr_ms > 0).and_then(|r| {
            samples.back()?;
            let newest = now_ms / r.incr_ms * r.incr_ms;
            let oldest = newest.saturating_sub(r.age_ms);
            let mut points = Vec::new();
            let mut t = newest;
            loop {
                // The value at `t`: the latest sample taken at or before it.
                let at = samples.partition_point(|s| s.at_ms <= t);
                points.push((at.checked_sub(1).map_or(0, |i| value(&samples[i])), t));
                if t < oldest + r.incr_ms {
                    break;
                }
                t -= r.incr_ms;
            }
            let (&(v_new, t_new), &(v_old, t_old)) = (points.first()?, points.last()?);
            let sum: u64 = points.iter().map(|p| p.0).sum();
            Some(RangeDetails {
                avg: sum as f64 / points.len() as f64,
                avg_rate: per_second(v_old, v_new, t_new - t_old),
                samples: points,
            })
        });
        let rate = match &range {
            // With a range, RabbitMQ's rate is over its last step.
            Some(r) if r.samples.len() >= 2 => {
                let ((v1, t1), (v0, t0)) = (r.samples[0], r.samples[1]);
                per_second(v0, v1, t1 - t0)
            }
            _ => rate,
        };
        Details { rate, range }
    }
}

/// The change from `from` to `to` over `ms`, per second (negative when it fell).
fn per_second(from: u64, to: u64, ms: u64) -> f64 {
    if ms == 0 {
        return 0.0;
    }
    (to as f64 - from as f64) * 1000.0 / ms as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, v: u64) -> Sample {
        Sample {
            at_ms,
            values: vec![v].into_boxed_slice(),
        }
    }

    #[test]
    fn rate_is_the_change_over_the_last_interval() {
        let mut h = History::default();
        h.begin_round();
        h.push(ObjectKey::Broker, sample(10_000, 100));
        h.push(ObjectKey::Broker, sample(15_000, 600));
        let d = h.details(&ObjectKey::Broker, 0, None);
        assert_eq!(d.rate, 100.0);
        assert!(d.range.is_none());
    }

    #[test]
    fn a_range_has_samples_at_each_step_newest_first() {
        let mut h = History::default();
        h.begin_round();
        for i in 0..=12u64 {
            h.push(
                ObjectKey::Connection(1),
                sample(100_000 + i * 5_000, i * 10),
            );
        }
        let range = Range {
            age_ms: 20_000,
            incr_ms: 5_000,
        };
        let d = h.details_at(&ObjectKey::Connection(1), 0, Some(range), 162_000);
        let r = d.range.expect("range");
        assert_eq!(
            r.samples,
            vec![
                (120, 160_000),
                (110, 155_000),
                (100, 150_000),
                (90, 145_000),
                (80, 140_000)
            ]
        );
        assert_eq!(r.avg, 100.0);
        assert_eq!(r.avg_rate, 2.0);
        assert_eq!(d.rate, 2.0);
    }

    #[test]
    fn steps_before_the_first_sample_count_as_zero() {
        let mut h = History::default();
        h.begin_round();
        h.push(ObjectKey::Broker, sample(100_000, 50));
        let range = Range {
            age_ms: 10_000,
            incr_ms: 5_000,
        };
        let r = h
            .details_at(&ObjectKey::Broker, 0, Some(range), 101_000)
            .range
            .expect("range");
        assert_eq!(r.samples, vec![(50, 100_000), (0, 95_000), (0, 90_000)]);
        assert_eq!(r.avg_rate, 5.0);
    }

    #[test]
    fn objects_missing_from_a_round_lose_their_ring() {
        let mut h = History::default();
        h.begin_round();
        h.push(ObjectKey::Connection(1), sample(1, 1));
        h.push(ObjectKey::Connection(2), sample(1, 1));
        h.end_round();
        h.begin_round();
        h.push(ObjectKey::Connection(2), sample(2, 1));
        h.end_round();
        assert!(!h.contains(&ObjectKey::Connection(1)));
        assert!(h.contains(&ObjectKey::Connection(2)));
    }

    #[test]
    fn rings_stay_bounded() {
        let mut h = History::default();
        h.begin_round();
        for i in 0..1000 {
            h.push(ObjectKey::Channel(1, 1), sample(i * 10, i));
        }
        assert!(h.series[&ObjectKey::Channel(1, 1)].samples.len() <= MAX_OBJECT_SAMPLES);
    }
}
