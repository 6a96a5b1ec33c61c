//! Bodies in and out of memory.
//!
//! Past its window (`QueueLimits`), or past the broker-wide budget (`memory.rs`), a queue
//! keeps only the index entry of a new message and leaves its body in the store: a
//! persistent body is there already; a transient one is written to the queue's transient key
//! space (wiped at start). Dispatch pages bodies back in near the head, up to
//! `page_in_batch` at a time, in one forward scan of the store (of the ready list's head
//! run: for a priority queue, the head level, whose seqs ascend; see `ready.rs`). A body paged out
//! before its store write landed is served from the `unwritten` list meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;

use warren_store::{Durability, Ticket, TicketStatus};

use super::{Entry, Queue, QueueState};
use crate::memory::MESSAGE_OVERHEAD;
use crate::message::Message;

/// A paged-out body waiting for its store write.
#[derive(Debug)]
pub(super) struct Unwritten {
    ticket: Ticket,
    seq: u64,
    message: Arc<Message>,
}

impl Queue {
    /// A body just stored at publish (`ticket`) may leave memory: returns whether it does.
    /// Until its write lands it stays reachable through the unwritten list; if the store
    /// refused the write (poisoned), it stays in memory.
    pub(super) fn page_out(
        &self,
        st: &mut QueueState,
        ticket: Ticket,
        seq: u64,
        message: &Arc<Message>,
    ) -> bool {
        let durability = *self.durability.borrow();
        trim_unwritten(&mut st.unwritten, &durability);
        match durability.status(ticket) {
            TicketStatus::Synced => true,
            TicketStatus::Pending => {
                st.unwritten.push_back(Unwritten {
                    ticket,
                    seq,
                    message: Arc::clone(message),
                });
                true
            }
            TicketStatus::Failed => false,
        }
    }

    /// Count `bytes` of `messages` message bodies as held in RAM.
    pub(super) fn hold(&self, st: &mut QueueState, bytes: usize, messages: usize) {
        st.ram_bytes += bytes;
        st.ram_messages += messages;
        self.memory.add(bytes);
    }

    /// Count message bodies as no longer held in RAM.
    pub(super) fn unhold(&self, st: &mut QueueState, bytes: usize, messages: usize) {
        let bytes = bytes.min(st.ram_bytes);
        st.ram_bytes -= bytes;
        st.ram_messages = st.ram_messages.saturating_sub(messages);
        self.memory.sub(bytes);
    }

    pub(super) fn account_out(&self, st: &mut QueueState, entry: &Entry) {
        if entry.message.is_some() {
            self.unhold(st, entry.size as usize, 1);
        }
    }

    /// Read the bodies of the paged-out run at the head of the queue back from the store:
    /// up to `page_in_batch` entries without a body, in one forward scan of the store
    /// (`Store::read_messages`).
    pub(super) fn page_in(&self, st: &mut QueueState) {
        let Some(first) = st.ready.front().and_then(|e| e.stored) else {
            return;
        };
        let limit = self.limits.page_in_batch;
        let ttl = st.settings.message_ttl;
        // Trim the unwritten list BEFORE reading the store: whatever the trim drops was
        // written before the read, so the read sees it. Trimming after the read would lose
        // a body written between the two (in neither the rows read nor the list).
        if !st.unwritten.is_empty() {
            trim_unwritten(&mut st.unwritten, &self.durability.borrow());
        }
        let wanted = |e: &Entry| e.message.is_none() && e.stored.is_some_and(|k| k.id == first.id);
        let seqs: Vec<u64> = st
            .ready
            .head_run()
            .filter(|e| wanted(e))
            .take(limit)
            .map(|e| e.seq)
            .collect();
        let rows = match self.store.read_messages(first.id, &seqs) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(queue = %self.spec.name, vhost = %self.vhost, error = %e, "cannot read paged-out messages from the store");
                return;
            }
        };
        let mut rows = seqs.iter().zip(rows);
        let mut loaded = 0usize;
        let mut loaded_bytes = 0usize;
        let QueueState {
            ready, unwritten, ..
        } = st;
        for entry in ready.head_run_mut().filter(|e| wanted(e)) {
            let Some((&seq, value)) = rows.next() else {
                break;
            };
            debug_assert_eq!(seq, entry.seq);
            let message = match value {
                Some(value) => match Message::decode(value) {
                    Ok(m) => Arc::new(m),
                    Err(e) => {
                        tracing::error!(queue = %self.spec.name, seq, error = %e, "dropping unreadable stored message");
                        continue;
                    }
                },
                // Not in the store (yet): a page-out whose write has not landed?
                None => match unwritten
                    .binary_search_by_key(&seq, |u| u.seq)
                    .ok()
                    .and_then(|at| unwritten.get(at))
                {
                    Some(u) => Arc::clone(&u.message),
                    None => {
                        tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq, "message body missing from the store; skipping it");
                        continue;
                    }
                },
            };
            entry.size = (message.size() + MESSAGE_OVERHEAD) as u32;
            entry.expires_at = self.expiry_of(ttl, &message);
            entry.message = Some(message);
            loaded += 1;
            loaded_bytes += entry.size as usize;
        }
        self.hold(st, loaded_bytes, loaded);
    }
}

/// Drops the page-outs whose store write has landed (the store can return them now).
fn trim_unwritten(unwritten: &mut VecDeque<Unwritten>, durability: &Durability) {
    while unwritten
        .front()
        .is_some_and(|u| durability.status(u.ticket) == TicketStatus::Synced)
    {
        unwritten.pop_front();
    }
}
