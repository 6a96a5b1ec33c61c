//! The stored form of a held message: what routing it later needs beyond the message.
//!
//! `version (1) | key count (u8) | per key: length (u8) ++ bytes | Message::encode()`.
//! The extra keys are the `CC` / `BCC` routing keys of the publish (`BCC` is already
//! stripped from the properties, so it survives only here), routed like the routing key
//! when the message is due, as RabbitMQ keeps them in the delivery it holds.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::BrokerError;
use crate::message::Message;

const VERSION: u8 = 1;

/// Encodes a message to hold and its extra routing keys.
pub(crate) fn encode(message: &Message, extra_keys: &[String]) -> Bytes {
    let stored = message.encode();
    let keys: usize = extra_keys.iter().map(|k| 1 + k.len().min(255)).sum();
    let mut buf = BytesMut::with_capacity(2 + keys + stored.len());
    buf.put_u8(VERSION);
    buf.put_u8(extra_keys.len().min(255) as u8);
    for key in extra_keys.iter().take(255) {
        // Routing keys are short strings: at most 255 bytes.
        let bytes = key.as_bytes().get(..255).unwrap_or(key.as_bytes());
        buf.put_u8(bytes.len() as u8);
        buf.put_slice(bytes);
    }
    buf.put_slice(&stored);
    buf.freeze()
}

/// Decodes a held message and its extra routing keys.
pub(crate) fn decode(mut bytes: Bytes) -> Result<(Message, Vec<String>), BrokerError> {
    let corrupt = || BrokerError::Internal("corrupt held message".into());
    if bytes.remaining() < 2 || bytes.get_u8() != VERSION {
        return Err(corrupt());
    }
    let count = bytes.get_u8();
    let mut keys = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        if !bytes.has_remaining() {
            return Err(corrupt());
        }
        let len = usize::from(bytes.get_u8());
        if bytes.remaining() < len {
            return Err(corrupt());
        }
        let key = bytes.split_to(len);
        keys.push(String::from_utf8_lossy(&key).into_owned());
    }
    Ok((Message::decode(bytes)?, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::BasicProperties;

    #[test]
    fn a_held_message_round_trips_with_its_cc_keys() {
        let properties = BasicProperties::default().with_delivery_mode(2);
        let message = Message::new(
            "delayed".into(),
            "rk".into(),
            &properties,
            Bytes::from_static(&[0x10, 0x00, 0x02]),
            Bytes::from_static(b"body"),
            42,
        )
        .expect("message");
        let keys = vec!["cc-1".to_owned(), "bcc".to_owned()];
        let (back, back_keys) = decode(encode(&message, &keys)).expect("decode");
        assert_eq!(back_keys, keys);
        assert_eq!(back.routing_key.as_str(), "rk");
        assert_eq!(back.body, message.body);
        assert!(back.persistent);
        assert!(decode(Bytes::from_static(&[9, 0])).is_err());
    }
}
