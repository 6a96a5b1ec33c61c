//! Dead lettering: messages a queue lets go (rejected or nacked without requeue, expired,
//! dropped by a length limit) are re-published to its dead-letter exchange
//! (`x-dead-letter-exchange`) with an `x-death` record, as RabbitMQ 3.10 does.
//!
//! Data flow:
//!
//! 1. Under the queue lock, every place that lets a message go (`settle.rs` reject,
//!    `expiry.rs`, `limits.rs`, dispatch and `basic.get` meeting an expired head) calls
//!    [`Queue::let_go`]. Without a dead-letter exchange the stored copy is deleted, as
//!    before. With one, the message and its store key are pushed to
//!    `QueueState::dead_letters` and the stored copy stays.
//! 2. When the lock guard (`locked.rs`) is dropped, the lock is released and
//!    [`Queue::dead_letter`] runs: each message is rewritten as RabbitMQ's
//!    `rabbit_dead_letter:make_msg` does ([`rewrite`]: `x-death`, the `x-first-death-*`
//!    headers, `expiration` removed, `CC` removed when a dead-letter routing key replaces
//!    the routing keys), routed from the dead-letter exchange (a missing exchange drops
//!    it; internal exchanges are fine), and queues that would close an automatic cycle are
//!    left out ([`is_cycle`]).
//! 3. Every target queue reserves a seq; the source's delete and the targets' puts are
//!    submitted as ONE `WriteOp::Group`, so that a kill -9 leaves the message either in
//!    its old queue or in its new ones, never in neither (and never both). The targets take
//!    the message at their reserved seq only after that submission, so an ack of the new
//!    copy can never reach the store before its put. A plugin-form delayed exchange met on
//!    the way (the dead-letter exchange itself, or one reached through exchange-to-exchange
//!    bindings: `delayed::PublishWalk::dead_letter`) holds the message for its `x-delay`:
//!    its `WriteOp::PutHeld` joins the same group, and the hold learns the group's ticket
//!    after the submission (`Hold::submitted`).
//!
//! A dead letter can cause more (its target is full and dead-letters in turn): those wait
//! in a thread-local list and the outermost flush sends them round by round, so a chain is
//! a loop with one queue lock at a time, never a recursion, and a chain that never ends
//! (queues at their limits dead-lettering into each other with a rejection in the loop,
//! which RabbitMQ's cycle detection lets through) is cut after `MAX_ROUNDS` rounds.
//!
//! # Layout
//!
//! - `mod.rs`: letting go, the flush loop and the one-batch move.
//! - `rewrite.rs`: the message a dead letter becomes (`x-death` and friends) and the cycle
//!   check.
//! - `raw.rs`: header tables and properties as bytes, in their order.
//!
//! Dead lettering is at-most-once across a broker crash for messages that are not
//! persistent or whose target is not durable, as in RabbitMQ's classic queues.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use warren_store::{Store, Ticket, WriteOp};

use super::{Queue, QueueState, Room, StoreKey};
use crate::arguments::DeadLetterTarget;
use crate::delayed::{DeferredHold, HeldPlace, Hold};
use crate::message::Message;
use crate::vhost::VHost;
use rewrite::{is_cycle, rewrite};

mod raw;
mod rewrite;

pub(super) use raw::with_long_header;

/// Why a message was dead-lettered (the `reason` of its `x-death` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathReason {
    /// Rejected or nacked with `requeue = false`.
    Rejected,
    /// Its TTL passed.
    Expired,
    /// Dropped by a length limit (`x-max-length`, `x-max-length-bytes`).
    MaxLen,
    /// Returned more often than a quorum queue's delivery limit allows.
    DeliveryLimit,
}

impl DeathReason {
    /// The reason as RabbitMQ writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }

    /// The reason's code in the store's index entry (`IndexEntry::dead_letter`; 0 means
    /// "not a dead letter").
    pub(super) fn code(self) -> u8 {
        match self {
            DeathReason::Rejected => 1,
            DeathReason::Expired => 2,
            DeathReason::MaxLen => 3,
            DeathReason::DeliveryLimit => 4,
        }
    }

    /// The reason a stored code names.
    pub(super) fn from_code(code: u8) -> Option<DeathReason> {
        Some(match code {
            1 => DeathReason::Rejected,
            2 => DeathReason::Expired,
            3 => DeathReason::MaxLen,
            4 => DeathReason::DeliveryLimit,
            _ => return None,
        })
    }
}

/// A message on its way to the dead-letter exchange.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    pub(super) message: Arc<Message>,
    pub(super) reason: DeathReason,
    /// Its stored copy in this queue, deleted in the same batch as the targets' puts.
    pub(super) stored: Option<StoreKey>,
    /// At-least-once: the targets that already have it (a retry leaves them out).
    pub(super) settled: Vec<Taken>,
    /// At-least-once: its stored index entry marks it as awaiting dead-lettering.
    pub(super) marked: bool,
}

/// A target that took an at-least-once dead letter whose move was refused elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Taken {
    /// A queue, by name.
    Queue(Arc<str>),
    /// A delayed exchange that holds it (`crate::delayed`), by name.
    Hold(Arc<str>),
}

impl Queue {
    /// A message leaves the queue for good (under the lock): dead-letter it if the queue
    /// has a dead-letter exchange, else delete its stored copy. The caller has the body
    /// (`entry.message`); one that is not in memory cannot be dead-lettered and is dropped.
    pub(super) fn let_go(
        &self,
        st: &mut QueueState,
        message: Option<&Arc<Message>>,
        stored: Option<StoreKey>,
        reason: DeathReason,
    ) {
        match (st.settings.dead_letter.is_some(), message) {
            (true, Some(message)) => st.dead_letters.push(DeadLetter {
                message: Arc::clone(message),
                reason,
                stored,
                settled: Vec::new(),
                marked: false,
            }),
            (dead_letter, _) => {
                if dead_letter {
                    tracing::warn!(queue = %self.spec.name, vhost = %self.vhost, reason = reason.as_str(), "message body not in memory; dropped instead of dead-lettered");
                }
                self.forget_key(stored);
            }
        }
    }

    /// Dead-letter messages this queue let go (its lock is NOT held; see the module docs).
    /// `at_least_once`: the queue keeps what no queue takes (`quorum/discards.rs`).
    pub(super) fn dead_letter(
        &self,
        letters: Vec<DeadLetter>,
        target: Option<DeadLetterTarget>,
        at_least_once: bool,
    ) {
        let Some(target) = target else {
            return;
        };
        flush(Batch {
            source: Arc::clone(&self.spec.name),
            source_id: self.store_id,
            vhost_name: Arc::clone(&self.vhost),
            home: self.home.clone(),
            store: self.store.clone(),
            target,
            letters,
            at_least_once,
        });
    }

    pub(in crate::queue) fn forget_key(&self, stored: Option<StoreKey>) {
        if let Some(key) = stored {
            self.store.submit(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
    }
}

/// Dead letters of one queue with what it takes to send them on (so that they can wait
/// for their turn after the queue's guard is gone).
struct Batch {
    source: Arc<str>,
    /// The source's store id (tells it from a queue of the same name declared since).
    source_id: u64,
    vhost_name: Arc<str>,
    home: Weak<VHost>,
    store: Store,
    target: DeadLetterTarget,
    letters: Vec<DeadLetter>,
    /// Letters that no queue takes go back to the source (`quorum/discards.rs`).
    at_least_once: bool,
}

/// How many rounds of dead letters producing dead letters one flush follows before it
/// drops the rest: queues that dead-letter into each other at their length limits, with a
/// rejection somewhere in the chain, would otherwise pass a message around for ever
/// (RabbitMQ's cycle detection lets such a loop through).
const MAX_ROUNDS: usize = 1000;

thread_local! {
    /// Batches let go while this thread is already dead-lettering: the outer `flush`
    /// sends them, so a chain of dead letters is a loop, not a recursion.
    static PENDING: RefCell<Option<Vec<Batch>>> = const { RefCell::new(None) };
}

/// Send a batch of dead letters, and every batch they cause in turn, one round at a time.
fn flush(batch: Batch) {
    let first = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        match pending.as_mut() {
            Some(queued) => {
                queued.push(batch);
                None
            }
            None => {
                *pending = Some(Vec::new());
                Some(batch)
            }
        }
    });
    let Some(first) = first else {
        return; // an outer flush on this thread sends it
    };
    // Leaves the thread ready for the next flush even if this one unwinds.
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            PENDING.with(|pending| *pending.borrow_mut() = None);
        }
    }
    let _done = Done;
    let mut round = vec![first];
    let mut rounds = 0;
    loop {
        for batch in round {
            batch.send();
        }
        round = PENDING.with(|pending| {
            pending
                .borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        });
        if round.is_empty() {
            break;
        }
        rounds += 1;
        if rounds >= MAX_ROUNDS {
            for mut batch in round {
                if batch.at_least_once {
                    let letters = std::mem::take(&mut batch.letters);
                    batch.keep(letters);
                    continue;
                }
                tracing::warn!(queue = %batch.source, vhost = %batch.vhost_name, messages = batch.letters.len(), max_rounds = MAX_ROUNDS, "dead-letter chain too long (queues dead-lettering into each other at their limits): messages dropped");
                for letter in &batch.letters {
                    batch.forget(letter.stored);
                }
            }
            break;
        }
    }
}

/// Where a dead letter goes: the rewritten message, the queues it reaches and the delayed
/// exchanges that hold it (each with its delay).
struct Routed {
    message: Arc<Message>,
    /// The extra routing keys a hold keeps beside `message.routing_key` (its other
    /// dead-letter routing keys: the `CC` ones).
    extra_keys: Vec<String>,
    queues: Vec<Arc<Queue>>,
    holds: Vec<DeferredHold>,
}

/// Adds the writes that hold `message` at each of `holds` to the move's `ops`; the holds
/// learn their ticket from [`submitted_holds`] once the move is submitted.
fn put_holds(
    holds: Vec<DeferredHold>,
    message: &Message,
    extra_keys: &[String],
    ops: &mut Vec<WriteOp>,
) -> Vec<(Arc<Hold>, HeldPlace)> {
    holds
        .into_iter()
        .map(|DeferredHold { hold, delay_ms }| {
            let (op, place) = hold.put_op(message, extra_keys, delay_ms);
            ops.push(op);
            (hold, place)
        })
        .collect()
}

/// The move holding at `held` was submitted as `ticket`.
fn submitted_holds(held: Vec<(Arc<Hold>, HeldPlace)>, ticket: Option<Ticket>) {
    let Some(ticket) = ticket else {
        return; // nothing was held (a hold always adds a write)
    };
    for (hold, place) in held {
        hold.submitted(place, ticket);
    }
}

impl Batch {
    fn send(mut self) {
        let vhost = self.home.upgrade();
        let mut kept = Vec::new();
        for letter in std::mem::take(&mut self.letters) {
            let routed = vhost.as_ref().and_then(|vhost| self.route(vhost, &letter));
            let Some(routed) = routed else {
                if self.at_least_once {
                    kept.push(letter);
                } else {
                    self.forget(letter.stored);
                }
                continue;
            };
            if self.at_least_once {
                if let Some(letter) = self.move_at_least_once(letter, routed) {
                    kept.push(letter);
                }
                continue;
            }
            let Routed {
                message,
                extra_keys,
                queues: targets,
                holds,
            } = routed;
            // Reserve a place in every target, then write the move in one batch.
            let mut ops = Vec::with_capacity(targets.len() + holds.len() + 1);
            if let Some(key) = letter.stored {
                ops.push(WriteOp::Delete {
                    queue_id: key.id,
                    seq: key.seq,
                });
            }
            let mut placed = Vec::with_capacity(targets.len());
            let mut encoded: Option<Bytes> = None;
            for queue in targets {
                let Some(seq) = queue.reserve_seq() else {
                    continue; // deleted meanwhile
                };
                let stored = queue.stage_put(&message, seq, &mut encoded, &mut ops);
                placed.push((queue, seq, stored));
            }
            let held = put_holds(holds, &message, &extra_keys, &mut ops);
            let ticket = match ops.len() {
                0 => None,
                1 => ops.pop().map(|op| self.store.submit(op)),
                _ => Some(self.store.submit(WriteOp::Group(ops))),
            };
            for (queue, seq, stored) in placed {
                queue.accept_dead_letter(&message, seq, stored, ticket, false);
            }
            submitted_holds(held, ticket);
        }
        if !kept.is_empty() {
            self.keep(kept);
        }
    }

    /// At-least-once: move `letter` (routed as `routed`) into the targets that do not have
    /// it yet, each queue only if it has room (a full reject-publish queue refuses it); a
    /// delayed exchange that holds it counts as a target that took it. Taken by all: the
    /// source's copy is deleted in the batch that writes the targets' copies. Refused by
    /// some: the targets that took it are noted and the letter is returned, its source
    /// copy untouched, to be kept and retried.
    fn move_at_least_once(&self, mut letter: DeadLetter, routed: Routed) -> Option<DeadLetter> {
        let Routed {
            message,
            extra_keys,
            queues: targets,
            mut holds,
        } = routed;
        let message = &message;
        let mut ops = Vec::with_capacity(targets.len() + holds.len() + 1);
        let mut placed = Vec::with_capacity(targets.len());
        let mut refused = false;
        let mut encoded: Option<Bytes> = None;
        for queue in targets {
            if letter
                .settled
                .iter()
                .any(|t| matches!(t, Taken::Queue(name) if name == queue.name()))
            {
                continue;
            }
            let seq = match queue.reserve_room(message) {
                Room::Seq(seq) => seq,
                Room::Full => {
                    refused = true;
                    continue;
                }
                Room::Deleted => continue,
            };
            let stored = queue.stage_put(message, seq, &mut encoded, &mut ops);
            placed.push((queue, seq, stored));
        }
        holds.retain(|h| {
            !letter
                .settled
                .iter()
                .any(|t| matches!(t, Taken::Hold(name) if name == h.hold.exchange()))
        });
        let held = put_holds(holds, message, &extra_keys, &mut ops);
        if !refused && let Some(key) = letter.stored {
            ops.push(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
        let ticket = match ops.len() {
            0 => None,
            1 => ops.pop().map(|op| self.store.submit(op)),
            _ => Some(self.store.submit(WriteOp::Group(ops))),
        };
        for (queue, seq, stored) in placed {
            queue.accept_dead_letter(message, seq, stored, ticket, true);
            if refused {
                letter.settled.push(Taken::Queue(Arc::clone(queue.name())));
            }
        }
        if refused {
            letter.settled.extend(
                held.iter()
                    .map(|(hold, _)| Taken::Hold(Arc::clone(hold.exchange()))),
            );
        }
        submitted_holds(held, ticket);
        refused.then_some(letter)
    }

    /// At-least-once: give letters no queue took back to the source queue (if it still
    /// exists), which keeps them and retries.
    fn keep(&self, letters: Vec<DeadLetter>) {
        let source = self
            .home
            .upgrade()
            .and_then(|vhost| vhost.lookup_queue(&self.source))
            .filter(|queue| queue.store_id == self.source_id);
        match source {
            Some(queue) => queue.keep_discards(letters),
            None => {
                tracing::debug!(queue = %self.source, vhost = %self.vhost_name, messages = letters.len(), "dead-letter source queue gone; its pending dead letters went with it");
            }
        }
    }

    /// The rewritten message and where it goes, or `None` when it goes nowhere (no such
    /// exchange, no binding, or only queues that would close a cycle).
    fn route(&self, vhost: &VHost, letter: &DeadLetter) -> Option<Routed> {
        let rewritten = match rewrite(
            &letter.message,
            letter.reason,
            &self.source,
            &self.target,
            crate::message::now_ms(),
        ) {
            Ok(rewritten) => rewritten,
            Err(error) => {
                tracing::error!(queue = %self.source, vhost = %self.vhost_name, %error, "cannot dead-letter a message: dropped");
                return None;
            }
        };
        let mut queues = Vec::new();
        let mut holds = Vec::new();
        let keys: Vec<&str> = rewritten.routing_keys.iter().map(String::as_str).collect();
        if vhost
            .route_dead_letter(
                &self.target.exchange,
                &keys,
                rewritten.headers.as_ref(),
                &mut queues,
                Some(&mut holds),
            )
            .is_err()
        {
            return None; // the dead-letter exchange does not exist: dropped, as RabbitMQ
        }
        if letter.reason != DeathReason::Rejected
            && let Some(deaths) = rewritten.deaths()
        {
            queues.retain(|queue| {
                let cycle = is_cycle(queue.name(), deaths);
                if cycle {
                    tracing::warn!(queue = %self.source, vhost = %self.vhost_name, target = %queue.name(), reason = letter.reason.as_str(), "message dropped: dead-letter queues cycle detected");
                }
                !cycle
            });
        }
        if queues.is_empty() && holds.is_empty() {
            return None;
        }
        let extra_keys = if holds.is_empty() {
            Vec::new()
        } else {
            rewritten.routing_keys.iter().skip(1).cloned().collect()
        };
        Some(Routed {
            message: Arc::new(rewritten.message),
            extra_keys,
            queues,
            holds,
        })
    }

    fn forget(&self, stored: Option<StoreKey>) {
        if let Some(key) = stored {
            self.store.submit(WriteOp::Delete {
                queue_id: key.id,
                seq: key.seq,
            });
        }
    }
}
