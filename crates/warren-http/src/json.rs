//! Broker objects rendered as RabbitMQ's management API renders them (field names and
//! types as RabbitMQ 3.10; values Warren does not have, such as Erlang's garbage-collection
//! figures, are left out rather than made up; the README lists them).

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use serde_json::{Value, json};
use warren_broker::definitions::table_to_json;
use warren_broker::{Destination, Exchange, Queue, QueueType};

/// `{"rate": 0.0}`: a rate the API reports before the first sample.
pub fn zero_rate() -> Value {
    json!({"rate": 0.0})
}

/// Milliseconds since the epoch as RabbitMQ's timestamps (`2026-12-04T14:43:21.753+00:00`).
pub fn timestamp(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let millis = ms % 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}+00:00")
}

/// An AMQP table as JSON.
pub fn table(t: &FieldTable) -> Value {
    Value::Object(table_to_json(t))
}

/// One exchange.
pub fn exchange(vhost: &str, x: &Exchange) -> Value {
    let mut v = json!({
        "name": &*x.name,
        "vhost": vhost,
        "type": x.spec.kind,
        "durable": x.spec.durable,
        "auto_delete": x.spec.auto_delete,
        "internal": x.spec.internal,
        "arguments": table(&x.spec.arguments),
        "user_who_performed_action": if x.is_builtin() { "rmq-internal" } else { "" },
    });
    // As RabbitMQ: `policy` only when one applies.
    if let (Some(policy), Value::Object(map)) = (x.policy_view().policy, &mut v) {
        map.insert("policy".into(), Value::String(policy));
    }
    // As the delayed-message plugin's exchange info: the messages it holds now.
    if let (Some(hold), Value::Object(map)) = (x.hold(), &mut v) {
        map.insert("messages_delayed".into(), json!(hold.count()));
    }
    v
}

/// One queue (classic or quorum), with its depths; a quorum queue also has RabbitMQ's
/// `leader`, `members` and `online` (this node).
pub fn queue(node: &str, q: &Queue) -> Value {
    let info = q.info();
    let policy = q.policy_view();
    // A quorum queue's dead letters awaiting a queue count in `messages`, as RabbitMQ 3.10.
    let messages = info.messages_ready + info.messages_unacknowledged + info.messages_dlx;
    let message_bytes = info.message_bytes_ready + info.message_bytes_dlx;
    let idle_since = (info.consumers == 0).then(|| timestamp(info.last_used_ms));
    let mut v = json!({
        "name": &**q.name(),
        "vhost": &*q.vhost,
        "durable": q.spec.durable,
        "auto_delete": q.spec.auto_delete,
        "exclusive": q.spec.exclusive_owner.is_some(),
        "arguments": table(&q.spec.arguments),
        "node": node,
        "type": q.queue_type().as_str(),
        "state": "running",
        "consumers": info.consumers,
        "consumer_capacity": if info.consumers > 0 { 1.0 } else { 0.0 },
        "consumer_utilisation": if info.consumers > 0 { 1.0 } else { 0.0 },
        "exclusive_consumer_tag": info.exclusive_consumer_tag,
        "single_active_consumer_tag": info.single_active_consumer_tag,
        "messages": messages,
        "messages_details": zero_rate(),
        "messages_ready": info.messages_ready,
        "messages_ready_details": zero_rate(),
        "messages_unacknowledged": info.messages_unacknowledged,
        "messages_unacknowledged_details": zero_rate(),
        "messages_ram": info.messages_ram,
        "messages_ready_ram": info.messages_ram.min(info.messages_ready),
        "messages_unacknowledged_ram": 0,
        "messages_paged_out": info.messages_ready.saturating_sub(info.messages_ram),
        "messages_persistent": if q.spec.durable { messages } else { 0 },
        "message_bytes": message_bytes,
        "message_bytes_ready": info.message_bytes_ready,
        "message_bytes_unacknowledged": 0,
        "message_bytes_ram": info.message_bytes_ram,
        "message_bytes_paged_out": info.message_bytes_ready.saturating_sub(info.message_bytes_ram),
        "message_bytes_persistent": if q.spec.durable { message_bytes } else { 0 },
        "memory": info.message_bytes_ram,
        "head_message_timestamp": Value::Null,
        "recoverable_slaves": Value::Null,
        "policy": policy.policy,
        "operator_policy": policy.operator_policy,
        "effective_policy_definition": policy.effective_policy_definition,
    });
    if let (Some(idle), Value::Object(map)) = (idle_since, &mut v) {
        map.insert("idle_since".into(), Value::String(idle));
    }
    if let (QueueType::Quorum, Value::Object(map)) = (q.queue_type(), &mut v) {
        map.insert("leader".into(), json!(node));
        map.insert("members".into(), json!([node]));
        map.insert("online".into(), json!([node]));
        map.insert("messages_dlx".into(), json!(info.messages_dlx));
        map.insert("message_bytes_dlx".into(), json!(info.message_bytes_dlx));
    }
    v
}

/// RabbitMQ's `properties_key` of a binding: the routing key (`~` when empty and without
/// arguments), then `~` and a hash of the arguments when there are any. Used to address
/// one binding in `/api/bindings/.../{props}`.
pub fn properties_key(routing_key: &str, arguments: &FieldTable) -> String {
    let quoted = quote_plus(routing_key).replace('~', "%7E");
    if arguments.inner().is_empty() {
        if routing_key.is_empty() {
            "~".into()
        } else {
            quoted
        }
    } else {
        // FNV-1a over the arguments' canonical JSON (keys sorted by FieldTable's BTreeMap).
        let text = table(arguments).to_string();
        let mut h: u32 = 0x811c_9dc5;
        for b in text.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        use base64::Engine;
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_be_bytes());
        format!("{quoted}~{hash}")
    }
}

/// `application/x-www-form-urlencoded` quoting (space as `+`), as RabbitMQ's `quote_plus`.
fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One binding.
pub fn binding(
    vhost: &str,
    source: &str,
    dest: &Destination<Arc<str>, Arc<str>>,
    routing_key: &str,
    arguments: &FieldTable,
) -> Value {
    let (destination, destination_type) = match dest {
        Destination::Queue(q) => (&**q, "queue"),
        Destination::Exchange(e) => (&**e, "exchange"),
    };
    json!({
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": destination_type,
        "routing_key": routing_key,
        "arguments": table(arguments),
        "properties_key": properties_key(routing_key, arguments),
    })
}

/// The default exchange's implicit binding to a queue.
pub fn default_binding(vhost: &str, queue: &str) -> Value {
    json!({
        "source": "",
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": queue,
        "arguments": {},
        "properties_key": properties_key(queue, &FieldTable::default()),
    })
}

/// Every binding of a vhost (the default exchange's implicit ones first), optionally
/// filtered.
pub fn bindings_of(
    vhost: &warren_broker::VHost,
    include_default: bool,
    mut keep: impl FnMut(&str, &Destination<Arc<str>, Arc<str>>) -> bool,
) -> Vec<Value> {
    let mut out = Vec::new();
    let name = &*vhost.name;
    if include_default {
        let mut queues = vhost.queues();
        queues.sort_by(|a, b| a.name().cmp(b.name()));
        for q in queues {
            let dest = Destination::Queue(Arc::clone(q.name()));
            if keep("", &dest) {
                out.push(default_binding(name, q.name()));
            }
        }
    }
    let mut exchanges = vhost.exchanges();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    for x in exchanges {
        if x.name.is_empty() {
            continue;
        }
        let table = x.bindings.read();
        for (dest, key, args) in table.bindings() {
            if keep(&x.name, dest) {
                out.push(binding(name, &x.name, dest, key, args));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_like_rabbitmq_s() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            timestamp(1_796_395_401_753),
            "2026-12-04T14:43:21.753+00:00"
        );
    }

    #[test]
    fn properties_keys_quote_and_hash() {
        let empty = FieldTable::default();
        assert_eq!(properties_key("", &empty), "~");
        assert_eq!(properties_key("a b~c", &empty), "a+b%7Ec");
        let mut args = FieldTable::default();
        args.insert("x".into(), amq_protocol::types::AMQPValue::LongInt(1));
        let key = properties_key("k", &args);
        assert!(key.starts_with("k~") && key.len() > 3, "{key}");
        assert_eq!(key, properties_key("k", &args));
    }
}
