//! Measurements with the real `warren` binary (ignored by default: they take minutes).
//!
//! - `backlog_of_500k_persistent_messages_keeps_rss_flat_and_gives_disk_back`: 500,000
//!   persistent 1 KiB messages into one durable queue (confirms, 1000 in flight), no consumer;
//!   then a consumer drains it (prefetch 1000, ack multiple every 100). The broker's VmRSS is
//!   sampled throughout and must stay under 150 MiB; then the data directory must shrink back
//!   close to its starting size within a minute.
//! - `recovery_of_a_1m_message_queue`: 1,000,000 small persistent messages, SIGTERM, restart;
//!   time until the port accepts and a passive declare reports them all (the binary binds its
//!   listener before recovering, so the declare's answer is the figure that counts).
//!
//! Run: `cargo build -p warren && cargo test -p warren-integration --test backlog -- --ignored
//! --nocapture --test-threads 1`.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, PublisherConfirm};
use warren_integration::{BinaryBroker, connect};

const MIB: u64 = 1024 * 1024;
const RSS_LIMIT: u64 = 150 * MIB;
/// "Close to its starting size": the drained data dir may keep this much more than at start.
const RECLAIM_SLACK: u64 = 8 * MIB;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// VmRSS of `pid` in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Bytes of every file under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// "wal 12.0, sst 1.0, ..." MiB per kind of file in the data dir.
fn dir_breakdown(dir: &Path) -> String {
    let mut kinds: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = if name.ends_with(".log") {
            "wal"
        } else if name.ends_with(".sst") {
            "sst"
        } else if name.ends_with(".blob") {
            "blob"
        } else if name.starts_with("LOG") {
            "info-log"
        } else {
            "other"
        };
        *kinds.entry(kind).or_default() += entry.metadata().map_or(0, |m| m.len());
    }
    kinds
        .iter()
        .map(|(kind, bytes)| format!("{kind} {:.1}", mib(*bytes)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Samples a process's RSS every 100 ms on a thread, keeping the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        RssSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An incompressible body of `len` bytes carrying `id` first.
fn body(id: u64, len: usize) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

async fn declare(ch: &lapin::Channel, queue: &str, passive: bool) -> u32 {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            passive,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

/// Publishes `count` persistent messages of `len` bytes with `window` confirms in flight;
/// calls `progress(published)` every 50,000.
async fn publish_confirmed(
    url: &str,
    queue: &str,
    count: u64,
    len: usize,
    window: usize,
    mut progress: impl FnMut(u64),
) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch, queue, false).await;
    let mut in_flight: VecDeque<PublisherConfirm> = VecDeque::with_capacity(window);
    for id in 0..count {
        if in_flight.len() >= window
            && let Some(confirm) = in_flight.pop_front()
        {
            assert!(matches!(confirm.await.unwrap(), Confirmation::Ack(_)));
        }
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body(id, len),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        in_flight.push_back(confirm);
        if (id + 1) % 50_000 == 0 {
            progress(id + 1);
        }
    }
    for confirm in in_flight {
        assert!(matches!(confirm.await.unwrap(), Confirmation::Ack(_)));
    }
    conn.close(200, "done".into()).await.unwrap();
}

#[test]
#[ignore = "measurement: publishes and drains 500k messages (minutes)"]
fn backlog_of_500k_persistent_messages_keeps_rss_flat_and_gives_disk_back() {
    const MESSAGES: u64 = 500_000;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let broker = BinaryBroker::spawn(&data);
    let pid = broker.pid();
    let url = broker.url();
    let rt = runtime();
    std::thread::sleep(Duration::from_millis(500));
    let start_rss = rss(pid);
    let start_disk = dir_size(&data);
    println!(
        "start: rss {:.1} MiB, data dir {:.1} MiB",
        mib(start_rss),
        mib(start_disk)
    );
    let sampler = RssSampler::start(pid);

    let started = Instant::now();
    rt.block_on(publish_confirmed(
        &url,
        "backlog",
        MESSAGES,
        1024,
        1000,
        |n| {
            println!(
                "  published {n:>7}: rss {:.1} MiB, data dir {:.1} MiB, {:.0} msg/s",
                mib(rss(pid)),
                mib(dir_size(&data)),
                n as f64 / started.elapsed().as_secs_f64()
            );
        },
    ));
    let publish_time = started.elapsed();
    let after_publish = rss(pid);
    let full_disk = dir_size(&data);
    println!(
        "after publish ({:.1} s, {:.0} msg/s): rss {:.1} MiB (peak so far {:.1}), data dir {:.1} MiB",
        publish_time.as_secs_f64(),
        MESSAGES as f64 / publish_time.as_secs_f64(),
        mib(after_publish),
        mib(sampler.peak()),
        mib(full_disk)
    );

    let started = Instant::now();
    let drained = rt.block_on(async {
        let conn = connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        assert_eq!(u64::from(declare(&ch, "backlog", true).await), MESSAGES);
        ch.basic_qos(1000, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = ch
            .basic_consume(
                "backlog".into(),
                "drain".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut next = 0u64;
        while next < MESSAGES {
            let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
                .await
                .expect("drain stalled")
                .unwrap()
                .unwrap();
            assert_eq!(
                u64::from_be_bytes(d.data[..8].try_into().unwrap()),
                next,
                "out of order"
            );
            next += 1;
            if next.is_multiple_of(100) || next == MESSAGES {
                ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                    .await
                    .unwrap();
            }
            if next.is_multiple_of(50_000) {
                println!(
                    "  drained {next:>7}: rss {:.1} MiB, data dir {:.1} MiB, {:.0} msg/s",
                    mib(rss(pid)),
                    mib(dir_size(&data)),
                    next as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        assert_eq!(declare(&ch, "backlog", true).await, 0);
        conn.close(200, "done".into()).await.unwrap();
        next
    });
    let drain_time = started.elapsed();
    let after_drain = rss(pid);
    println!(
        "after drain of {drained} ({:.1} s, {:.0} msg/s): rss {:.1} MiB; peak rss over the run {:.1} MiB",
        drain_time.as_secs_f64(),
        drained as f64 / drain_time.as_secs_f64(),
        mib(after_drain),
        mib(sampler.peak())
    );

    // Disk: back close to the start within a minute of the last ack.
    let drained_at = Instant::now();
    let mut reclaimed_after = None;
    let target = start_disk + RECLAIM_SLACK;
    let mut next_report = Duration::ZERO;
    while drained_at.elapsed() < Duration::from_secs(60) {
        let size = dir_size(&data);
        if drained_at.elapsed() >= next_report {
            println!(
                "  {:>4.1} s after the drain: data dir {:.1} MiB ({})",
                drained_at.elapsed().as_secs_f64(),
                mib(size),
                dir_breakdown(&data)
            );
            next_report += Duration::from_secs(10);
        }
        if size <= target {
            reclaimed_after = Some(drained_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let end_disk = dir_size(&data);
    println!(
        "disk: start {:.1} MiB, full {:.1} MiB, {:.1} MiB ({}) {} after the drain",
        mib(start_disk),
        mib(full_disk),
        mib(end_disk),
        dir_breakdown(&data),
        match reclaimed_after {
            Some(t) => format!("{:.1} s", t.as_secs_f64()),
            None => "60 s".to_owned(),
        }
    );
    let peak = sampler.peak();
    drop(sampler);
    println!("end: rss {:.1} MiB", mib(rss(pid)));
    assert!(
        peak < RSS_LIMIT,
        "peak RSS {:.1} MiB over the {:.0} MiB limit",
        mib(peak),
        mib(RSS_LIMIT)
    );
    assert!(
        reclaimed_after.is_some(),
        "data dir still {:.1} MiB a minute after the drain (start {:.1} MiB)",
        mib(end_disk),
        mib(start_disk)
    );
    assert_eq!(broker.terminate(), Some(0));
}

#[test]
#[ignore = "measurement: publishes 1M messages and times recovery (minutes)"]
fn recovery_of_a_1m_message_queue() {
    const MESSAGES: u64 = 1_000_000;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let broker = BinaryBroker::spawn(&data);
    let rt = runtime();
    let started = Instant::now();
    rt.block_on(publish_confirmed(
        &broker.url(),
        "recover",
        MESSAGES,
        64,
        1000,
        |n| {
            if n % 250_000 == 0 {
                println!("  published {n}");
            }
        },
    ));
    println!(
        "published {MESSAGES} x 64 B in {:.1} s; rss {:.1} MiB; data dir {:.1} MiB",
        started.elapsed().as_secs_f64(),
        mib(rss(broker.pid())),
        mib(dir_size(&data))
    );
    let stopping = Instant::now();
    assert_eq!(broker.terminate(), Some(0));
    println!("SIGTERM to exit: {:.2} s", stopping.elapsed().as_secs_f64());

    let restarting = Instant::now();
    let broker = BinaryBroker::spawn(&data);
    let accepting = restarting.elapsed();
    let count = rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        declare(&ch, "recover", true).await
    });
    let ready = restarting.elapsed();
    let rss_after = rss(broker.pid());
    println!(
        "recovery of {count} messages: port accepts after {:.2} s (the listener is bound before recovery), passive declare answered after {:.2} s; rss after recovery {:.1} MiB",
        accepting.as_secs_f64(),
        ready.as_secs_f64(),
        mib(rss_after)
    );
    for line in broker.log_text().lines() {
        if line.contains("recovered") || line.contains("Warren started") {
            println!("  broker: {line}");
        }
    }
    assert_eq!(u64::from(count), MESSAGES);
    assert_eq!(broker.terminate(), Some(0));
}
