//! Sender-selected distribution (RabbitMQ's `CC` and `BCC` headers).
//!
//! A publisher may name extra routing keys in the `CC` and `BCC` headers (arrays of long
//! strings); the message is routed with its routing key and with each of them, and reaches
//! each queue once. `BCC` is removed from the message before anyone sees it (consumers,
//! and a `basic.return`), `CC` stays. As RabbitMQ: array elements that are not strings are
//! skipped, and a `CC` or `BCC` that is not an array is a 406
//! `invalid message: {unacceptable_type_in_header,"CC",longstr}`.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};

use crate::error::BrokerError;

const CC: &str = "CC";
const BCC: &str = "BCC";

/// The extra routing keys a message's `CC` and `BCC` headers name (usually none: no
/// allocation then).
pub fn extra_routing_keys(properties: &BasicProperties) -> Result<Vec<String>, BrokerError> {
    let Some(headers) = properties.headers() else {
        return Ok(Vec::new());
    };
    let mut keys = Vec::new();
    for name in [CC, BCC] {
        match headers.inner().get(name) {
            None => {}
            Some(AMQPValue::FieldArray(routes)) => {
                keys.extend(routes.as_slice().iter().filter_map(|v| match v {
                    AMQPValue::LongString(s) => {
                        Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                    }
                    _ => None,
                }));
            }
            Some(other) => {
                return Err(BrokerError::PreconditionFailed(format!(
                    "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                    crate::arguments::type_name(other)
                )));
            }
        }
    }
    Ok(keys)
}

/// `properties` without the `BCC` header, or `None` when there is none to remove.
pub fn without_bcc(properties: &BasicProperties) -> Option<BasicProperties> {
    let headers = properties.headers().as_ref()?;
    if !headers.inner().contains_key(BCC) {
        return None;
    }
    let mut kept = FieldTable::default();
    for (key, value) in headers.inner() {
        if key.as_str() != BCC {
            kept.insert(key.clone(), value.clone());
        }
    }
    Some(properties.clone().with_headers(kept))
}
