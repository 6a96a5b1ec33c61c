//! Priority queues (`x-max-priority`), as RabbitMQ 3.10's classic queues: the argument's
//! validation, delivery highest priority first and FIFO within a priority (a priority above
//! the maximum counts as the maximum, none as 0; a maximum of 0 is a plain queue), the order
//! kept across requeues (nack, reject, basic.recover, channel close), `basic.get` and its
//! message count, paging far past the queue's memory window, a clean restart and a kill -9
//! of the real binary; kombu's and Celery's priority settings (programs in
//! `clients/python`, run in the client venv of `tests/clients.rs`); and the one deliberate
//! difference (the redelivered flag after a restart).
//!
//! The tests on `Env` (including kombu's and Celery's) also pass against RabbitMQ
//! (`WARREN_TEST_URL`); the paging, restart and kill tests need the in-process broker or the
//! binary (`cargo build -p warren` first).

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRecoverOptions, BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use warren_broker::QueueLimits;
use warren_integration::{BinaryBroker, TestBroker, TestConfig, connect};

fn max_priority(max: i64) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-max-priority".into(), AMQPValue::LongLongInt(max));
    t
}

/// Declare a queue with `x-max-priority` = `max`; returns its name.
async fn priority_queue(ch: &Channel, durable: bool, max: i64) -> String {
    let name = unique("prio");
    ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        },
        max_priority(max),
    )
    .await
    .unwrap();
    name
}

fn props(priority: Option<u8>, persistent: bool) -> BasicProperties {
    let mut p = BasicProperties::default();
    if let Some(priority) = priority {
        p = p.with_priority(priority);
    }
    if persistent {
        p = p.with_delivery_mode(2);
    }
    p
}

/// Publish `messages` (body, priority) to `queue` with confirms, waiting for every confirm.
async fn publish_all(
    ch: &Channel,
    queue: &str,
    messages: &[(String, Option<u8>)],
    persistent: bool,
) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(messages.len());
    for (body, priority) in messages {
        pending.push(
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                props(*priority, persistent),
            )
            .await
            .unwrap(),
        );
    }
    for confirm in pending {
        assert!(confirm.await.unwrap().is_ack(), "publish nacked");
    }
}

/// The order a queue with maximum `max` must deliver `messages` in: highest effective
/// priority (clamped to `max`, none = 0) first, publish order within one.
fn expected_order(messages: &[(String, Option<u8>)], max: u8) -> Vec<String> {
    let mut sorted: Vec<(u8, &String)> = messages
        .iter()
        .map(|(body, p)| (p.unwrap_or(0).min(max), body))
        .collect();
    // Stable: publish order within a priority.
    sorted.sort_by_key(|m| std::cmp::Reverse(m.0));
    sorted.into_iter().map(|(_, body)| body.clone()).collect()
}

/// `n` messages named `m0..`, with priorities cycling through `pattern`.
fn numbered(n: usize, pattern: &[Option<u8>]) -> Vec<(String, Option<u8>)> {
    (0..n)
        .map(|i| (format!("m{i}"), pattern[i % pattern.len()]))
        .collect()
}

fn strings(bodies: Vec<Vec<u8>>) -> Vec<String> {
    bodies
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_priority_argument_is_validated_as_rabbitmq_does() {
    let env = Env::start();
    let conn = env.connect().await;
    let cases: Vec<(AMQPValue, &str)> = vec![
        (AMQPValue::LongInt(256), "{max_value_exceeded,256}"),
        (AMQPValue::LongLongInt(1000), "{max_value_exceeded,1000}"),
        (AMQPValue::LongInt(-1), "{value_negative,-1}"),
        (
            AMQPValue::LongString("5".into()),
            "\"expected integer, got longstr\"",
        ),
    ];
    for (value, why) in cases {
        let ch = conn.create_channel().await.unwrap();
        let name = unique("bad-prio");
        let mut args = FieldTable::default();
        args.insert("x-max-priority".into(), value);
        let result = ch
            .queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
            .await;
        assert_eq!(
            error_text(&result),
            format!(
                "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '{name}' in vhost '/': {why}"
            )
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
    // The bounds themselves are accepted, in any integer type.
    let ch = conn.create_channel().await.unwrap();
    for value in [
        AMQPValue::LongInt(255),
        AMQPValue::ShortShortUInt(0),
        AMQPValue::ShortInt(10),
    ] {
        let name = unique("ok-prio");
        let mut args = FieldTable::default();
        args.insert("x-max-priority".into(), value);
        ch.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
            .await
            .unwrap();
        delete_queue(&ch, &name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_goes_first_and_fifo_within_a_priority() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = priority_queue(&ch, false, 5).await;
    // 9 is above the maximum and counts as 5; none counts as 0.
    let messages: Vec<(String, Option<u8>)> = [
        ("a", None),
        ("b", Some(1)),
        ("c", Some(5)),
        ("d", Some(3)),
        ("e", Some(9)),
        ("f", Some(0)),
        ("g", Some(1)),
        ("h", Some(5)),
        ("i", None),
    ]
    .iter()
    .map(|(b, p)| (b.to_string(), *p))
    .collect();
    publish_all(&ch, &q, &messages, false).await;
    let expected = ["c", "e", "h", "d", "b", "g", "a", "f", "i"];
    assert_eq!(expected_order(&messages, 5), expected);
    // A consumer sees the same order as basic.get.
    let mut consumer = consume(&ch, &q, true).await;
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        got.push(String::from_utf8(next(&mut consumer).await.data).unwrap());
    }
    assert_eq!(got, expected);
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_priority_zero_keeps_publish_order() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = priority_queue(&ch, false, 0).await;
    let messages = numbered(12, &[Some(3), None, Some(9), Some(1), Some(0)]);
    publish_all(&ch, &q, &messages, false).await;
    let bodies: Vec<String> = messages.iter().map(|(b, _)| b.clone()).collect();
    assert_eq!(strings(drain(&ch, &q).await), bodies);
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_takes_the_highest_priority_and_counts_the_rest() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = priority_queue(&ch, false, 10).await;
    let messages = numbered(20, &[Some(2), Some(7), None, Some(10), Some(7)]);
    publish_all(&ch, &q, &messages, false).await;
    let expected = expected_order(&messages, 10);
    for (i, body) in expected.iter().enumerate() {
        let (_, data, redelivered, count) = get(&ch, &q).await.expect("a message");
        assert_eq!(String::from_utf8(data).unwrap(), *body);
        assert!(!redelivered);
        assert_eq!(count as usize, expected.len() - i - 1, "message count");
    }
    assert!(get(&ch, &q).await.is_none());
    delete_queue(&ch, &q).await;
}

/// Bodies of a drain with basic.get that also reports the redelivered flag.
async fn drain_flags(ch: &Channel, q: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(q.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push((
            String::from_utf8(m.delivery.data).unwrap(),
            m.delivery.redelivered,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_reject_and_recover_put_messages_back_in_priority_order() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = priority_queue(&ch, false, 5).await;
    let messages: Vec<(String, Option<u8>)> = [
        ("a", None),
        ("b", None),
        ("c", Some(5)),
        ("d", Some(5)),
        ("e", Some(3)),
        ("f", Some(3)),
    ]
    .iter()
    .map(|(b, p)| (b.to_string(), *p))
    .collect();
    publish_all(&ch, &q, &messages, false).await;
    let mut tags = Vec::new();
    for expected in ["c", "d", "e"] {
        let (tag, data, _, _) = get(&ch, &q).await.unwrap();
        assert_eq!(data, expected.as_bytes());
        tags.push(tag);
    }
    // d by reject, c by nack, e by basic.recover: each back to its place.
    ch.basic_reject(tags[1], BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    ch.basic_nack(
        tags[0],
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    )
    .await
    .unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    assert_eq!(
        drain_flags(&ch, &q).await,
        [
            ("c".to_string(), true),
            ("d".to_string(), true),
            ("e".to_string(), true),
            ("f".to_string(), false),
            ("a".to_string(), false),
            ("b".to_string(), false),
        ]
    );
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_channel_returns_its_unacked_messages_in_priority_order() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = priority_queue(&ch, false, 4).await;
    let messages = numbered(30, &[Some(1), Some(4), None, Some(2)]);
    publish_all(&ch, &q, &messages, false).await;
    let expected = expected_order(&messages, 4);

    // Taken by basic.get, so that nothing more is delivered after the ack below.
    let taker = conn.create_channel().await.unwrap();
    let mut first = Vec::new();
    for _ in 0..10 {
        let (_, data, _, _) = get(&taker, &q).await.unwrap();
        first.push(String::from_utf8(data).unwrap());
    }
    assert_eq!(first, expected[..10]);
    // Ack one from the middle; the rest go back when the channel closes.
    let acked = expected[4].clone();
    taker
        .basic_ack(5, BasicAckOptions::default())
        .await
        .unwrap();
    taker.close(200, "bye".into()).await.unwrap();
    assert_count(&ch, &q, 29).await;
    let rest: Vec<String> = expected.into_iter().filter(|b| *b != acked).collect();
    let got = drain_flags(&ch, &q).await;
    assert_eq!(got.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(), rest);
    assert!(got[..9].iter().all(|(_, redelivered)| *redelivered));
    assert!(got[9..].iter().all(|(_, redelivered)| !*redelivered));
    delete_queue(&ch, &q).await;
}

/// A broker whose queues keep at most 20 messages in memory (the rest paged out).
fn small_window_broker() -> TestBroker {
    let mut config = TestConfig::default();
    config.broker.queue_limits = QueueLimits {
        ram_messages: 20,
        page_in_batch: 16,
        ..QueueLimits::default()
    };
    TestBroker::start_with(config)
}

async fn paged_backlog_drains_in_priority_order(durable: bool, persistent: bool) {
    let broker = small_window_broker();
    let url = broker.url();
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    let q = priority_queue(&ch, durable, 9).await;
    let messages = numbered(
        3000,
        &[
            Some(1),
            None,
            Some(9),
            Some(4),
            Some(200),
            Some(4),
            Some(7),
            Some(1),
        ],
    );
    publish_all(&ch, &q, &messages, persistent).await;
    let expected = expected_order(&messages, 9);
    // Half by a consumer (prefetch 1) with requeues mixed in, half by basic.get.
    let taker = conn.create_channel().await.unwrap();
    taker
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consume(&taker, &q, false).await;
    let mut got = Vec::new();
    while got.len() < 1500 {
        let d = next(&mut consumer).await;
        // Every 100th first delivery goes back once: it must come back at its place.
        let body = String::from_utf8(d.data.clone()).unwrap();
        if !d.redelivered && got.len() % 100 == 7 {
            d.nack(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .await
            .unwrap();
            continue;
        }
        got.push(body);
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    taker.close(200, "half".into()).await.unwrap();
    got.extend(strings(drain(&ch, &q).await));
    assert_eq!(got.len(), expected.len(), "messages lost or duplicated");
    assert!(got == expected, "paged-out backlog out of priority order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_out_persistent_backlog_drains_in_priority_order() {
    paged_backlog_drains_in_priority_order(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_out_transient_backlog_drains_in_priority_order() {
    paged_backlog_drains_in_priority_order(false, false).await;
}

#[test]
fn a_persistent_backlog_keeps_priority_order_across_a_clean_restart() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = small_window_broker();
    let messages = numbered(500, &[None, Some(3), Some(8), Some(3), Some(1)]);
    let q = rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        let q = priority_queue(&ch, true, 5).await;
        publish_all(&ch, &q, &messages, true).await;
        conn.close(200, "bye".into()).await.unwrap();
        q
    });
    let broker = broker.restart();
    rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        assert_eq!(message_count(&ch, &q).await, 500);
        // A message published after the restart takes its place by priority too.
        let later = vec![
            ("late-high".to_string(), Some(5)),
            ("late-low".to_string(), None),
        ];
        publish_all(&ch, &q, &later, true).await;
        let mut all = messages.clone();
        all.extend(later);
        assert!(strings(drain(&ch, &q).await) == expected_order(&all, 5));
    });
}

#[test]
fn a_persistent_backlog_keeps_priority_order_after_kill_9() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let env = [("WARREN_QUEUE_RAM_MESSAGES", "50")];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let messages = numbered(2000, &[Some(2), None, Some(9), Some(5), Some(2), Some(12)]);
    let broker = BinaryBroker::spawn_with(&data, &[], &env);
    let q = rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        let q = priority_queue(&ch, true, 10).await;
        publish_all(&ch, &q, &messages, true).await;
        q
    });
    broker.kill();
    let broker = BinaryBroker::spawn_with(&data, &[], &env);
    rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        let got = strings(drain(&ch, &q).await);
        assert_eq!(got.len(), messages.len(), "confirmed messages lost");
        assert!(
            got == expected_order(&messages, 10),
            "recovered out of priority order"
        );
    });
    assert_eq!(broker.terminate(), Some(0));
}

/// The Python client programs (kombu, Celery) in the venv `tests/clients.rs` uses:
/// `$CARGO_TARGET_DIR/pyenv-clients` from `clients/python/requirements-clients.txt`, under
/// the same lock file and requirements stamp, installed on first use. None (with a printed
/// line) without `python3`.
mod python {
    use std::fs::File;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn target_dir() -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            // target/<profile>/deps/<test> -> target
            _ => std::env::current_exe()
                .unwrap()
                .ancestors()
                .nth(3)
                .unwrap()
                .to_path_buf(),
        }
    }

    pub fn python_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python")
    }

    fn step(cmd: &mut Command) {
        let output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            output.status.success(),
            "{cmd:?} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn clients_python() -> Option<PathBuf> {
        let venv_ok = Command::new("python3")
            .args(["-c", "import venv, ensurepip"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !venv_ok {
            eprintln!("priority: skipping the Python clients: no python3 with venv");
            return None;
        }
        let requirements_file = python_dir().join("requirements-clients.txt");
        let requirements = std::fs::read_to_string(&requirements_file).unwrap();
        let dir = target_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let venv = dir.join("pyenv-clients");
        let python = venv.join("bin").join("python");
        let stamp = venv.join("warren-requirements-clients.txt");
        let lock = File::create(dir.join("pyenv-clients.lock")).unwrap();
        lock.lock().unwrap();
        if !python.exists() || std::fs::read_to_string(&stamp).ok() != Some(requirements.clone()) {
            step(
                Command::new("python3")
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv),
            );
            step(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "-r"])
                    .arg(&requirements_file),
            );
            std::fs::write(&stamp, &requirements).unwrap();
        }
        drop(lock);
        Some(python)
    }

    /// Run `clients/python/<script>` against `url`; returns (exit ok, stdout + stderr).
    /// Killed after 180 s.
    pub fn run(python: &Path, script: &str, url: &str) -> (bool, String) {
        let out_path = std::env::temp_dir().join(format!(
            "warren-priority-{}-{script}.out",
            std::process::id()
        ));
        let out = File::create(&out_path).unwrap();
        let mut child = Command::new(python)
            .arg("-u")
            .arg(python_dir().join(script))
            .current_dir(python_dir())
            .env("AMQP_URL", url)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(180);
        let ok = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        let _ = std::fs::remove_file(&out_path);
        (ok, text)
    }
}

/// Run a Python priority program against a broker and require its `PASS` lines.
async fn python_client_passes(script: &'static str, passes: &'static [&'static str]) {
    let env = Env::start();
    let Some(python) = tokio::task::spawn_blocking(python::clients_python)
        .await
        .unwrap()
    else {
        return;
    };
    let url = env.url().to_owned();
    let (ok, output) = tokio::task::spawn_blocking(move || python::run(&python, script, &url))
        .await
        .unwrap();
    assert!(ok, "{script} failed:\n{output}");
    for pass in passes {
        assert!(
            output.lines().any(|l| l == format!("PASS {pass}")),
            "{script}: no PASS {pass}:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kombu_max_priority_queues_deliver_in_priority_order() {
    python_client_passes(
        "priority_kombu.py",
        &["kombu-max-priority", "kombu-queue-arguments"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celery_runs_a_backlog_by_task_priority() {
    python_client_passes("priority_celery.py", &["celery-priority"]).await;
}

/// The deliberate difference from RabbitMQ (README, "Priority queues"): deliveries are
/// recorded as one watermark per queue, so after a restart a never-delivered message of a
/// priority queue with a lower seq than a delivered one comes back flagged `redelivered`;
/// one published after the delivered one does not.
#[test]
fn after_a_restart_an_older_lower_priority_message_comes_back_flagged_redelivered() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = TestBroker::start();
    let q = rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        let q = priority_queue(&ch, true, 5).await;
        let messages = vec![
            ("old-low".to_string(), Some(1)),
            ("high".to_string(), Some(5)),
            ("new-low".to_string(), Some(1)),
        ];
        publish_all(&ch, &q, &messages, true).await;
        let (tag, data, _, _) = get(&ch, &q).await.unwrap();
        assert_eq!(data, b"high");
        ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
        conn.close(200, "bye".into()).await.unwrap();
        q
    });
    let broker = broker.restart();
    rt.block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        let got: Vec<(Vec<u8>, bool)> = [get(&ch, &q).await, get(&ch, &q).await]
            .into_iter()
            .map(|m| {
                let (_, data, redelivered, _) = m.unwrap();
                (data, redelivered)
            })
            .collect();
        assert_eq!(
            got,
            [(b"old-low".to_vec(), true), (b"new-low".to_vec(), false)]
        );
    });
}
