//! The message a dead letter becomes, as RabbitMQ 3.10's `rabbit_dead_letter:make_msg`
//! writes it: the `x-death` record (one entry per queue and reason, newest first, with its
//! count), the `x-first-death-*` headers on the first death, `expiration` removed (kept as
//! the entry's `original-expiration`), `CC` removed when a dead-letter routing key replaces
//! the message's keys; and RabbitMQ's cycle check on the result.
//!
//! The rewrite works on the header table's bytes ([`super::raw`]) so that every field
//! comes out in the order RabbitMQ writes it: the header table sorted, a new `x-death`
//! entry with `count` first and the rest in RabbitMQ's order, an updated entry sorted,
//! the others and every untouched value byte for byte.

use amq_protocol::types::parsing::parse_field_table;
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use bytes::Bytes;

use super::DeathReason;
use super::raw::{self, RawTable};
use crate::arguments::DeadLetterTarget;
use crate::message::Message;

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
    pub(super) fn deaths(&self) -> Option<&[AMQPValue]> {
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
    let malformed = |_| "its stored properties do not parse".to_string();
    let (headers, expiration) =
        raw::headers_and_expiration(&message.raw_properties).map_err(malformed)?;
    let mut headers = headers.unwrap_or_default();
    // The keys it was routed with: the routing key and its CC (and BCC, which Warren
    // removes at publish: see the README) keys.
    let mut death_keys = vec![message.routing_key.as_str().to_owned()];
    death_keys.extend(header_routes(&headers));
    let keys: Vec<Vec<u8>> = death_keys
        .iter()
        .map(|k| raw::long_string(k.as_bytes()))
        .collect();
    let mut info = RawTable::default();
    info.store("reason", raw::long_string(reason.as_str().as_bytes()));
    info.store("queue", raw::long_string(queue.as_bytes()));
    info.store("time", raw::timestamp(now_ms / 1000));
    info.store(
        "exchange",
        raw::long_string(message.exchange.as_str().as_bytes()),
    );
    info.store("routing-keys", raw::array(&keys));
    if let Some(expiration) = expiration {
        info.store("original-expiration", raw::long_string(&expiration));
    }
    update_x_death(&mut headers, info, queue, reason.as_str(), message);
    let routing_keys = match &target.routing_key {
        Some(key) => {
            headers.remove("CC");
            vec![key.as_str().to_owned()]
        }
        None => death_keys,
    };
    let mut table_bytes = Vec::new();
    headers.encode(&mut table_bytes);
    let raw_properties =
        raw::replace_headers(&message.raw_properties, &table_bytes).map_err(malformed)?;
    let parsed = match parse_field_table(&table_bytes[..]) {
        Ok((_, table)) => table,
        Err(_) => return Err("its rewritten headers do not parse".into()),
    };
    let routing_key = ShortString::from(routing_keys[0].as_str());
    Ok(Rewritten {
        message: Message {
            exchange: ShortString::from(&*target.exchange),
            routing_key,
            expiration: None,
            raw_properties: Bytes::from(raw_properties),
            timestamp_ms: now_ms,
            ..message.clone()
        },
        routing_keys,
        headers: Some(parsed),
    })
}

/// RabbitMQ's `update_x_death_header`.
fn update_x_death(
    headers: &mut RawTable,
    mut info: RawTable,
    queue: &str,
    reason: &str,
    message: &Message,
) {
    let existing = headers.raw(X_DEATH).map(raw::array_elements);
    match existing {
        None => {
            // The first death also gets its own top-level headers.
            headers.set("x-first-death-reason", raw::long_string(reason.as_bytes()));
            headers.set("x-first-death-queue", raw::long_string(queue.as_bytes()));
            headers.set(
                "x-first-death-exchange",
                raw::long_string(message.exchange.as_str().as_bytes()),
            );
            info.prepend("count", raw::long(1));
            headers.set(X_DEATH, raw::array(&[info.to_value()]));
        }
        Some(Ok(Some(elements))) => {
            let grouped = group_by_queue_and_reason(&elements);
            let (matches, others): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
                grouped.into_iter().partition(|element| {
                    raw::table_value(element).is_some_and(|t| same_event(&t, queue, reason))
                });
            let mut first = match matches.first().and_then(|m| raw::table_value(m)) {
                None => {
                    info.prepend("count", raw::long(1));
                    info
                }
                Some(matched) => increment_count(matched),
            };
            first.sort();
            let mut deaths = vec![first.to_value()];
            deaths.extend(others);
            headers.set(X_DEATH, raw::array(&deaths));
        }
        Some(Ok(None)) | Some(Err(_)) => {
            let kind = headers
                .raw(X_DEATH)
                .and_then(raw::decode)
                .map_or("malformed", |v| crate::arguments::type_name(&v));
            tracing::warn!(
                kind,
                "message has an x-death header that is not an array; resetting it"
            );
            info.prepend("count", raw::long(1));
            headers.set(X_DEATH, raw::array(&[info.to_value()]));
        }
    }
}

/// RabbitMQ's `group_by_queue_and_reason`: one entry per (queue, reason), the first of
/// each group, given the group's size as its count if it had none (put first). As in
/// RabbitMQ 3.10 the result comes out in reverse order of first appearance when there are
/// two entries or more. Elements that are not tables are kept as they are.
fn group_by_queue_and_reason(elements: &[&[u8]]) -> Vec<Vec<u8>> {
    if elements.len() <= 1 {
        return elements.iter().map(|e| e.to_vec()).collect();
    }
    let tables: Vec<Option<RawTable>> = elements.iter().map(|e| raw::table_value(e)).collect();
    let key = |t: &RawTable| (t.string("queue"), t.string("reason"));
    let mut seen = Vec::new();
    let mut grouped: Vec<Vec<u8>> = Vec::new();
    for (element, table) in elements.iter().zip(&tables) {
        let Some(table) = table else {
            grouped.insert(0, element.to_vec());
            continue;
        };
        let k = key(table);
        let matching: Vec<&RawTable> = tables.iter().flatten().filter(|t| key(t) == k).collect();
        let first = matching[0];
        let augmented = if first.raw("count").is_none() {
            let mut first = first.clone();
            first.prepend("count", raw::long(matching.len() as i64));
            first.to_value()
        } else {
            first.to_value()
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

/// RabbitMQ's `increment_xdeath_event_count`.
fn increment_count(mut table: RawTable) -> RawTable {
    let count = table
        .get("count")
        .as_ref()
        .and_then(crate::arguments::integer);
    match count {
        Some(n) => table.store("count", raw::long(n + 1)),
        None => table.prepend("count", raw::long(1)),
    }
    table
}

fn same_event(table: &RawTable, queue: &str, reason: &str) -> bool {
    table.string("queue").as_deref() == Some(queue.as_bytes())
        && table.string("reason").as_deref() == Some(reason.as_bytes())
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

/// Whether `value` is the string `expected` (RabbitMQ compares the binaries, whatever
/// their string type).
fn is_string(value: Option<&AMQPValue>, expected: &str) -> bool {
    match value {
        Some(AMQPValue::LongString(s)) => s.as_bytes() == expected.as_bytes(),
        Some(AMQPValue::ShortString(s)) => s.as_str() == expected,
        _ => false,
    }
}

/// The CC and BCC keys in a message's headers (RabbitMQ's `header_routes`: arrays of long
/// strings; other elements are skipped).
fn header_routes(headers: &RawTable) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["CC", "BCC"] {
        if let Some(AMQPValue::FieldArray(routes)) = headers.get(name) {
            keys.extend(routes.as_slice().iter().filter_map(|v| match v {
                AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into()),
                _ => None,
            }));
        }
    }
    keys
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic::parse_properties;

    /// Properties with `expiration` "60000" and headers {z: 1, CC: ["k2"]} in that order.
    fn message() -> Message {
        let mut props = Vec::new();
        props.extend_from_slice(&(0x2000u16 | 0x0100).to_be_bytes());
        let mut headers = RawTable::default();
        headers.store("z", raw::long(1));
        headers.store("CC", raw::array(&[raw::long_string(b"k2")]));
        headers.encode(&mut props);
        props.extend_from_slice(&[5]);
        props.extend_from_slice(b"60000");
        Message {
            exchange: "src".into(),
            routing_key: "k1".into(),
            persistent: true,
            expiration: Some(60_000),
            priority: 0,
            raw_properties: Bytes::from(props),
            body: Bytes::from_static(b"body"),
            timestamp_ms: 0,
        }
    }

    fn target() -> DeadLetterTarget {
        DeadLetterTarget {
            exchange: "dlx".into(),
            routing_key: None,
        }
    }

    fn names(table: &RawTable) -> Vec<String> {
        table
            .names()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    fn deaths_of(message: &Message) -> Vec<RawTable> {
        let headers = raw::headers(&message.raw_properties).unwrap().unwrap();
        raw::array_elements(headers.raw(X_DEATH).unwrap())
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| raw::table_value(e).unwrap())
            .collect()
    }

    #[test]
    fn a_first_death_writes_count_first_and_sorts_the_headers() {
        let out = rewrite(&message(), DeathReason::Rejected, "q1", &target(), 5_000).unwrap();
        let headers = raw::headers(&out.message.raw_properties).unwrap().unwrap();
        assert_eq!(
            names(&headers),
            [
                "CC",
                "x-death",
                "x-first-death-exchange",
                "x-first-death-queue",
                "x-first-death-reason",
                "z"
            ]
        );
        let deaths = deaths_of(&out.message);
        assert_eq!(deaths.len(), 1);
        assert_eq!(
            names(&deaths[0]),
            [
                "count",
                "reason",
                "queue",
                "time",
                "exchange",
                "routing-keys",
                "original-expiration"
            ]
        );
        assert_eq!(deaths[0].get("time"), Some(AMQPValue::Timestamp(5)));
        assert_eq!(out.routing_keys, ["k1", "k2"]);
        let (_, props) = parse_properties(&out.message.raw_properties[..]).unwrap();
        assert_eq!(props.expiration(), &None);
    }

    #[test]
    fn a_second_death_sorts_the_new_entry_and_keeps_the_old_one_as_it_was() {
        let once = rewrite(&message(), DeathReason::Rejected, "q1", &target(), 0).unwrap();
        let twice = rewrite(&once.message, DeathReason::Expired, "q2", &target(), 0).unwrap();
        let deaths = deaths_of(&twice.message);
        assert_eq!(deaths.len(), 2);
        assert_eq!(deaths[0].string("queue").as_deref(), Some(&b"q2"[..]));
        assert_eq!(
            names(&deaths[0]),
            [
                "count",
                "exchange",
                "queue",
                "reason",
                "routing-keys",
                "time"
            ]
        );
        assert_eq!(names(&deaths[1])[..3], ["count", "reason", "queue"]);
        // The same queue and reason again: counted up, that entry first and sorted.
        let thrice = rewrite(&twice.message, DeathReason::Rejected, "q1", &target(), 0).unwrap();
        let deaths = deaths_of(&thrice.message);
        assert_eq!(deaths.len(), 2);
        assert_eq!(deaths[0].string("queue").as_deref(), Some(&b"q1"[..]));
        assert_eq!(deaths[0].get("count"), Some(AMQPValue::LongLongInt(2)));
        assert_eq!(
            names(&deaths[0]),
            [
                "count",
                "exchange",
                "original-expiration",
                "queue",
                "reason",
                "routing-keys",
                "time"
            ]
        );
    }

    #[test]
    fn a_dead_letter_routing_key_replaces_the_keys_and_drops_cc() {
        let target = DeadLetterTarget {
            exchange: "dlx".into(),
            routing_key: Some("dead".into()),
        };
        let out = rewrite(&message(), DeathReason::MaxLen, "q1", &target, 0).unwrap();
        assert_eq!(out.routing_keys, ["dead"]);
        let headers = raw::headers(&out.message.raw_properties).unwrap().unwrap();
        assert!(headers.raw("CC").is_none());
        // The x-death entry still names the keys the message was routed with.
        let keys = deaths_of(&out.message)[0].get("routing-keys");
        assert_eq!(
            keys,
            Some(AMQPValue::FieldArray(
                vec![
                    AMQPValue::LongString("k1".into()),
                    AMQPValue::LongString("k2".into())
                ]
                .into()
            ))
        );
    }

    #[test]
    fn cycles_need_a_death_in_the_queue_and_no_rejection_since() {
        let death = |queue: &str, reason: &str| {
            let mut t = FieldTable::default();
            t.insert("queue".into(), AMQPValue::LongString(queue.into()));
            t.insert("reason".into(), AMQPValue::LongString(reason.into()));
            AMQPValue::FieldTable(t)
        };
        assert!(is_cycle(
            "a",
            &[death("b", "expired"), death("a", "expired")]
        ));
        assert!(!is_cycle(
            "a",
            &[death("b", "rejected"), death("a", "expired")]
        ));
        assert!(!is_cycle("c", &[death("a", "expired")]));
    }
}
