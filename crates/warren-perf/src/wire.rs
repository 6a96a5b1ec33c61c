//! The hot path on the wire: pre-encoded publishes, hand-parsed deliveries and confirms.
//!
//! Nothing here allocates per message. A producer encodes its `basic.publish` + content
//! header + body frames once ([`PublishTemplate`]) and copies that byte string into its
//! write buffer for every message, patching only the 8-byte send timestamp at the start
//! of the body. The readers cut frames out of a large read buffer ([`next_frame`]) and
//! look at the few bytes they need (delivery tag, body size, timestamp, confirm tag);
//! only the rare other methods (closes, cancels) are parsed with `amq-protocol`.

use anyhow::{Result, bail};
use warren_protocol::encode;

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;

/// (class, method) ids used on the hot path.
pub const BASIC_DELIVER: (u16, u16) = (60, 60);
pub const BASIC_ACK: (u16, u16) = (60, 80);
pub const BASIC_NACK: (u16, u16) = (60, 120);
pub const BASIC_CANCEL: (u16, u16) = (60, 30);
pub const BASIC_RETURN: (u16, u16) = (60, 50);
pub const CHANNEL_CLOSE: (u16, u16) = (20, 40);
pub const CHANNEL_FLOW: (u16, u16) = (20, 20);
pub const CONNECTION_CLOSE: (u16, u16) = (10, 50);
pub const CONNECTION_CLOSE_OK: (u16, u16) = (10, 51);
pub const CONNECTION_BLOCKED: (u16, u16) = (10, 60);
pub const CONNECTION_UNBLOCKED: (u16, u16) = (10, 61);

/// One message's frames, encoded once; copied per publish.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    /// method + header + body frame(s).
    pub bytes: Vec<u8>,
    /// Offset of the body's first byte in `bytes` (where the timestamp goes), if the
    /// body is at least 8 bytes long.
    pub ts_offset: Option<usize>,
    /// Whether the body (>= 16 bytes) also carries a [`stamp`] in bytes 8..16.
    pub stamped: bool,
}

/// Bits of a stamp that hold the per-producer sequence number; the producer index is in
/// the bits above.
const SEQ_BITS: u32 = 40;

/// The second 8 body bytes: producer index and that producer's message number (1, 2, ...),
/// so that consumers can count lost, duplicated and reordered messages.
#[inline]
pub fn stamp(producer: usize, seq: u64) -> u64 {
    ((producer as u64) << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

/// (producer index, sequence number) of a stamp.
#[inline]
pub fn unstamp(stamp: u64) -> (usize, u64) {
    ((stamp >> SEQ_BITS) as usize, stamp & ((1 << SEQ_BITS) - 1))
}

impl PublishTemplate {
    /// `basic.publish(exchange, routing_key)` on `channel` with a body of `size` zero bytes,
    /// delivery-mode 2 if `persistent`, split into body frames of at most `frame_max`.
    pub fn new(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        size: usize,
        persistent: bool,
        frame_max: u32,
    ) -> Result<Self> {
        if exchange.len() > 255 || routing_key.len() > 255 {
            bail!("exchange and routing key must be at most 255 bytes");
        }
        let mut bytes = Vec::with_capacity(64 + size + size / 4096 * 8);
        // method frame: class 60, method 40, reserved short, exchange, routing key, bits.
        bytes.push(FRAME_METHOD);
        bytes.extend_from_slice(&channel.to_be_bytes());
        let payload_len = 2 + 2 + 2 + 1 + exchange.len() + 1 + routing_key.len() + 1;
        bytes.extend_from_slice(&(payload_len as u32).to_be_bytes());
        bytes.extend_from_slice(&60u16.to_be_bytes());
        bytes.extend_from_slice(&40u16.to_be_bytes());
        bytes.extend_from_slice(&0u16.to_be_bytes());
        bytes.push(exchange.len() as u8);
        bytes.extend_from_slice(exchange.as_bytes());
        bytes.push(routing_key.len() as u8);
        bytes.extend_from_slice(routing_key.as_bytes());
        bytes.push(0); // mandatory = immediate = false
        bytes.push(FRAME_END);
        // Content header and body frames, as the broker itself would encode them.
        let properties: &[u8] = if persistent {
            &[0x10, 0x00, 2] // flags: delivery-mode present; delivery-mode = 2
        } else {
            &[0x00, 0x00]
        };
        let header_start = bytes.len();
        let body = vec![0u8; size];
        encode::content(&mut bytes, channel, properties, &body, frame_max);
        // header frame: 7 + 12 + properties + 1; the first body frame's payload follows its
        // 7-byte frame header.
        let first_body = header_start + 7 + 12 + properties.len() + 1 + 7;
        let ts_offset = (size >= 8).then_some(first_body);
        Ok(Self {
            bytes,
            ts_offset,
            stamped: size >= 16,
        })
    }

    /// Append one message with `ts` (monotonic ns) in the body's first 8 bytes and, for
    /// bodies of 16 bytes or more, `stamp` in the next 8.
    #[inline]
    pub fn append(&self, out: &mut Vec<u8>, ts: u64, stamp: u64) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(off) = self.ts_offset {
            let n = if self.stamped { 16 } else { 8 };
            if let Some(slot) = out.get_mut(at + off..at + off + n) {
                slot[..8].copy_from_slice(&ts.to_le_bytes());
                if self.stamped {
                    slot[8..16].copy_from_slice(&stamp.to_le_bytes());
                }
            }
        }
    }
}

/// Record that message `seq` of a producer arrived when `last` was the highest seen so
/// far; returns (messages skipped over, 1 if this one is late or a duplicate).
#[inline]
pub fn check_sequence(last: &mut u64, seq: u64) -> (u64, u64) {
    let result = if seq > *last + 1 {
        (seq - *last - 1, 0)
    } else if seq <= *last {
        (0, 1)
    } else {
        (0, 0)
    };
    *last = (*last).max(seq);
    result
}

/// `basic.ack(delivery_tag, multiple)` as a frame.
#[inline]
pub fn push_ack(out: &mut Vec<u8>, channel: u16, delivery_tag: u64, multiple: bool) {
    out.push(FRAME_METHOD);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&60u16.to_be_bytes());
    out.extend_from_slice(&80u16.to_be_bytes());
    out.extend_from_slice(&delivery_tag.to_be_bytes());
    out.push(u8::from(multiple));
    out.push(FRAME_END);
}

/// `basic.nack(delivery_tag, multiple, requeue = false)` as a frame.
#[inline]
pub fn push_nack(out: &mut Vec<u8>, channel: u16, delivery_tag: u64, multiple: bool) {
    out.push(FRAME_METHOD);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&60u16.to_be_bytes());
    out.extend_from_slice(&120u16.to_be_bytes());
    out.extend_from_slice(&delivery_tag.to_be_bytes());
    // Bit 0 multiple, bit 1 requeue (clear: dead-letter or drop).
    out.push(u8::from(multiple));
    out.push(FRAME_END);
}

/// A heartbeat frame.
pub fn push_heartbeat(out: &mut Vec<u8>) {
    out.extend_from_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// A frame found in a read buffer: borrowed, nothing parsed beyond the frame header.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub kind: u8,
    pub channel: u16,
    pub payload: &'a [u8],
}

impl RawFrame<'_> {
    /// (class, method) of a method frame.
    #[inline]
    pub fn method_id(&self) -> Option<(u16, u16)> {
        match self.payload {
            [c0, c1, m0, m1, ..] if self.kind == FRAME_METHOD => Some((
                u16::from_be_bytes([*c0, *c1]),
                u16::from_be_bytes([*m0, *m1]),
            )),
            _ => None,
        }
    }
}

/// Cut the next whole frame out of `buf`: `Ok(Some((frame, len)))`, `Ok(None)` if the
/// frame is not complete yet, an error for a bad frame-end or a frame over `max_frame`.
#[inline]
pub fn next_frame(buf: &[u8], max_frame: usize) -> Result<Option<(RawFrame<'_>, usize)>> {
    let Some(head) = buf.get(..7) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
    let total = size + 8;
    if total > max_frame {
        bail!("broker sent a frame of {total} bytes (frame_max {max_frame})");
    }
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    if frame[total - 1] != FRAME_END {
        bail!("bad frame end octet {:#x}", frame[total - 1]);
    }
    Ok(Some((
        RawFrame {
            kind: head[0],
            channel: u16::from_be_bytes([head[1], head[2]]),
            payload: &frame[7..total - 1],
        },
        total,
    )))
}

/// The delivery tag of a `basic.deliver` payload (class, method, consumer-tag, tag, ...).
#[inline]
pub fn deliver_tag(payload: &[u8]) -> Option<u64> {
    let tag_len = *payload.get(4)? as usize;
    let at = 5 + tag_len;
    let bytes: [u8; 8] = payload.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// (delivery tag, multiple) of a `basic.ack` or `basic.nack` payload.
#[inline]
pub fn confirm_tag(payload: &[u8]) -> Option<(u64, bool)> {
    let bytes: [u8; 8] = payload.get(4..12)?.try_into().ok()?;
    let bits = *payload.get(12)?;
    Some((u64::from_be_bytes(bytes), bits & 1 != 0))
}

/// Body size announced by a content header payload.
#[inline]
pub fn header_body_size(payload: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = payload.get(4..12)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Human-readable description of a close/cancel/other method (the rare, slow path).
pub fn describe_method(payload: &[u8]) -> String {
    use amq_protocol::protocol::{AMQPClass, basic, channel, connection, parse_class};
    match parse_class(payload) {
        Ok((_, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => format!(
            "channel.close {} {} (class {} method {})",
            c.reply_code, c.reply_text, c.class_id, c.method_id
        ),
        Ok((_, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => format!(
            "connection.close {} {} (class {} method {})",
            c.reply_code, c.reply_text, c.class_id, c.method_id
        ),
        Ok((_, AMQPClass::Basic(basic::AMQPMethod::Cancel(c)))) => {
            format!("basic.cancel from broker for consumer {}", c.consumer_tag)
        }
        Ok((_, m)) => format!("{m:?}"),
        Err(_) => format!("unparsable method ({} bytes)", payload.len()),
    }
}

/// Tracks publisher confirms of one channel: tags are 1, 2, 3, ... in publish order;
/// acks and nacks may be `multiple` and, for single ones, arrive out of order.
#[derive(Debug, Default)]
pub struct ConfirmTracker {
    /// Every tag <= base is settled.
    base: u64,
    /// Settled tags above `base` (out-of-order single confirms).
    above: std::collections::BTreeSet<u64>,
}

impl ConfirmTracker {
    /// Settle `tag` (and, with `multiple`, every unsettled tag below it); returns how many
    /// messages this settled.
    pub fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        if tag <= self.base {
            return 0;
        }
        if multiple {
            let already = self.above.range(..=tag).count() as u64;
            let settled = tag - self.base - already;
            self.above = self.above.split_off(&(tag + 1));
            self.base = tag;
            self.compact();
            settled
        } else if self.above.insert(tag) {
            self.compact();
            1
        } else {
            0
        }
    }

    fn compact(&mut self) {
        while self.above.remove(&(self.base + 1)) {
            self.base += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn publish_template_matches_the_readme_byte_count_and_carries_the_timestamp() {
        let rk = "q".repeat(33);
        let t = PublishTemplate::new(1, "", &rk, 16, false, 131072).unwrap();
        assert_eq!(t.bytes.len(), 96);
        let mut out = Vec::new();
        t.append(&mut out, 0x0102030405060708, stamp(7, 9));
        let (m, n1) = next_frame(&out, 131072).unwrap().unwrap();
        assert_eq!(m.method_id(), Some((60, 40)));
        let (h, n2) = next_frame(&out[n1..], 131072).unwrap().unwrap();
        assert_eq!(h.kind, FRAME_HEADER);
        assert_eq!(header_body_size(h.payload), Some(16));
        let (b, _) = next_frame(&out[n1 + n2..], 131072).unwrap().unwrap();
        assert_eq!(b.kind, FRAME_BODY);
        assert_eq!(&b.payload[..8], &0x0102030405060708u64.to_le_bytes());
        let st = u64::from_le_bytes(b.payload[8..16].try_into().unwrap());
        assert_eq!(unstamp(st), (7, 9));
    }

    #[test]
    fn short_bodies_carry_only_what_fits() {
        let t = PublishTemplate::new(1, "", "q", 8, false, 131072).unwrap();
        let mut out = Vec::new();
        t.append(&mut out, 5, stamp(1, 1));
        assert_eq!(out.len(), t.bytes.len());
        let t = PublishTemplate::new(1, "", "q", 4, false, 131072).unwrap();
        out.clear();
        t.append(&mut out, 5, stamp(1, 1));
        assert_eq!(out, t.bytes);
    }

    #[test]
    fn persistent_template_has_delivery_mode_2_and_splits_large_bodies() {
        let t = PublishTemplate::new(3, "ex", "rk", 10_000, true, 4096).unwrap();
        let mut at = 0;
        let mut bodies = 0;
        let mut body_bytes = 0;
        while let Some((f, n)) = next_frame(&t.bytes[at..], 4096).unwrap() {
            assert_eq!(f.channel, 3);
            if f.kind == FRAME_HEADER {
                assert_eq!(&f.payload[12..], &[0x10, 0x00, 2]);
            }
            if f.kind == FRAME_BODY {
                bodies += 1;
                body_bytes += f.payload.len();
            }
            at += n;
        }
        assert_eq!(at, t.bytes.len());
        assert_eq!(bodies, 3);
        assert_eq!(body_bytes, 10_000);
    }

    #[test]
    fn incomplete_frames_wait_for_more_bytes() {
        let mut out = Vec::new();
        push_ack(&mut out, 7, 42, true);
        for cut in 0..out.len() {
            assert!(next_frame(&out[..cut], 4096).unwrap().is_none());
        }
        let (f, n) = next_frame(&out, 4096).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!(f.method_id(), Some(BASIC_ACK));
        assert_eq!(confirm_tag(f.payload), Some((42, true)));
    }

    #[test]
    fn nack_frame_rejects_without_requeue() {
        let mut out = Vec::new();
        push_nack(&mut out, 3, 99, true);
        let (f, n) = next_frame(&out, 4096).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!((f.channel, f.method_id()), (3, Some(BASIC_NACK)));
        assert_eq!(confirm_tag(f.payload), Some((99, true)));
        // Bits: multiple set, requeue clear.
        assert_eq!(f.payload.last(), Some(&0b01));
        let decoded = amq_protocol::protocol::parse_class(f.payload).unwrap().1;
        match decoded {
            amq_protocol::protocol::AMQPClass::Basic(
                amq_protocol::protocol::basic::AMQPMethod::Nack(m),
            ) => {
                assert!(m.multiple && !m.requeue && m.delivery_tag == 99);
            }
            other => panic!("not a basic.nack: {other:?}"),
        }
    }

    #[test]
    fn sequence_check_counts_gaps_and_late_arrivals() {
        let mut last = 0;
        assert_eq!(check_sequence(&mut last, 1), (0, 0));
        assert_eq!(check_sequence(&mut last, 2), (0, 0));
        assert_eq!(check_sequence(&mut last, 5), (2, 0)); // 3 and 4 missing
        assert_eq!(check_sequence(&mut last, 4), (0, 1)); // late
        assert_eq!(check_sequence(&mut last, 5), (0, 1)); // duplicate
        assert_eq!(check_sequence(&mut last, 6), (0, 0));
    }

    #[test]
    fn confirm_tracker_counts_each_tag_once_in_any_order() {
        let mut t = ConfirmTracker::default();
        assert_eq!(t.settle(3, false), 1);
        assert_eq!(t.settle(1, false), 1);
        assert_eq!(t.settle(5, true), 3); // 2, 4, 5
        assert_eq!(t.settle(5, true), 0);
        assert_eq!(t.settle(4, false), 0);
        assert_eq!(t.settle(6, false), 1);
        assert_eq!(t.settle(10, true), 4);
    }
}
