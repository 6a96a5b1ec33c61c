//! The ready list: messages waiting for a consumer, in the order they will be delivered.
//!
//! A plain queue (no `x-max-priority`, or a maximum of 0) delivers in sequence order
//! (publish order; a requeued message goes back to its old place): one `VecDeque` in seq
//! order. A priority queue keeps one such deque per priority level (`0..=max`, indexed by
//! the message's priority clamped to the maximum) and the highest non-empty level cached:
//! it delivers the head of that level, so higher priorities go first and each level is
//! FIFO by seq (a requeue goes back to its old place in its own level). Every method
//! matches the two shapes once, so a plain queue pays one branch per call.
//!
//! A quorum queue delivers the messages its consumers gave back first, in the order they
//! came back, then the rest in seq order (`rabbit_fifo`'s `returns` queue).
//!
//! Every reader and writer of the list goes through [`Ready`], so that the order is decided
//! in this one file. Page-in (`paging.rs`) reads the head run: for a priority queue that is
//! the head level alone, whose seqs ascend as `Store::read_messages` needs.

use std::collections::VecDeque;

use super::Entry;

/// Messages ready for delivery, head first.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    order: Order,
    /// Body bytes of the ready messages (what `x-max-length-bytes` limits).
    body_bytes: u64,
}

#[derive(Debug)]
enum Order {
    /// Seq order.
    Fifo(VecDeque<Entry>),
    /// One seq-ordered deque per priority, highest first.
    Levels(Levels),
    /// A quorum queue: messages its consumers gave back (`returns`, in the order they came
    /// back, as `rabbit_fifo`'s `returns`) go before the others (`rest`, in seq order).
    /// A returned message always holds its body (it comes back from a delivery), so
    /// page-in only ever reads `rest`.
    Returning {
        returns: VecDeque<Entry>,
        rest: VecDeque<Entry>,
    },
}

impl Default for Order {
    fn default() -> Self {
        Order::Fifo(VecDeque::new())
    }
}

#[derive(Debug)]
struct Levels {
    /// `levels[p]`: the ready messages of priority `p`, in seq order.
    levels: Vec<VecDeque<Entry>>,
    /// The highest non-empty level (0 when all are empty).
    top: usize,
    /// Messages over all levels.
    len: usize,
}

impl Levels {
    /// Level of `entry` (its priority, clamped: recovery may see a priority written under
    /// an older maximum).
    fn level_of(&self, entry: &Entry) -> usize {
        usize::from(entry.priority).min(self.levels.len() - 1)
    }

    /// After a removal from the top level: the highest non-empty level.
    fn settle_top(&mut self) {
        while self.top > 0 && self.levels[self.top].is_empty() {
            self.top -= 1;
        }
    }

    fn push(&mut self, entry: Entry) {
        let level = self.level_of(&entry);
        self.top = self.top.max(level);
        self.len += 1;
        insert_by_seq(&mut self.levels[level], entry);
    }
}

/// Put `entry` at its place by seq in `entries` (at the back for a new message).
fn insert_by_seq(entries: &mut VecDeque<Entry>, entry: Entry) {
    if entries.back().is_none_or(|e| e.seq < entry.seq) {
        entries.push_back(entry);
        return;
    }
    let at = entries.partition_point(|e| e.seq < entry.seq);
    entries.insert(at, entry);
}

/// The entry with `seq` in the seq-ordered `entries` (a message just enqueued is usually
/// the last one).
fn find_mut(entries: &mut VecDeque<Entry>, seq: u64) -> Option<&mut Entry> {
    if entries.back().is_some_and(|e| e.seq == seq) {
        return entries.back_mut();
    }
    let at = entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
    entries.get_mut(at)
}

impl Ready {
    /// An empty ready list for a queue with this `x-max-priority` (0: a plain queue, as
    /// RabbitMQ's priority queue with one level delivers exactly like one).
    pub(crate) fn new(max_priority: u8) -> Ready {
        let order = if max_priority == 0 {
            Order::Fifo(VecDeque::new())
        } else {
            Order::Levels(Levels {
                levels: (0..=max_priority).map(|_| VecDeque::new()).collect(),
                top: 0,
                len: 0,
            })
        };
        Ready {
            order,
            body_bytes: 0,
        }
    }

    /// An empty ready list for a quorum queue: returned messages first (see [`Order`]).
    pub(crate) fn returning() -> Ready {
        Ready {
            order: Order::Returning {
                returns: VecDeque::new(),
                rest: VecDeque::new(),
            },
            body_bytes: 0,
        }
    }

    /// Ready messages.
    pub(crate) fn len(&self) -> usize {
        match &self.order {
            Order::Fifo(entries) => entries.len(),
            Order::Levels(l) => l.len,
            Order::Returning { returns, rest } => returns.len() + rest.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Body bytes of the ready messages.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The message that goes next.
    pub(crate) fn front(&self) -> Option<&Entry> {
        match &self.order {
            Order::Fifo(entries) => entries.front(),
            Order::Levels(l) => l.levels[l.top].front(),
            Order::Returning { returns, rest } => returns.front().or_else(|| rest.front()),
        }
    }

    /// Take the message that goes next.
    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        let entry = match &mut self.order {
            Order::Fifo(entries) => entries.pop_front()?,
            Order::Levels(l) => {
                let entry = l.levels[l.top].pop_front()?;
                l.len -= 1;
                l.settle_top();
                entry
            }
            Order::Returning { returns, rest } => match returns.pop_front() {
                Some(entry) => entry,
                None => rest.pop_front()?,
            },
        };
        self.body_bytes = self.body_bytes.saturating_sub(u64::from(entry.body_len));
        Some(entry)
    }

    /// Add a recovered message (the highest seq so far, of its level) at the back.
    pub(crate) fn push_back(&mut self, entry: Entry) {
        self.body_bytes += u64::from(entry.body_len);
        match &mut self.order {
            Order::Fifo(entries) | Order::Returning { rest: entries, .. } => {
                entries.push_back(entry)
            }
            Order::Levels(l) => l.push(entry),
        }
    }

    /// The ready entry with this seq and priority (a message just enqueued: usually the
    /// last one of its level).
    pub(crate) fn find_mut(&mut self, seq: u64, priority: u8) -> Option<&mut Entry> {
        match &mut self.order {
            Order::Fifo(entries) => find_mut(entries, seq),
            Order::Levels(l) => {
                let level = usize::from(priority).min(l.levels.len() - 1);
                find_mut(&mut l.levels[level], seq)
            }
            Order::Returning { returns, rest } => match returns.iter().position(|e| e.seq == seq) {
                Some(at) => returns.get_mut(at),
                None => find_mut(rest, seq),
            },
        }
    }

    /// Put a message at its place by sequence number (in its priority's level): at the
    /// back for a new message, in the middle for a requeue or a dead letter whose seq was
    /// reserved earlier.
    pub(crate) fn insert_by_seq(&mut self, entry: Entry) {
        self.body_bytes += u64::from(entry.body_len);
        match &mut self.order {
            Order::Fifo(entries) | Order::Returning { rest: entries, .. } => {
                insert_by_seq(entries, entry)
            }
            Order::Levels(l) => l.push(entry),
        }
    }

    /// A quorum queue's returned message: after the messages returned before it, ahead of
    /// the rest. Other queues (and a message without its body): back at its place by seq.
    pub(crate) fn push_returned(&mut self, entry: Entry) {
        match &mut self.order {
            Order::Returning { returns, .. } if entry.message.is_some() => {
                self.body_bytes += u64::from(entry.body_len);
                returns.push_back(entry);
            }
            _ => self.insert_by_seq(entry),
        }
    }

    /// Take the ready message with this seq out of the list, wherever it is.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<Entry> {
        let by_seq = |entries: &mut VecDeque<Entry>| {
            let at = entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
            entries.remove(at)
        };
        let entry = match &mut self.order {
            Order::Fifo(entries) => by_seq(entries)?,
            Order::Returning { returns, rest } => match returns.iter().position(|e| e.seq == seq) {
                Some(at) => returns.remove(at)?,
                None => by_seq(rest)?,
            },
            Order::Levels(l) => {
                let entry = l.levels.iter_mut().find_map(by_seq)?;
                l.len -= 1;
                l.settle_top();
                entry
            }
        };
        self.body_bytes = self.body_bytes.saturating_sub(u64::from(entry.body_len));
        Some(entry)
    }

    /// Every ready message, in delivery order.
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = &Entry> + '_> {
        match &self.order {
            Order::Fifo(entries) => Box::new(entries.iter()),
            Order::Levels(l) => Box::new(l.levels.iter().rev().flatten()),
            Order::Returning { returns, rest } => Box::new(returns.iter().chain(rest)),
        }
    }

    /// The run of messages that will be delivered next, in order and in ascending seq, for
    /// page-in: entries whose bodies are read back together. A priority queue's head run
    /// is its head level (the next level's seqs may be lower, so it waits for its turn).
    pub(crate) fn head_run_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        match &mut self.order {
            // Returned messages hold their bodies: the run to page in is `rest`.
            Order::Fifo(entries) | Order::Returning { rest: entries, .. } => entries.iter_mut(),
            Order::Levels(l) => l.levels[l.top].iter_mut(),
        }
    }

    /// The run of messages that will be delivered next (see [`Ready::head_run_mut`]).
    pub(crate) fn head_run(&self) -> impl Iterator<Item = &Entry> {
        match &self.order {
            Order::Fifo(entries) | Order::Returning { rest: entries, .. } => entries.iter(),
            Order::Levels(l) => l.levels[l.top].iter(),
        }
    }

    /// Drop every message.
    pub(crate) fn clear(&mut self) {
        match &mut self.order {
            Order::Fifo(entries) => entries.clear(),
            Order::Returning { returns, rest } => {
                returns.clear();
                rest.clear();
            }
            Order::Levels(l) => {
                l.levels.iter_mut().for_each(VecDeque::clear);
                l.top = 0;
                l.len = 0;
            }
        }
        self.body_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, priority: u8) -> Entry {
        Entry {
            seq,
            redelivered: false,
            stored: None,
            message: None,
            size: 0,
            body_len: 10,
            expires_at: u64::MAX,
            priority,
            delivery_count: 0,
        }
    }

    fn drain(ready: &mut Ready) -> Vec<u64> {
        std::iter::from_fn(|| ready.pop_front().map(|e| e.seq)).collect()
    }

    #[test]
    fn levels_deliver_highest_priority_first_and_fifo_within_one() {
        let mut ready = Ready::new(5);
        for (seq, priority) in [(1, 0), (2, 5), (3, 2), (4, 5), (5, 9), (6, 0), (7, 2)] {
            ready.insert_by_seq(entry(seq, priority));
        }
        assert_eq!(ready.len(), 7);
        assert_eq!(ready.body_bytes(), 70);
        let order: Vec<u64> = ready.iter().map(|e| e.seq).collect();
        // 9 counts as the maximum, 5: after the two published earlier at 5.
        assert_eq!(order, [2, 4, 5, 3, 7, 1, 6]);
        assert_eq!(
            ready.head_run().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 4, 5]
        );
        assert_eq!(drain(&mut ready), order);
        assert!(ready.is_empty());
        assert_eq!(ready.body_bytes(), 0);
    }

    #[test]
    fn a_requeue_goes_back_to_its_place_in_its_level() {
        let mut ready = Ready::new(3);
        for (seq, priority) in [(1, 1), (2, 3), (3, 3), (4, 1)] {
            ready.insert_by_seq(entry(seq, priority));
        }
        let first = ready.pop_front().expect("a head");
        let second = ready.pop_front().expect("a second");
        assert_eq!((first.seq, second.seq), (2, 3));
        ready.insert_by_seq(second);
        ready.insert_by_seq(first);
        assert_eq!(ready.find_mut(3, 3).map(|e| e.seq), Some(3));
        assert_eq!(ready.find_mut(3, 1).map(|e| e.seq), None);
        assert_eq!(drain(&mut ready), [2, 3, 1, 4]);
    }

    #[test]
    fn a_quorum_ready_list_delivers_returns_first_in_return_order() {
        let with_body = |seq| Entry {
            message: Some(std::sync::Arc::new(crate::message::Message {
                exchange: "".into(),
                routing_key: "".into(),
                persistent: true,
                expiration: None,
                priority: 0,
                raw_properties: bytes::Bytes::new(),
                body: bytes::Bytes::new(),
                timestamp_ms: 0,
            })),
            ..entry(seq, 0)
        };
        let mut ready = Ready::returning();
        for seq in 1..=5 {
            ready.insert_by_seq(entry(seq, 0));
        }
        let taken: Vec<Entry> = (0..3).filter_map(|_| ready.pop_front()).collect();
        assert_eq!(taken.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        ready.push_returned(with_body(3));
        ready.push_returned(with_body(1));
        // Without its body a return goes back to its place (page-in reads only `rest`).
        ready.push_returned(entry(2, 0));
        assert_eq!(ready.len(), 5);
        assert_eq!(ready.body_bytes(), 50);
        assert_eq!(ready.find_mut(1, 0).map(|e| e.seq), Some(1));
        assert_eq!(
            ready.head_run().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 4, 5]
        );
        assert_eq!(drain(&mut ready), [3, 1, 2, 4, 5]);
    }

    #[test]
    fn max_priority_zero_is_a_plain_fifo() {
        let mut ready = Ready::new(0);
        for (seq, priority) in [(1, 0), (2, 7), (3, 1)] {
            ready.insert_by_seq(entry(seq, priority));
        }
        assert_eq!(drain(&mut ready), [1, 2, 3]);
    }

    #[test]
    fn clear_empties_every_level() {
        let mut ready = Ready::new(2);
        ready.push_back(entry(1, 2));
        ready.push_back(entry(2, 0));
        ready.clear();
        assert!(ready.is_empty() && ready.front().is_none());
        assert_eq!(ready.body_bytes(), 0);
        ready.push_back(entry(3, 1));
        assert_eq!(drain(&mut ready), [3]);
    }
}
