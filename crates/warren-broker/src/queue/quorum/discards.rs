//! At-least-once dead letters awaiting dead-lettering: a quorum queue's *discards*, as
//! RabbitMQ 3.10's `rabbit_fifo_dlx` keeps them and its `rabbit_fifo_dlx_worker` retries
//! them.
//!
//! Under `x-dead-letter-strategy: at-least-once` (with `reject-publish` and a dead-letter
//! exchange), a message the queue lets go is moved into its targets in one synced batch
//! that also deletes the source's copy (`dead_letter/mod.rs`). When that cannot happen
//! (the dead-letter exchange is missing, routes to no queue or only to queues that would
//! close a cycle, or a target is a full reject-publish queue that refuses it), the message
//! comes back here ([`Queue::keep_discards`]):
//!
//! - its stored copy stays, its index entry marked with the death reason
//!   (`IndexEntry::dead_letter`, one synced `WriteOp::SetIndex`), so a restart brings it
//!   back here and not to the ready list ([`Queue::recover_discard`]);
//! - it is not delivered, counts in the management API's `messages_dlx` /
//!   `message_bytes_dlx` (and in `messages`), and counts against the queue's length limits
//!   like a ready message (`limits.rs`), as `rabbit_fifo:is_over_limit`;
//! - targets that took it already are remembered and left out of later attempts;
//! - it is retried every `QueueLimits::dead_letter_retry` (RabbitMQ's
//!   `dead_letter_worker_publisher_confirm_timeout`, 180 s by default), when a policy
//!   changes the queue's settings and it stays at-least-once (RabbitMQ's
//!   `lookup_topology`), and at start once the bindings are restored. A retry rewrites
//!   the original message again, so `x-death` keeps its reason and count.
//!
//! A policy that switches the queue away from at-least-once deletes the pending ones, as
//! `rabbit_fifo_dlx:switch_from/3` does ("Deleted N dead-lettered messages").

use std::collections::VecDeque;
use std::sync::Arc;

use warren_store::{IndexEntry, WriteOp};

use super::super::dead_letter::{DeadLetter, Taken};
use super::super::{DeathReason, Queue, QueueState, StoreKey};
use crate::message::Message;

/// One dead letter awaiting dead-lettering.
#[derive(Debug)]
struct Pending {
    /// The message as it left the queue (`None` after a restart until a retry reads it).
    message: Option<Arc<Message>>,
    reason: DeathReason,
    stored: Option<StoreKey>,
    body_len: u64,
    settled: Vec<Taken>,
}

/// A queue's dead letters awaiting dead-lettering, oldest first.
#[derive(Debug, Default)]
pub(in crate::queue) struct Discards {
    pending: VecDeque<Pending>,
    bytes: u64,
    /// Taken out by a retry that has not finished: still counted (in the management
    /// API and against the length limits), so the figures do not dip during a retry.
    in_flight: (usize, u64),
    /// A retry is scheduled.
    timer_armed: bool,
}

impl Discards {
    /// How many are pending (`messages_dlx`).
    pub(in crate::queue) fn len(&self) -> usize {
        self.pending.len() + self.in_flight.0
    }

    /// Their body bytes (`message_bytes_dlx`).
    pub(in crate::queue) fn bytes(&self) -> u64 {
        self.bytes + self.in_flight.1
    }

    /// None pending (those of a retry under way aside).
    pub(in crate::queue) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forget them all (the queue is deleted; its stored range goes with it).
    pub(in crate::queue) fn clear(&mut self) {
        self.pending.clear();
        self.bytes = 0;
        self.in_flight = (0, 0);
    }

    fn push(&mut self, pending: Pending) {
        self.bytes += pending.body_len;
        self.pending.push_back(pending);
    }

    fn take(&mut self) -> Vec<Pending> {
        self.bytes = 0;
        self.pending.drain(..).collect()
    }
}

impl Queue {
    /// Recovery: the stored message `seq` awaits dead-lettering (its index is marked).
    pub(in crate::queue) fn recover_discard(
        &self,
        st: &mut QueueState,
        seq: u64,
        index: IndexEntry,
    ) {
        let Some(reason) = DeathReason::from_code(index.dead_letter) else {
            tracing::warn!(queue = %self.spec.name, vhost = %self.vhost, seq, code = index.dead_letter, "unknown dead-letter reason in the store; treating it as rejected");
            return self.recover_discard(
                st,
                seq,
                IndexEntry {
                    dead_letter: DeathReason::Rejected.code(),
                    ..index
                },
            );
        };
        st.discards.push(Pending {
            message: None,
            reason,
            stored: Some(StoreKey {
                id: self.store_id,
                seq,
                persistent: true,
            }),
            body_len: u64::from(index.body_len),
            settled: Vec::new(),
        });
    }

    /// Dead letters no queue took (all of them, or some targets refused): keep them and
    /// retry (see the module docs). Deleted when the queue is no longer at-least-once.
    pub(in crate::queue) fn keep_discards(self: &Arc<Self>, letters: Vec<DeadLetter>) {
        let mut st = self.lock();
        if st.deleted {
            return;
        }
        if !(self.is_quorum() && st.settings.at_least_once()) {
            let bytes: usize = letters.iter().map(|l| l.message.body.len()).sum();
            tracing::info!(queue = %self.spec.name, vhost = %self.vhost, messages = letters.len(), bytes, "deleted dead-lettered messages: the queue's dead-letter strategy is no longer at-least-once");
            for letter in letters {
                self.forget_key(letter.stored);
            }
            return;
        }
        for letter in letters {
            if !letter.marked
                && let Some(key) = letter.stored.filter(|k| k.persistent)
            {
                self.store.submit(WriteOp::SetIndex {
                    queue_id: key.id,
                    seq: key.seq,
                    index: IndexEntry {
                        dead_letter: letter.reason.code(),
                        ..self.index_entry(&letter.message)
                    },
                });
            }
            st.discards.push(Pending {
                body_len: letter.message.body.len() as u64,
                message: Some(letter.message),
                reason: letter.reason,
                stored: letter.stored,
                settled: letter.settled,
            });
        }
        self.arm_discard_retry(&mut st);
    }

    /// Retry every pending dead letter now (the timer fired, a policy changed, or the
    /// broker started). Those no queue takes come back through [`Queue::keep_discards`].
    pub fn retry_discards(self: &Arc<Self>) {
        let (pending, target) = {
            let mut st = self.lock();
            st.discards.timer_armed = false;
            if st.deleted || st.discards.is_empty() || !st.settings.at_least_once() {
                return;
            }
            if st.discards.in_flight.0 > 0 {
                return; // a retry is under way; the next timer comes after it
            }
            let bytes = st.discards.bytes;
            let pending = st.discards.take();
            st.discards.in_flight = (pending.len(), bytes);
            (pending, st.settings.dead_letter.clone())
        };
        let letters = self.read_discards(pending);
        tracing::debug!(queue = %self.spec.name, vhost = %self.vhost, messages = letters.len(), "retrying dead letters no queue took");
        // Synchronous: those no queue takes are back in the discards when it returns (a
        // retry runs on its own task, never inside another dead-letter flush).
        self.dead_letter(letters, target, true);
        let mut st = self.lock();
        st.discards.in_flight = (0, 0);
        self.arm_discard_retry(&mut st);
    }

    /// The pending letters with their bodies (read from the store after a restart). A
    /// body that cannot be read is logged and its index entry dropped.
    fn read_discards(&self, pending: Vec<Pending>) -> Vec<DeadLetter> {
        let mut letters = Vec::with_capacity(pending.len());
        for p in pending {
            let message = match (p.message, p.stored) {
                (Some(message), _) => message,
                (None, Some(key)) => match self.store.read_message(key.id, key.seq) {
                    Ok(Some(bytes)) => match Message::decode(bytes) {
                        Ok(message) => Arc::new(message),
                        Err(error) => {
                            tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq = key.seq, %error, "dropping an unreadable stored dead letter");
                            self.forget_key(Some(key));
                            continue;
                        }
                    },
                    Ok(None) => {
                        tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq = key.seq, "dead letter's body missing from the store; dropped");
                        self.forget_key(Some(key));
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(queue = %self.spec.name, vhost = %self.vhost, seq = key.seq, %error, "cannot read a dead letter from the store; it stays for the next start");
                        continue;
                    }
                },
                (None, None) => continue,
            };
            letters.push(DeadLetter {
                message,
                reason: p.reason,
                stored: p.stored,
                settled: p.settled,
                marked: true,
            });
        }
        letters
    }

    /// Schedule a retry in `QueueLimits::dead_letter_retry` unless one is scheduled.
    fn arm_discard_retry(self: &Arc<Self>, st: &mut QueueState) {
        if st.discards.timer_armed || st.discards.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime (unit tests of the model): retried at the next policy change
        };
        st.discards.timer_armed = true;
        let queue = Arc::downgrade(self);
        let wait = self.limits.dead_letter_retry;
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(queue) = queue.upgrade() {
                queue.retry_discards();
            }
        });
    }

    /// A policy changed the settings (under the lock): what happens to the pending dead
    /// letters. Returns whether to retry them now (still at-least-once: RabbitMQ's
    /// `lookup_topology`); deletes them when the queue is no longer at-least-once.
    pub(in crate::queue) fn discards_after_policy(&self, st: &mut QueueState) -> bool {
        if st.discards.is_empty() {
            return false;
        }
        if st.settings.at_least_once() {
            return true;
        }
        let (messages, bytes) = (st.discards.len(), st.discards.bytes());
        for pending in st.discards.take() {
            self.forget_key(pending.stored);
        }
        tracing::info!(queue = %self.spec.name, vhost = %self.vhost, messages, bytes, "deleted dead-lettered messages: the queue's dead-letter strategy is no longer at-least-once");
        false
    }
}
