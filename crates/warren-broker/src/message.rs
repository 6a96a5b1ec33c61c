//! Messages as the broker holds them: routing data, properties (parsed and raw) and body.
//!
//! A published message is wrapped in one `Arc<Message>` and shared by every queue it is
//! routed to; the body is a `Bytes` slice of the connection's read buffer, so a fanout to
//! ten queues copies nothing. `encode`/`decode` give the form stored in RocksDB.

use amq_protocol::protocol::{BasicProperties, basic::parse_properties};
use amq_protocol::types::{FieldTable, ShortString};
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::BrokerError;

/// One message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Exchange it was published to.
    pub exchange: ShortString,
    /// Routing key it was published with.
    pub routing_key: ShortString,
    /// Parsed properties, for the broker's own decisions (persistence, headers routing).
    pub properties: BasicProperties,
    /// Properties exactly as published (flags and list), passed through to consumers.
    pub raw_properties: Bytes,
    /// The body.
    pub body: Bytes,
}

const FORMAT: u8 = 1;

impl Message {
    /// delivery-mode 2.
    pub fn is_persistent(&self) -> bool {
        *self.properties.delivery_mode() == Some(2)
    }

    /// The headers table, if any.
    pub fn headers(&self) -> Option<&FieldTable> {
        self.properties.headers().as_ref()
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
        if bytes.remaining() < 2 || bytes.get_u8() != FORMAT {
            return Err(corrupt());
        }
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
        Ok(Message {
            exchange,
            routing_key,
            properties,
            raw_properties,
            body: bytes,
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
