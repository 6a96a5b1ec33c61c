//! A queue under policies: its effective settings are recomputed when what applies to it
//! changes (`crate::policy`), never per message, and take effect at once, as RabbitMQ's
//! `process_args_policy`: a lower length limit trims the head now (dead-lettering with
//! reason `maxlen` when the queue has a dead-letter exchange), expired head messages go,
//! a new dead-letter exchange takes the next dead letters, a new TTL applies to messages
//! enqueued from now on, and a new `expires` restarts the disuse countdown.

use std::sync::Arc;

use super::Queue;
use crate::policy::{Applied, PolicyView, merged_definition, queue_settings};

impl Queue {
    /// Apply `applied` (the policy and operator policy that match this queue now).
    /// Returns whether the queue now has an `expires` it did not have in this form: the
    /// vhost then starts a new expiry watcher (the old one stops).
    pub(crate) fn apply_policy(self: &Arc<Self>, applied: Applied) -> bool {
        let definition = merged_definition(&applied);
        let settings = queue_settings(&self.args, &self.spec.arguments, &definition);
        let asked = settings.clone();
        let settings = if self.is_quorum() {
            super::quorum::normalized(settings)
        } else {
            settings
        };
        let now = crate::message::now_ms();
        let mut st = self.lock();
        if st.deleted {
            return false;
        }
        let expires_changed = st.settings.expires != settings.expires;
        if self.is_quorum() && st.settings != settings {
            super::quorum::warn_fallbacks(&self.spec.name, &self.vhost, &asked);
        }
        if st.settings != settings || st.applied != applied {
            tracing::debug!(queue = %self.spec.name, vhost = %self.vhost,
                policy = ?applied.policy.as_ref().map(|p| &p.name),
                operator_policy = ?applied.operator.as_ref().map(|p| &p.name),
                "queue policy applied");
        }
        let changed = st.settings != settings;
        st.limited = settings.has_length_limit();
        st.settings = settings;
        // At-least-once dead letters awaiting a queue: retried under the new settings, or
        // deleted when the queue is no longer at-least-once (`quorum/discards.rs`).
        if changed
            && self.is_quorum()
            && self.discards_after_policy(&mut st)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let queue = Arc::clone(self);
            runtime.spawn(async move { queue.retry_discards() });
        }
        st.applied = applied;
        if expires_changed {
            st.expiry_epoch += 1;
            st.last_used = now;
        }
        if st.limited {
            self.trim_to_limits(&mut st);
        }
        self.expire_head(&mut st, now);
        self.arm_expiry(&mut st);
        expires_changed && st.settings.expires.is_some()
    }

    /// The policy and operator policy that apply, and their merged definition.
    pub fn policy_view(&self) -> PolicyView {
        PolicyView::of(&self.state.lock().applied)
    }
}
