//! Statistics as RabbitMQ's management API renders them: `message_stats` with
//! `<counter>` and `<counter>_details: {"rate": ...}`, queue depth (`messages`,
//! `messages_ready`, `messages_unacknowledged` and their `_details`), connection socket
//! counters, and, when the request asks for a range (`lengths_age` / `lengths_incr`,
//! `msg_rates_age` / `msg_rates_incr`, `data_rates_age` / `data_rates_incr`, in seconds),
//! `samples`, `avg` and `avg_rate` in each `_details`.
//!
//! Counter values are read live from the broker's atomics; rates and samples come from
//! the sampler's history (`warren_broker::stats`), read under its mutex once per object.
//! The topology listings (queues, exchanges, vhosts) call [`insert_queue_stats`],
//! [`insert_exchange_stats`] and [`insert_vhost_stats`] on each object they render.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use warren_broker::stats::{
    Churn, Counter, Details, History, MessageCounts, ObjectKey, Range, Stats, slot,
};
use warren_broker::{Exchange, Queue, VHost};

/// The ranges a request asked for; `None` where it did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ranges {
    /// `lengths_age` / `lengths_incr`: queue depth samples.
    pub lengths: Option<Range>,
    /// `msg_rates_age` / `msg_rates_incr`: message counter samples.
    pub msg_rates: Option<Range>,
    /// `data_rates_age` / `data_rates_incr`: connection byte counter samples.
    pub data_rates: Option<Range>,
}

impl Ranges {
    /// Read the range parameters of a query string. A parameter that is not a whole
    /// number of seconds, an age without its increment (or the reverse), or an increment
    /// of 0 is an error (the message names it).
    pub fn from_query(query: &HashMap<String, String>) -> Result<Ranges, String> {
        Ok(Ranges {
            lengths: range(query, "lengths")?,
            msg_rates: range(query, "msg_rates")?,
            data_rates: range(query, "data_rates")?,
        })
    }
}

/// The ranges of a request's query string, or RabbitMQ's 400 for bad ones.
pub fn ranges(query: &HashMap<String, String>) -> Result<Ranges, crate::ApiError> {
    Ranges::from_query(query).map_err(crate::ApiError::bad_request)
}

fn range(query: &HashMap<String, String>, prefix: &str) -> Result<Option<Range>, String> {
    let number = |name: String| -> Result<Option<u64>, String> {
        match query.get(&name) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{name} must be a whole number of seconds, got '{v}'")),
        }
    };
    match (
        number(format!("{prefix}_age"))?,
        number(format!("{prefix}_incr"))?,
    ) {
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(format!(
            "{prefix}_age and {prefix}_incr must be given together"
        )),
        (Some(_), Some(0)) => Err(format!("{prefix}_incr must be positive")),
        (Some(age), Some(incr)) => Ok(Some(Range {
            age_ms: age.saturating_mul(1000),
            incr_ms: incr.saturating_mul(1000),
        })),
    }
}

/// One `_details` object.
pub fn details_json(d: &Details) -> Value {
    let mut out = Map::new();
    out.insert("rate".into(), json!(round(d.rate)));
    if let Some(r) = &d.range {
        out.insert("avg".into(), json!(r.avg));
        out.insert("avg_rate".into(), json!(round(r.avg_rate)));
        out.insert(
            "samples".into(),
            Value::Array(
                r.samples
                    .iter()
                    .map(|(v, t)| json!({"sample": v, "timestamp": t}))
                    .collect(),
            ),
        );
    }
    Value::Object(out)
}

/// Rates with one decimal, as RabbitMQ shows them.
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The sum of several values' details (RabbitMQ's `deliver_get`).
fn sum_details(parts: &[Details]) -> Details {
    let mut out = Details::default();
    for d in parts {
        out.rate += d.rate;
        if let Some(r) = &d.range {
            let sum = out.range.get_or_insert_with(|| {
                let mut z = r.clone();
                z.samples.iter_mut().for_each(|s| s.0 = 0);
                z.avg = 0.0;
                z.avg_rate = 0.0;
                z
            });
            for (acc, s) in sum.samples.iter_mut().zip(&r.samples) {
                acc.0 += s.0;
            }
            sum.avg += r.avg;
            sum.avg_rate += r.avg_rate;
        }
    }
    out
}

/// Value `slot` of one object, or the sum over several (a user's vhosts).
fn details(history: &History, keys: &[ObjectKey], slot: usize, range: Option<Range>) -> Details {
    match keys {
        [one] => history.details(one, slot, range),
        many => sum_details(
            &many
                .iter()
                .map(|k| history.details(k, slot, range))
                .collect::<Vec<_>>(),
        ),
    }
}

/// The publishing counters of channels, vhosts and the overview.
const PUBLISH_GROUP: [Counter; 4] = [
    Counter::Publish,
    Counter::Confirm,
    Counter::ReturnUnroutable,
    Counter::DropUnroutable,
];

/// The delivery counters (with `deliver_get` computed) of channels, queues, vhosts and the
/// overview.
const DELIVER_GROUP: [Counter; 7] = [
    Counter::Get,
    Counter::GetNoAck,
    Counter::Deliver,
    Counter::DeliverNoAck,
    Counter::Redeliver,
    Counter::Ack,
    Counter::GetEmpty,
];

fn put_counter(out: &mut Map<String, Value>, name: &str, value: u64, details: &Details) {
    out.insert(name.into(), json!(value));
    out.insert(format!("{name}_details"), details_json(details));
}

/// A group of counters of `key`: included when any of them moved (RabbitMQ shows a
/// group once its object has had that activity).
fn put_group(
    out: &mut Map<String, Value>,
    history: &History,
    keys: &[ObjectKey],
    counts: &MessageCounts,
    group: &[Counter],
    range: Option<Range>,
) {
    if group.iter().all(|c| counts.get(*c) == 0) {
        return;
    }
    put_group_always(out, history, keys, counts, group, range);
}

/// A group of counters, whether they moved or not.
fn put_group_always(
    out: &mut Map<String, Value>,
    history: &History,
    keys: &[ObjectKey],
    counts: &MessageCounts,
    group: &[Counter],
    range: Option<Range>,
) {
    for c in group {
        let d = details(history, keys, slot::counter(*c), range);
        put_counter(out, c.name(), counts.get(*c), &d);
    }
    if group.contains(&Counter::Deliver) {
        let parts: Vec<Details> = [
            Counter::Deliver,
            Counter::DeliverNoAck,
            Counter::Get,
            Counter::GetNoAck,
        ]
        .iter()
        .map(|c| details(history, keys, slot::counter(*c), range))
        .collect();
        put_counter(
            out,
            "deliver_get",
            counts.deliver_get(),
            &sum_details(&parts),
        );
    }
}

/// The overview's `message_stats`: every counter, moved or not (RabbitMQ's node-wide
/// figures are always there).
pub fn overview_message_stats(
    history: &History,
    keys: &[ObjectKey],
    counts: &MessageCounts,
    ranges: &Ranges,
) -> Map<String, Value> {
    let mut out = Map::new();
    for group in [&PUBLISH_GROUP[..], &DELIVER_GROUP[..]] {
        put_group_always(&mut out, history, keys, counts, group, ranges.msg_rates);
    }
    out
}

/// `message_stats` of an object with the publish and deliver groups (channels, vhosts);
/// a group only once one of its counters moved.
pub fn message_stats(
    history: &History,
    keys: &[ObjectKey],
    counts: &MessageCounts,
    ranges: &Ranges,
) -> Map<String, Value> {
    let mut out = Map::new();
    put_group(
        &mut out,
        history,
        keys,
        counts,
        &PUBLISH_GROUP,
        ranges.msg_rates,
    );
    put_group(
        &mut out,
        history,
        keys,
        counts,
        &DELIVER_GROUP,
        ranges.msg_rates,
    );
    out
}

/// `messages`, `messages_ready`, `messages_unacknowledged` and their `_details` for a
/// queue, vhost or the broker (`queue_totals`), from `(ready, unacked, dlx)` (`Queue::depth`,
/// summed): `messages` counts a quorum queue's pending at-least-once dead letters too, ready
/// and unacked do not, as RabbitMQ 3.10; with several keys the rates are summed.
pub fn depth(
    history: &History,
    keys: &[ObjectKey],
    (ready, unacked, dlx): (u64, u64, u64),
    ranges: &Ranges,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value, s) in [
        ("messages", ready + unacked + dlx, slot::MESSAGES),
        ("messages_ready", ready, slot::READY),
        ("messages_unacknowledged", unacked, slot::UNACKED),
    ] {
        put_counter(
            &mut out,
            name,
            value,
            &details(history, keys, s, ranges.lengths),
        );
    }
    out
}

/// Add a queue's statistics to its JSON object: its depth fields (`messages`,
/// `messages_ready`, `messages_unacknowledged` and `_details`) and, once it has had
/// traffic, `message_stats` (`publish`, `deliver`, `get`, `ack`, `redeliver`,
/// `deliver_get`, ... each with `_details`).
pub fn insert_queue_stats(
    obj: &mut Map<String, Value>,
    stats: &Stats,
    queue: &Queue,
    ranges: &Ranges,
) {
    let key = [ObjectKey::Queue(queue.vhost.clone(), queue.name().clone())];
    let lengths = queue.depth();
    let counts = queue.stats.snapshot();
    stats.read(|h| {
        obj.extend(depth(h, &key, lengths, ranges));
        let mut ms = Map::new();
        put_group(
            &mut ms,
            h,
            &key,
            &counts,
            &[Counter::Publish],
            ranges.msg_rates,
        );
        // As RabbitMQ: the delivery counters appear once a consumer or a get used the
        // queue, zeros included.
        if queue.consumer_count() > 0 {
            put_group_always(&mut ms, h, &key, &counts, &DELIVER_GROUP, ranges.msg_rates);
        } else {
            put_group(&mut ms, h, &key, &counts, &DELIVER_GROUP, ranges.msg_rates);
        }
        if !ms.is_empty() {
            obj.insert("message_stats".into(), Value::Object(ms));
        }
    });
}

/// Add an exchange's `message_stats` (`publish_in`, `publish_out` with `_details`) to its
/// JSON object, once it has had traffic.
pub fn insert_exchange_stats(
    obj: &mut Map<String, Value>,
    stats: &Stats,
    vhost: &VHost,
    exchange: &Exchange,
    ranges: &Ranges,
) {
    let key = [ObjectKey::Exchange(
        vhost.name.clone(),
        exchange.name.clone(),
    )];
    let counts = exchange.stats.snapshot();
    let mut ms = Map::new();
    stats.read(|h| {
        put_group(
            &mut ms,
            h,
            &key,
            &counts,
            &[Counter::PublishIn, Counter::PublishOut],
            ranges.msg_rates,
        );
    });
    if !ms.is_empty() {
        obj.insert("message_stats".into(), Value::Object(ms));
    }
}

/// Add a vhost's statistics to its JSON object: the depth of its queues, its channels'
/// `message_stats`, and its connections' `recv_oct` / `send_oct` (open and closed ones).
pub fn insert_vhost_stats(
    obj: &mut Map<String, Value>,
    broker: &warren_broker::Broker,
    vhost: &VHost,
    ranges: &Ranges,
) {
    let stats = broker.stats();
    let io = warren_broker::stats::vhost_io(vhost, &broker.connections().list());
    let key = [ObjectKey::VHost(vhost.name.clone())];
    let mut lengths = (0, 0, 0);
    for q in vhost.queues() {
        let (r, u, d) = q.depth();
        lengths = (lengths.0 + r, lengths.1 + u, lengths.2 + d);
    }
    let counts = vhost.stats.snapshot();
    stats.read(|h| {
        obj.extend(depth(h, &key, lengths, ranges));
        let ms = message_stats(h, &key, &counts, ranges);
        if !ms.is_empty() {
            obj.insert("message_stats".into(), Value::Object(ms));
        }
        for (name, value, s) in [
            ("recv_oct", io[0], slot::VHOST_RECV_OCT),
            ("send_oct", io[1], slot::VHOST_SEND_OCT),
        ] {
            put_counter(obj, name, value, &details(h, &key, s, ranges.data_rates));
        }
    });
}

/// The overview's `churn_rates`.
pub fn churn_rates(stats: &Stats, ranges: &Ranges) -> Map<String, Value> {
    let mut out = Map::new();
    stats.read(|h| {
        for c in Churn::ALL {
            let d = h.details(&ObjectKey::Broker, slot::churn(c), ranges.msg_rates);
            put_counter(&mut out, c.name(), stats.churn.get(c), &d);
        }
    });
    out
}

/// A connection's socket counters: `recv_oct`, `send_oct` (with `_details`), `recv_cnt`,
/// `send_cnt`, from `[recv_oct, send_oct, recv_cnt, send_cnt]`.
pub fn connection_io(
    history: &History,
    key: &ObjectKey,
    io: [u64; 4],
    ranges: &Ranges,
) -> Map<String, Value> {
    let mut out = Map::new();
    put_counter(
        &mut out,
        "recv_oct",
        io[0],
        &history.details(key, slot::RECV_OCT, ranges.data_rates),
    );
    put_counter(
        &mut out,
        "send_oct",
        io[1],
        &history.details(key, slot::SEND_OCT, ranges.data_rates),
    );
    out.insert("recv_cnt".into(), json!(io[2]));
    out.insert("send_cnt".into(), json!(io[3]));
    out
}
