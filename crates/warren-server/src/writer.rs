//! The connection writer: one task per connection that owns the socket's write half
//! (a TCP socket's, or a TLS stream's, which encrypts on the way).
//!
//! Everything the connection sends (method replies, deliveries, confirms, heartbeats) is
//! appended to the [`Outbox`] by the connection task; the writer swaps the whole pending
//! buffer out and writes it with one `write_all`, so a burst of frames costs one syscall.
//! The outbox's size is the connection's backpressure signal: above the high-water mark
//! the connection task stops reading the socket and taking deliveries until it drains.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes pending in an outbox above which the connection stops producing more.
pub(crate) const OUTBOX_HIGH_WATER: usize = 4 * 1024 * 1024;

/// The buffer between the connection task and its writer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    buf: Mutex<Vec<u8>>,
    pending: AtomicUsize,
    closing: AtomicBool,
    wake_writer: Notify,
    drained: Notify,
    /// A write failed: the peer is gone (the writer has stopped).
    failed: AtomicBool,
    failed_notify: Notify,
}

impl Outbox {
    /// Append `out` (and leave it empty, keeping its capacity when possible).
    pub(crate) fn push(&self, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        let n = out.len();
        {
            let mut buf = self.buf.lock();
            if buf.is_empty() {
                std::mem::swap(&mut *buf, out);
            } else {
                buf.extend_from_slice(out);
                out.clear();
            }
        }
        self.pending.fetch_add(n, Ordering::Release);
        self.wake_writer.notify_one();
    }

    /// Bytes not yet written to the socket.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.pending() >= OUTBOX_HIGH_WATER
    }

    /// Wait until the writer has written what was pending.
    pub(crate) async fn drained(&self) {
        let notified = self.drained.notified();
        if self.pending() < OUTBOX_HIGH_WATER / 2 {
            return;
        }
        notified.await;
    }

    /// Wait until a write to the socket fails (a blocked connection, which does not read,
    /// learns this way that its client went away).
    pub(crate) async fn write_failed(&self) {
        let notified = self.failed_notify.notified();
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Ask the writer to write what is pending, then close the socket.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake_writer.notify_one();
    }
}

/// The writer task body. Returns when the outbox is closed and flushed, or on a write error.
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    mut socket: W,
    outbox: Arc<Outbox>,
    io: Arc<warren_broker::stats::IoCounters>,
) -> std::io::Result<()> {
    let mut local: Vec<u8> = Vec::new();
    loop {
        {
            let mut buf = outbox.buf.lock();
            std::mem::swap(&mut *buf, &mut local);
        }
        if local.is_empty() {
            if outbox.closing.load(Ordering::Acquire) {
                break;
            }
            outbox.wake_writer.notified().await;
            continue;
        }
        io.send_pend
            .store(outbox.pending() as u64, Ordering::Relaxed);
        let result = socket.write_all(&local).await;
        io.sent(local.len());
        outbox.pending.fetch_sub(local.len(), Ordering::Release);
        outbox.drained.notify_waiters();
        if let Err(e) = result {
            outbox.failed.store(true, Ordering::Release);
            outbox.failed_notify.notify_waiters();
            return Err(e);
        }
        // Give back what a burst grew, so that idle connections stay small.
        if local.capacity() > 1024 * 1024 {
            local = Vec::new();
        } else {
            local.clear();
        }
    }
    socket.shutdown().await
}
