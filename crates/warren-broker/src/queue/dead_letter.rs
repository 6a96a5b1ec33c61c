//! Dead lettering: messages a queue lets go (rejected or nacked without requeue, expired,
//! dropped by a length limit) are re-published to its dead-letter exchange
//! (`x-dead-letter-exchange`) with an `x-death` record, as RabbitMQ 3.10 does.
//!
//! Data flow:
//!
//! 1. Under the queue lock, every place that lets a message go (`settle.rs` reject,
//!    `expiry.rs`, `limits.rs`, dispatch and `basic.get` meeting an expired head) calls
//!    [`Queue::let_go`]. Without a dead-letter exchange the stored copy is deleted, as
//!    before. With one, the message and its store key are pushed to
//!    `QueueState::dead_letters` and the stored copy stays.
//! 2. When the lock guard (`locked.rs`) is dropped, the lock is released and
//!    [`Queue::dead_letter`] runs: each message is rewritten as RabbitMQ's
//!    `rabbit_dead_letter:make_msg` does ([`rewrite`]: `x-death`, the `x-first-death-*`
//!    headers, `expiration` removed, `CC` removed when a dead-letter routing key replaces
//!    the routing keys), routed from the dead-letter exchange (a missing exchange drops
//!    it; internal exchanges are fine), and queues that would close an automatic cycle are
//!    left out ([`is_cycle`]).
//! 3. Every target queue reserves a seq; the source's delete and the targets' puts are
//!    submitted as ONE `WriteOp::Group`, so that a kill -9 leaves the message either in
//!    its old queue or in its new ones, never in neither (and never both). The targets take
//!    the message at their reserved seq only after that submission, so an ack of the new
//!    copy can never reach the store before its put.
//!
//! A dead letter can cause more (its target is full and dead-letters in turn): those wait
//! in a thread-local list and the outermost flush sends them round by round, so a chain is
//! a loop with one queue lock at a time, never a recursion, and a chain that never ends
//! (queues at their limits dead-lettering into each other with a rejection in the loop,
//! which RabbitMQ's cycle detection lets through) is cut after `MAX_ROUNDS` rounds.
//!
//! Dead lettering is at-most-once across a broker crash for messages that are not
//! persistent or whose target is not durable, as in RabbitMQ's classic queues.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::protocol::basic::{gen_properties, parse_properties};
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use bytes::Bytes;
use warren_store::{Store, WriteOp};

use super::{Queue, QueueState, StoreKey};
use crate::arguments::DeadLetterTarget;
use crate::message::Message;
use crate::vhost::VHost;

/// Why a message was dead-lettered (the `reason` of its `x-death` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathReason {
    /// Rejected or nacked with `requeue = false`.
    Rejected,
    /// Its TTL passed.
    Expired,
    /// Dropped by a length limit (`x-max-length`, `x-max-length-bytes`).
    MaxLen,
}

impl DeathReason {
    /// The reason as RabbitMQ writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLen => "maxlen",
        }
    }
}

/// A message on its way to the dead-letter exchange.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    message: Arc<Message>,
    reason: DeathReason,
    /// Its stored copy in this queue, deleted in the same batch as the targets' puts.
    stored: Option<StoreKey>,
}

impl Queue {
    /// A message leaves the queue for good (under the lock): dead-letter it if the queue
    /// has a dead-letter exchange, else delete its stored copy. The caller has the body
    /// (`entry.message`); one that is not in memory cannot be dead-lettered and is dropped.
    pub(super) fn let_go(
        &self,
        st: &mut QueueState,
        message: Option<&Arc<Message>>,
        stored: Option<StoreKey>,
        reason: DeathReason,
    ) {
        match (self.args.dead_letter.is_some(), message) {
            (true, Some(message)) => st.dead_letters.push(DeadLetter {
                message: Arc::clone(message),
                reason,
                stored,
            }),
            (dead_letter, _) => {
                if dead_letter {
                    tracing::warn!(queue = %self.spec.name, vhost = %self.vhost, reason = reason.as_str(), "message body not in memory; dropped instead of dead-lettered");
                }
                self.forget_key(stored);
            }
        }
    }

    /// Dead-letter messages this queue let go (its lock is NOT held; see the module docs).
    pub(super) fn dead_letter(&self, letters: Vec<DeadLetter>) {
        let Some(target) = self.args.dead_letter.clone() else {
            return;
        };
        flush(Batch {
            source: Arc::clone(&self.spec.name),
            vhost_name: Arc::clone(&self.vhost),
            home: self.home.clone(),
            store: self.store.clone(),
            target,
            letters,
        });
    }

    fn forget_key(&self, stored: Option<StoreKey>) {
        if let Some(key) = stored {
            self.store.submit(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
    }
}

/// Dead letters of one queue with what it takes to send them on (so that they can wait
/// for their turn after the queue's guard is gone).
struct Batch {
    source: Arc<str>,
    vhost_name: Arc<str>,
    home: Weak<VHost>,
    store: Store,
    target: DeadLetterTarget,
    letters: Vec<DeadLetter>,
}

/// How many rounds of dead letters producing dead letters one flush follows before it
/// drops the rest: queues that dead-letter into each other at their length limits, with a
/// rejection somewhere in the chain, would otherwise pass a message around for ever
/// (RabbitMQ's cycle detection lets such a loop through).
const MAX_ROUNDS: usize = 1000;

thread_local! {
    /// Batches let go while this thread is already dead-lettering: the outer `flush`
    /// sends them, so a chain of dead letters is a loop, not a recursion.
    static PENDING: RefCell<Option<Vec<Batch>>> = const { RefCell::new(None) };
}

/// Send a batch of dead letters, and every batch they cause in turn, one round at a time.
fn flush(batch: Batch) {
    let first = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        match pending.as_mut() {
            Some(queued) => {
                queued.push(batch);
                None
            }
            None => {
                *pending = Some(Vec::new());
                Some(batch)
            }
        }
    });
    let Some(first) = first else {
        return; // an outer flush on this thread sends it
    };
    // Leaves the thread ready for the next flush even if this one unwinds.
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            PENDING.with(|pending| *pending.borrow_mut() = None);
        }
    }
    let _done = Done;
    let mut round = vec![first];
    let mut rounds = 0;
    loop {
        for batch in round {
            batch.send();
        }
        round = PENDING.with(|pending| {
            pending
                .borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        });
        if round.is_empty() {
            break;
        }
        rounds += 1;
        if rounds >= MAX_ROUNDS {
            for batch in round {
                tracing::warn!(queue = %batch.source, vhost = %batch.vhost_name, messages = batch.letters.len(), max_rounds = MAX_ROUNDS, "dead-letter chain too long (queues dead-lettering into each other at their limits): messages dropped");
                for letter in &batch.letters {
                    batch.forget(letter.stored);
                }
            }
            break;
        }
    }
}

impl Batch {
    fn send(self) {
        let vhost = self.home.upgrade();
        for letter in &self.letters {
            let routed = vhost.as_ref().and_then(|vhost| self.route(vhost, letter));
            let Some((message, targets)) = routed else {
                self.forget(letter.stored);
                continue;
            };
            // Reserve a place in every target, then write the move in one batch.
            let mut ops = Vec::with_capacity(targets.len() + 1);
            if let Some(key) = letter.stored {
                ops.push(WriteOp::Delete {
                    queue_id: key.id,
                    seq: key.seq,
                });
            }
            let mut placed = Vec::with_capacity(targets.len());
            let mut encoded: Option<Bytes> = None;
            for queue in targets {
                let Some(seq) = queue.reserve_seq() else {
                    continue; // deleted meanwhile
                };
                let stored = (queue.store_id != 0 && message.is_persistent()).then(|| {
                    ops.push(WriteOp::Put {
                        queue_id: queue.store_id,
                        seq,
                        value: encoded.get_or_insert_with(|| message.encode()).clone(),
                        index: queue.index_entry(&message),
                    });
                    StoreKey {
                        id: queue.store_id,
                        seq,
                        persistent: true,
                    }
                });
                placed.push((queue, seq, stored));
            }
            let ticket = match ops.len() {
                0 => None,
                1 => ops.pop().map(|op| self.store.submit(op)),
                _ => Some(self.store.submit(WriteOp::Group(ops))),
            };
            for (queue, seq, stored) in placed {
                queue.accept_dead_letter(&message, seq, stored, ticket);
            }
        }
    }

    /// The rewritten message and the queues it reaches, or `None` when it goes nowhere (no
    /// such exchange, no binding, or only queues that would close a cycle).
    fn route(&self, vhost: &VHost, letter: &DeadLetter) -> Option<(Arc<Message>, Vec<Arc<Queue>>)> {
        let rewritten = match rewrite(
            &letter.message,
            letter.reason,
            &self.source,
            &self.target,
            crate::message::now_ms(),
        ) {
            Ok(rewritten) => rewritten,
            Err(error) => {
                tracing::error!(queue = %self.source, vhost = %self.vhost_name, %error, "cannot dead-letter a message: dropped");
                return None;
            }
        };
        let mut queues = Vec::new();
        let keys: Vec<&str> = rewritten.routing_keys.iter().map(String::as_str).collect();
        if vhost
            .route_dead_letter(
                &self.target.exchange,
                &keys,
                rewritten.headers.as_ref(),
                &mut queues,
            )
            .is_err()
        {
            return None; // the dead-letter exchange does not exist: dropped, as RabbitMQ
        }
        if letter.reason != DeathReason::Rejected
            && let Some(deaths) = rewritten.deaths()
        {
            queues.retain(|queue| {
                let cycle = is_cycle(queue.name(), deaths);
                if cycle {
                    tracing::warn!(queue = %self.source, vhost = %self.vhost_name, target = %queue.name(), reason = letter.reason.as_str(), "message dropped: dead-letter queues cycle detected");
                }
                !cycle
            });
        }
        if queues.is_empty() {
            return None;
        }
        Some((Arc::new(rewritten.message), queues))
    }

    fn forget(&self, stored: Option<StoreKey>) {
        if let Some(key) = stored {
            self.store.submit(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
    }
}

/// A message as it leaves for the dead-letter exchange.
#[derive(Debug)]
pub(crate) struct Rewritten {
    /// The new message: exchange = the dead-letter exchange, routing key = the first of
    /// `routing_keys`, new properties, the same body.
    pub(crate) message: Message,
    /// The keys it is routed with: the dead-letter routing key, or the message's own
    /// routing key and its `CC` keys.
    pub(crate) routing_keys: Vec<String>,
    /// Its headers (for headers exchanges and the cycle check).
    pub(crate) headers: Option<FieldTable>,
}

impl Rewritten {
    fn deaths(&self) -> Option<&[AMQPValue]> {
        match self.headers.as_ref()?.inner().get(X_DEATH) {
            Some(AMQPValue::FieldArray(deaths)) => Some(deaths.as_slice()),
            _ => None,
        }
    }
}

const X_DEATH: &str = "x-death";

/// Rewrite `message`, let go by `queue` for `reason`, as RabbitMQ 3.10's
/// `rabbit_dead_letter:make_msg` does. `now_ms` is the wall clock (the record's `time` is
/// in seconds, and the new message's TTL in its next queue counts from it).
pub(crate) fn rewrite(
    message: &Message,
    reason: DeathReason,
    queue: &str,
    target: &DeadLetterTarget,
    now_ms: u64,
) -> Result<Rewritten, String> {
    let properties = match parse_properties(&message.raw_properties[..]) {
        Ok((_, properties)) => properties,
        Err(_) => return Err("its stored properties do not parse".into()),
    };
    let mut headers = properties.headers().clone().unwrap_or_default();
    // The keys it was routed with: the routing key and its CC (and BCC, which Warren
    // removes at publish: see the README) keys.
    let mut death_keys = vec![message.routing_key.as_str().to_owned()];
    death_keys.extend(header_routes(&headers));
    let mut info = FieldTable::default();
    info.insert("reason".into(), long_string(reason.as_str()));
    info.insert("queue".into(), long_string(queue));
    info.insert("time".into(), AMQPValue::Timestamp(now_ms / 1000));
    info.insert("exchange".into(), long_string(message.exchange.as_str()));
    info.insert(
        "routing-keys".into(),
        AMQPValue::FieldArray(FieldArray::from(
            death_keys
                .iter()
                .map(|k| long_string(k))
                .collect::<Vec<_>>(),
        )),
    );
    if let Some(expiration) = properties.expiration() {
        info.insert(
            "original-expiration".into(),
            long_string(expiration.as_str()),
        );
    }
    update_x_death(&mut headers, info, queue, reason.as_str(), message);
    let routing_keys = match &target.routing_key {
        Some(key) => {
            headers = without(&headers, "CC");
            vec![key.as_str().to_owned()]
        }
        None => death_keys,
    };
    let properties = without_expiration(&properties).with_headers(headers.clone());
    let raw_properties = encode_properties(&properties)?;
    let routing_key = ShortString::from(routing_keys[0].as_str());
    Ok(Rewritten {
        message: Message {
            exchange: ShortString::from(&*target.exchange),
            routing_key,
            expiration: None,
            raw_properties,
            timestamp_ms: now_ms,
            ..message.clone()
        },
        routing_keys,
        headers: Some(headers),
    })
}

/// RabbitMQ's `update_x_death_header`.
fn update_x_death(
    headers: &mut FieldTable,
    mut info: FieldTable,
    queue: &str,
    reason: &str,
    message: &Message,
) {
    match headers.inner().get(X_DEATH) {
        None => {
            // The first death also gets its own top-level headers.
            headers.insert("x-first-death-reason".into(), long_string(reason));
            headers.insert("x-first-death-queue".into(), long_string(queue));
            headers.insert(
                "x-first-death-exchange".into(),
                long_string(message.exchange.as_str()),
            );
            info.insert("count".into(), AMQPValue::LongLongInt(1));
            headers.insert(
                X_DEATH.into(),
                AMQPValue::FieldArray(vec![AMQPValue::FieldTable(info)].into()),
            );
        }
        Some(AMQPValue::FieldArray(tables)) => {
            let grouped = group_by_queue_and_reason(tables.as_slice());
            let (matches, others): (Vec<AMQPValue>, Vec<AMQPValue>) = grouped
                .into_iter()
                .partition(|t| table_of(t).is_some_and(|t| same_event(t, queue, reason)));
            let first = match matches.into_iter().next().as_ref().and_then(table_of) {
                None => {
                    info.insert("count".into(), AMQPValue::LongLongInt(1));
                    info
                }
                Some(matched) => increment_count(matched),
            };
            let mut deaths = vec![AMQPValue::FieldTable(first)];
            deaths.extend(others);
            headers.insert(X_DEATH.into(), AMQPValue::FieldArray(deaths.into()));
        }
        Some(other) => {
            tracing::warn!(
                kind = crate::arguments::type_name(other),
                "message has an x-death header that is not an array; resetting it"
            );
            info.insert("count".into(), AMQPValue::LongLongInt(1));
            headers.insert(
                X_DEATH.into(),
                AMQPValue::FieldArray(vec![AMQPValue::FieldTable(info)].into()),
            );
        }
    }
}

/// RabbitMQ's `group_by_queue_and_reason`: one table per (queue, reason), the first of
/// each with the count of the group if it had none. As in RabbitMQ 3.10 the result comes
/// out in reverse order of first appearance when there are two tables or more.
fn group_by_queue_and_reason(tables: &[AMQPValue]) -> Vec<AMQPValue> {
    if tables.len() <= 1 {
        return tables.to_vec();
    }
    let key = |t: &AMQPValue| {
        table_of(t).map(|t| (field(t, "queue").cloned(), field(t, "reason").cloned()))
    };
    let mut seen = Vec::new();
    let mut grouped: Vec<AMQPValue> = Vec::new();
    for table in tables {
        let k = key(table);
        let matching: Vec<&AMQPValue> = tables.iter().filter(|t| key(t) == k).collect();
        let augmented = match matching.first().and_then(|t| table_of(t)) {
            Some(first) if field(first, "count").is_none() => {
                let mut first = first.clone();
                first.insert(
                    "count".into(),
                    AMQPValue::LongLongInt(matching.len() as i64),
                );
                AMQPValue::FieldTable(first)
            }
            _ => matching.first().map_or_else(|| table.clone(), |t| (*t).clone()),
        };
        if grouped.is_empty() {
            grouped.push(augmented);
        } else if !seen.contains(&k) {
            grouped.insert(0, augmented);
        }
        seen.push(k);
    }
    grouped
}

fn increment_count(table: &FieldTable) -> FieldTable {
    let mut table = table.clone();
    let count = field(&table, "count")
        .and_then(crate::arguments::integer)
        .unwrap_or(0);
    table.insert("count".into(), AMQPValue::LongLongInt(count + 1));
    table
}

fn same_event(table: &FieldTable, queue: &str, reason: &str) -> bool {
    is_string(field(table, "queue"), queue) && is_string(field(table, "reason"), reason)
}

/// RabbitMQ's `is_cycle`: the message's deaths up to the last one in `queue` contain no
/// rejection (and nothing that is not a table), so routing it to `queue` again would loop
/// without a client ever deciding anything.
pub(crate) fn is_cycle(queue: &str, deaths: &[AMQPValue]) -> bool {
    let Some(at) = deaths
        .iter()
        .position(|d| table_of(d).is_some_and(|t| is_string(field(t, "queue"), queue)))
    else {
        return false;
    };
    deaths[..=at].iter().all(|d| match table_of(d) {
        Some(t) => !is_string(field(t, "reason"), "rejected"),
        None => false,
    })
}

fn table_of(value: &AMQPValue) -> Option<&FieldTable> {
    match value {
        AMQPValue::FieldTable(t) => Some(t),
        _ => None,
    }
}

fn field<'a>(table: &'a FieldTable, key: &str) -> Option<&'a AMQPValue> {
    table.inner().get(key)
}

/// Whether `value` is the long string `expected` (RabbitMQ compares `{longstr, Bin}`).
fn is_string(value: Option<&AMQPValue>, expected: &str) -> bool {
    matches!(value, Some(AMQPValue::LongString(s)) if s.as_bytes() == expected.as_bytes())
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// The CC and BCC keys in a message's headers (RabbitMQ's `header_routes`: arrays of long
/// strings; other elements are skipped).
fn header_routes(headers: &FieldTable) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["CC", "BCC"] {
        if let Some(AMQPValue::FieldArray(routes)) = headers.inner().get(name) {
            keys.extend(routes.as_slice().iter().filter_map(|v| match v {
                AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into()),
                _ => None,
            }));
        }
    }
    keys
}

fn without(headers: &FieldTable, key: &str) -> FieldTable {
    let mut kept = FieldTable::default();
    for (k, v) in headers.inner() {
        if k.as_str() != key {
            kept.insert(k.clone(), v.clone());
        }
    }
    kept
}

/// The same properties without `expiration` (amq-protocol has no way to unset one).
fn without_expiration(p: &BasicProperties) -> BasicProperties {
    let mut out = BasicProperties::default();
    if let Some(v) = p.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = p.headers() {
        out = out.with_headers(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        out = out.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
}

fn encode_properties(properties: &BasicProperties) -> Result<Bytes, String> {
    use amq_protocol::frame::WriteContext;
    match gen_properties(properties)(WriteContext::from(Vec::with_capacity(64))) {
        Ok(ctx) => Ok(Bytes::from(ctx.into_inner().0)),
        Err(e) => Err(format!("cannot encode its properties: {e}")),
    }
}
