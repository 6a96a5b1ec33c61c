//! A message's place in a queue ([`Entry`]), where its body sits in the store ([`StoreKey`]),
//! and how much of a queue stays in memory ([`QueueLimits`]).

use std::sync::Arc;

use warren_store::IndexEntry;

use crate::message::Message;

/// How much of a queue stays in memory.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Bytes of persistent messages a queue keeps in RAM before paging new ones out (their
    /// bodies are on disk already). Transient messages page out only past the broker-wide
    /// budget (`BrokerConfig::message_memory`).
    pub ram_bytes: usize,
    /// Messages of any kind a queue keeps in RAM before paging new ones out.
    pub ram_messages: usize,
    /// Messages read back from the store at once.
    pub page_in_batch: usize,
    /// How often a quorum queue retries at-least-once dead letters that no queue took
    /// (RabbitMQ's `dead_letter_worker_publisher_confirm_timeout`, 180 s).
    pub dead_letter_retry: std::time::Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            ram_bytes: 8 * 1024 * 1024,
            ram_messages: 1 << 24,
            page_in_batch: 512,
            dead_letter_retry: std::time::Duration::from_secs(180),
        }
    }
}

/// A message's place in a queue.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Sequence number within the queue (publish order).
    pub seq: u64,
    /// Delivered before (requeued, or recovered after being delivered).
    pub redelivered: bool,
    /// Where the body sits in the store, if it was written there.
    pub stored: Option<StoreKey>,
    /// The message, or `None` while its body is only in the store.
    pub message: Option<Arc<Message>>,
    /// Memory the message accounts for (body, properties, overhead; kept while paged out).
    pub size: u32,
    /// Body bytes (what `x-max-length-bytes` counts).
    pub body_len: u32,
    /// When the message expires (ms since the Unix epoch; `u64::MAX` = never, or not
    /// known until its body is paged in).
    pub expires_at: u64,
    /// Priority in this queue: the message's `priority` property clamped to the queue's
    /// `x-max-priority` (0 without either); decides its level in the ready list.
    pub priority: u8,
    /// How many times the message came back to a quorum queue (0 in classic queues); see
    /// `queue/quorum/`.
    pub delivery_count: u32,
}

impl Entry {
    /// What the store's index keeps of this entry (a message waiting, not a dead letter).
    pub(super) fn index_entry(&self) -> IndexEntry {
        IndexEntry {
            priority: self.priority,
            body_len: self.body_len,
            delivery_count: self.delivery_count,
            dead_letter: 0,
        }
    }
}

/// A message's key in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreKey {
    /// Store id (durable id, or transient key space).
    pub id: u64,
    /// Sequence within it.
    pub seq: u64,
    /// Written as a persistent message (survives restart).
    pub persistent: bool,
}

#[cfg(test)]
mod tests {
    /// The quorum queue's delivery count fits in the entry's padding: a classic queue's
    /// backlog pays nothing for it.
    #[test]
    fn an_entry_stays_64_bytes() {
        assert_eq!(std::mem::size_of::<super::Entry>(), 64);
    }
}
