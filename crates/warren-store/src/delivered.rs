//! Delivered watermarks: per queue, a seq at or above every seq ever handed to a consumer.
//!
//! After a crash, a message that was delivered before it must come back with
//! `redelivered = true` (consumers use the flag to trigger their idempotency checks). A queue
//! hands messages out in seq order (a requeued message goes back to its old place and is
//! flagged anyway), so one number per queue says which stored messages were delivered: every
//! seq at or below the queue's watermark. Recovery flags exactly those.
//!
//! The watermark must be on record *before* the delivery leaves the broker, or a kill right
//! after the delivery loses the flag. The commit loop cannot give that without making
//! deliveries wait for a batch (and for its fsync, when publishes share it), so watermarks go
//! to their own small file instead: `warren-delivered` in the data directory, one 24-byte record
//! per raise, appended with a single `write(2)` by the thread that dispatches. The kernel
//! keeps what was written when the process is killed, so `SIGKILL` loses nothing; the file is
//! not fsynced (a power loss can lose the flags of the last moments, as it can lose acks).
//!
//! The broker raises a queue's watermark ahead of its deliveries (a lease: see
//! `Queue::deliver` in the broker), so the file sees one write per few hundred deliveries,
//! not one per message. A lease may cover messages that were never delivered; after a crash
//! those come back flagged too, which AMQP allows (`redelivered` means "may have been
//! delivered before").
//!
//! At a clean stop the broker sets each queue's watermark to exactly the highest seq it
//! delivered ([`DeliveredLog::set`]), so after a clean restart no lease shows: only messages
//! that were delivered come back flagged.
//!
//! The log also says whether the last run stopped cleanly: the rewrite at close adds a
//! record for the reserved queue id [`CLEAN_ID`] (no durable queue has id 0), and the
//! rewrite at open drops it again, so only a run that reached `close` leaves it
//! ([`DeliveredLog::was_clean`]). A quorum queue needs it: after a crash it counts the
//! messages that may have been out with consumers as returned (`queue/quorum/`).
//!
//! Records: `queue_id` (u64 BE), `seq` (u64 BE), check (u64 BE, a mix of both, so a torn or
//! zeroed tail is recognised and ignored). A raise keeps the higher of the old mark and `seq`;
//! with [`SET`] in `seq` the record sets the mark to the rest of `seq` exactly (0 forgets the
//! queue: deleted). At open the log is read, reduced to one record per live queue and
//! rewritten (temp file, fsync, rename); it is rewritten the same way whenever it grows past
//! [`REWRITE_AT`], and at close.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::StoreError;

/// The log's file name in the data directory.
pub(crate) const FILE_NAME: &str = "warren-delivered";
const RECORD_LEN: usize = 24;
/// The log is reduced to one record per queue once it is this long.
const REWRITE_AT: u64 = 1 << 20;
const CHECK_SEED: u64 = 0x5741_5252_454e_444c; // "WARRENDL"
/// In a record's `seq`: set the mark to the other bits exactly instead of raising it.
const SET: u64 = 1 << 63;
/// The queue id of the record the rewrite at close adds: the run stopped cleanly.
const CLEAN_ID: u64 = 0;

/// The delivered watermarks of every queue and the file that keeps them.
pub(crate) struct DeliveredLog {
    path: PathBuf,
    state: Mutex<LogState>,
    /// The log held the clean-stop record when it was opened.
    clean: bool,
}

struct LogState {
    file: File,
    len: u64,
    marks: HashMap<u64, u64>,
}

fn check(queue_id: u64, seq: u64) -> u64 {
    // Not cryptographic: enough to tell a record from zeroes or a torn write.
    (queue_id ^ CHECK_SEED)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
        ^ seq.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

fn record(queue_id: u64, seq: u64) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..8].copy_from_slice(&queue_id.to_be_bytes());
    out[8..16].copy_from_slice(&seq.to_be_bytes());
    out[16..].copy_from_slice(&check(queue_id, seq).to_be_bytes());
    out
}

/// Applies the records in `bytes` to `marks`; stops at the first invalid record (a torn tail).
fn replay(bytes: &[u8], marks: &mut HashMap<u64, u64>) {
    for chunk in bytes.chunks_exact(RECORD_LEN) {
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&chunk[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let (queue_id, seq, sum) = (word(0), word(8), word(16));
        if sum != check(queue_id, seq) {
            break;
        }
        if seq & SET != 0 {
            match seq & !SET {
                0 => marks.remove(&queue_id),
                exact => marks.insert(queue_id, exact),
            };
        } else {
            let mark = marks.entry(queue_id).or_insert(0);
            *mark = (*mark).max(seq);
        }
    }
}

impl DeliveredLog {
    /// Reads the log in `dir` (if any), adds `extra` marks (from an older store format), and
    /// rewrites it reduced.
    pub(crate) fn open(dir: &Path, extra: HashMap<u64, u64>) -> Result<DeliveredLog, StoreError> {
        let path = dir.join(FILE_NAME);
        let io = |operation| io_error(&path, operation);
        let mut marks = HashMap::new();
        match File::open(&path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(io("read"))?;
                replay(&bytes, &mut marks);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("open")(e)),
        }
        let clean = marks.remove(&CLEAN_ID).is_some();
        for (queue_id, seq) in extra {
            let mark = marks.entry(queue_id).or_insert(0);
            *mark = (*mark).max(seq);
        }
        let (file, len) = rewrite(&path, &marks)?;
        Ok(DeliveredLog {
            path,
            state: Mutex::new(LogState { file, len, marks }),
            clean,
        })
    }

    /// Whether the run before this one stopped cleanly (reached `close`); false after a
    /// crash or kill, and for a new data directory.
    pub(crate) fn was_clean(&self) -> bool {
        self.clean
    }

    /// The watermark of `queue_id` (0: nothing delivered).
    pub(crate) fn mark(&self, queue_id: u64) -> u64 {
        self.state.lock().marks.get(&queue_id).copied().unwrap_or(0)
    }

    /// Raises the watermark of `queue_id` to `seq` (no-op if it is there already). On return
    /// the record is in the kernel: a process kill cannot lose it.
    pub(crate) fn raise(&self, queue_id: u64, seq: u64) -> Result<(), StoreError> {
        if seq == 0 || seq & SET != 0 {
            return Ok(());
        }
        let mut state = self.state.lock();
        if state.marks.get(&queue_id).is_some_and(|&m| m >= seq) {
            return Ok(());
        }
        self.append(&mut state, queue_id, seq)?;
        state.marks.insert(queue_id, seq);
        Ok(())
    }

    /// Sets the watermark of `queue_id` to exactly `seq`, lower or higher (0 forgets the
    /// queue).
    pub(crate) fn set(&self, queue_id: u64, seq: u64) -> Result<(), StoreError> {
        let seq = seq & !SET;
        let mut state = self.state.lock();
        if state.marks.get(&queue_id).copied().unwrap_or(0) == seq {
            return Ok(());
        }
        self.append(&mut state, queue_id, seq | SET)?;
        if seq == 0 {
            state.marks.remove(&queue_id);
        } else {
            state.marks.insert(queue_id, seq);
        }
        Ok(())
    }

    /// Rewrites the log reduced and fsynced, with the clean-stop record (at close).
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let mut marks = state.marks.clone();
        marks.insert(CLEAN_ID, 1);
        let (file, len) = rewrite(&self.path, &marks)?;
        state.file = file;
        state.len = len;
        Ok(())
    }

    fn append(&self, state: &mut LogState, queue_id: u64, seq: u64) -> Result<(), StoreError> {
        if state.len >= REWRITE_AT {
            let mut marks = state.marks.clone();
            replay(&record(queue_id, seq), &mut marks);
            let (file, len) = rewrite(&self.path, &marks)?;
            state.file = file;
            state.len = len;
            return Ok(());
        }
        state
            .file
            .write_all(&record(queue_id, seq))
            .map_err(io_error(&self.path, "append"))?;
        state.len += RECORD_LEN as u64;
        Ok(())
    }
}

/// Turns an I/O error of `operation` on the log at `path` into a [`StoreError`].
fn io_error(path: &Path, operation: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::DeliveredLog {
        operation,
        path,
        source,
    }
}

/// Writes `marks` to a new log (temp file, fsync, rename over the old one, fsync the
/// directory) and returns it open for appending, with its length.
fn rewrite(path: &Path, marks: &HashMap<u64, u64>) -> Result<(File, u64), StoreError> {
    let io = |operation| io_error(path, operation);
    let tmp = path.with_extension("tmp");
    let mut bytes = Vec::with_capacity(marks.len() * RECORD_LEN);
    for (&queue_id, &seq) in marks {
        bytes.extend_from_slice(&record(queue_id, seq));
    }
    {
        let mut file = File::create(&tmp).map_err(io("create"))?;
        file.write_all(&bytes).map_err(io("write"))?;
        file.sync_all().map_err(io("sync"))?;
    }
    std::fs::rename(&tmp, path).map_err(io("rename"))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the data directory"))?;
    }
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io("open for append"))?;
    Ok((file, bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_reopen_and_the_log_is_reduced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        for seq in 1..=1000 {
            log.raise(7, seq).expect("raise");
        }
        log.raise(7, 500).expect("lower is a no-op");
        log.raise(9, 3).expect("raise");
        log.raise(11, 4).expect("raise");
        log.set(11, 0).expect("forget");
        log.raise(13, 900).expect("raise");
        log.set(13, 12).expect("set lower");
        assert_eq!(log.mark(7), 1000);
        drop(log);
        let log = DeliveredLog::open(dir.path(), HashMap::from([(9, 2), (12, 5)])).expect("open");
        assert_eq!(
            (
                log.mark(7),
                log.mark(9),
                log.mark(11),
                log.mark(12),
                log.mark(13)
            ),
            (1000, 3, 0, 5, 12)
        );
        let len = std::fs::metadata(dir.path().join(FILE_NAME))
            .expect("metadata")
            .len();
        assert_eq!(len, 4 * RECORD_LEN as u64);
    }

    #[test]
    fn only_a_log_closed_by_sync_says_the_last_stop_was_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        assert!(!log.was_clean(), "a new log");
        log.raise(4, 8).expect("raise");
        log.sync().expect("close");
        drop(log);
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        assert!(log.was_clean());
        assert_eq!(log.mark(4), 8);
        assert_eq!(log.mark(CLEAN_ID), 0, "the marker is no queue's mark");
        drop(log); // a kill: no sync
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        assert!(!log.was_clean(), "the open before consumed the marker");
        assert_eq!(log.mark(4), 8);
    }

    #[test]
    fn a_torn_or_zeroed_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        log.raise(1, 10).expect("raise");
        drop(log);
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&[0u8; RECORD_LEN]);
        bytes.extend_from_slice(&record(1, 99)[..10]);
        std::fs::write(&path, bytes).expect("write");
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        assert_eq!(log.mark(1), 10);
    }

    #[test]
    fn the_log_is_rewritten_when_it_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        let raises = REWRITE_AT / RECORD_LEN as u64 + 10;
        for seq in 1..=raises {
            log.raise(3, seq).expect("raise");
        }
        let len = std::fs::metadata(dir.path().join(FILE_NAME))
            .expect("metadata")
            .len();
        assert!(len < REWRITE_AT, "{len}");
        drop(log);
        let log = DeliveredLog::open(dir.path(), HashMap::new()).expect("open");
        assert_eq!(log.mark(3), raises);
    }
}
