//! Reclaim: giving the disk space of deleted messages back within a minute.
//!
//! A RocksDB delete writes a tombstone; the deleted body (in an SST or a blob file) is freed only
//! when a compaction brings the tombstone and the body together, and a blob file only once none
//! of its blobs is referenced any more. Left to itself, level compaction may take hours to reach
//! a drained backlog, so the store helps it:
//!
//! - The commit thread feeds a [`ReclaimTracker`] with every `Delete` (per queue: how many, and
//!   the lowest and highest seq) and every `DeleteQueue`.
//! - After each batch the tracker asks for a compaction of a queue's deleted seq range once it
//!   holds `reclaim_after_deletes` deletes; every `reclaim_interval` it also asks for queues
//!   with at least `reclaim_min_deletes`, and for queues whose acks stopped since the previous
//!   check (a drained backlog's tail). A `DeleteQueue` asks for the queue's whole range at once.
//!   A busy queue streaming through its memtable is thus compacted rarely, while an idle one is
//!   cleaned within two intervals.
//! - The reclaim thread ([`run`]) runs those `compact_range` calls on the `messages` and `index`
//!   column families, off the commit thread (a manual compaction takes
//!   hundreds of milliseconds; commits must not wait for it). Requests that queued up while it
//!   worked are merged per queue.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use rocksdb::{BottommostLevelCompaction, CompactOptions, DB};

use crate::keys::{message_key, queue_range};
use crate::options::{CF_INDEX, CF_MESSAGES};
use crate::stats::Counters;
use crate::store::column_family;

/// A range of one queue to compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compaction {
    queue_id: u64,
    /// Inclusive seq bounds; the whole queue for a `DeleteQueue`.
    lowest: u64,
    highest: u64,
}

impl Compaction {
    fn merge(&mut self, other: Compaction) {
        self.lowest = self.lowest.min(other.lowest);
        self.highest = self.highest.max(other.highest);
    }
}

/// Deletes seen in one queue since its last reclaim.
#[derive(Debug, Clone, Copy)]
struct DeleteRun {
    count: u64,
    /// `count` at the previous periodic check: unchanged means the queue saw no acks since.
    count_at_last_check: u64,
    lowest: u64,
    highest: u64,
}

/// The commit thread's record of what has been deleted and not yet compacted.
pub(crate) struct ReclaimTracker {
    runs: HashMap<u64, DeleteRun>,
    /// Whole-queue deletions waiting to be sent.
    dropped_queues: Vec<u64>,
    after_deletes: u64,
    min_deletes: u64,
    interval: Duration,
    next_check: Instant,
    requests: Sender<Compaction>,
}

impl ReclaimTracker {
    pub(crate) fn new(options: &crate::StoreOptions, requests: Sender<Compaction>) -> Self {
        let interval = options.reclaim_interval.max(Duration::from_millis(10));
        ReclaimTracker {
            runs: HashMap::new(),
            dropped_queues: Vec::new(),
            after_deletes: options.reclaim_after_deletes.max(1),
            min_deletes: options.reclaim_min_deletes.max(1),
            interval,
            next_check: Instant::now() + interval,
            requests,
        }
    }

    /// Notes that message `seq` of `queue_id` was deleted.
    pub(crate) fn deleted(&mut self, queue_id: u64, seq: u64) {
        match self.runs.entry(queue_id) {
            Entry::Occupied(mut run) => {
                let run = run.get_mut();
                run.count += 1;
                run.lowest = run.lowest.min(seq);
                run.highest = run.highest.max(seq);
            }
            Entry::Vacant(slot) => {
                slot.insert(DeleteRun {
                    count: 1,
                    count_at_last_check: 0,
                    lowest: seq,
                    highest: seq,
                });
            }
        }
    }

    /// Notes that every message of `queue_id` was deleted.
    pub(crate) fn queue_deleted(&mut self, queue_id: u64) {
        self.runs.remove(&queue_id);
        self.dropped_queues.push(queue_id);
    }

    /// How long the commit thread may sleep before the next periodic check.
    pub(crate) fn time_to_next_check(&self, now: Instant) -> Duration {
        self.next_check.saturating_duration_since(now)
    }

    /// Sends the compactions that are due.
    pub(crate) fn schedule(&mut self, now: Instant) {
        for queue_id in self.dropped_queues.drain(..) {
            // A send fails only when the reclaim thread is gone (closing): nothing to do then.
            let _ = self.requests.send(Compaction {
                queue_id,
                lowest: 0,
                highest: u64::MAX,
            });
        }
        let periodic = now >= self.next_check;
        if periodic {
            self.next_check = now + self.interval;
        }
        let (after_deletes, min_deletes) = (self.after_deletes, self.min_deletes);
        let requests = &self.requests;
        self.runs.retain(|&queue_id, run| {
            // Due: many deletes; or, at a periodic check, enough deletes, or a queue whose acks
            // stopped (drained or idle) since the previous check, whatever its count.
            let due = run.count >= after_deletes
                || (periodic && (run.count >= min_deletes || run.count == run.count_at_last_check));
            if !due {
                if periodic {
                    run.count_at_last_check = run.count;
                }
                return true;
            }
            let _ = requests.send(Compaction {
                queue_id,
                lowest: run.lowest,
                highest: run.highest,
            });
            false
        });
    }
}

/// The reclaim thread's body: run compactions until the tracker is dropped or `stop` is set.
pub(crate) fn run(
    db: Arc<DB>,
    path: PathBuf,
    requests: Receiver<Compaction>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    while let Ok(first) = requests.recv() {
        let mut merged: Vec<Compaction> = vec![first];
        for next in requests.try_iter() {
            match merged.iter_mut().find(|c| c.queue_id == next.queue_id) {
                Some(existing) => existing.merge(next),
                None => merged.push(next),
            }
        }
        for compaction in merged {
            if stop.load(Ordering::Acquire) {
                return;
            }
            compact(&db, &path, compaction);
            Counters::add(&counters.reclaim_compactions, 1);
        }
    }
}

/// Compacts one queue's range in the three message column families.
fn compact(db: &DB, path: &std::path::Path, compaction: Compaction) {
    let started = Instant::now();
    let start = message_key(compaction.queue_id, compaction.lowest);
    let end = if compaction.highest == u64::MAX {
        queue_range(compaction.queue_id).1.to_vec()
    } else {
        message_key(compaction.queue_id, compaction.highest).to_vec()
    };
    // Also rewrite the bottommost level of the range: that is where the tombstones of a
    // drained range end up, and only a bottommost compaction drops them. With bodies in blob
    // files, these SST files hold keys only, so rewriting them is cheap.
    let mut options = CompactOptions::default();
    options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    for name in [CF_MESSAGES, CF_INDEX] {
        match column_family(db, path, name) {
            Ok(cf) => db.compact_range_cf_opt(cf, Some(&start[..]), Some(&end[..]), &options),
            Err(error) => tracing::warn!(%error, "reclaim skipped"),
        }
    }
    tracing::debug!(
        queue_id = compaction.queue_id,
        lowest = compaction.lowest,
        highest = compaction.highest,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reclaimed deleted messages"
    );
}
