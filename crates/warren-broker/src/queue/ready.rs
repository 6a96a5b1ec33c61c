//! The ready list: messages waiting for a consumer, in the order they will be delivered.
//!
//! A plain queue delivers in sequence order (publish order; a requeued message goes back
//! to its old place). Every reader and writer of the list goes through [`Ready`], so that
//! the order (and later priority levels) is decided in this one file.

use std::collections::VecDeque;

use super::Entry;

/// Messages ready for delivery, head first.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    entries: VecDeque<Entry>,
    /// Body bytes of the ready messages (what `x-max-length-bytes` limits).
    body_bytes: u64,
}

impl Ready {
    /// Ready messages.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Body bytes of the ready messages.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The message that goes next.
    pub(crate) fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// Take the message that goes next.
    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.body_bytes = self.body_bytes.saturating_sub(u64::from(entry.body_len));
        Some(entry)
    }

    /// Add a recovered message (the highest seq so far) at the back.
    pub(crate) fn push_back(&mut self, entry: Entry) {
        self.body_bytes += u64::from(entry.body_len);
        self.entries.push_back(entry);
    }

    /// The ready entry with this seq (a message just enqueued: usually the last one).
    pub(crate) fn find_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        if self.entries.back().is_some_and(|e| e.seq == seq) {
            return self.entries.back_mut();
        }
        let at = self.entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
        self.entries.get_mut(at)
    }

    /// Put a message at its place by sequence number: at the back for a new message, in
    /// the middle for a requeue or a dead letter whose seq was reserved earlier.
    pub(crate) fn insert_by_seq(&mut self, entry: Entry) {
        self.body_bytes += u64::from(entry.body_len);
        if self.entries.back().is_none_or(|e| e.seq < entry.seq) {
            self.entries.push_back(entry);
            return;
        }
        let at = self.entries.partition_point(|e| e.seq < entry.seq);
        self.entries.insert(at, entry);
    }

    /// Every ready message, in delivery order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The run of messages that will be delivered next, in order, for page-in: entries
    /// whose bodies are read back together.
    pub(crate) fn head_run_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }

    /// The run of messages that will be delivered next (see [`Ready::head_run_mut`]).
    pub(crate) fn head_run(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Drop every message.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.body_bytes = 0;
    }
}
