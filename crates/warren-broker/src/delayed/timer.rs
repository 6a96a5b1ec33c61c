//! The timer of one delayed exchange, and the routing of its due messages.
//!
//! One tokio task per delayed exchange (started at its first held message or at recovery)
//! sleeps until [`LEAD_MS`] before the hold's earliest due time (`tokio::time::sleep_until`, so it wakes within
//! the timer wheel's millisecond of it) and is woken early when a publish brings an earlier
//! one or the exchange is deleted. When something is due it:
//!
//! 1. clears the hold's earliest due time and waits until the hold's last ticket is written
//!    (a put still in the commit loop would be invisible to the read);
//! 2. reads the messages due within the next [`LEAD_MS`] from the store, in batches of
//!    [`BATCH`] on a blocking thread, each batch from where the last one ended (the timer
//!    wakes that much ahead, so the read is done by the due time);
//! 3. waits for each one's due time (giving way if a publish brings an earlier one), then
//!    routes it from the exchange as RabbitMQ's plugin does (the exchange's own routing,
//!    exchange-to-exchange bindings and the alternate exchange; no `mandatory`, no confirm),
//!    with `x-delay` rewritten and the broker timestamp set to now (a queue's TTL counts
//!    from when the message enters it), its queues' puts and its `DeleteHeld` in one
//!    group;
//! 4. waits for those deletes and reads the store's next key to re-arm.
//!
//! Routing and deleting are one write: the target queues' `Put`s and the `DeleteHeld` go
//! to the store as one `WriteOp::Group` (one RocksDB `WriteBatch`, fsynced when it holds a
//! put), and the queues take the message only after that submission. So a kill -9 leaves
//! a due message either still held (routed again after the restart) or in its durable
//! queues, never both and never neither: exactly-once for persistent messages into
//! durable queues. A copy in a queue that does not store it (a non-durable queue, a
//! transient message in a classic queue) is lost with that queue's contents, as any
//! message there.

use std::sync::Arc;
use std::time::Duration;

use amq_protocol::frame::WriteContext;
use amq_protocol::protocol::basic::{gen_properties, parse_properties};
use bytes::Bytes;
use tokio::time::Instant;
use warren_store::{HeldKey, Ticket, WriteOp};

use super::delay::routed_properties;
use super::hold::Hold;
use super::record;
use crate::message::{Message, now_ms};
use crate::queue::Queue;
use crate::stats::Counter;

/// Due messages read and routed per store read.
pub(super) const BATCH: usize = 256;

/// How long before a message's due time the timer reads it from the store, so that at the
/// due time only the routing itself is left (a store read and a hop to a blocking thread
/// take milliseconds on a loaded machine).
const LEAD_MS: u64 = 25;

/// How long the timer waits before trying again after a store error.
const RETRY: Duration = Duration::from_secs(1);

/// The timer task's body: until the exchange is deleted or the broker stops.
pub(super) async fn run(hold: Arc<Hold>) {
    loop {
        let notified = hold.wake.notified();
        tokio::pin!(notified);
        // Registered before the state is read: a wake between the two is not lost.
        notified.as_mut().enable();
        if hold.is_deleted() {
            return;
        }
        let next = hold.state.lock().earliest;
        match next {
            None => notified.await,
            Some(due) => {
                let now = now_ms();
                if due > now.saturating_add(LEAD_MS) {
                    tokio::select! {
                        () = tokio::time::sleep_until(instant_of(due - LEAD_MS, now)) => {}
                        () = &mut notified => {}
                    }
                } else if let Err(error) = route_due(&hold).await {
                    tracing::error!(exchange = %hold.exchange, %error, "cannot route due delayed messages; retrying in a second");
                    hold.lower_earliest(now_ms() + RETRY.as_millis() as u64);
                }
            }
        }
    }
}

/// The instant at which the wall clock reads `due_ms`, given that it read `now_ms` (rounded
/// down) a moment ago: never earlier.
fn instant_of(due_ms: u64, now_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(due_ms.saturating_sub(now_ms))
}

/// Routes every message due within [`LEAD_MS`], each at its due time, then re-arms the hold
/// for its next message. Stops early (leaving the rest held) when a publish brings a
/// message due before the one it waits for.
async fn route_due(hold: &Arc<Hold>) -> Result<(), String> {
    let ticket = {
        let mut st = hold.state.lock();
        st.earliest = None;
        st.last_ticket
    };
    wait(hold, ticket).await?;
    let mut after: Option<HeldKey> = None;
    let mut last_delete: Option<Ticket> = None;
    'batches: loop {
        let (store, hold_id) = (hold.store.clone(), hold.hold_id);
        let horizon = now_ms().saturating_add(LEAD_MS);
        let batch =
            tokio::task::spawn_blocking(move || store.due_held(hold_id, after, horizon, BATCH))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let full = batch.len() == BATCH;
        for (key, value) in batch {
            match wait_until_due(hold, key.due_ms).await {
                Due::Now => {}
                Due::Stopped => return Ok(()),
                Due::Preempted => {
                    // This one and the rest stay held; the earlier message goes first.
                    hold.lower_earliest(key.due_ms);
                    break 'batches;
                }
            }
            last_delete = Some(route_one(hold, key, value));
            hold.routed(1);
            after = Some(key);
        }
        if !full {
            break;
        }
    }
    if let Some(ticket) = last_delete {
        {
            let mut st = hold.state.lock();
            st.last_ticket = Some(st.last_ticket.map_or(ticket, |t| t.max(ticket)));
        }
        // The next read must not see what was just routed.
        wait(hold, Some(ticket)).await?;
    }
    let (store, hold_id) = (hold.store.clone(), hold.hold_id);
    let first = tokio::task::spawn_blocking(move || store.first_held(hold_id))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(first) = first {
        hold.lower_earliest(first.due_ms);
    }
    Ok(())
}

/// What waiting for a read-ahead message's due time ended with.
enum Due {
    /// It is due: route it.
    Now,
    /// The exchange was deleted or the broker is stopping.
    Stopped,
    /// A message due earlier was published meanwhile.
    Preempted,
}

/// Sleeps until the wall clock reaches `due_ms`, unless something earlier comes first.
async fn wait_until_due(hold: &Hold, due_ms: u64) -> Due {
    loop {
        let notified = hold.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if hold.is_deleted() {
            return Due::Stopped;
        }
        let now = now_ms();
        if due_ms <= now {
            return Due::Now;
        }
        if hold
            .state
            .lock()
            .earliest
            .is_some_and(|earliest| earliest < due_ms)
        {
            return Due::Preempted;
        }
        tokio::select! {
            () = tokio::time::sleep_until(instant_of(due_ms, now)) => {}
            () = &mut notified => {}
        }
    }
}

async fn wait(hold: &Hold, ticket: Option<Ticket>) -> Result<(), String> {
    match ticket {
        Some(ticket) => hold
            .store
            .wait_durable(ticket)
            .await
            .map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Routes one due message from the hold's exchange into its queues and removes its held
/// copy: the queues' puts and the `DeleteHeld` are one `WriteOp::Group` (one `WriteBatch`,
/// synced when it holds a put), so a kill leaves the message either held or in its queues.
/// Returns the ticket of that write.
fn route_one(hold: &Hold, key: HeldKey, value: Bytes) -> Ticket {
    let delete = WriteOp::DeleteHeld { key };
    let Some((message, queues)) = routed(hold, value) else {
        return hold.store.submit(delete);
    };
    let mut ops = Vec::with_capacity(queues.len() + 1);
    let mut placed = Vec::with_capacity(queues.len());
    let mut encoded = None;
    for queue in queues {
        if let Some(place) = queue.reserve_moved_in(&message, &mut encoded, &mut ops) {
            placed.push((queue, place));
        }
    }
    let ticket = if ops.is_empty() {
        hold.store.submit(delete)
    } else {
        ops.push(delete);
        hold.store.submit(WriteOp::Group(ops))
    };
    for (queue, place) in placed {
        queue.accept_moved_in(&message, place, Some(ticket));
    }
    ticket
}

/// The message a held one is routed as, and the queues it reaches from the hold's
/// exchange; `None` when it goes nowhere (the exchange was deleted, the record is
/// unreadable, or the vhost is gone).
fn routed(hold: &Hold, value: Bytes) -> Option<(Arc<Message>, Vec<Arc<Queue>>)> {
    if hold.is_deleted() {
        // Deleted meanwhile: another exchange may have its name by now.
        return None;
    }
    let (stored, extra_keys) = match record::decode(value) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::error!(exchange = %hold.exchange, %error, "dropping an unreadable held message");
            return None;
        }
    };
    let vhost = hold.vhost.upgrade()?;
    let properties = match parse_properties(&stored.raw_properties[..]) {
        Ok((_, properties)) => routed_properties(properties, hold.form),
        Err(_) => {
            tracing::error!(exchange = %hold.exchange, "dropping a held message with unreadable properties");
            return None;
        }
    };
    let raw_properties = match gen_properties(&properties)(WriteContext::from(Vec::new())) {
        Ok(ctx) => Bytes::from(ctx.into_inner().0),
        Err(error) => {
            tracing::error!(exchange = %hold.exchange, %error, "dropping a held message whose properties cannot be encoded");
            return None;
        }
    };
    let message = Arc::new(Message {
        raw_properties,
        timestamp_ms: now_ms(),
        ..stored
    });
    let keys: Vec<&str> = std::iter::once(message.routing_key.as_str())
        .chain(extra_keys.iter().map(String::as_str))
        .collect();
    let mut queues = Vec::new();
    vhost
        .route_dead_letter(
            &hold.exchange,
            &keys,
            properties.headers().as_ref(),
            &mut queues,
            None,
        )
        .ok()?;
    if let Some(exchange) = vhost.exchange(&hold.exchange) {
        exchange.stats.add(Counter::PublishOut, queues.len() as u64);
    }
    Some((message, queues))
}

impl Hold {
    /// Lowers the earliest due time to `due_ms` (if later or unknown).
    pub(super) fn lower_earliest(&self, due_ms: u64) {
        let mut st = self.state.lock();
        if st.earliest.is_none_or(|earliest| due_ms < earliest) {
            st.earliest = Some(due_ms);
        }
    }
}
