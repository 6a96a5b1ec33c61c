//! AMQP field tables as JSON, the way RabbitMQ's management API renders them (client
//! properties, queue, exchange and consumer arguments): tables become objects, arrays
//! arrays, strings strings (long strings that are not UTF-8 lossily), numbers numbers,
//! `void` null. Called when an object is registered or listed, never per message.

use amq_protocol::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value};

/// `table` as a JSON object.
pub fn table_json(table: &FieldTable) -> Value {
    let mut map = Map::new();
    for (key, value) in table.inner() {
        map.insert(key.as_str().to_owned(), value_json(value));
    }
    Value::Object(map)
}

/// One field value as JSON.
pub fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Float(f) => Value::from(f64::from(*f)),
        AMQPValue::Double(f) => Value::from(*f),
        AMQPValue::DecimalValue(d) => {
            Value::from(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => {
            Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::Timestamp(t) => Value::from(*t),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b.as_slice()).into_owned())
        }
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::LongString;

    #[test]
    fn nested_tables_become_objects() {
        let mut caps = FieldTable::default();
        caps.insert("publisher_confirms".into(), AMQPValue::Boolean(true));
        let mut props = FieldTable::default();
        props.insert(
            "product".into(),
            AMQPValue::LongString(LongString::from(b"lapin".to_vec())),
        );
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        props.insert("n".into(), AMQPValue::LongInt(-3));
        assert_eq!(
            table_json(&props),
            serde_json::json!({
                "product": "lapin",
                "capabilities": {"publisher_confirms": true},
                "n": -3
            })
        );
    }
}
