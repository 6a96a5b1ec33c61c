//! Resource alarms (memory high watermark, disk free limit) and blocked connections, as
//! RabbitMQ 3.10 does them: a connection that publishes while an alarm is raised gets
//! connection.blocked (if it announced the capability) and is not read until every alarm
//! clears; its consumers keep receiving; connections that only consume are not blocked.
//!
//! Thresholds are changed at run time through `Broker::alarms()`, as an operator would with
//! `rabbitmqctl set_vm_memory_high_watermark` / `set_disk_free_limit`. The protocol-level
//! tests (raw sockets) set a threshold the process is already past; the two load tests
//! trip the alarms by real growth: transient messages held in RAM for the memory alarm,
//! persistent confirmed publishes written to RocksDB for the disk alarm.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use core_support::raw::{self, RawClient, RawFrame, frame, method, short};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Event};
use warren_broker::alarms::available_disk;
use warren_broker::{BrokerError, DiskFreeLimit, MemoryWatermark};
use warren_integration::{BinaryBroker, TestBroker, TestConfig, connect};

/// The load tests measure process-wide figures (RSS) or fill a file system: one at a time.
static LOAD_TEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DEADLINE: Duration = Duration::from_secs(120);

fn fast_checks() -> TestConfig {
    let mut config = TestConfig::default();
    config.broker.alarms.check_interval = Duration::from_millis(100);
    config
}

fn is_blocked(f: &RawFrame) -> bool {
    f.class_method() == Some((10, 60))
}

fn is_unblocked(f: &RawFrame) -> bool {
    f.class_method() == Some((10, 61))
}

/// The reason of a connection.blocked frame.
fn blocked_reason(f: &RawFrame) -> String {
    let len = f.payload[4] as usize;
    String::from_utf8(f.payload[5..5 + len].to_vec()).unwrap()
}

/// queue.declare arguments: `flags` bit 0 passive, bit 1 durable.
fn declare_args(name: &str, flags: u8) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(name));
    args.push(flags);
    args.extend_from_slice(&0u32.to_be_bytes());
    args
}

/// The message count of a queue.declare-ok.
fn declare_ok_count(f: &RawFrame) -> u32 {
    assert_eq!(f.class_method(), Some((50, 11)), "queue.declare-ok: {f:?}");
    let name_len = f.payload[4] as usize;
    let at = 5 + name_len;
    u32::from_be_bytes(f.payload[at..at + 4].try_into().unwrap())
}

/// A raw connection with channel 1 open and `queue` declared.
fn raw_publisher(
    broker: &TestBroker,
    heartbeat: u16,
    capabilities: &[&str],
    queue: &str,
) -> RawClient {
    let mut c = RawClient::open_with_capabilities(broker.addr(), heartbeat, capabilities);
    c.send(&frame(1, 1, &method(20, 10, &short(""))));
    assert_eq!(raw::next_frame(&mut c).class_method(), Some((20, 11)));
    c.send(&frame(1, 1, &method(50, 10, &declare_args(queue, 0))));
    assert_eq!(declare_ok_count(&raw::next_frame(&mut c)), 0);
    c
}

/// Nothing at all arrives from the broker for `wait` (heartbeats are off).
fn assert_silent(c: &mut RawClient, wait: Duration) {
    c.stream.set_read_timeout(Some(wait)).unwrap();
    let got = c.read_frame();
    assert!(got.is_none(), "expected silence, got {got:?}");
    c.stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
}

fn publish_frames(queue: &str, body: &[u8]) -> Vec<u8> {
    raw::publish_bytes("", queue, false, &[], body)
}

#[test]
fn server_properties_advertise_the_connection_blocked_capability() {
    let broker = TestBroker::start();
    let mut c = RawClient::connect(broker.addr());
    c.send(b"AMQP\x00\x00\x09\x01");
    let start = c.read_frame().unwrap();
    assert_eq!(start.class_method(), Some((10, 10)));
    let mut entry = short("connection.blocked");
    entry.extend_from_slice(&[b't', 1]);
    assert!(
        start.payload.windows(entry.len()).any(|w| w == entry),
        "connection.blocked not among the server capabilities"
    );
}

#[test]
fn publishing_during_a_memory_alarm_blocks_the_connection_until_the_alarm_clears() {
    let broker = TestBroker::start_with(fast_checks());
    let alarms = Arc::clone(broker.broker().alarms());
    let mut c = raw_publisher(&broker, 0, &["connection.blocked"], "mem-q");
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(1));
    assert!(alarms.current().memory);

    // The first content frame blocks the connection: connection.blocked with RabbitMQ's
    // reason, and the socket is no longer read.
    c.send(&publish_frames("mem-q", b"first"));
    let blocked = raw::next_frame(&mut c);
    assert!(
        is_blocked(&blocked),
        "expected connection.blocked, got {blocked:?}"
    );
    assert_eq!(blocked_reason(&blocked), "low on memory");
    c.send(&publish_frames("mem-q", b"second"));
    c.send(&frame(1, 1, &method(50, 10, &declare_args("mem-q", 1))));
    assert_silent(&mut c, Duration::from_millis(1500));
    let queue = broker
        .broker()
        .vhost("/")
        .unwrap()
        .queue("mem-q", 0)
        .unwrap();
    assert_eq!(
        queue.message_count(),
        0,
        "the blocking publish (its body unread) and the next must wait"
    );

    // Every alarm clears: connection.unblocked, then the frames sent meanwhile run.
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(u64::MAX));
    let unblocked = raw::next_frame(&mut c);
    assert!(
        is_unblocked(&unblocked),
        "expected connection.unblocked, got {unblocked:?}"
    );
    assert_eq!(declare_ok_count(&raw::next_frame(&mut c)), 2);
}

#[test]
fn a_client_without_the_capability_is_blocked_without_notification() {
    let broker = TestBroker::start_with(fast_checks());
    let alarms = Arc::clone(broker.broker().alarms());
    let mut c = raw_publisher(&broker, 0, &[], "disk-q");
    alarms.set_disk_free_limit(DiskFreeLimit::Absolute(u64::MAX));
    assert!(alarms.current().disk);

    c.send(&publish_frames("disk-q", b"m"));
    c.send(&frame(1, 1, &method(50, 10, &declare_args("disk-q", 1))));
    assert_silent(&mut c, Duration::from_millis(1500));

    alarms.set_disk_free_limit(DiskFreeLimit::Absolute(0));
    // No connection.unblocked either: the next frame is the declare-ok.
    assert_eq!(declare_ok_count(&raw::next_frame(&mut c)), 1);
}

#[test]
fn the_connection_stays_blocked_until_every_alarm_has_cleared() {
    let broker = TestBroker::start_with(fast_checks());
    let alarms = Arc::clone(broker.broker().alarms());
    let mut c = raw_publisher(&broker, 0, &["connection.blocked"], "both-q");
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(1));
    alarms.set_disk_free_limit(DiskFreeLimit::Absolute(u64::MAX));
    c.send(&publish_frames("both-q", b"m"));
    let blocked = raw::next_frame(&mut c);
    assert!(is_blocked(&blocked), "{blocked:?}");
    assert_eq!(blocked_reason(&blocked), "low on memory & disk");
    c.send(&frame(1, 1, &method(50, 10, &declare_args("both-q", 1))));

    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(u64::MAX));
    assert_silent(&mut c, Duration::from_millis(1500));
    alarms.set_disk_free_limit(DiskFreeLimit::Absolute(0));
    assert!(is_unblocked(&raw::next_frame(&mut c)));
    assert_eq!(declare_ok_count(&raw::next_frame(&mut c)), 1);
}

#[test]
fn a_blocked_publisher_is_not_closed_for_missing_heartbeats() {
    let broker = TestBroker::start_with(fast_checks());
    let alarms = Arc::clone(broker.broker().alarms());
    // Heartbeat 1 s: an unblocked client silent for over 2 s is closed.
    let mut c = raw_publisher(&broker, 1, &["connection.blocked"], "hb-q");
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(1));
    c.send(&publish_frames("hb-q", b"m"));
    let mut frames = Vec::new();
    let blocked = loop {
        let f = c.read_frame().expect("connection.blocked");
        if f.frame_type != 8 {
            break f;
        }
    };
    assert!(is_blocked(&blocked), "{blocked:?}");

    // Silent for 5 s: the broker keeps sending heartbeats and does not close.
    let silent_until = Instant::now() + Duration::from_secs(5);
    c.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while Instant::now() < silent_until {
        if let Some(f) = c.read_frame() {
            frames.push(f);
        }
    }
    assert!(
        frames.iter().all(|f| f.frame_type == 8),
        "only heartbeats while blocked, got {frames:?}"
    );
    assert!(
        !frames.is_empty(),
        "the broker sends heartbeats while blocked"
    );

    c.stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(u64::MAX));
    c.send(&frame(8, 0, &[]));
    c.send(&frame(1, 1, &method(50, 10, &declare_args("hb-q", 1))));
    let unblocked = raw::next_frame(&mut c);
    assert!(is_unblocked(&unblocked), "{unblocked:?}");
    assert_eq!(declare_ok_count(&raw::next_frame(&mut c)), 1);
}

#[test]
fn a_blocked_client_that_goes_away_is_closed_when_writes_fail() {
    let broker = TestBroker::start_with(fast_checks());
    let alarms = Arc::clone(broker.broker().alarms());
    // Heartbeat 1 s: the broker writes a heartbeat every 0.5 s, the only traffic while the
    // connection is blocked. Its exclusive queue shows when the connection is closed.
    let mut c = RawClient::open_with_capabilities(broker.addr(), 1, &["connection.blocked"]);
    c.send(&frame(1, 1, &method(20, 10, &short(""))));
    assert_eq!(raw::next_frame(&mut c).class_method(), Some((20, 11)));
    c.send(&frame(1, 1, &method(50, 10, &declare_args("gone-q", 4))));
    assert_eq!(declare_ok_count(&raw::next_frame(&mut c)), 0);
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(1));
    c.send(&publish_frames("gone-q", b"m"));
    assert!(is_blocked(&raw::next_frame(&mut c)));
    drop(c);

    let vhost = broker.broker().vhost("/").unwrap();
    let deadline = Instant::now() + DEADLINE;
    while !matches!(vhost.queue("gone-q", 0), Err(BrokerError::NotFound(_))) {
        assert!(
            Instant::now() < deadline,
            "the blocked connection of a vanished client was not closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(alarms.current().memory, "closed while still blocked");
}

/// connection.blocked / unblocked as lapin reports them.
#[derive(Default)]
struct BlockedEvents {
    blocked: AtomicU64,
    unblocked: AtomicU64,
    reason: Mutex<String>,
}

impl BlockedEvents {
    fn watch(conn: &Connection) -> Arc<BlockedEvents> {
        let events = Arc::new(BlockedEvents::default());
        let mut stream = Box::pin(conn.events_listener());
        let seen = Arc::clone(&events);
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                match event {
                    Event::ConnectionBlocked(reason) => {
                        *seen.reason.lock().unwrap() = reason;
                        seen.blocked.fetch_add(1, Ordering::SeqCst);
                    }
                    Event::ConnectionUnblocked => {
                        seen.unblocked.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        });
        events
    }

    fn blocked(&self) -> u64 {
        self.blocked.load(Ordering::SeqCst)
    }

    fn unblocked(&self) -> u64 {
        self.unblocked.load(Ordering::SeqCst)
    }
}

/// Wait (generously) for `f`; panic with `what` at the deadline.
async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn declare(ch: &Channel, name: &str, durable: bool) {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn queue_depth(ch: &Channel, name: &str) -> u32 {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

/// Publishes numbered messages with confirms until `stop`, recording every confirmed
/// number. A publish that the broker does not read (blocked) waits inside lapin.
struct Publisher {
    /// Held until every confirm is in: lapin closes a channel when its last handle goes.
    channel: Channel,
    confirmed: Arc<Mutex<HashSet<u64>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn start(
        ch: Channel,
        queue: String,
        tag: u64,
        body_size: usize,
        persistent: bool,
    ) -> Publisher {
        let confirmed = Arc::new(Mutex::new(HashSet::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, st) = (Arc::clone(&confirmed), Arc::clone(&sent), Arc::clone(&stop));
        let channel = ch.clone();
        let task = tokio::spawn(async move {
            let properties = if persistent {
                BasicProperties::default().with_delivery_mode(2)
            } else {
                BasicProperties::default()
            };
            let mut i = 0u64;
            while !st.load(Ordering::SeqCst) {
                let id = (tag << 32) | i;
                let mut body = vec![0u8; body_size];
                body[..8].copy_from_slice(&id.to_be_bytes());
                let confirm = ch
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties.clone(),
                    )
                    .await
                    .unwrap();
                s.fetch_add(1, Ordering::SeqCst);
                let record = Arc::clone(&c);
                tokio::spawn(async move {
                    let confirmation = confirm.await.unwrap();
                    assert!(confirmation.is_ack(), "message {id:#x} nacked");
                    record.lock().unwrap().insert(id);
                });
                i += 1;
                // Keep the publisher at most a few thousand messages ahead of its confirms.
                while i - (c.lock().unwrap().len() as u64) > 2_000 && !st.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        Publisher {
            channel,
            confirmed,
            sent,
            stop,
            task,
        }
    }

    fn confirmed(&self) -> HashSet<u64> {
        self.confirmed.lock().unwrap().clone()
    }

    fn confirmed_count(&self) -> usize {
        self.confirmed.lock().unwrap().len()
    }

    /// Stop after the publish in flight; every message it sent is then confirmed.
    async fn finish(self) -> HashSet<u64> {
        let Publisher {
            channel,
            confirmed,
            sent,
            stop,
            task,
        } = self;
        stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("publisher stops")
            .unwrap();
        let sent = sent.load(Ordering::SeqCst) as usize;
        wait_for("every sent message confirmed", || {
            confirmed.lock().unwrap().len() == sent
        })
        .await;
        drop(channel);
        confirmed.lock().unwrap().clone()
    }
}

/// Consume `queue` (manual acks) and record each message's number.
async fn start_draining(ch: &Channel, queue: &str) -> Arc<Mutex<HashSet<u64>>> {
    ch.basic_qos(200, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "drain".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let id = u64::from_be_bytes(delivery.data[..8].try_into().unwrap());
            assert!(
                s.lock().unwrap().insert(id),
                "message {id:#x} delivered twice"
            );
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
    });
    seen
}

/// The memory alarm trips by real growth: transient 64 KiB messages held in RAM (the
/// message budget is raised so none is paged out) past an absolute watermark set 64 MiB
/// above the current RSS. The publisher is blocked and its publishes are not read; a
/// consumer on the blocked connection still gets deliveries; a consumer on another
/// connection drains the queue. The alarm is then cleared by raising the watermark (as
/// `rabbitmqctl set_vm_memory_high_watermark` would): freed heap memory is not reliably
/// returned to the OS, so RSS need not fall after the drain. Publishing then resumes and
/// every message published arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_alarm_blocks_a_publisher_while_consumers_keep_receiving() {
    let _serial = LOAD_TEST.lock().await;
    let mut config = fast_checks();
    config.broker.message_memory = 8 << 30;
    let broker = TestBroker::start_with(config);
    let alarms = Arc::clone(broker.broker().alarms());

    let publisher = connect(&broker.url()).await;
    let events = BlockedEvents::watch(&publisher);
    let pch = publisher.create_channel().await.unwrap();
    pch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&pch, "mem-load", false).await;
    declare(&pch, "mem-side", false).await;
    let other = connect(&broker.url()).await;
    let other_events = BlockedEvents::watch(&other);
    let och = other.create_channel().await.unwrap();

    // Messages for a consumer on the publishing connection: any publish during the alarm
    // blocks its connection, so they are published now and held unacked by a consumer on
    // the other connection, which requeues them once the publisher is blocked.
    for i in 0..10u8 {
        pch.basic_publish(
            "".into(),
            "mem-side".into(),
            BasicPublishOptions::default(),
            &[i],
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let hch = other.create_channel().await.unwrap();
    let mut holder = hch
        .basic_consume(
            "mem-side".into(),
            "holder".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for _ in 0..10 {
        tokio::time::timeout(DEADLINE, holder.next())
            .await
            .expect("held delivery")
            .unwrap()
            .unwrap();
    }
    // The consumer on the publishing connection, set up before it is blocked.
    let side_ch = publisher.create_channel().await.unwrap();
    let mut side = side_ch
        .basic_consume(
            "mem-side".into(),
            "side".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let rss = alarms.status().memory_used.expect("RSS readable");
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(rss + (64 << 20)));
    assert!(!alarms.current().memory);
    let load = Publisher::start(pch.clone(), "mem-load".into(), 1, 64 * 1024, false);
    wait_for("connection.blocked", || events.blocked() == 1).await;
    assert_eq!(*events.reason.lock().unwrap(), "low on memory");
    assert!(alarms.current().memory);
    assert!(publisher.status().blocked());

    // Not read: the queue stops growing.
    let depth = queue_depth(&och, "mem-load").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(queue_depth(&och, "mem-load").await, depth);
    assert!(depth as usize >= load.confirmed_count());

    // The blocked connection's consumer still receives: closing the holder's channel
    // requeues what it held.
    hch.close(200, "requeue".into()).await.unwrap();
    for i in 0..10u8 {
        let delivery = tokio::time::timeout(DEADLINE, side.next())
            .await
            .expect("delivery on the blocked connection")
            .unwrap()
            .unwrap();
        assert_eq!(delivery.data, [i]);
    }

    // Another connection drains the queue, acking as it goes.
    let drained = start_draining(&och, "mem-load").await;
    wait_for("the backlog drained", || {
        drained.lock().unwrap().len() >= depth as usize
    })
    .await;
    assert_eq!(
        other_events.blocked(),
        0,
        "a consuming connection is not blocked"
    );

    // (Draining may give memory back and clear the alarm by itself, so the publisher may
    // have been unblocked, and blocked again, by now; the watermark clears it for good.)
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(u64::MAX));
    wait_for("connection.unblocked", || {
        events.unblocked() == events.blocked() && !publisher.status().blocked()
    })
    .await;
    let resumed_from = load.confirmed_count();
    wait_for("publishing resumed", || {
        load.confirmed_count() >= resumed_from + 100
    })
    .await;
    let confirmed = load.finish().await;
    wait_for("every confirmed message consumed", || {
        drained.lock().unwrap().is_superset(&confirmed)
    })
    .await;
    assert_eq!(drained.lock().unwrap().len(), confirmed.len());
}

/// A connection that only consumes (and acks) is never blocked, whatever the alarms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_only_consumes_is_not_blocked() {
    let broker = TestBroker::start_with(fast_checks());
    let alarms = Arc::clone(broker.broker().alarms());
    let conn = connect(&broker.url()).await;
    let events = BlockedEvents::watch(&conn);
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "consume-only", false).await;
    for i in 0..50u64 {
        ch.basic_publish(
            "".into(),
            "consume-only".into(),
            BasicPublishOptions::default(),
            &i.to_be_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    wait_for("messages queued", || {
        broker
            .broker()
            .vhost("/")
            .and_then(|v| v.queue("consume-only", 0).ok())
            .is_some_and(|q| q.message_count() == 50)
    })
    .await;
    alarms.set_memory_high_watermark(MemoryWatermark::Absolute(1));
    alarms.set_disk_free_limit(DiskFreeLimit::Absolute(u64::MAX));

    // Prefetch 5: all 50 arrive only if the acks are read.
    let consumer_conn = connect(&broker.url()).await;
    let consumer_events = BlockedEvents::watch(&consumer_conn);
    let cch = consumer_conn.create_channel().await.unwrap();
    cch.basic_qos(5, BasicQosOptions::default()).await.unwrap();
    let mut consumer = cch
        .basic_consume(
            "consume-only".into(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..50u64 {
        let delivery = tokio::time::timeout(DEADLINE, consumer.next())
            .await
            .expect("delivery")
            .unwrap()
            .unwrap();
        assert_eq!(delivery.data, i.to_be_bytes());
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    // It still answers methods (it is read), and nobody was blocked: the first connection
    // published, but before the alarms.
    assert_eq!(queue_depth(&cch, "consume-only").await, 0);
    assert_eq!(consumer_events.blocked(), 0);
    assert_eq!(events.blocked(), 0);
    assert!(!consumer_conn.status().blocked());
}

/// The disk alarm under overload: `disk_free_limit` is set 32 MiB below the data
/// directory's free space (a tmpfs when /dev/shm is there, so other processes do not move
/// it), and two publishers flood persistent 16 KiB messages with confirms into a durable
/// queue until RocksDB's writes (WAL, then memtable flushes) trip the alarm. Both are
/// blocked; the broker stays up and serves a new connection, which consumes every message
/// confirmed so far: nothing confirmed is lost. Free space moves both ways under this
/// load (a memtable flush deletes its WAL file), so the alarm may clear and rise again
/// while the test runs, unblocking and re-blocking the publishers: RabbitMQ has no
/// hysteresis either. RocksDB gives the drained messages' space back only after
/// compaction and blob garbage collection, later than a test should wait, so the limit is
/// then lowered at run time (as `rabbitmqctl set_disk_free_limit` would): the alarm clears
/// for good, the publishers are unblocked, their pending publishes go through, and every
/// message confirmed in the whole run is consumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_alarm_blocks_flooding_publishers_and_loses_nothing_confirmed() {
    let _serial = LOAD_TEST.lock().await;
    let mut config = fast_checks();
    let shm = std::path::Path::new("/dev/shm");
    if available_disk(shm).is_ok_and(|free| free > 2 << 30) {
        config.data_dir_parent = Some(shm.to_path_buf());
    }
    let broker = TestBroker::start_with(config);
    let alarms = Arc::clone(broker.broker().alarms());

    let mut publishers = Vec::new();
    let mut watches = Vec::new();
    let mut connections = Vec::new();
    for tag in 1..=2u64 {
        let conn = connect(&broker.url()).await;
        watches.push(BlockedEvents::watch(&conn));
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        declare(&ch, "disk-load", true).await;
        connections.push(conn);
        publishers.push((ch, tag));
    }
    let free = available_disk(broker.data_dir()).unwrap();
    let status = alarms.set_disk_free_limit(DiskFreeLimit::Absolute(free - (32 << 20)));
    assert!(!status.alarms.disk, "{status:?}");
    let publishers: Vec<Publisher> = publishers
        .into_iter()
        .map(|(ch, tag)| Publisher::start(ch, "disk-load".into(), tag, 16 * 1024, true))
        .collect();
    wait_for("both publishers blocked", || {
        watches.iter().all(|w| w.blocked() >= 1)
    })
    .await;
    for w in &watches {
        assert_eq!(*w.reason.lock().unwrap(), "low on disk");
    }

    // The broker is up and serves a new connection, which drains the queue.
    let consumer_conn = connect(&broker.url()).await;
    let cch = consumer_conn.create_channel().await.unwrap();
    queue_depth(&cch, "disk-load").await;
    let before_drain: HashSet<u64> = publishers.iter().flat_map(Publisher::confirmed).collect();
    assert!(!before_drain.is_empty());
    let drained = start_draining(&cch, "disk-load").await;
    wait_for("every message confirmed before the drain consumed", || {
        drained.lock().unwrap().is_superset(&before_drain)
    })
    .await;

    let status = alarms.set_disk_free_limit(DiskFreeLimit::Absolute(1 << 20));
    assert!(!status.alarms.disk, "{status:?}");
    wait_for("both publishers unblocked", || {
        watches.iter().all(|w| w.unblocked() == w.blocked())
    })
    .await;
    let resumed_from: Vec<usize> = publishers.iter().map(Publisher::confirmed_count).collect();
    wait_for("publishing resumed", || {
        publishers
            .iter()
            .zip(&resumed_from)
            .all(|(p, from)| p.confirmed_count() >= from + 100)
    })
    .await;
    let mut confirmed = HashSet::new();
    for publisher in publishers {
        confirmed.extend(publisher.finish().await);
    }
    wait_for("every confirmed message consumed", || {
        drained.lock().unwrap().is_superset(&confirmed)
    })
    .await;
    assert_eq!(drained.lock().unwrap().len(), confirmed.len());
}

/// The thresholds come from the binary's configuration file (RabbitMQ's key names and
/// units): a 1 MB memory watermark, which any process is past, blocks the first publish.
#[test]
fn the_binary_reads_alarm_thresholds_from_its_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("warren.toml");
    std::fs::write(
        &config,
        "vm_memory_high_watermark.absolute = \"1MB\"\ndisk_free_limit.absolute = \"1MB\"\n",
    )
    .unwrap();
    let data_dir = tmp.path().join("data");
    let broker = BinaryBroker::spawn_with(&data_dir, &["--config", config.to_str().unwrap()], &[]);
    let mut c = RawClient::open_with_capabilities(
        format!("127.0.0.1:{}", broker.port).parse().unwrap(),
        0,
        &["connection.blocked"],
    );
    c.send(&frame(1, 1, &method(20, 10, &short(""))));
    assert_eq!(raw::next_frame(&mut c).class_method(), Some((20, 11)));
    c.send(&publish_frames("nowhere", b"m"));
    let blocked = raw::next_frame(&mut c);
    assert!(is_blocked(&blocked), "{blocked:?}");
    assert_eq!(blocked_reason(&blocked), "low on memory");
    let log = broker.log_text();
    assert!(
        log.contains("memory resource limit alarm set"),
        "log: {log}"
    );
}
