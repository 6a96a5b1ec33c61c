//! A store whose writes fail (fault injection: `StoreOptions::fail_writes_after`) never lets a
//! persistent publish be confirmed: from the failure on, publishers get `basic.nack`, the
//! operator gets an actionable error in the log, and what was confirmed before is intact after
//! a restart.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use tracing_subscriber::fmt::MakeWriter;
use warren_broker::QueueLimits;
use warren_integration::{TestBroker, TestConfig, connect};

/// Collects the broker's log lines (this test binary's global subscriber).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The log of every broker in this test binary (one global subscriber).
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(capture.clone())
            .try_init()
            .unwrap();
        capture
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const BATCHES_BEFORE_FAILURE: u64 = 25;

#[test]
fn after_a_store_write_failure_persistent_publishes_are_nacked_never_acked() {
    let capture = capture();
    let mut config = TestConfig::default();
    config.broker.store_options.fail_writes_after = Some(BATCHES_BEFORE_FAILURE);
    let broker = TestBroker::start_with(config);
    let url = broker.url();
    let data_dir = broker.data_dir().display().to_string();
    let rt = runtime();

    let (acked, nacked) = rt.block_on(async {
        let conn = connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.queue_declare(
            "poison".into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        let mut acked = Vec::new();
        let mut nacked = Vec::new();
        // One publish at a time: each is its own store batch, so the failure comes at a known
        // point; then 100 more after the first nack, in one burst.
        let mut i = 0;
        let mut burst_left: Option<usize> = None;
        while burst_left != Some(0) && i < 1_000 {
            let body = format!("p-{i}");
            let confirm = ch
                .basic_publish(
                    "".into(),
                    "poison".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap();
            let outcome = tokio::time::timeout(Duration::from_secs(10), confirm)
                .await
                .expect("a persistent publish got no confirm at all")
                .unwrap();
            match outcome {
                Confirmation::Ack(_) => {
                    assert!(
                        nacked.is_empty(),
                        "{body} was acked after an earlier publish was nacked"
                    );
                    acked.push(body);
                }
                Confirmation::Nack(_) => nacked.push(body),
                Confirmation::NotRequested => panic!("confirms are on"),
            }
            if !nacked.is_empty() {
                burst_left = Some(burst_left.map_or(100, |left| left - 1));
            }
            i += 1;
        }
        (acked, nacked)
    });
    assert!(
        !nacked.is_empty(),
        "1,000 publishes and no nack: the fault never fired"
    );
    assert!(acked.len() as u64 <= BATCHES_BEFORE_FAILURE);
    assert_eq!(nacked.len(), 101);
    println!(
        "acked before the failure: {}, nacked after: {}",
        acked.len(),
        nacked.len()
    );

    let log = capture.text();
    let error = log
        .lines()
        .find(|line| {
            line.contains("ERROR") && line.contains("POISONED") && line.contains(&data_dir)
        })
        .unwrap_or_else(|| panic!("no operator-facing error about the poisoned store in:\n{log}"));
    assert!(
        error.contains(&data_dir),
        "the error names the data dir: {error}"
    );
    assert!(
        error.contains("restart"),
        "the error says what to do: {error}"
    );
    assert!(
        error.contains("injected write failure"),
        "the error gives the cause: {error}"
    );

    // What was confirmed is there after a restart, and nothing that was nacked.
    let broker = broker.restart();
    let url = broker.url();
    let recovered = rt.block_on(async {
        let conn = connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        let queue = ch
            .queue_declare(
                "poison".into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let count = queue.message_count() as usize;
        let mut consumer = ch
            .basic_consume(
                "poison".into(),
                "c".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < count {
            let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            got.push(String::from_utf8(d.data.clone()).unwrap());
            ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                .await
                .unwrap();
        }
        got
    });
    assert_eq!(recovered, acked);
}

/// Transient messages past a queue's memory window are paged out to the store; when the store
/// cannot write them, their bodies must stay in memory rather than vanish.
#[test]
fn transient_messages_paged_out_to_a_failing_store_are_still_delivered() {
    let _ = capture();
    let mut config = TestConfig::default();
    config.broker.store_options.fail_writes_after = Some(0);
    config.broker.queue_limits = QueueLimits {
        ram_messages: 10,
        ..QueueLimits::default()
    };
    let broker = TestBroker::start_with(config);
    let url = broker.url();
    runtime().block_on(async {
        let conn = connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.queue_declare(
            "paged".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let sent: Vec<String> = (0..500).map(|i| format!("t-{i}")).collect();
        for body in &sent {
            ch.basic_publish(
                "".into(),
                "paged".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        }
        ch.wait_for_confirms().await.unwrap();
        ch.basic_qos(50, BasicQosOptions::default()).await.unwrap();
        let mut consumer = ch
            .basic_consume(
                "paged".into(),
                "c".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await
            else {
                break;
            };
            let d = d.unwrap();
            got.push(String::from_utf8(d.data.clone()).unwrap());
            ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                .await
                .unwrap();
        }
        assert_eq!(got, sent, "{} of {} delivered", got.len(), sent.len());
    });
}
