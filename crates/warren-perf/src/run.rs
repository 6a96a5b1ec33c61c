//! One benchmark run: topology, connections, the producer and consumer loops, the
//! measured window and the report.
//!
//! Per producer connection there is one writer task (copies pre-encoded publishes into a
//! buffer, one `write_all` per batch) and one reader task (counts confirms). Per
//! consumer connection one task reads with a 1 MiB buffer, walks the frames, records
//! latency and writes the acks (or, with --nack, the rejections) it owes after each read.
//! With --dead-letter the queues dead-letter into `<prefix>-dlx` -> `<prefix>-dlq`, which
//! one more consumer connection drains and counts separately (`dead_lettered`). Counters
//! shared with the orchestrator are updated once per batch / per read, not per message.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use amq_protocol::types::{AMQPValue, FieldTable};
use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::client::{
    BrokerClose, SetupConn, Target, connection_close_frame, connection_close_ok_frame,
};
use crate::config::{Config, QueueArgValue};
use crate::procfs::{self, PeakRss, ProcSample};
use crate::wire::{self, ConfirmTracker, PublishTemplate};

static BASE: OnceLock<Instant> = OnceLock::new();

/// Monotonic nanoseconds since the first call in this process.
#[inline]
fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Latency histogram: nanoseconds, 100 ns .. 1 hour, 3 significant digits.
fn new_histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(100, 3_600_000_000_000, 3)?)
}

/// State shared by the tasks and the orchestrator.
struct Shared {
    published: AtomicU64,
    confirmed: AtomicU64,
    nacked: AtomicU64,
    consumed: AtomicU64,
    /// Consumed from the dead-letter queue (--dead-letter).
    dead_lettered: AtomicU64,
    blocked: AtomicU64,
    /// Messages missing in a producer's sequence when a later one arrived.
    seq_gaps: AtomicU64,
    /// Messages that arrived after a later one of the same producer (or twice).
    seq_late: AtomicU64,
    measuring: AtomicBool,
    q_sent: Vec<AtomicU64>,
    q_consumed: Vec<AtomicU64>,
    errors: Mutex<Vec<String>>,
    /// Producers stop publishing and close their connections.
    stop_pub: watch::Sender<bool>,
    /// Consumers close their connections.
    stop_cons: watch::Sender<bool>,
    failed: AtomicBool,
}

impl Shared {
    fn fail(&self, what: String) {
        if let Ok(mut errors) = self.errors.lock()
            && errors.len() < 20
        {
            errors.push(what);
        }
        self.failed.store(true, Relaxed);
        self.stop_pub.send_replace(true);
        self.stop_cons.send_replace(true);
    }

    /// A task's error: recorded unless the run was already stopping (errors while
    /// shutting down, such as a publish still buffered when the exchange is deleted,
    /// are consequences, not findings).
    fn task_failed(&self, stopping: &watch::Sender<bool>, what: String) {
        if *stopping.borrow() {
            return;
        }
        self.fail(what);
    }
}

/// Names of the run's queues and exchange.
struct Names {
    prefix: String,
}

impl Names {
    fn queue(&self, i: usize) -> String {
        format!("{}-q{i}", self.prefix)
    }
    /// The dead-letter exchange (fanout) and queue of --dead-letter.
    fn dlx(&self) -> String {
        format!("{}-dlx", self.prefix)
    }
    fn dlq(&self) -> String {
        format!("{}-dlq", self.prefix)
    }
    fn exchange(&self, cfg: &Config) -> Option<(String, &'static str)> {
        if cfg.fanout {
            Some((format!("{}-fanout", self.prefix), "fanout"))
        } else if cfg.topic {
            Some((format!("{}-topic", self.prefix), "topic"))
        } else {
            None
        }
    }
}

/// Entry point: run the benchmark and return the JSON report. The report is returned
/// even when the run saw errors (they are listed in it; `errors` non-empty).
pub async fn run(cfg: Config) -> Result<Value> {
    cfg.validate()?;
    BASE.get_or_init(Instant::now);
    let cfg = Arc::new(cfg);
    let target = Target::parse(&cfg.uri)?;
    let names = Arc::new(Names {
        prefix: cfg.prefix(),
    });

    let mut admin = SetupConn::open(&target, "warren-perf-admin").await?;
    if cfg.cleanup_only {
        let n = cleanup(&cfg, &names, &mut admin).await;
        admin.close().await;
        return Ok(json!({ "name": cfg.name, "cleanup_only": true, "queues_deleted": n }));
    }
    let admin_server = admin.server.clone();
    let admin_ch = admin.open_channel().await?;
    declare_topology(&cfg, &names, &mut admin, admin_ch).await?;

    let shared = Arc::new(Shared {
        published: AtomicU64::new(0),
        confirmed: AtomicU64::new(0),
        nacked: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        dead_lettered: AtomicU64::new(0),
        blocked: AtomicU64::new(0),
        seq_gaps: AtomicU64::new(0),
        seq_late: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        q_sent: (0..cfg.queues).map(|_| AtomicU64::new(0)).collect(),
        q_consumed: (0..cfg.queues).map(|_| AtomicU64::new(0)).collect(),
        errors: Mutex::new(Vec::new()),
        stop_pub: watch::channel(false).0,
        stop_cons: watch::channel(false).0,
        failed: AtomicBool::new(false),
    });
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let (shared, interrupted) = (shared.clone(), interrupted.clone());
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!("warren-perf: interrupted, stopping");
            interrupted.store(true, Relaxed);
            shared.fail("interrupted".into());
        });
    }

    let result = if cfg.backlog > 0 {
        backlog_mode(&cfg, &target, &names, &shared, &mut admin).await
    } else {
        time_mode(&cfg, &target, &names, &shared, &mut admin).await
    };
    shared.stop_pub.send_replace(true);
    shared.stop_cons.send_replace(true);

    if !cfg.keep {
        let deleted = tokio::time::timeout(Duration::from_secs(120), async {
            match admin.open_channel().await {
                Ok(_) => cleanup(&cfg, &names, &mut admin).await,
                Err(_) => 0,
            }
        })
        .await;
        if deleted.is_err() {
            eprintln!("warren-perf: cleanup timed out (prefix {})", names.prefix);
        }
    }
    admin.close().await;

    let mut errors: Vec<String> = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let (gaps, late) = (shared.seq_gaps.load(Relaxed), shared.seq_late.load(Relaxed));
    // With a length limit or TTL on the queues, gaps are messages the broker dropped.
    if gaps > 0 && !cfg.queues_may_drop() {
        errors.push(format!(
            "{gaps} messages missing from their producer's sequence (lost, or late: see seq_late_or_duplicate)"
        ));
    }
    if late > 0 {
        errors.push(format!(
            "{late} messages arrived out of order or twice within their producer's sequence"
        ));
    }
    let mut report = match result {
        Ok(r) => r,
        Err(e) if errors.is_empty() => return Err(e),
        Err(e) => return Err(e.context(errors.join("; "))),
    };
    if let Some(obj) = report.as_object_mut() {
        obj.insert("errors".into(), json!(errors));
        obj.insert("prefix".into(), json!(names.prefix));
        obj.insert("server".into(), json!(admin_server));
        obj.insert(
            "connection_blocked_events".into(),
            json!(shared.blocked.load(Relaxed)),
        );
        obj.insert("seq_gaps".into(), json!(gaps));
        obj.insert("seq_late_or_duplicate".into(), json!(late));
        if cfg.queues_may_drop() {
            // Gaps are what the queue's length limit or TTL dropped.
            obj.insert("lost_estimate".into(), json!(0));
            obj.insert("dropped_estimate".into(), json!(gaps.saturating_sub(late)));
        } else {
            obj.insert("lost_estimate".into(), json!(gaps.saturating_sub(late)));
        }
    }
    Ok(report)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn declare_topology(
    cfg: &Config,
    names: &Names,
    admin: &mut SetupConn,
    ch: u16,
) -> Result<()> {
    let mut arguments = FieldTable::default();
    for arg in &cfg.queue_args {
        let value = match &arg.value {
            QueueArgValue::Int(n) => AMQPValue::LongLongInt(*n),
            QueueArgValue::Str(s) => AMQPValue::LongString(s.as_str().into()),
        };
        arguments.insert(arg.key.as_str().into(), value);
    }
    if cfg.dead_letter {
        let (dlx, dlq) = (names.dlx(), names.dlq());
        admin
            .exchange_declare(ch, &dlx, "fanout", cfg.durable)
            .await
            .with_context(|| format!("exchange.declare {dlx}"))?;
        admin
            .queue_declare(ch, &dlq, cfg.durable, false, FieldTable::default())
            .await
            .with_context(|| format!("queue.declare {dlq}"))?;
        admin
            .queue_bind(ch, &dlq, &dlx, "")
            .await
            .with_context(|| format!("queue.bind {dlq}"))?;
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
    }
    for i in 0..cfg.queues {
        admin
            .queue_declare(ch, &names.queue(i), cfg.durable, false, arguments.clone())
            .await
            .with_context(|| format!("queue.declare {}", names.queue(i)))?;
    }
    if let Some((exchange, kind)) = names.exchange(cfg) {
        admin
            .exchange_declare(ch, &exchange, kind, cfg.durable)
            .await
            .with_context(|| format!("exchange.declare {exchange}"))?;
        for i in 0..cfg.queues {
            let key = if cfg.topic {
                format!("perf.q{i}.*")
            } else {
                String::new()
            };
            admin
                .queue_bind(ch, &names.queue(i), &exchange, &key)
                .await
                .with_context(|| format!("queue.bind {}", names.queue(i)))?;
        }
    }
    Ok(())
}

/// Delete the run's queues and exchange, each on a fresh channel (a failed delete closes
/// its channel). Returns how many queues were deleted.
async fn cleanup(cfg: &Config, names: &Names, admin: &mut SetupConn) -> usize {
    let mut deleted = 0;
    let mut ch = match admin.open_channel().await {
        Ok(ch) => ch,
        Err(_) => return 0,
    };
    if let Some((exchange, _)) = names.exchange(cfg)
        && admin.exchange_delete(ch, &exchange).await.is_err()
    {
        match admin.open_channel().await {
            Ok(c) => ch = c,
            Err(_) => return 0,
        }
    }
    for i in 0..cfg.queues {
        match admin.queue_delete(ch, &names.queue(i)).await {
            Ok(_) => deleted += 1,
            Err(_) => match admin.open_channel().await {
                Ok(c) => ch = c,
                Err(_) => return deleted,
            },
        }
    }
    if cfg.dead_letter {
        // After the queues that dead-letter into them.
        if admin.queue_delete(ch, &names.dlq()).await.is_err() {
            match admin.open_channel().await {
                Ok(c) => ch = c,
                Err(_) => return deleted,
            }
        }
        let _ = admin.exchange_delete(ch, &names.dlx()).await;
    }
    deleted
}

/// Sum of the message counts of all queues (pipelined passive declares on a fresh channel).
async fn depth(cfg: &Config, names: &Names, admin: &mut SetupConn) -> Option<u64> {
    let queues: Vec<String> = (0..cfg.queues).map(|i| names.queue(i)).collect();
    let fut = async {
        let ch = admin.open_channel().await.ok()?;
        admin.queue_depths(ch, &queues).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .ok()
        .flatten()
}

fn group_count(n: usize, conns: usize) -> usize {
    if conns == 0 {
        n.max(1)
    } else {
        conns.min(n.max(1))
    }
}

/// Open the consumer connections and channels and start one task per connection.
async fn start_consumers(
    cfg: &Arc<Config>,
    target: &Target,
    shared: &Arc<Shared>,
    names: &Names,
) -> Result<Vec<JoinHandle<Option<Histogram<u64>>>>> {
    let nconns = group_count(cfg.consumers, cfg.consumer_connections);
    // Sequence checks need every message of a queue to reach one consumer.
    let seq_check = cfg.size >= 16 && cfg.consumers <= cfg.queues;
    let mut handles = Vec::new();
    for c in 0..nconns {
        let mut conn = SetupConn::open(target, &format!("warren-perf-consumer-{c}")).await?;
        let mut chans = Vec::new();
        for j in (c..cfg.consumers).step_by(nconns) {
            let ch = conn.open_channel().await?;
            if !cfg.auto_ack && cfg.qos > 0 {
                conn.basic_qos(ch, cfg.qos).await?;
            }
            let queue = j % cfg.queues;
            conn.basic_consume(ch, &names.queue(queue), &format!("c{j}"), cfg.auto_ack)
                .await
                .with_context(|| format!("basic.consume on {}", names.queue(queue)))?;
            chans.push(ConsumerChan {
                channel: ch,
                queue,
                last_seq: if seq_check {
                    vec![0; cfg.producers]
                } else {
                    Vec::new()
                },
                ..ConsumerChan::default()
            });
        }
        let (cfg, shared) = (cfg.clone(), shared.clone());
        handles.push(tokio::spawn(async move {
            let mut hist = new_histogram().ok();
            if let Err(e) = consumer_loop(&cfg, &shared, conn, chans, &mut hist, Role::Main).await {
                shared.task_failed(&shared.stop_cons, format!("consumer connection {c}: {e:#}"));
            }
            hist
        }));
    }
    if cfg.dead_letter {
        handles.push(start_dead_letter_consumer(cfg, target, shared, names).await?);
    }
    Ok(handles)
}

/// The --dead-letter drain: one auto-ack consumer on `<prefix>-dlq`, on its own
/// connection, counted in `dead_lettered` (no latency, no sequence check).
async fn start_dead_letter_consumer(
    cfg: &Arc<Config>,
    target: &Target,
    shared: &Arc<Shared>,
    names: &Names,
) -> Result<JoinHandle<Option<Histogram<u64>>>> {
    let mut conn = SetupConn::open(target, "warren-perf-dead-letter").await?;
    let ch = conn.open_channel().await?;
    conn.basic_consume(ch, &names.dlq(), "dl", true)
        .await
        .with_context(|| format!("basic.consume on {}", names.dlq()))?;
    let chans = vec![ConsumerChan {
        channel: ch,
        ..ConsumerChan::default()
    }];
    let (cfg, shared) = (cfg.clone(), shared.clone());
    Ok(tokio::spawn(async move {
        if let Err(e) = consumer_loop(&cfg, &shared, conn, chans, &mut None, Role::DeadLetter).await
        {
            shared.task_failed(&shared.stop_cons, format!("dead-letter consumer: {e:#}"));
        }
        None
    }))
}

/// Open the producer connections and channels; the tasks wait for `start`.
async fn start_producers(
    cfg: &Arc<Config>,
    target: &Target,
    shared: &Arc<Shared>,
    names: &Names,
    start: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>> {
    let nconns = group_count(cfg.producers, cfg.producer_connections);
    let mut handles = Vec::new();
    let exchange = names.exchange(cfg).map(|(e, _)| e).unwrap_or_default();
    for c in 0..nconns {
        let mut conn = SetupConn::open(target, &format!("warren-perf-producer-{c}")).await?;
        let mut producers = Vec::new();
        let members: Vec<usize> = (c..cfg.producers).step_by(nconns).collect();
        for &i in &members {
            let ch = conn.open_channel().await?;
            if cfg.confirm > 0 {
                conn.confirm_select(ch).await?;
            }
            let queue = i % cfg.queues;
            let key = if cfg.fanout {
                String::new()
            } else if cfg.topic {
                format!("perf.q{queue}.m")
            } else {
                names.queue(queue)
            };
            let limit = if cfg.backlog > 0 {
                let n = cfg.producers as u64;
                cfg.backlog / n + u64::from((i as u64) < cfg.backlog % n)
            } else {
                0
            };
            producers.push(Producer {
                index: i,
                channel: ch,
                template: PublishTemplate::new(
                    ch,
                    &exchange,
                    &key,
                    cfg.size,
                    cfg.persistent,
                    conn.frame_max,
                )?,
                queue,
                limit,
                sent: 0,
                settled: Arc::new(AtomicU64::new(0)),
            });
        }
        let (cfg, shared, start) = (cfg.clone(), shared.clone(), start.clone());
        handles.push(tokio::spawn(async move {
            if let Err(e) = producer_conn(&cfg, &shared, conn, producers, start).await {
                shared.task_failed(&shared.stop_pub, format!("producer connection {c}: {e:#}"));
            }
        }));
    }
    Ok(handles)
}

struct Producer {
    /// Index among all producers (goes into each body's stamp).
    index: usize,
    channel: u16,
    template: PublishTemplate,
    queue: usize,
    /// Messages to publish in all (backlog mode), 0 = until stopped.
    limit: u64,
    sent: u64,
    /// Confirmed + nacked (written by the reader task).
    settled: Arc<AtomicU64>,
}

async fn producer_conn(
    cfg: &Config,
    shared: &Arc<Shared>,
    conn: SetupConn,
    mut producers: Vec<Producer>,
    mut start: watch::Receiver<bool>,
) -> Result<()> {
    let (stream, pending, frame_max) = conn.into_parts();
    let (rd, mut wr) = stream.into_split();
    let notify = Arc::new(Notify::new());
    let max_channel = producers.iter().map(|p| p.channel).max().unwrap_or(0) as usize;
    let mut settled_by_channel: Vec<Option<Arc<AtomicU64>>> = vec![None; max_channel + 1];
    for p in &producers {
        settled_by_channel[p.channel as usize] = Some(p.settled.clone());
    }
    let reader = {
        let (shared, notify) = (shared.clone(), notify.clone());
        tokio::spawn(async move {
            let r =
                producer_reader(rd, pending, frame_max, settled_by_channel, &shared, &notify).await;
            if let Err(e) = &r
                && !e.is::<ClosedAfterStop>()
            {
                shared.task_failed(&shared.stop_pub, format!("producer reader: {e:#}"));
            }
            r
        })
    };

    let mut stop = shared.stop_pub.subscribe();
    while !*start.borrow() {
        tokio::select! {
            r = start.changed() => r?,
            _ = stop.changed() => break,
        }
    }
    let t0 = Instant::now();
    let frame_len = producers
        .first()
        .map_or(1, |p| p.template.bytes.len().max(1));
    let per_batch = match cfg.batch {
        0 => ((128 * 1024) / frame_len / producers.len().max(1)).clamp(1, 1000) as u64,
        n => n as u64,
    };
    let mut out: Vec<u8> =
        Vec::with_capacity(per_batch as usize * frame_len * producers.len() + 1024);
    let mut sent_per_queue = vec![0u64; cfg.queues];
    loop {
        if *stop.borrow() {
            break;
        }
        out.clear();
        let mut total = 0u64;
        let mut all_done = true;
        let mut wait = Duration::from_millis(20);
        let ts = now_ns();
        for p in producers.iter_mut() {
            let mut allow = per_batch;
            if p.limit > 0 {
                if p.sent >= p.limit {
                    continue;
                }
                allow = allow.min(p.limit - p.sent);
            }
            all_done = false;
            if cfg.confirm > 0 {
                let inflight = p.sent - p.settled.load(Relaxed);
                allow = allow.min(cfg.confirm.saturating_sub(inflight));
            }
            if cfg.rate > 0.0 {
                let elapsed = t0.elapsed().as_secs_f64();
                let due = (elapsed * cfg.rate) as u64 + 1;
                let can = due.saturating_sub(p.sent);
                if can == 0 {
                    let next = Duration::from_secs_f64(p.sent as f64 / cfg.rate);
                    wait = wait.min(next.saturating_sub(t0.elapsed()));
                }
                allow = allow.min(can);
            }
            if cfg.max_lag > 0 {
                let q = p.queue;
                let sent_q = shared.q_sent[q].load(Relaxed) + sent_per_queue[q];
                let lag = sent_q.saturating_sub(shared.q_consumed[q].load(Relaxed));
                let can = cfg.max_lag.saturating_sub(lag);
                if can == 0 {
                    wait = wait.min(Duration::from_millis(1));
                }
                allow = allow.min(can);
                sent_per_queue[q] += allow;
            }
            for k in 1..=allow {
                p.template
                    .append(&mut out, ts, wire::stamp(p.index, p.sent + k));
            }
            p.sent += allow;
            total += allow;
        }
        if total == 0 {
            if all_done {
                break;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        {
            // A stop while the socket is full: give the write 2 s to finish (so that the
            // close is not cut into a frame), else drop the connection.
            let write = wr.write_all(&out);
            tokio::pin!(write);
            tokio::select! {
                r = &mut write => r?,
                _ = stop.changed() => match tokio::time::timeout(Duration::from_secs(2), &mut write).await {
                    Ok(r) => r?,
                    Err(_) => {
                        reader.abort();
                        return Ok(());
                    }
                },
            }
        }
        shared.published.fetch_add(total, Relaxed);
        if cfg.max_lag > 0 {
            for (q, n) in sent_per_queue.iter_mut().enumerate() {
                if *n > 0 {
                    shared.q_sent[q].fetch_add(*n, Relaxed);
                    *n = 0;
                }
            }
        }
    }
    // Backlog mode: stay connected (confirms still arrive) until told to stop.
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    close_writer(&mut wr).await;
    let abort = reader.abort_handle();
    let _abort_on_exit = AbortOnDrop(abort);
    match tokio::time::timeout(Duration::from_secs(5), reader).await {
        Ok(Ok(r)) => r.or_else(|e| {
            if e.is::<ClosedAfterStop>() {
                Ok(())
            } else {
                Err(e)
            }
        }),
        Ok(Err(e)) => Err(anyhow!("producer reader panicked: {e}")),
        Err(_) => Ok(()), // no close-ok in time; the socket is dropped
    }
}

/// Aborts a task when dropped (a reader must not outlive its connection's writer).
struct AbortOnDrop(tokio::task::AbortHandle);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn close_writer(wr: &mut OwnedWriteHalf) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        wr.write_all(&connection_close_frame()),
    )
    .await;
}

/// Marker: the reader ended because we closed the connection.
#[derive(Debug)]
struct ClosedAfterStop;
impl std::fmt::Display for ClosedAfterStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed")
    }
}
impl std::error::Error for ClosedAfterStop {}

const READ_BUF: usize = 1 << 20;

/// Reads a producer connection: confirms, closes, flow control.
async fn producer_reader(
    mut rd: OwnedReadHalf,
    pending: Vec<u8>,
    frame_max: u32,
    settled_by_channel: Vec<Option<Arc<AtomicU64>>>,
    shared: &Shared,
    notify: &Notify,
) -> Result<()> {
    let mut trackers: Vec<ConfirmTracker> = settled_by_channel
        .iter()
        .map(|_| ConfirmTracker::default())
        .collect();
    let mut buf = vec![0u8; READ_BUF.max(pending.len() * 2)];
    buf[..pending.len()].copy_from_slice(&pending);
    let (mut start, mut end) = (0usize, pending.len());
    let max = frame_max.max(warren_protocol::FRAME_MIN_SIZE) as usize;
    let stop = shared.stop_pub.subscribe();
    loop {
        let mut settled_total = 0u64;
        let mut nacked = 0u64;
        while let Some((f, n)) = wire::next_frame(&buf[start..end], max)? {
            if f.kind == wire::FRAME_METHOD {
                match f.method_id() {
                    Some(id @ (wire::BASIC_ACK | wire::BASIC_NACK)) => {
                        let (tag, multiple) = wire::confirm_tag(f.payload)
                            .ok_or_else(|| anyhow!("short basic.ack/nack frame"))?;
                        let ch = f.channel as usize;
                        let Some(Some(settled)) = settled_by_channel.get(ch) else {
                            bail!("confirm on unexpected channel {ch}");
                        };
                        let k = trackers[ch].settle(tag, multiple);
                        settled.fetch_add(k, Relaxed);
                        settled_total += k;
                        if id == wire::BASIC_NACK {
                            nacked += k;
                        }
                    }
                    Some(wire::CONNECTION_CLOSE_OK) => return Err(ClosedAfterStop.into()),
                    Some(wire::CONNECTION_BLOCKED) => {
                        shared.blocked.fetch_add(1, Relaxed);
                    }
                    Some(wire::CHANNEL_CLOSE | wire::CONNECTION_CLOSE) => {
                        return Err(BrokerClose(wire::describe_method(f.payload)).into());
                    }
                    _ => {}
                }
            }
            start += n;
        }
        if settled_total > 0 {
            shared.confirmed.fetch_add(settled_total - nacked, Relaxed);
            if nacked > 0 {
                shared.nacked.fetch_add(nacked, Relaxed);
            }
            notify.notify_one();
        }
        compact(&mut buf, &mut start, &mut end);
        let n = rd.read(&mut buf[end..]).await?;
        if n == 0 {
            if *stop.borrow() {
                return Err(ClosedAfterStop.into());
            }
            bail!("connection closed by the broker");
        }
        end += n;
    }
}

fn compact(buf: &mut Vec<u8>, start: &mut usize, end: &mut usize) {
    if *start == *end {
        *start = 0;
        *end = 0;
    } else if buf.len() - *end < 64 * 1024 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
        if buf.len() - *end < 64 * 1024 {
            let len = buf.len();
            buf.resize(len * 2, 0);
        }
    }
}

#[derive(Default)]
struct ConsumerChan {
    channel: u16,
    queue: usize,
    /// Tag of the delivery whose content is being read.
    tag: u64,
    remaining: u64,
    first_body: bool,
    unacked: u32,
    /// Consumed since the last flush to the shared counters.
    fresh: u64,
    /// Highest sequence number seen per producer (empty: no sequence check).
    last_seq: Vec<u64>,
}

/// What a consumer connection reads: the run's queues, or the dead-letter queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Main,
    DeadLetter,
}

async fn consumer_loop(
    cfg: &Config,
    shared: &Shared,
    conn: SetupConn,
    mut chans: Vec<ConsumerChan>,
    hist: &mut Option<Histogram<u64>>,
    role: Role,
) -> Result<()> {
    let (mut stream, pending, frame_max) = conn.into_parts();
    let max_channel = chans.iter().map(|c| c.channel).max().unwrap_or(0) as usize;
    let mut index = vec![usize::MAX; max_channel + 1];
    for (i, c) in chans.iter().enumerate() {
        index[c.channel as usize] = i;
    }
    let mut buf = vec![0u8; READ_BUF.max(pending.len() * 2)];
    buf[..pending.len()].copy_from_slice(&pending);
    let (mut start, mut end) = (0usize, pending.len());
    let max = frame_max.max(warren_protocol::FRAME_MIN_SIZE) as usize;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut stop = shared.stop_cons.subscribe();
    let mut closing: Option<Instant> = None;
    let manual = !cfg.auto_ack && role == Role::Main;
    let settle = Settle {
        nack: cfg.nack,
        every: cfg.multi_ack,
        multiple: cfg.multi_ack > 1,
    };
    let timestamps = cfg.size >= 8 && role == Role::Main;
    loop {
        let now = now_ns();
        let measuring = shared.measuring.load(Relaxed);
        let mut got = 0u64;
        let (mut gaps, mut late) = (0u64, 0u64);
        while let Some((f, n)) = wire::next_frame(&buf[start..end], max)? {
            start += n;
            let slot = index.get(f.channel as usize).copied().unwrap_or(usize::MAX);
            match f.kind {
                wire::FRAME_METHOD => match f.method_id() {
                    Some(wire::BASIC_DELIVER) => {
                        let c = chans.get_mut(slot).ok_or_else(|| {
                            anyhow!("delivery on unexpected channel {}", f.channel)
                        })?;
                        c.tag = wire::deliver_tag(f.payload)
                            .ok_or_else(|| anyhow!("short basic.deliver"))?;
                    }
                    Some(wire::CONNECTION_CLOSE_OK) if closing.is_some() => return Ok(()),
                    Some(wire::CONNECTION_CLOSE) if closing.is_some() => {
                        let _ = stream.write_all(&connection_close_ok_frame()).await;
                        return Ok(());
                    }
                    Some(wire::CHANNEL_CLOSE | wire::CONNECTION_CLOSE | wire::BASIC_CANCEL) => {
                        if closing.is_some() {
                            continue;
                        }
                        return Err(BrokerClose(wire::describe_method(f.payload)).into());
                    }
                    Some(wire::CONNECTION_BLOCKED) => {
                        shared.blocked.fetch_add(1, Relaxed);
                    }
                    _ => {}
                },
                wire::FRAME_HEADER => {
                    let c = chans
                        .get_mut(slot)
                        .ok_or_else(|| anyhow!("content on unexpected channel {}", f.channel))?;
                    c.remaining = wire::header_body_size(f.payload)
                        .ok_or_else(|| anyhow!("short content header"))?;
                    c.first_body = true;
                    if c.remaining == 0 {
                        complete(c, &mut out, &mut got, manual, settle);
                    }
                }
                wire::FRAME_BODY => {
                    let c = chans
                        .get_mut(slot)
                        .ok_or_else(|| anyhow!("content on unexpected channel {}", f.channel))?;
                    if c.first_body {
                        c.first_body = false;
                        if measuring
                            && timestamps
                            && let Some(h) = hist.as_mut()
                            && let Some(ts) = f.payload.get(..8)
                        {
                            let sent = u64::from_le_bytes(ts.try_into().unwrap_or_default());
                            let _ =
                                h.record(now.saturating_sub(sent).clamp(100, 3_600_000_000_000));
                        }
                        if !c.last_seq.is_empty()
                            && let Some(st) = f.payload.get(8..16)
                        {
                            let (producer, seq) = wire::unstamp(u64::from_le_bytes(
                                st.try_into().unwrap_or_default(),
                            ));
                            if let Some(last) = c.last_seq.get_mut(producer) {
                                let (g, l) = wire::check_sequence(last, seq);
                                gaps += g;
                                late += l;
                            }
                        }
                    }
                    c.remaining = c.remaining.saturating_sub(f.payload.len() as u64);
                    if c.remaining == 0 {
                        complete(c, &mut out, &mut got, manual, settle);
                    }
                }
                wire::FRAME_HEARTBEAT => wire::push_heartbeat(&mut out),
                k => bail!("unknown frame type {k}"),
            }
        }
        if gaps > 0 || late > 0 {
            shared.seq_gaps.fetch_add(gaps, Relaxed);
            shared.seq_late.fetch_add(late, Relaxed);
        }
        if got > 0 && closing.is_none() && role == Role::DeadLetter {
            shared.dead_lettered.fetch_add(got, Relaxed);
        } else if got > 0 && closing.is_none() {
            shared.consumed.fetch_add(got, Relaxed);
            for c in chans.iter_mut() {
                if c.fresh > 0 {
                    shared.q_consumed[c.queue].fetch_add(c.fresh, Relaxed);
                    c.fresh = 0;
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        compact(&mut buf, &mut start, &mut end);
        let read = match closing {
            Some(since) => {
                let left = Duration::from_secs(5).saturating_sub(since.elapsed());
                match tokio::time::timeout(left, stream.read(&mut buf[end..])).await {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            }
            None => {
                tokio::select! {
                    biased;
                    r = stream.read(&mut buf[end..]) => r,
                    _ = stop.changed() => {
                        stream.write_all(&connection_close_frame()).await?;
                        closing = Some(Instant::now());
                        continue;
                    }
                }
            }
        };
        let n = read?;
        if n == 0 {
            if closing.is_some() {
                return Ok(());
            }
            bail!("connection closed by the broker");
        }
        end += n;
    }
}

/// How a manual-ack consumer settles its deliveries.
#[derive(Clone, Copy)]
struct Settle {
    /// basic.nack(requeue=false) instead of basic.ack.
    nack: bool,
    /// Settle every N deliveries.
    every: u32,
    multiple: bool,
}

#[inline]
fn complete(c: &mut ConsumerChan, out: &mut Vec<u8>, got: &mut u64, manual: bool, settle: Settle) {
    *got += 1;
    c.fresh += 1;
    if manual {
        c.unacked += 1;
        if c.unacked >= settle.every {
            if settle.nack {
                wire::push_nack(out, c.channel, c.tag, settle.multiple);
            } else {
                wire::push_ack(out, c.channel, c.tag, settle.multiple);
            }
            c.unacked = 0;
        }
    }
}

/// Readings at the start of a measured interval.
struct Mark {
    at: Instant,
    published: u64,
    confirmed: u64,
    consumed: u64,
    dead_lettered: u64,
    broker: Option<ProcSample>,
    client: Option<ProcSample>,
    system_s: Option<f64>,
}

fn mark(cfg: &Config, shared: &Shared) -> Mark {
    Mark {
        at: Instant::now(),
        published: shared.published.load(Relaxed),
        confirmed: shared.confirmed.load(Relaxed),
        consumed: shared.consumed.load(Relaxed),
        dead_lettered: shared.dead_lettered.load(Relaxed),
        broker: cfg.broker_pid.and_then(procfs::sample),
        client: procfs::sample(std::process::id()),
        system_s: procfs::system_busy_s(),
    }
}

/// CPU figures between two marks; `per` = messages the CPU time is divided by.
fn cpu_report(a: &Mark, b: &Mark, per: u64, peak_kb: u64) -> Value {
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let mut broker = json!(null);
    let mut broker_pct = 0.0;
    if let (Some(x), Some(y)) = (a.broker, b.broker) {
        let cpu = y.cpu_s - x.cpu_s;
        broker_pct = cpu / secs * 100.0;
        broker = json!({
            "cpu_pct": round1(broker_pct),
            "us_per_msg": (per > 0).then(|| round2(cpu * 1e6 / per as f64)),
            "rss_start_mb": x.rss_kb / 1024,
            "rss_end_mb": y.rss_kb / 1024,
            "rss_peak_mb": peak_kb.max(y.rss_kb) / 1024,
        });
    }
    let mut client = json!(null);
    let mut client_pct = 0.0;
    if let (Some(x), Some(y)) = (a.client, b.client) {
        let cpu = y.cpu_s - x.cpu_s;
        client_pct = cpu / secs * 100.0;
        client = json!({
            "cpu_pct": round1(client_pct),
            "us_per_msg": (per > 0).then(|| round2(cpu * 1e6 / per as f64)),
        });
    }
    let mut system = json!(null);
    if let (Some(x), Some(y)) = (a.system_s, b.system_s) {
        let pct = (y - x) / secs * 100.0;
        system = json!({
            "cpu_pct": round1(pct),
            "other_cpu_pct": round1((pct - broker_pct - client_pct).max(0.0)),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        });
    }
    json!({ "broker": broker, "client": client, "system": system })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn latency_report(hist: &Histogram<u64>) -> Value {
    if hist.is_empty() {
        return json!(null);
    }
    let us = |q: f64| round1(hist.value_at_quantile(q) as f64 / 1000.0);
    json!({
        "count": hist.len(),
        "p50_us": us(0.50),
        "p75_us": us(0.75),
        "p95_us": us(0.95),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": round1(hist.max() as f64 / 1000.0),
        "mean_us": round1(hist.mean() / 1000.0),
    })
}

fn config_json(cfg: &Config) -> Value {
    json!({
        "producers": cfg.producers, "consumers": cfg.consumers, "queues": cfg.queues,
        "size": cfg.size, "rate": cfg.rate, "qos": cfg.qos, "multi_ack": cfg.multi_ack,
        "auto_ack": cfg.auto_ack, "persistent": cfg.persistent, "durable": cfg.durable,
        "confirm": cfg.confirm, "fanout": cfg.fanout, "topic": cfg.topic, "time": cfg.time,
        "warmup": cfg.warmup, "backlog": cfg.backlog, "max_lag": cfg.max_lag,
        "nack": cfg.nack, "dead_letter": cfg.dead_letter,
        "queue_args": cfg.queue_args.iter().map(|a| match &a.value {
            QueueArgValue::Int(n) => (a.key.clone(), json!(n)),
            QueueArgValue::Str(s) => (a.key.clone(), json!(s)),
        }).collect::<serde_json::Map<_, _>>(),
        "producer_connections": cfg.producer_connections,
        "consumer_connections": cfg.consumer_connections, "threads": cfg.threads,
    })
}

/// Per-second progress line; returns (published, confirmed, consumed) deltas.
fn progress(cfg: &Config, shared: &Shared, last: &mut [u64; 3], sec: u64, phase: &str) -> [u64; 3] {
    let now = [
        shared.published.load(Relaxed),
        shared.confirmed.load(Relaxed),
        shared.consumed.load(Relaxed),
    ];
    let d = [now[0] - last[0], now[1] - last[1], now[2] - last[2]];
    *last = now;
    if !cfg.quiet {
        if cfg.confirm > 0 {
            eprintln!(
                "[{sec:>4}s {phase}] published {:>8}/s  confirmed {:>8}/s  consumed {:>8}/s",
                d[0], d[1], d[2]
            );
        } else {
            eprintln!(
                "[{sec:>4}s {phase}] published {:>8}/s  consumed {:>8}/s",
                d[0], d[2]
            );
        }
    }
    d
}

async fn join_all(
    shared: &Shared,
    producers: Vec<JoinHandle<()>>,
    consumers: Vec<JoinHandle<Option<Histogram<u64>>>>,
) -> Result<Histogram<u64>> {
    shared.stop_pub.send_replace(true);
    shared.stop_cons.send_replace(true);
    let mut hist = new_histogram()?;
    for h in producers {
        let abort = h.abort_handle();
        if tokio::time::timeout(Duration::from_secs(15), h)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    for h in consumers {
        let abort = h.abort_handle();
        match tokio::time::timeout(Duration::from_secs(15), h).await {
            Ok(Ok(Some(h))) => {
                let _ = hist.add(&h);
            }
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
    }
    Ok(hist)
}

async fn time_mode(
    cfg: &Arc<Config>,
    target: &Target,
    names: &Arc<Names>,
    shared: &Arc<Shared>,
    admin: &mut SetupConn,
) -> Result<Value> {
    let consumers = if cfg.consumers > 0 {
        start_consumers(cfg, target, shared, names).await?
    } else {
        Vec::new()
    };
    let (start_tx, start_rx) = watch::channel(false);
    let producers = if cfg.producers > 0 {
        start_producers(cfg, target, shared, names, &start_rx).await?
    } else {
        Vec::new()
    };
    let peak = PeakRss::start(cfg.broker_pid);
    let t0 = Instant::now();
    start_tx.send_replace(true);

    let warm_end = t0 + Duration::from_secs_f64(cfg.warmup);
    let mut window: Option<(Mark, Option<u64>)> = None;
    if cfg.warmup <= 0.0 {
        let d0 = depth(cfg, names, admin).await;
        shared.measuring.store(true, Relaxed);
        window = Some((mark(cfg, shared), d0));
    }
    let mut last = [0u64; 3];
    let mut sec = 0u64;
    let mut next_tick = t0 + Duration::from_secs(1);
    let mut series = Vec::new();
    let (mut zero_cons_s, mut zero_conf_s) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if shared.failed.load(Relaxed) {
            break;
        }
        if window.is_none() && now >= warm_end {
            let d0 = depth(cfg, names, admin).await;
            shared.measuring.store(true, Relaxed);
            window = Some((mark(cfg, shared), d0));
            continue;
        }
        if let Some((m, _)) = &window
            && now >= m.at + Duration::from_secs_f64(cfg.time)
        {
            break;
        }
        if now >= next_tick {
            sec += 1;
            next_tick += Duration::from_secs(1);
            let phase = if window.is_some() { "run " } else { "warm" };
            let d = progress(cfg, shared, &mut last, sec, phase);
            if window.is_some() {
                series.push(json!([sec, d[0], d[1], d[2]]));
                let p = shared.published.load(Relaxed);
                let c = shared.consumed.load(Relaxed);
                let copies = if cfg.fanout { cfg.queues as u64 } else { 1 };
                if cfg.consumers > 0 && d[2] == 0 && p * copies > c {
                    zero_cons_s += 1;
                }
                if cfg.confirm > 0
                    && d[1] == 0
                    && p > shared.confirmed.load(Relaxed) + shared.nacked.load(Relaxed)
                {
                    zero_conf_s += 1;
                }
            }
        }
        let mut until = next_tick;
        if window.is_none() {
            until = until.min(warm_end);
        } else if let Some((m, _)) = &window {
            until = until.min(m.at + Duration::from_secs_f64(cfg.time));
        }
        tokio::time::sleep_until(until.into()).await;
    }
    let Some((m0, d0)) = window else {
        let _ = join_all(shared, producers, consumers).await;
        peak.finish();
        bail!("the run failed during the warm-up");
    };
    let m1 = mark(cfg, shared);
    shared.measuring.store(false, Relaxed);
    let d1 = depth(cfg, names, admin).await;
    let hist = join_all(shared, producers, consumers).await?;
    let peak_kb = peak.finish();

    let secs = (m1.at - m0.at).as_secs_f64().max(1e-9);
    let published = m1.published - m0.published;
    let confirmed = m1.confirmed - m0.confirmed;
    let consumed = m1.consumed - m0.consumed;
    let dead_lettered = m1.dead_lettered - m0.dead_lettered;
    let acc_rate = match (d0, d1) {
        (Some(a), Some(b)) => {
            let div = if cfg.fanout { cfg.queues as f64 } else { 1.0 };
            Some(
                (((consumed as f64) + b as f64 - a as f64) / div / secs)
                    .max(0.0)
                    .round() as u64,
            )
        }
        _ => None,
    };
    // Without confirms a producer can sit in one blocked socket write for seconds (the
    // kernel buffers megabytes), so only "nothing moved at all" is an error.
    if cfg.consumers > 0 && consumed == 0 && !shared.failed.load(Relaxed) {
        shared.fail("no message was consumed in the measured window".to_string());
    }
    if cfg.dead_letter
        && cfg.nack
        && consumed > 0
        && dead_lettered == 0
        && !shared.failed.load(Relaxed)
    {
        shared.fail("no message was dead-lettered in the measured window".to_string());
    }
    if cfg.consumers == 0 && cfg.producers > 0 && published == 0 && !shared.failed.load(Relaxed) {
        shared.fail("no message was published in the measured window".to_string());
    }
    let cpu = cpu_report(&m0, &m1, consumed, peak_kb);
    Ok(json!({
        "name": cfg.name,
        "mode": "time",
        "uri": redact(&cfg.uri),
        "config": config_json(cfg),
        "elapsed_s": round2(secs),
        "published": published,
        "confirmed": confirmed,
        "nacked": shared.nacked.load(Relaxed),
        "consumed": consumed,
        "pub_rate": (published as f64 / secs).round() as u64,
        "confirm_rate": (cfg.confirm > 0).then(|| (confirmed as f64 / secs).round() as u64),
        "cons_rate": (consumed as f64 / secs).round() as u64,
        "dead_lettered": cfg.dead_letter.then_some(dead_lettered),
        "dl_rate": cfg.dead_letter.then(|| (dead_lettered as f64 / secs).round() as u64),
        "acc_rate": acc_rate,
        "depth_start": d0,
        "depth_end": d1,
        "latency": latency_report(&hist),
        "broker": cpu["broker"],
        "client": cpu["client"],
        "system": cpu["system"],
        "zero_consume_seconds": zero_cons_s,
        "zero_confirm_seconds": zero_conf_s,
        "per_second": series,
    }))
}

/// How long without any progress before a backlog phase is declared stalled.
const STALL: Duration = Duration::from_secs(30);

async fn backlog_mode(
    cfg: &Arc<Config>,
    target: &Target,
    names: &Arc<Names>,
    shared: &Arc<Shared>,
    admin: &mut SetupConn,
) -> Result<Value> {
    let n = cfg.backlog;
    let (start_tx, start_rx) = watch::channel(false);
    let producers = start_producers(cfg, target, shared, names, &start_rx).await?;
    let peak = PeakRss::start(cfg.broker_pid);
    let m0 = mark(cfg, shared);
    start_tx.send_replace(true);

    // Phase 1: publish (and, with confirms, wait for every confirm).
    let done = |s: &Shared| {
        if cfg.confirm > 0 {
            s.confirmed.load(Relaxed) + s.nacked.load(Relaxed)
        } else {
            s.published.load(Relaxed)
        }
    };
    let mut last = [0u64; 3];
    let mut sec = 0u64;
    let mut last_progress = (done(shared), Instant::now());
    let mut stalled = None;
    while done(shared) < n && !shared.failed.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if m0.at.elapsed() >= Duration::from_secs(sec + 1) {
            sec += 1;
            progress(cfg, shared, &mut last, sec, "pub ");
        }
        let d = done(shared);
        if d != last_progress.0 {
            last_progress = (d, Instant::now());
        } else if last_progress.1.elapsed() >= STALL {
            stalled = Some(format!(
                "publish phase stalled: {} published, {} confirmed, no progress for {}s",
                shared.published.load(Relaxed),
                shared.confirmed.load(Relaxed),
                STALL.as_secs()
            ));
            break;
        }
    }
    if let Some(s) = stalled {
        shared.fail(s);
    }
    let pub_s = m0.at.elapsed().as_secs_f64();
    let published = shared.published.load(Relaxed);
    let confirmed = shared.confirmed.load(Relaxed);
    let mid = mark(cfg, shared);
    shared.stop_pub.send_replace(true);
    for h in producers {
        let abort = h.abort_handle();
        if tokio::time::timeout(Duration::from_secs(15), h)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    let expected = if cfg.fanout { n * cfg.queues as u64 } else { n };
    let mut depth_after = depth(cfg, names, admin).await;
    if cfg.confirm == 0 {
        // Without confirms "published" means written to the socket: wait until the broker
        // has routed what it will (the depth reaches N or stops growing for 2 s).
        let mut still = 0;
        while let Some(d) = depth_after
            && d < expected
            && still < 4
            && !shared.failed.load(Relaxed)
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let next = depth(cfg, names, admin).await;
            still = if next == depth_after { still + 1 } else { 0 };
            depth_after = next;
        }
    }
    if !cfg.quiet {
        eprintln!(
            "warren-perf: published {published} ({confirmed} confirmed) in {pub_s:.2}s; queue depth {}; draining",
            depth_after.map_or("?".into(), |d| d.to_string())
        );
    }
    // A length limit or TTL may leave fewer: then the drain takes what is there.
    if let Some(d) = depth_after
        && d != expected
        && !cfg.queues_may_drop()
        && !shared.failed.load(Relaxed)
    {
        shared.fail(format!(
            "queue depth after publish is {d}, expected {expected}"
        ));
    }

    // Phase 2: drain.
    let mut drain_s = None;
    let mut consumed = 0;
    let mut hist = new_histogram()?;
    if !shared.failed.load(Relaxed) && cfg.consumers > 0 {
        shared.measuring.store(true, Relaxed);
        let t1 = Instant::now();
        let consumers = start_consumers(cfg, target, shared, names).await?;
        let target_n = depth_after.unwrap_or(expected);
        let mut last_progress = (0u64, Instant::now());
        let mut sec = 0u64;
        let mut last = [
            shared.published.load(Relaxed),
            shared.confirmed.load(Relaxed),
            0,
        ];
        while shared.consumed.load(Relaxed) < target_n && !shared.failed.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if t1.elapsed() >= Duration::from_secs(sec + 1) {
                sec += 1;
                progress(cfg, shared, &mut last, sec, "drain");
            }
            let c = shared.consumed.load(Relaxed);
            if c != last_progress.0 {
                last_progress = (c, Instant::now());
            } else if last_progress.1.elapsed() >= STALL {
                shared.fail(format!(
                    "drain stalled: {c} of {target_n} consumed, no progress for {}s",
                    STALL.as_secs()
                ));
                break;
            }
        }
        drain_s = Some(t1.elapsed().as_secs_f64());
        consumed = shared.consumed.load(Relaxed);
        shared.measuring.store(false, Relaxed);
        hist = join_all(shared, Vec::new(), consumers).await?;
    }
    let m1 = mark(cfg, shared);
    let peak_kb = peak.finish();
    let cpu = cpu_report(&m0, &m1, n, peak_kb);
    let pub_cpu = cpu_report(&m0, &mid, n, 0);
    Ok(json!({
        "name": cfg.name,
        "mode": "backlog",
        "uri": redact(&cfg.uri),
        "config": config_json(cfg),
        "backlog": n,
        "published": published,
        "confirmed": confirmed,
        "nacked": shared.nacked.load(Relaxed),
        "consumed": consumed,
        "pub_s": round2(pub_s),
        "drain_s": drain_s.map(round2),
        "pub_rate": (if cfg.confirm > 0 { confirmed } else { published } as f64 / pub_s.max(1e-9)).round() as u64,
        "confirm_rate": (cfg.confirm > 0).then(|| (confirmed as f64 / pub_s.max(1e-9)).round() as u64),
        "cons_rate": drain_s.map(|d| (consumed as f64 / d.max(1e-9)).round() as u64),
        "depth_after_publish": depth_after,
        "elapsed_s": round2((m1.at - m0.at).as_secs_f64()),
        "latency": latency_report(&hist),
        "broker": cpu["broker"],
        "client": cpu["client"],
        "system": cpu["system"],
        "publish_phase": pub_cpu,
        "broker_rss_after_publish_mb": mid.broker.map(|b| b.rss_kb / 1024),
    }))
}

/// The URI without its password.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &uri[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &uri[..s + 3], user, &uri[at..])
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}
