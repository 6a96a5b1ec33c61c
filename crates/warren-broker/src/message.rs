//! Messages as the broker holds them: routing data, the properties as published (raw bytes)
//! with the facts the broker acts on (persistence, expiration, priority), and the body.
//!
//! A published message is wrapped in one `Arc<Message>` and shared by every queue it is
//! routed to; the body is a `Bytes` slice of the connection's read buffer, so a fanout to
//! ten queues copies nothing. The parsed `BasicProperties` (about 300 bytes, plus the heap
//! of its strings and headers) are not kept: consumers get the raw bytes, and a queued
//! message costs only what it needs. `encode`/`decode` give the form stored in RocksDB.

use amq_protocol::protocol::{BasicProperties, basic::parse_properties};
use amq_protocol::types::ShortString;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::BrokerError;

/// One message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Exchange it was published to.
    pub exchange: ShortString,
    /// Routing key it was published with.
    pub routing_key: ShortString,
    /// delivery-mode 2.
    pub persistent: bool,
    /// The per-message TTL from the `expiration` property, in ms (validated).
    pub expiration: Option<u64>,
    /// The `priority` property (0 when unset); a queue clamps it to its `x-max-priority`.
    pub priority: u8,
    /// Properties exactly as published (flags and list), passed through to consumers.
    pub raw_properties: Bytes,
    /// The body.
    pub body: Bytes,
    /// When the broker received it, in milliseconds since the Unix epoch (the base of
    /// message TTL; stored with the message so expiry survives a restart).
    pub timestamp_ms: u64,
}

const FORMAT: u8 = 2;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Message {
    /// A message from a publish. Checks what RabbitMQ checks of the properties: a valid
    /// `expiration` and a delivery-mode of 1 or 2 when one is set (406 otherwise).
    pub fn new(
        exchange: ShortString,
        routing_key: ShortString,
        properties: &BasicProperties,
        raw_properties: Bytes,
        body: Bytes,
        timestamp_ms: u64,
    ) -> Result<Message, BrokerError> {
        let expiration = expiration_ms(properties)?;
        let persistent = match *properties.delivery_mode() {
            None | Some(1) => false,
            Some(2) => true,
            Some(mode) => {
                return Err(BrokerError::PreconditionFailed(format!(
                    "invalid message: {{delivery_mode_unknown,{mode}}}"
                )));
            }
        };
        Ok(Message {
            exchange,
            routing_key,
            persistent,
            expiration,
            priority: properties.priority().unwrap_or(0),
            raw_properties,
            body,
            timestamp_ms,
        })
    }

    /// delivery-mode 2.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Bytes of memory this message accounts for (body and properties).
    pub fn size(&self) -> usize {
        self.body.len() + self.raw_properties.len()
    }

    /// The stored form: format, exchange, routing key, properties, body.
    pub fn encode(&self) -> Bytes {
        let exchange = self.exchange.as_str().as_bytes();
        let routing_key = self.routing_key.as_str().as_bytes();
        let mut buf = BytesMut::with_capacity(
            8 + exchange.len() + routing_key.len() + self.raw_properties.len() + self.body.len(),
        );
        buf.put_u8(FORMAT);
        buf.put_u64(self.timestamp_ms);
        buf.put_u8(exchange.len() as u8);
        buf.put_slice(exchange);
        buf.put_u8(routing_key.len() as u8);
        buf.put_slice(routing_key);
        buf.put_u32(self.raw_properties.len() as u32);
        buf.put_slice(&self.raw_properties);
        buf.put_slice(&self.body);
        buf.freeze()
    }

    /// Parse the stored form.
    pub fn decode(mut bytes: Bytes) -> Result<Message, BrokerError> {
        let corrupt = || BrokerError::Internal("corrupt stored message".into());
        if bytes.remaining() < 10 || bytes.get_u8() != FORMAT {
            return Err(corrupt());
        }
        let timestamp_ms = bytes.get_u64();
        let exchange = take_short(&mut bytes).ok_or_else(corrupt)?;
        let routing_key = take_short(&mut bytes).ok_or_else(corrupt)?;
        if bytes.remaining() < 4 {
            return Err(corrupt());
        }
        let props_len = bytes.get_u32() as usize;
        if bytes.remaining() < props_len {
            return Err(corrupt());
        }
        let raw_properties = bytes.split_to(props_len);
        let properties = match parse_properties(&raw_properties[..]) {
            Ok((_, p)) => p,
            Err(_) => return Err(corrupt()),
        };
        // Checked when it was published; a stored message is never refused.
        Ok(Message {
            exchange,
            routing_key,
            persistent: *properties.delivery_mode() == Some(2),
            expiration: expiration_ms(&properties).ok().flatten(),
            priority: properties.priority().unwrap_or(0),
            raw_properties,
            body: bytes,
            timestamp_ms,
        })
    }
}

fn take_short(bytes: &mut Bytes) -> Option<ShortString> {
    if !bytes.has_remaining() {
        return None;
    }
    let len = bytes.get_u8() as usize;
    if bytes.remaining() < len {
        return None;
    }
    let s = bytes.split_to(len);
    Some(String::from_utf8_lossy(&s).into_owned().into())
}

/// The per-message TTL from the `expiration` property, in milliseconds. Parsed as RabbitMQ
/// parses it (`string:to_integer`: an optional sign, then digits, nothing after), with
/// RabbitMQ's limits (0 to ten years) and its words for each refusal (406).
fn expiration_ms(properties: &BasicProperties) -> Result<Option<u64>, BrokerError> {
    let Some(expiration) = properties.expiration() else {
        return Ok(None);
    };
    let text = expiration.as_str();
    let invalid = |why: String| {
        BrokerError::PreconditionFailed(format!("invalid expiration '{text}': {why}"))
    };
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let digits_end = unsigned
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let (digits, rest) = unsigned.split_at(digits_end);
    if digits.is_empty() {
        return Err(invalid("no_integer".into()));
    }
    if !rest.is_empty() {
        return Err(invalid(format!("{{leftover_string,\"{rest}\"}}")));
    }
    // As Erlang prints the integer: no leading zeros, the sign kept.
    let trimmed = match digits.trim_start_matches('0') {
        "" => "0",
        t => t,
    };
    let value = trimmed
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= crate::arguments::MAX_EXPIRY_MS);
    match value {
        Some(0) => Ok(Some(0)),
        Some(_) if negative => Err(invalid(format!("{{value_negative,-{trimmed}}}"))),
        Some(v) => Ok(Some(v)),
        None if negative => Err(invalid(format!("{{value_negative,-{trimmed}}}"))),
        None => Err(invalid(format!("{{value_too_large,{trimmed}}}"))),
    }
}
