//! Crash safety with the real `warren` binary, SIGKILLed at random moments.
//!
//! - Publishing: every persistent message whose confirm reached the publisher is in the queue
//!   after any number of crashes (the confirm waits for the fsync of its batch).
//! - Consuming: kill -9 while consumers ack (one by one and in batches), nack with requeue
//!   and reject, a publisher publishes, and the queue pages bodies out and in. Acks are
//!   deletes written to RocksDB's WAL without fsync; a SIGKILL loses only what the process had
//!   not yet handed to the kernel (acks still on the socket or in the commit loop's inbox), so
//!   a settled message may come back only if its settle was sent within `ACK_LOSS_WINDOW` of
//!   the kill that ended its life. A message delivered in an earlier life always comes back
//!   `redelivered` (the queue's delivered watermark is written before the delivery leaves),
//!   nothing is delivered twice in one life without a requeue, and after recovery
//!   declare-ok's count is exactly what a consumer drains.
//!
//! Build the binary first: `cargo build -p warren`. Seed: `CRASH_SEED=<n>` replays a run.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::FutureExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, PublisherConfirm};
use tokio::runtime::Runtime;
use warren_integration::{BinaryBroker, connect};

const QUEUE: &str = "crash";
/// A settled (acked or rejected) message may come back after a SIGKILL only if its settle was
/// sent this shortly before the kill that ended its life. The README states this bound.
const ACK_LOSS_WINDOW: Duration = Duration::from_millis(500);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// xorshift64*, seeded from `CRASH_SEED` or the clock (printed, to replay a failure).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        println!("CRASH_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// A body carrying `id`, padded past the store's blob threshold.
fn body(id: u64) -> Vec<u8> {
    let mut body = format!("{id:020}|").into_bytes();
    body.resize(512, b'.');
    body
}

fn id_of(data: &[u8]) -> u64 {
    std::str::from_utf8(&data[..20]).unwrap().parse().unwrap()
}

async fn declare(ch: &lapin::Channel) -> u32 {
    ch.queue_declare(
        QUEUE.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

/// Publishes ids from `next_id` with up to 1000 confirms in flight until the connection dies
/// (or `stop`); pushes every id whose ack arrived to `confirmed`. With `settled` (a count of
/// messages consumers settled), pauses while more than `MAX_BACKLOG` are not settled.
async fn publish_until_killed(
    url: String,
    next_id: Arc<AtomicU64>,
    confirmed: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    settled: Option<Arc<AtomicU64>>,
) {
    let Ok(conn) = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    if ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .is_err()
    {
        return;
    }
    if ch
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .is_err()
    {
        return;
    }
    let mut in_flight: std::collections::VecDeque<(u64, PublisherConfirm)> =
        std::collections::VecDeque::new();
    let settle = |id: u64, outcome: lapin::Result<Confirmation>| -> bool {
        match outcome {
            Ok(Confirmation::Ack(_)) => {
                confirmed.lock().unwrap().push(id);
                true
            }
            Ok(_) => true,
            Err(_) => false,
        }
    };
    while !stop.load(Ordering::Relaxed) {
        // Collect the confirms that are already in, then make room if the window is full.
        while let Some((_, confirm)) = in_flight.front_mut() {
            let Some(outcome) = confirm.now_or_never() else {
                break;
            };
            let Some((id, _)) = in_flight.pop_front() else {
                break;
            };
            if !settle(id, outcome) {
                return;
            }
        }
        if in_flight.len() >= 1000 {
            let Some((id, confirm)) = in_flight.pop_front() else {
                break;
            };
            if !settle(id, confirm.await) {
                return;
            }
            continue;
        }
        if let Some(settled) = &settled
            && next_id
                .load(Ordering::Relaxed)
                .saturating_sub(settled.load(Ordering::Relaxed))
                > MAX_BACKLOG
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        match publish_one(&ch, id).await {
            Ok(confirm) => in_flight.push_back((id, confirm)),
            Err(_) => return,
        }
    }
    // Stopped on purpose: wait for what is in flight.
    while let Some((id, confirm)) = in_flight.pop_front() {
        if !settle(id, confirm.await) {
            return;
        }
    }
}

/// Drains the queue: `(id, redelivered)` in arrival order.
async fn drain(url: &str) -> Vec<(u64, bool)> {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    let expected = declare(&ch).await as usize;
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            QUEUE.into(),
            "drain".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut got = Vec::with_capacity(expected);
    let mut last = 0;
    while got.len() < expected {
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("drain stalled")
            .unwrap()
            .unwrap();
        got.push((id_of(&d.data), d.redelivered));
        last = d.delivery_tag;
        if got.len() % 100 == 0 {
            ch.basic_ack(last, BasicAckOptions { multiple: true })
                .await
                .unwrap();
        }
    }
    if last != 0 {
        ch.basic_ack(last, BasicAckOptions { multiple: true })
            .await
            .unwrap();
    }
    // Nothing beyond what declare-ok counted.
    let extra = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await;
    assert!(extra.is_err(), "more messages than declare-ok reported");
    got
}

fn data_dir(root: &Path) -> std::path::PathBuf {
    root.join("data")
}

#[test]
fn no_confirmed_message_is_lost_across_20_sigkills_during_publishing() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let rt = runtime();
    let mut rng = Rng::new();
    let next_id = Arc::new(AtomicU64::new(0));
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    const CYCLES: usize = 20;
    for cycle in 0..CYCLES {
        let broker = BinaryBroker::spawn(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = rt.spawn(publish_until_killed(
            broker.url(),
            Arc::clone(&next_id),
            Arc::clone(&confirmed),
            Arc::clone(&stop),
            None,
        ));
        std::thread::sleep(rng.millis(50, 1_500));
        broker.kill();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), publisher)
                .await
                .unwrap_or_else(|_| panic!("cycle {cycle}: publisher hung after the kill"))
                .unwrap();
        });
    }
    let broker = BinaryBroker::spawn(&data);
    let drained = rt.block_on(drain(&broker.url()));
    let published = next_id.load(Ordering::Relaxed);
    let confirmed: Vec<u64> = confirmed.lock().unwrap().clone();

    let mut copies: HashMap<u64, Vec<bool>> = HashMap::new();
    for (id, redelivered) in &drained {
        copies.entry(*id).or_default().push(*redelivered);
    }
    let lost: Vec<u64> = confirmed
        .iter()
        .copied()
        .filter(|id| !copies.contains_key(id))
        .collect();
    let bad_duplicates: Vec<u64> = copies
        .iter()
        .filter(|(_, flags)| flags.len() > 1 && flags.iter().filter(|r| !**r).count() > 1)
        .map(|(id, _)| *id)
        .collect();
    println!(
        "crash cycles: {CYCLES}, published: {published}, confirmed: {}, in queue after: {}, lost: {}, duplicates: {}",
        confirmed.len(),
        drained.len(),
        lost.len(),
        drained.len() - copies.len()
    );
    assert!(
        confirmed.len() > 1_000,
        "too few confirms for a meaningful test"
    );
    assert!(
        lost.is_empty(),
        "{} confirmed messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert!(
        bad_duplicates.is_empty(),
        "ids delivered twice without redelivered: {:?}",
        &bad_duplicates[..bad_duplicates.len().min(20)]
    );
    // No publish was ever redelivered (there was no consumer), and the queue keeps publish
    // order: ids ascend.
    assert!(drained.iter().all(|(_, redelivered)| !redelivered));
    assert!(drained.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert_eq!(broker.terminate(), Some(0));
}

/// What a client saw in one broker life, in the order it happened.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// A delivery reached a consumer.
    Delivered { id: u64, redelivered: bool },
    /// An ack or a reject (without requeue) for the message is about to be sent: after it,
    /// the message may come back only if the kill came within `ACK_LOSS_WINDOW`.
    Settled { id: u64 },
    /// A nack with requeue is about to be sent: the message may come back in this life.
    Requeued { id: u64 },
}

/// One life's log, shared by its consumers, in arrival order.
type LifeLog = Arc<Mutex<Vec<(Seen, Instant)>>>;

fn log(life: &LifeLog, seen: Seen) {
    life.lock().unwrap().push((seen, Instant::now()));
}

/// How a consumer settles what it gets.
#[derive(Debug, Clone, Copy)]
enum Settling {
    /// basic.ack of each delivery.
    AckEach,
    /// basic.ack multiple=true every `n` deliveries.
    AckEvery(u16),
    /// By a coin per delivery: nack with requeue (1 in 5), reject (1 in 10), else ack.
    Mixed(u64),
}

/// Consumes `QUEUE` with `prefetch`, settling as `how`, logging into `life`, until the
/// connection dies.
async fn consume_until_killed(
    url: String,
    prefetch: u16,
    how: Settling,
    life: LifeLog,
    settled: Arc<AtomicU64>,
) {
    use lapin::options::{BasicNackOptions, BasicRejectOptions};
    let Ok(conn) = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    if ch
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .is_err()
    {
        return;
    }
    let Ok(mut consumer) = ch
        .basic_consume(
            QUEUE.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    else {
        return;
    };
    let mut coin = match how {
        Settling::Mixed(seed) => Rng(seed | 1),
        _ => Rng(1),
    };
    let mut batch: Vec<u64> = Vec::new();
    while let Some(Ok(d)) = consumer.next().await {
        let id = id_of(&d.data);
        log(
            &life,
            Seen::Delivered {
                id,
                redelivered: d.redelivered,
            },
        );
        let sent = match how {
            Settling::AckEach => {
                log(&life, Seen::Settled { id });
                settled.fetch_add(1, Ordering::Relaxed);
                ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                    .await
            }
            Settling::AckEvery(n) => {
                batch.push(id);
                if batch.len() < usize::from(n) {
                    continue;
                }
                for id in batch.drain(..) {
                    log(&life, Seen::Settled { id });
                    settled.fetch_add(1, Ordering::Relaxed);
                }
                ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                    .await
            }
            Settling::Mixed(_) => match coin.below(10) {
                0 | 1 => {
                    log(&life, Seen::Requeued { id });
                    ch.basic_nack(
                        d.delivery_tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await
                }
                2 => {
                    log(&life, Seen::Settled { id });
                    settled.fetch_add(1, Ordering::Relaxed);
                    ch.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
                        .await
                }
                _ => {
                    log(&life, Seen::Settled { id });
                    settled.fetch_add(1, Ordering::Relaxed);
                    ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                        .await
                }
            },
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Published and not settled above this, the publisher of the consuming test waits.
const MAX_BACKLOG: u64 = 20_000;
/// A queue's memory window in the consuming test: about 250 of its 1 KiB messages, so a
/// backlog pages bodies out at publish and in at dispatch all the time.
const SMALL_RAM_WINDOW: &str = "262144";

/// What the clients learned across lives, and what was wrong with it.
#[derive(Default)]
struct Ledger {
    /// Every id delivered in an earlier life.
    delivered_before: HashSet<u64>,
    /// id -> (life, when) of its latest settle (ack or reject).
    settled: HashMap<u64, (usize, Instant)>,
    /// When each life was killed.
    kills: Vec<Instant>,
    /// Settles undone by a kill (the message came back), and the oldest of them.
    resurrected: usize,
    worst_age: Duration,
    deliveries: usize,
    failures: Vec<String>,
}

impl Ledger {
    /// Checks one delivery of `id` in life `life` against the earlier lives: a message
    /// delivered before comes back `redelivered`; a settled one comes back only if its
    /// settle was sent within `ACK_LOSS_WINDOW` of the kill that ended its own life.
    fn check_return(&mut self, life: usize, id: u64, redelivered: bool) {
        if self.delivered_before.contains(&id) && !redelivered {
            self.failures.push(format!(
                "life {life}: message {id}, delivered in an earlier life, came back with redelivered = false"
            ));
        }
        if let Some(&(settled_in, when)) = self.settled.get(&id)
            && settled_in < life
        {
            let age = self.kills[settled_in].saturating_duration_since(when);
            self.resurrected += 1;
            self.worst_age = self.worst_age.max(age);
            if age > ACK_LOSS_WINDOW {
                self.failures.push(format!(
                    "life {life}: message {id} settled in life {settled_in}, {age:?} before that life's kill, came back"
                ));
            }
            self.settled.remove(&id);
        }
    }

    /// Checks and records the log of life `life`.
    fn life(&mut self, life: usize, log: &[(Seen, Instant)]) {
        // id -> may be delivered again in this life (never delivered, or requeued since).
        let mut open: HashMap<u64, bool> = HashMap::new();
        for &(seen, when) in log {
            match seen {
                Seen::Delivered { id, redelivered } => {
                    self.deliveries += 1;
                    match open.get(&id) {
                        Some(false) => self.failures.push(format!(
                            "life {life}: message {id} delivered twice without a requeue in between"
                        )),
                        Some(true) if !redelivered => self.failures.push(format!(
                            "life {life}: message {id} requeued, then delivered with redelivered = false"
                        )),
                        _ => {}
                    }
                    if !open.contains_key(&id) {
                        self.check_return(life, id, redelivered);
                    }
                    open.insert(id, false);
                }
                Seen::Requeued { id } => {
                    open.insert(id, true);
                }
                Seen::Settled { id } => {
                    self.settled.insert(id, (life, when));
                }
            }
        }
        self.delivered_before.extend(open.keys());
    }
}

/// Kill -9 at random moments while three consumers settle in different ways (acks one by
/// one, multiple acks in batches, nacks with requeue, rejects and acks mixed) and a publisher
/// publishes persistent messages with confirms into a queue whose memory window is small
/// enough that bodies page out and in all the time. Checked after every life and after the
/// last one: nothing confirmed and not settled is lost; no message is delivered twice in one
/// life unless it was requeued; every message delivered in an earlier life comes back
/// `redelivered`; a settled message comes back only if its settle was sent within
/// `ACK_LOSS_WINDOW` of the kill that ended its life; and declare-ok's count after recovery
/// equals what a consumer then drains.
fn kill_while_consuming(cycles: usize) {
    const INITIAL: u64 = 10_000;
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let rt = runtime();
    let mut rng = Rng::new();
    let env = [("WARREN_QUEUE_RAM_BYTES", SMALL_RAM_WINDOW)];
    let spawn = || BinaryBroker::spawn_with(&data, &[], &env);

    let broker = spawn();
    rt.block_on(publish_confirmed(&broker.url(), 0..INITIAL));
    let next_id = Arc::new(AtomicU64::new(INITIAL));
    let settled_count = Arc::new(AtomicU64::new(0));
    let confirmed = Arc::new(Mutex::new((0..INITIAL).collect::<Vec<u64>>()));
    let mut ledger = Ledger::default();
    let mut broker = Some(broker);
    for life in 0..cycles {
        let current = broker.take().unwrap_or_else(spawn);
        let log = LifeLog::default();
        let url = current.url();
        let tasks = vec![
            rt.spawn(publish_until_killed(
                url.clone(),
                Arc::clone(&next_id),
                Arc::clone(&confirmed),
                Arc::new(AtomicBool::new(false)),
                Some(Arc::clone(&settled_count)),
            )),
            rt.spawn(consume_until_killed(
                url.clone(),
                200,
                Settling::AckEach,
                Arc::clone(&log),
                Arc::clone(&settled_count),
            )),
            rt.spawn(consume_until_killed(
                url.clone(),
                300,
                Settling::AckEvery(50),
                Arc::clone(&log),
                Arc::clone(&settled_count),
            )),
            rt.spawn(consume_until_killed(
                url,
                50,
                Settling::Mixed(rng.below(u64::MAX)),
                Arc::clone(&log),
                Arc::clone(&settled_count),
            )),
        ];
        std::thread::sleep(rng.millis(300, 1_500));
        current.kill();
        ledger.kills.push(Instant::now());
        rt.block_on(async {
            for task in tasks {
                tokio::time::timeout(Duration::from_secs(30), task)
                    .await
                    .unwrap_or_else(|_| panic!("life {life}: a client hung after the kill"))
                    .unwrap();
            }
        });
        let log = std::mem::take(&mut *log.lock().unwrap());
        ledger.life(life, &log);
    }

    // The last life: declare-ok's count is exactly what a consumer drains.
    let broker = spawn();
    let drained = rt.block_on(drain(&broker.url()));
    let final_life = cycles;
    let mut present = HashSet::new();
    for &(id, redelivered) in &drained {
        if !present.insert(id) {
            ledger
                .failures
                .push(format!("message {id} twice in the recovered queue"));
        }
        ledger.check_return(final_life, id, redelivered);
    }
    let confirmed: Vec<u64> = confirmed.lock().unwrap().clone();
    let lost: Vec<u64> = confirmed
        .iter()
        .copied()
        .filter(|id| !present.contains(id) && !ledger.settled.contains_key(id))
        .collect();
    println!(
        "kill while consuming: {cycles} kills, {} published, {} confirmed, {} deliveries, {} settles undone by a kill (oldest {:?} before its kill, bound {ACK_LOSS_WINDOW:?}), {} in the queue after, lost {}",
        next_id.load(Ordering::Relaxed),
        confirmed.len(),
        ledger.deliveries,
        ledger.resurrected,
        ledger.worst_age,
        drained.len(),
        lost.len()
    );
    if !lost.is_empty() {
        ledger.failures.push(format!(
            "{} confirmed and unsettled messages lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(20)]
        ));
    }
    assert!(
        ledger.failures.is_empty(),
        "{} failures, first ones:\n{}",
        ledger.failures.len(),
        ledger.failures[..ledger.failures.len().min(20)].join("\n")
    );
    assert!(
        ledger.deliveries > 1_000,
        "too few deliveries for a meaningful test"
    );
    assert_eq!(broker.terminate(), Some(0));
}

#[test]
fn recovery_after_sigkill_while_consuming_is_exact() {
    kill_while_consuming(10);
}

/// The long run: `CRASH_CYCLES` (default 200) kills. `cargo test -p warren-integration
/// --test crash -- --ignored --nocapture`.
#[test]
#[ignore]
fn recovery_after_sigkill_while_consuming_is_exact_over_many_kills() {
    let cycles = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    kill_while_consuming(cycles);
}

/// Publishes message `id` (persistent, `body(id)`) to `QUEUE`.
async fn publish_one(ch: &lapin::Channel, id: u64) -> lapin::Result<PublisherConfirm> {
    ch.basic_publish(
        "".into(),
        QUEUE.into(),
        BasicPublishOptions::default(),
        &body(id),
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
}

/// Publishes `ids` persistently to `QUEUE` and waits for their confirms.
async fn publish_confirmed(url: &str, ids: std::ops::Range<u64>) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&ch).await;
    for id in ids {
        publish_one(&ch, id).await.unwrap();
    }
    ch.wait_for_confirms().await.unwrap();
}

/// A queue's delivered watermark outlives the messages under it (after a crash it is even a
/// lease ahead of them). Messages published after a restart must get seqs above it: were seqs
/// to start again from the recovered messages (none here), a later crash would flag
/// never-delivered messages `redelivered`.
#[test]
fn messages_published_after_a_restart_are_not_flagged_by_the_old_watermark() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let rt = runtime();

    // Life 1: ten messages, all delivered and acked; a clean stop (every ack written).
    let broker = BinaryBroker::spawn(&data);
    rt.block_on(async {
        publish_confirmed(&broker.url(), 0..10).await;
        assert_eq!(drain(&broker.url()).await.len(), 10);
    });
    assert_eq!(broker.terminate(), Some(0));

    // Life 2: the queue is empty; five new messages, never delivered; a kill.
    let broker = BinaryBroker::spawn(&data);
    rt.block_on(publish_confirmed(&broker.url(), 10..15));
    broker.kill();

    // Life 3: the five are there, none flagged.
    let broker = BinaryBroker::spawn(&data);
    let drained = rt.block_on(drain(&broker.url()));
    assert_eq!(
        drained,
        (10..15).map(|id| (id, false)).collect::<Vec<_>>(),
        "(id, redelivered) after the kill"
    );
    assert_eq!(broker.terminate(), Some(0));
}
