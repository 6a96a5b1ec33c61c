//! [`Hold`]: one delayed exchange's held messages, as far as RAM knows them.
//!
//! The messages themselves are in the store (`warren-store`'s `held.rs`), keyed by this
//! hold's id, their due time and a seq. The hold keeps what the timer and the management
//! API need: the count, the earliest due time it knows of, and the last store ticket it
//! submitted (the timer waits for it before reading the store, so a message whose write is
//! still in the commit loop is never missed).
//!
//! The earliest due time may run early, never late: a publish lowers it (and wakes the
//! timer when it did); the timer clears it before reading the store and then lowers it to
//! the store's first key, so a publish racing with that read is kept either way.
//!
//! A durable exchange's hold id comes from the store's counter and is recorded next to the
//! exchange's definition; its persistent messages are written durably (fsynced before the
//! confirm), its transient ones flagged and dropped at the next start. A non-durable
//! exchange takes an id from the per-process space (`TRANSIENT_HOLD_BASE`), whose messages
//! are all dropped at the next start.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;
use warren_store::{HeldKey, Store, Ticket, WriteOp};

use super::{DelayForm, TRANSIENT_HOLD_BASE, record};
use crate::message::Message;
use crate::vhost::VHost;

static NEXT_TRANSIENT_HOLD: AtomicU64 = AtomicU64::new(TRANSIENT_HOLD_BASE);

/// What a publish to a delayed exchange got when its message was held.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// The store ticket to wait for before confirming (a durable hold of a persistent
    /// message); `None`: confirm at once.
    pub ticket: Option<Ticket>,
    /// The publish looks unroutable (the plugin's form): a mandatory publish gets
    /// `basic.return` 312 NO_ROUTE, and it counts as unroutable.
    pub unroutable: bool,
}

impl Held {
    /// One publish held by several delayed exchanges (reached through exchange-to-exchange
    /// bindings): confirmed once every durable hold is written; unroutable only if every
    /// hold looks so.
    pub(crate) fn merge(&mut self, other: Held) {
        self.ticket = match (self.ticket, other.ticket) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.unroutable &= other.unroutable;
    }
}

/// Where [`Hold::put_op`] put a message: what [`Hold::submitted`] needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldPlace {
    due_ms: u64,
    /// Written durably (confirmed once synced).
    durable: bool,
}

/// One delayed exchange's held messages.
#[derive(Debug)]
pub struct Hold {
    /// The exchange's name.
    pub(super) exchange: Arc<str>,
    /// The vhost, to route due messages.
    pub(super) vhost: Weak<VHost>,
    pub(super) store: Store,
    pub(super) form: DelayForm,
    /// The store's key space of this hold.
    pub(super) hold_id: u64,
    /// The exchange is durable: persistent messages are held durably.
    durable: bool,
    next_seq: AtomicU64,
    count: AtomicU64,
    pub(super) state: Mutex<HoldState>,
    /// Wakes the timer: an earlier due time, or the hold was dropped.
    pub(super) wake: Notify,
    deleted: AtomicBool,
    timer_started: AtomicBool,
}

/// What the timer and publishers share under the hold's lock.
#[derive(Debug, Default)]
pub(super) struct HoldState {
    /// The earliest due time of a held message, as far as known (may be early, never late).
    pub(super) earliest: Option<u64>,
    /// The last ticket submitted for this hold (puts and the timer's deletes).
    pub(super) last_ticket: Option<Ticket>,
}

impl Hold {
    /// A hold for the exchange `exchange` of `vhost`. `durable_id` is the stored id of a
    /// durable exchange's hold; a non-durable exchange passes `None` and gets a
    /// per-process id.
    pub(crate) fn new(
        exchange: Arc<str>,
        vhost: Weak<VHost>,
        store: Store,
        form: DelayForm,
        durable_id: Option<u64>,
    ) -> Arc<Hold> {
        let hold_id =
            durable_id.unwrap_or_else(|| NEXT_TRANSIENT_HOLD.fetch_add(1, Ordering::Relaxed));
        Arc::new(Hold {
            exchange,
            vhost,
            store,
            form,
            hold_id,
            durable: durable_id.is_some(),
            next_seq: AtomicU64::new(1),
            count: AtomicU64::new(0),
            state: Mutex::new(HoldState::default()),
            wake: Notify::new(),
            deleted: AtomicBool::new(false),
            timer_started: AtomicBool::new(false),
        })
    }

    /// Which product's behaviour the exchange follows.
    pub fn form(&self) -> DelayForm {
        self.form
    }

    /// Messages held now (the plugin's `messages_delayed`).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Hold `message` (published with `extra_keys` from `CC` / `BCC`) for `delay_ms`.
    pub(crate) fn hold(
        self: &Arc<Self>,
        message: &Message,
        extra_keys: &[String],
        delay_ms: u64,
    ) -> Held {
        let (op, place) = self.put_op(message, extra_keys, delay_ms);
        let ticket = self.store.submit(op);
        self.submitted(place, ticket)
    }

    /// The write that holds `message` for `delay_ms`, for a caller that submits it in a
    /// group with other writes (a dead letter's move: its source's delete, its target
    /// queues' puts and this one are one `WriteBatch`). After submitting, the caller
    /// calls [`Hold::submitted`] with the place and the group's ticket.
    pub(crate) fn put_op(
        &self,
        message: &Message,
        extra_keys: &[String],
        delay_ms: u64,
    ) -> (WriteOp, HeldPlace) {
        let due_ms = due_time(delay_ms);
        let key = HeldKey {
            hold_id: self.hold_id,
            due_ms,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        let durable = self.durable && message.is_persistent();
        let op = WriteOp::PutHeld {
            key,
            value: record::encode(message, extra_keys),
            durable,
        };
        (op, HeldPlace { due_ms, durable })
    }

    /// The write of [`Hold::put_op`] was submitted with `ticket`: count the message,
    /// lower the earliest due time (waking the timer when it did) and remember the ticket,
    /// so the timer never reads the store before the write is in.
    pub(crate) fn submitted(self: &Arc<Self>, place: HeldPlace, ticket: Ticket) -> Held {
        let HeldPlace { due_ms, durable } = place;
        self.count.fetch_add(1, Ordering::Relaxed);
        let lowered = {
            let mut st = self.state.lock();
            st.last_ticket = Some(st.last_ticket.map_or(ticket, |t| t.max(ticket)));
            let lowered = st.earliest.is_none_or(|earliest| due_ms < earliest);
            if lowered {
                st.earliest = Some(due_ms);
            }
            lowered
        };
        if lowered {
            self.wake.notify_one();
        }
        self.ensure_timer();
        Held {
            ticket: durable.then_some(ticket),
            unroutable: self.form == DelayForm::Plugin,
        }
    }

    /// The exchange's name.
    pub(crate) fn exchange(&self) -> &Arc<str> {
        &self.exchange
    }

    /// The exchange was deleted: its held messages go (one range delete) and the timer
    /// stops.
    pub(crate) fn drop_all(&self) {
        if self.deleted.swap(true, Ordering::AcqRel) {
            return;
        }
        self.store.submit(WriteOp::DeleteHold {
            hold_id: self.hold_id,
        });
        self.count.store(0, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// The broker is stopping: the timer stops routing (held messages stay in the store).
    pub(crate) fn stop(&self) {
        self.deleted.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether the exchange was deleted or the broker is stopping: the timer routes no more.
    pub(super) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Start the timer task if it is not running (at the first hold, or at recovery).
    pub(crate) fn ensure_timer(self: &Arc<Self>) {
        if self.timer_started.load(Ordering::Relaxed)
            || self.timer_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(super::timer::run(Arc::clone(self)));
            }
            Err(_) => {
                // Tried again at the next publish to the exchange.
                self.timer_started.store(false, Ordering::Release);
                tracing::warn!(exchange = %self.exchange, "no runtime to run the delayed exchange's timer yet");
            }
        }
    }

    /// Recovery: what the store holds for this hold.
    pub(super) fn recovered(
        &self,
        count: u64,
        max_seq: u64,
        earliest: Option<u64>,
        last_ticket: Option<Ticket>,
    ) {
        self.count.store(count, Ordering::Relaxed);
        self.next_seq
            .store(max_seq.saturating_add(1), Ordering::Relaxed);
        let mut st = self.state.lock();
        st.earliest = earliest;
        st.last_ticket = last_ticket;
    }

    /// The timer routed or dropped `n` messages.
    pub(super) fn routed(&self, n: u64) {
        // Never below zero, even if a count raced with `drop_all`.
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// The hold's id in the store.
    pub fn hold_id(&self) -> u64 {
        self.hold_id
    }
}

/// When a message received now with `delay_ms` is due: never before `delay_ms` has passed
/// since it arrived, so the arrival time is rounded up to the next millisecond.
fn due_time(delay_ms: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() as u64 + u64::from(!now.subsec_nanos().is_multiple_of(1_000_000));
    ms.saturating_add(delay_ms)
}
