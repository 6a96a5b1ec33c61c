//! Publisher flow control under resource alarms: RabbitMQ's blocked connections.
//!
//! A connection's [`Throttle`] owns its blocked state. The connection loop calls
//! [`Throttle::publish_received`] after each content frame (header or body); while no
//! alarm is raised that is one relaxed atomic load. When an alarm (`warren-broker`'s
//! `alarms.rs`) is raised, the next content frame blocks the connection, as in RabbitMQ's
//! `rabbit_reader`: the connection sends `connection.blocked` with RabbitMQ's reason
//! ("low on memory", "low on disk", "low on memory & disk") if the client announced the
//! `connection.blocked` capability, and stops reading its socket, leaving any frames
//! already read in the buffer. Everything else goes on: deliveries to its consumers,
//! confirms, heartbeats sent. Its heartbeat monitor is paused (the client's frames cannot
//! be read, so their absence says nothing). A connection that does not publish is never
//! blocked. When every alarm has cleared, the connection sends `connection.unblocked` (if
//! it sent `connection.blocked`), runs the frames it had buffered and reads again.
//! A connection the server is closing is not blocked: it must read the close-ok.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;
use warren_broker::{AlarmSet, Alarms};
use warren_protocol::{AMQPClass, connection as conn};

use crate::connection::ConnCtx;

/// A connection's blocked state; see the module docs.
pub(crate) struct Throttle {
    alarms: Arc<Alarms>,
    changes: watch::Receiver<AlarmSet>,
    /// The client announced the `connection.blocked` capability.
    notify: bool,
    blocked: bool,
    /// connection.blocked was sent and connection.unblocked is owed.
    notified: bool,
}

impl Throttle {
    pub(crate) fn new(alarms: Arc<Alarms>, notify: bool) -> Throttle {
        let changes = alarms.subscribe();
        Throttle {
            alarms,
            changes,
            notify,
            blocked: false,
            notified: false,
        }
    }

    /// True while any alarm is raised (one relaxed load).
    #[inline]
    pub(crate) fn alarm_raised(&self) -> bool {
        self.alarms.any_raised()
    }

    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// A content frame was processed while an alarm is raised: block the connection.
    /// Returns whether it is blocked (the alarm may have cleared in between).
    pub(crate) fn publish_received(&mut self, ctx: &mut ConnCtx) -> bool {
        if self.blocked {
            return true;
        }
        let alarms = self.alarms.current();
        if !alarms.any() {
            return false;
        }
        self.blocked = true;
        let reason = alarms.blocked_reason();
        if self.notify {
            ctx.send(
                0,
                AMQPClass::Connection(conn::AMQPMethod::Blocked(conn::Blocked {
                    reason: reason.into(),
                })),
            );
            self.notified = true;
        }
        info!(
            reason,
            notified = self.notify,
            "connection blocked: it publishes while a resource alarm is raised"
        );
        true
    }

    /// Wait until the raised alarms change (poll only while blocked).
    pub(crate) async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            // The broker is gone; the shutdown path ends the connection.
            std::future::pending::<()>().await;
        }
    }

    /// The raised alarms changed: unblock if none is left. Returns whether it unblocked.
    pub(crate) fn alarms_changed(&mut self, ctx: &mut ConnCtx) -> bool {
        let alarms = *self.changes.borrow_and_update();
        if !self.blocked || alarms.any() {
            return false;
        }
        self.blocked = false;
        if self.notified {
            ctx.send(
                0,
                AMQPClass::Connection(conn::AMQPMethod::Unblocked(conn::Unblocked {})),
            );
            self.notified = false;
        }
        info!("connection unblocked: every resource alarm has cleared");
        true
    }
}
