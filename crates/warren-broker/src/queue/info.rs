//! What a queue reports about itself to the management API: depths, bytes, consumers,
//! idle time, read in one short hold of the queue's lock (no expiry, no paging, no I/O),
//! so listing 10,000 queues costs 10,000 short lock holds and nothing else.

use super::Queue;

/// A queue's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueInfo {
    /// Ready messages.
    pub messages_ready: u64,
    /// Delivered, not yet settled.
    pub messages_unacknowledged: u64,
    /// Body bytes of the ready messages.
    pub message_bytes_ready: u64,
    /// Messages whose body is in RAM.
    pub messages_ram: u64,
    /// Bytes (body + properties) of the messages in RAM.
    pub message_bytes_ram: u64,
    /// Consumers.
    pub consumers: u64,
    /// Consumers that ack (the rest are no-ack).
    pub consumers_with_ack: u64,
    /// The consumer tag of an exclusive consumer, if one holds the queue.
    pub exclusive_consumer_tag: Option<String>,
    /// The active consumer's tag on a single-active-consumer queue.
    pub single_active_consumer_tag: Option<String>,
    /// Last use (declare, consume, get, last consumer gone), ms since the epoch.
    pub last_used_ms: u64,
    /// A quorum queue's at-least-once dead letters awaiting a queue (`messages_dlx`).
    pub messages_dlx: u64,
    /// Their body bytes (`message_bytes_dlx`).
    pub message_bytes_dlx: u64,
}

impl Queue {
    /// The queue's figures now.
    pub fn info(&self) -> QueueInfo {
        let st = self.state.lock();
        let exclusive = st
            .consumers
            .iter()
            .find(|c| c.exclusive)
            .map(|c| c.tag.to_string());
        let single_active = if self.is_single_active() {
            st.consumers.first().map(|c| c.tag.to_string())
        } else {
            None
        };
        QueueInfo {
            messages_ready: st.ready.len() as u64,
            messages_unacknowledged: st.unacked as u64,
            message_bytes_ready: st.ready.body_bytes(),
            messages_ram: st.ram_messages as u64,
            message_bytes_ram: st.ram_bytes as u64,
            consumers: st.consumers.len() as u64,
            consumers_with_ack: st.consumers.iter().filter(|c| !c.no_ack).count() as u64,
            exclusive_consumer_tag: exclusive,
            single_active_consumer_tag: single_active,
            last_used_ms: st.last_used,
            messages_dlx: st.discards.len() as u64,
            message_bytes_dlx: st.discards.bytes(),
        }
    }
}
