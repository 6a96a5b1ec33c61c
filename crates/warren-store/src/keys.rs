//! Key encoding: the byte layout of every key the store writes.
//!
//! Owns the mapping from the store's concepts to RocksDB keys, so that no other module builds a
//! key by hand:
//!
//! - **Messages** (`messages`, `index` and `delivered` column families): `queue_id` (u64
//!   big-endian) `++` `seq` (u64 big-endian), 16 bytes. Big-endian makes RocksDB's bytewise order
//!   the numeric order, so one queue is one contiguous, seq-ordered key range and purge or delete
//!   is one range delete ([`queue_range`]).
//! - **Held messages** (`held` and `held-index`): `hold_id` `++` `due_ms` `++` `seq`, each a
//!   u64 big-endian, 24 bytes. One hold (a delayed exchange's held messages) is one
//!   contiguous range ordered by due time, then by arrival: the earliest due message is the
//!   hold's first key, the due ones a prefix of the range ([`hold_range`]).
//! - **Definitions** (`meta`): `"def/"` `++` kind name `++` `"/"` `++` the caller's key (UTF-8).
//! - **Counters** (`meta`): `"ctr/"` `++` counter name, value a u64 big-endian.
//! - **Format version** (`meta`): [`FORMAT_KEY`], value a u32 big-endian.

use crate::definitions::DefinitionKind;
use crate::held::HeldKey;

/// Length of a message key: queue id and sequence number, both u64 big-endian.
pub(crate) const MESSAGE_KEY_LEN: usize = 16;

/// `meta` key holding the on-disk format version, written when a store is created.
pub(crate) const FORMAT_KEY: &[u8] = b"format";

/// The on-disk format this build writes and reads: 2, with delivered watermarks in
/// `warren-delivered` (see `delivered.rs`).
pub(crate) const FORMAT_VERSION: u32 = 2;

/// The older format this build still opens (and upgrades): one marker per delivered message
/// in the `delivered` column family.
pub(crate) const FORMAT_VERSION_MARKERS: u32 = 1;

/// The key of message `seq` of queue `queue_id`.
pub(crate) fn message_key(queue_id: u64, seq: u64) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0u8; MESSAGE_KEY_LEN];
    let (queue, sequence) = key.split_at_mut(8);
    queue.copy_from_slice(&queue_id.to_be_bytes());
    sequence.copy_from_slice(&seq.to_be_bytes());
    key
}

/// Splits a message key into `(queue_id, seq)`; `None` if it is not 16 bytes long.
pub(crate) fn decode_message_key(key: &[u8]) -> Option<(u64, u64)> {
    let bytes: &[u8; MESSAGE_KEY_LEN] = key.try_into().ok()?;
    let (queue, sequence) = bytes.split_at(8);
    Some((
        u64::from_be_bytes(queue.try_into().ok()?),
        u64::from_be_bytes(sequence.try_into().ok()?),
    ))
}

/// The half-open key range `[start, end)` holding every message of `queue_id`.
///
/// `end` is the queue prefix followed by eight `0xFF` bytes and one `0x00`: it sorts after every
/// 16-byte key of the queue (the largest of which is its prefix) and before the first key of
/// the next queue, with no overflow for `queue_id == u64::MAX`.
pub(crate) fn queue_range(queue_id: u64) -> ([u8; MESSAGE_KEY_LEN], [u8; MESSAGE_KEY_LEN + 1]) {
    let start = message_key(queue_id, 0);
    let mut end = [0u8; MESSAGE_KEY_LEN + 1];
    if let Some(prefix) = end.get_mut(..MESSAGE_KEY_LEN) {
        prefix.copy_from_slice(&message_key(queue_id, u64::MAX));
    }
    (start, end)
}

/// Length of a held-message key: hold id, due time (ms since the Unix epoch), seq.
pub(crate) const HELD_KEY_LEN: usize = 24;

/// The key of a held message.
pub(crate) fn held_key(key: HeldKey) -> [u8; HELD_KEY_LEN] {
    let mut out = [0u8; HELD_KEY_LEN];
    for (chunk, part) in out
        .chunks_exact_mut(8)
        .zip([key.hold_id, key.due_ms, key.seq])
    {
        chunk.copy_from_slice(&part.to_be_bytes());
    }
    out
}

/// Reads a held-message key; `None` if it is not 24 bytes long.
pub(crate) fn decode_held_key(key: &[u8]) -> Option<HeldKey> {
    let bytes: &[u8; HELD_KEY_LEN] = key.try_into().ok()?;
    let mut parts = bytes
        .chunks_exact(8)
        .map(|chunk| chunk.try_into().ok().map(u64::from_be_bytes));
    Some(HeldKey {
        hold_id: parts.next()??,
        due_ms: parts.next()??,
        seq: parts.next()??,
    })
}

/// The half-open key range `[start, end)` holding every message of hold `hold_id` (the same
/// construction as [`queue_range`]: the largest key of the hold followed by one `0x00`).
pub(crate) fn hold_range(hold_id: u64) -> ([u8; HELD_KEY_LEN], [u8; HELD_KEY_LEN + 1]) {
    let start = held_key(HeldKey {
        hold_id,
        due_ms: 0,
        seq: 0,
    });
    let mut end = [0u8; HELD_KEY_LEN + 1];
    if let Some(prefix) = end.get_mut(..HELD_KEY_LEN) {
        prefix.copy_from_slice(&held_key(HeldKey {
            hold_id,
            due_ms: u64::MAX,
            seq: u64::MAX,
        }));
    }
    (start, end)
}

/// The `meta` key prefix shared by every definition of `kind`.
pub(crate) fn definition_prefix(kind: DefinitionKind) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(5 + kind.as_str().len());
    prefix.extend_from_slice(b"def/");
    prefix.extend_from_slice(kind.as_str().as_bytes());
    prefix.push(b'/');
    prefix
}

/// The `meta` key of definition `key` of `kind`.
pub(crate) fn definition_key(kind: DefinitionKind, key: &str) -> Vec<u8> {
    let mut full = definition_prefix(kind);
    full.extend_from_slice(key.as_bytes());
    full
}

/// The `meta` key of the id counter `name`.
pub(crate) fn counter_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + name.len());
    key.extend_from_slice(b"ctr/");
    key.extend_from_slice(name.as_bytes());
    key
}

/// The smallest key greater than every key starting with `prefix` (for iterator upper bounds);
/// `None` if there is none (the prefix is all `0xFF`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_numerically_within_and_across_queues() {
        let keys = [
            message_key(1, 0),
            message_key(1, 1),
            message_key(1, 255),
            message_key(1, 256),
            message_key(1, u64::MAX),
            message_key(2, 0),
        ];
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(decode_message_key(&message_key(7, 42)), Some((7, 42)));
        assert_eq!(decode_message_key(b"short"), None);
    }

    #[test]
    fn queue_range_covers_exactly_one_queue() {
        for queue_id in [0, 1, 41, u64::MAX - 1, u64::MAX] {
            let (start, end) = queue_range(queue_id);
            assert!(start.as_slice() <= message_key(queue_id, 0).as_slice());
            assert!(message_key(queue_id, u64::MAX).as_slice() < end.as_slice());
            if queue_id < u64::MAX {
                assert!(end.as_slice() <= message_key(queue_id + 1, 0).as_slice());
            }
            if queue_id > 0 {
                assert!(message_key(queue_id - 1, u64::MAX).as_slice() < start.as_slice());
            }
        }
    }

    #[test]
    fn held_keys_sort_by_hold_then_due_time_then_seq() {
        let key = |hold_id, due_ms, seq| {
            held_key(HeldKey {
                hold_id,
                due_ms,
                seq,
            })
        };
        let keys = [
            key(1, 5, 9),
            key(1, 6, 0),
            key(1, 6, 1),
            key(1, u64::MAX, u64::MAX),
            key(2, 0, 0),
        ];
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        let k = HeldKey {
            hold_id: 3,
            due_ms: 1_700_000_000_000,
            seq: 7,
        };
        assert_eq!(decode_held_key(&held_key(k)), Some(k));
        assert_eq!(decode_held_key(&[0u8; 16]), None);
        let (start, end) = hold_range(1);
        assert!(start.as_slice() <= key(1, 0, 0).as_slice());
        assert!(key(1, u64::MAX, u64::MAX).as_slice() < end.as_slice());
        assert!(end.as_slice() <= key(2, 0, 0).as_slice());
    }

    #[test]
    fn prefix_successor_bounds_the_prefix() {
        assert_eq!(
            prefix_successor(b"def/queue/"),
            Some(b"def/queue0".to_vec())
        );
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }
}
