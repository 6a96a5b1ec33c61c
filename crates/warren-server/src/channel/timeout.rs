//! The consumer timeout (`consumer_timeout`, RabbitMQ's; 30 minutes by default): a channel
//! whose oldest unacked delivery has waited longer than the timeout is closed with 406
//! PRECONDITION_FAILED and RabbitMQ's text, which requeues everything it held.
//!
//! Nothing is done per delivery beyond storing its send time (`Unacked::delivered_at`, the
//! clock read once per event batch). The connection loop runs a sweep every
//! [`sweep_every`]: the unacked list is in delivery-tag order, so its front is the oldest
//! delivery and one comparison per channel decides. As RabbitMQ, the check covers every
//! unacked delivery, basic.get ones included; no-ack deliveries are never unacked.

use std::time::Duration;

use super::{Channel, State};
use crate::error::Exception;

/// How often a connection checks its channels against `timeout`: a fraction of it, so a
/// late ack is noticed within about 1.25 × the timeout (RabbitMQ checks on its channel tick,
/// once a minute), and never more often than every 100 ms.
pub(crate) fn sweep_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

impl Channel {
    /// The error to close this channel with when its oldest unacked delivery was sent more
    /// than `timeout` before `now_ms`.
    pub(crate) fn consumer_timed_out(&self, now_ms: u64, timeout: Duration) -> Option<Exception> {
        if self.state != State::Open {
            return None;
        }
        let oldest = self.unacked.front()?;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if oldest.delivered_at >= now_ms.saturating_sub(timeout_ms) {
            return None;
        }
        Some(Exception::precondition(format!(
            "delivery acknowledgement on channel {} timed out. Timeout value used: {timeout_ms} ms. \
             This timeout value can be configured, see consumers doc guide to learn more",
            self.id
        )))
    }
}
