//! Expiry: message TTL and `x-expires`.
//!
//! Each entry carries `expires_at` (the message's broker timestamp plus the lower of
//! `x-message-ttl` and its `expiration`). As in RabbitMQ only the head expires: expired
//! entries are dropped (dead-lettered with reason `expired` when the queue has a
//! dead-letter exchange) on dispatch, `basic.get`, counting, and by one timer per queue
//! armed for the head. `x-expires` is a time of disuse after which the vhost deletes the queue. Both may come
//! from a policy (`crate::policy`); a new TTL applies to messages enqueued after it, as in
//! RabbitMQ, and a new expiry restarts the disuse countdown.

use std::sync::Arc;

use super::{DeathReason, Queue, QueueState};
use crate::message::Message;

impl Queue {
    /// The expiry time of `message` in a queue whose TTL (argument or policy) is `queue_ttl`
    /// (queue TTL and per-message TTL, the lower wins), or `u64::MAX`.
    pub(super) fn expiry_of(&self, queue_ttl: Option<u64>, message: &Message) -> u64 {
        let per_message = message.expiration;
        let ttl = match (queue_ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ttl.map_or(u64::MAX, |ttl| message.timestamp_ms.saturating_add(ttl))
    }

    /// Drop expired messages at the head (RabbitMQ expires only at the head). Bodies that
    /// are paged out are not read for this: dispatch checks them once they are paged in.
    pub(super) fn expire_head(&self, st: &mut QueueState, now: u64) {
        while let Some(front) = st.ready.front() {
            if front.message.is_none() || front.expires_at > now {
                return;
            }
            if let Some(entry) = st.ready.pop_front() {
                self.account_out(st, &entry);
                self.let_go(
                    st,
                    entry.message.as_ref(),
                    entry.stored,
                    DeathReason::Expired,
                );
            }
        }
    }

    /// Arm the expiry timer for the head message, unless one is armed for that time or
    /// earlier. The head is the only message that can expire (as RabbitMQ), so one timer
    /// per queue suffices; when it fires it drops what expired and arms for the new head.
    pub(super) fn arm_expiry(self: &Arc<Self>, st: &mut QueueState) {
        let Some(head) = st.ready.front() else {
            return;
        };
        if head.message.is_some() && head.expires_at != u64::MAX {
            self.schedule_expiry(st, head.expires_at);
        }
    }

    /// Run an expiry check at `at` (ms since the epoch) unless one runs by then already.
    pub(super) fn schedule_expiry(self: &Arc<Self>, st: &mut QueueState, at: u64) {
        if st.deleted || st.expiry_timer.is_some_and(|armed| armed <= at) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (unit tests of the model): expiry still happens when the queue is
            // next dispatched, read or counted.
            return;
        };
        st.expiry_timer = Some(at);
        let queue = Arc::downgrade(self);
        runtime.spawn(async move {
            let wait = at.saturating_sub(crate::message::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            if let Some(queue) = queue.upgrade() {
                queue.expiry_timer_fired(at);
            }
        });
    }

    /// The expiry timer armed for `at` fired: drop expired messages at the head, reading
    /// paged-out bodies as they come up (their expiry is known only from the body), and
    /// arm the timer for the new head.
    pub(super) fn expiry_timer_fired(self: &Arc<Self>, at: u64) {
        let mut st = self.lock();
        if st.expiry_timer == Some(at) {
            st.expiry_timer = None;
        }
        if st.deleted {
            return;
        }
        let now = crate::message::now_ms();
        loop {
            self.expire_head(&mut st, now);
            match st.ready.front() {
                Some(head) if head.message.is_none() => {
                    self.page_in(&mut st);
                    if st.ready.front().is_some_and(|e| e.message.is_none()) {
                        // The body could not be read (logged by page_in).
                        break;
                    }
                }
                _ => break,
            }
        }
        self.arm_expiry(&mut st);
    }

    /// `x-expires` (argument or policy): milliseconds of disuse after which the queue
    /// deletes itself, with the epoch of that setting (see [`Queue::expires_in`]).
    pub fn expires(&self) -> Option<(u64, u64)> {
        let st = self.state.lock();
        st.settings.expires.map(|e| (e, st.expiry_epoch))
    }

    /// Note a use of the queue (declare, consume, get) for `x-expires`.
    pub fn touch(&self) {
        self.state.lock().last_used = crate::message::now_ms();
    }

    /// For `x-expires`: `None` when the queue is deleted, has no expiry, or its expiry
    /// changed since `epoch` (a policy changed it: a new watcher took over); otherwise
    /// the milliseconds left before it expires (0 = expired now; the full time while it
    /// has consumers).
    pub fn expires_in(&self, now: u64, epoch: u64) -> Option<u64> {
        let st = self.state.lock();
        let expires = st.settings.expires?;
        if st.deleted || st.expiry_epoch != epoch {
            return None;
        }
        if !st.consumers.is_empty() {
            return Some(expires);
        }
        Some((st.last_used.saturating_add(expires)).saturating_sub(now))
    }
}
