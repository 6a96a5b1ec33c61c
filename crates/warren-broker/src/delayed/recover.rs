//! Start-up: what the store holds for the delayed exchanges that came back.
//!
//! One scan of `held-index` (keys and a flag byte, no bodies) after the exchanges, queues
//! and bindings are restored:
//!
//! - a hold id in the per-process space (a non-durable exchange of the previous run) or
//!   owned by no restored exchange (deleted before the stop, its range delete not yet
//!   written) is range-deleted;
//! - a transient message of a durable exchange (flag 0) is deleted;
//! - the rest is counted per hold, with its highest seq (new messages continue above it)
//!   and its first due time (the index is ordered by due time, so that is the first
//!   durable key met).
//!
//! Each hold then waits for those deletes before its first read and its timer starts: a
//! message whose time passed while the broker was down is routed at once.

use std::collections::HashMap;
use std::sync::Arc;

use warren_store::{Store, Ticket, WriteOp};

use super::TRANSIENT_HOLD_BASE;
use super::hold::Hold;
use crate::error::BrokerError;

#[derive(Default)]
struct Found {
    count: u64,
    max_seq: u64,
    earliest: Option<u64>,
}

/// Restores the counts and timers of `holds` (every delayed exchange recovered) from the
/// store, dropping what must not come back. Returns how many messages are held.
pub(crate) fn recover_holds(store: &Store, holds: &[Arc<Hold>]) -> Result<u64, BrokerError> {
    let owned: HashMap<u64, &Arc<Hold>> = holds.iter().map(|h| (h.hold_id(), h)).collect();
    let mut found: HashMap<u64, Found> = HashMap::new();
    let mut last_ticket: Option<Ticket> = None;
    let mut dropped_hold: Option<u64> = None;
    let mut dropped = 0u64;
    let mut submit = |op: WriteOp| {
        let ticket = store.submit(op);
        last_ticket = Some(ticket);
    };
    store.for_each_held(|key, durable| {
        if key.hold_id >= TRANSIENT_HOLD_BASE || !owned.contains_key(&key.hold_id) {
            if dropped_hold != Some(key.hold_id) {
                dropped_hold = Some(key.hold_id);
                submit(WriteOp::DeleteHold {
                    hold_id: key.hold_id,
                });
            }
            dropped += 1;
            return;
        }
        if !durable {
            submit(WriteOp::DeleteHeld { key });
            dropped += 1;
            return;
        }
        let entry = found.entry(key.hold_id).or_default();
        entry.count += 1;
        entry.max_seq = entry.max_seq.max(key.seq);
        entry.earliest.get_or_insert(key.due_ms);
    })?;
    let mut total = 0;
    for hold in holds {
        let f = found.remove(&hold.hold_id()).unwrap_or_default();
        total += f.count;
        hold.recovered(f.count, f.max_seq, f.earliest, last_ticket);
        if f.count > 0 {
            hold.ensure_timer();
        }
    }
    if dropped > 0 {
        tracing::info!(
            dropped,
            "dropped held messages of non-durable or deleted delayed exchanges, and transient ones"
        );
    }
    Ok(total)
}
