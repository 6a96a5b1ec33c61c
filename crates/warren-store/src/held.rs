//! Held messages: what a delayed exchange keeps until each message's due time.
//!
//! A *hold* is one delayed exchange's set of held messages, named by a `hold_id` the broker
//! chooses (durable exchanges get one from `Store::next_id`, so it is stable across
//! restarts; others a per-process id). Each held message is keyed by [`HeldKey`]: hold,
//! due time (ms since the Unix epoch), then a seq that orders messages due in the same
//! millisecond by arrival. Keys are big-endian (`keys.rs`), so a hold is one range ordered
//! by due time: the next message to route is the hold's first key, and everything due is a
//! prefix of the range. Nothing about a held message lives in RAM here: the broker keeps
//! only each hold's earliest due time and its count.
//!
//! Writes go through the group-commit loop (`WriteOp::PutHeld` / `DeleteHeld` /
//! `DeleteHold`), so a durable held message is fsynced in the same batch as the queue
//! writes around it. Bodies are in `held` (blob files for large ones); `held-index` has the
//! same keys with a one-byte value, 1 for durable, so recovery
//! ([`Store::for_each_held`]) and the timer's "what is next" ([`Store::first_held`]) never
//! load a body. Reads block on disk: the broker calls them from blocking threads or at
//! recovery.

use bytes::Bytes;
use rocksdb::{DBRawIterator, ReadOptions};

use crate::Store;
use crate::error::StoreError;
use crate::keys::{decode_held_key, held_key, hold_range};
use crate::options::{CF_HELD, CF_HELD_INDEX};
use crate::store::column_family;

/// Where a held message sits: its hold, its due time and its seq within the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeldKey {
    /// The hold (one per delayed exchange).
    pub hold_id: u64,
    /// When the message is due, in ms since the Unix epoch.
    pub due_ms: u64,
    /// Arrival order within the hold.
    pub seq: u64,
}

impl HeldKey {
    /// The key right after this one in its hold (to resume a scan past it).
    fn successor(self) -> HeldKey {
        match self.seq.checked_add(1) {
            Some(seq) => HeldKey { seq, ..self },
            None => HeldKey {
                due_ms: self.due_ms.saturating_add(1),
                seq: 0,
                ..self
            },
        }
    }
}

impl Store {
    /// Up to `limit` held messages of `hold_id` due at or before `due_by` (ms since the
    /// epoch), in key order (due time, then seq), starting after `after` when given.
    pub fn due_held(
        &self,
        hold_id: u64,
        after: Option<HeldKey>,
        due_by: u64,
        limit: usize,
    ) -> Result<Vec<(HeldKey, Bytes)>, StoreError> {
        let from = after.map_or(
            HeldKey {
                hold_id,
                due_ms: 0,
                seq: 0,
            },
            HeldKey::successor,
        );
        let mut iter = self.hold_iterator(CF_HELD, hold_id, true)?;
        iter.seek(held_key(from));
        let mut out = Vec::new();
        while out.len() < limit {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            let key = decode_held_key(key).ok_or_else(|| self.corrupt_held(key))?;
            if key.due_ms > due_by {
                break;
            }
            out.push((key, Bytes::copy_from_slice(value)));
            iter.next();
        }
        iter.status()
            .map_err(|source| self.rocks("read due held messages", source))?;
        Ok(out)
    }

    /// The first (earliest due) held message of `hold_id`, if any; reads only `held-index`.
    pub fn first_held(&self, hold_id: u64) -> Result<Option<HeldKey>, StoreError> {
        let mut iter = self.hold_iterator(CF_HELD_INDEX, hold_id, true)?;
        iter.seek(hold_range(hold_id).0);
        let first = match iter.key() {
            Some(key) => Some(decode_held_key(key).ok_or_else(|| self.corrupt_held(key))?),
            None => None,
        };
        iter.status()
            .map_err(|source| self.rocks("read the first held message", source))?;
        Ok(first)
    }

    /// Recovery: calls `visit(key, durable)` for every held message of every hold, in key
    /// order, reading only `held-index` (no bodies).
    pub fn for_each_held(&self, mut visit: impl FnMut(HeldKey, bool)) -> Result<(), StoreError> {
        let db = self.db();
        let mut read = ReadOptions::default();
        read.fill_cache(false);
        let mut iter = db.raw_iterator_cf_opt(column_family(db, self.path(), CF_HELD_INDEX)?, read);
        iter.seek_to_first();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let key = decode_held_key(key).ok_or_else(|| self.corrupt_held(key))?;
            visit(key, value.first() == Some(&1));
            iter.next();
        }
        iter.status()
            .map_err(|source| self.rocks("read held messages", source))
    }

    /// A raw iterator over `cf` bounded to the range of `hold_id`, not yet positioned.
    fn hold_iterator(
        &self,
        cf: &'static str,
        hold_id: u64,
        fill_cache: bool,
    ) -> Result<DBRawIterator<'_>, StoreError> {
        let db = self.db();
        let (_, end) = hold_range(hold_id);
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(end.to_vec());
        read.fill_cache(fill_cache);
        Ok(db.raw_iterator_cf_opt(column_family(db, self.path(), cf)?, read))
    }

    fn corrupt_held(&self, key: &[u8]) -> StoreError {
        StoreError::Corrupt {
            what: "held message key",
            path: self.path().to_path_buf(),
            key: key.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StoreOptions, WriteOp};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn key(hold_id: u64, due_ms: u64, seq: u64) -> HeldKey {
        HeldKey {
            hold_id,
            due_ms,
            seq,
        }
    }

    #[test]
    fn held_messages_come_back_by_due_time_and_transient_ones_are_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
        let runtime = runtime();
        let mut last = None;
        for (k, durable) in [
            (key(7, 300, 1), true),
            (key(7, 100, 2), false),
            (key(7, 100, 3), true),
            (key(8, 50, 1), true),
        ] {
            last = Some(store.submit(WriteOp::PutHeld {
                key: k,
                value: Bytes::from(format!("{}-{}", k.due_ms, k.seq)),
                durable,
            }));
        }
        runtime
            .block_on(store.wait_durable(last.expect("ticket")))
            .expect("written");

        assert_eq!(store.first_held(7).expect("first"), Some(key(7, 100, 2)));
        let due = store.due_held(7, None, 200, 10).expect("due");
        assert_eq!(
            due.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [key(7, 100, 2), key(7, 100, 3)]
        );
        assert_eq!(due[1].1, Bytes::from("100-3"));
        let rest = store
            .due_held(7, Some(key(7, 100, 2)), 1_000, 1)
            .expect("due");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, key(7, 100, 3));

        let ticket = store.submit(WriteOp::DeleteHeld {
            key: key(7, 100, 2),
        });
        runtime
            .block_on(store.wait_durable(ticket))
            .expect("deleted");
        let mut seen = Vec::new();
        store
            .for_each_held(|k, durable| seen.push((k, durable)))
            .expect("scan");
        assert_eq!(
            seen,
            [
                (key(7, 100, 3), true),
                (key(7, 300, 1), true),
                (key(8, 50, 1), true)
            ]
        );

        let ticket = store.submit(WriteOp::DeleteHold { hold_id: 7 });
        runtime
            .block_on(store.wait_durable(ticket))
            .expect("dropped");
        assert_eq!(store.first_held(7).expect("first"), None);
        assert_eq!(store.first_held(8).expect("first"), Some(key(8, 50, 1)));
        drop(store);

        let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen");
        assert_eq!(store.first_held(8).expect("first"), Some(key(8, 50, 1)));
        assert_eq!(
            store.due_held(8, None, 50, 10).expect("due")[0].1,
            Bytes::from("50-1")
        );
    }
}
