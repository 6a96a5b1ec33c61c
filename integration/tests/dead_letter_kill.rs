//! Dead lettering across kill -9 of the real binary: the move of a persistent message from
//! its durable queue to a durable dead-letter queue is one store batch, so a kill leaves
//! every message in exactly one of the two queues, and a move that was written before the
//! kill (the next confirmed publish proves it) is never undone. Needs the binary:
//! `cargo build -p warren` (the README's test command does).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use tokio::runtime::Runtime;
use warren_integration::{BinaryBroker, connect};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn channel(url: &str) -> (Connection, Channel) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

const WORK: &str = "dl-work";
const DLQ: &str = "dl-dead";
const BARRIER: &str = "dl-barrier";

/// The durable work queue (dead-lettering through the default exchange into `DLQ`), the
/// durable dead-letter queue and a barrier queue.
async fn declare_all(ch: &Channel) {
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(DLQ.into()),
    );
    for (name, args) in [
        (WORK, args),
        (DLQ, FieldTable::default()),
        (BARRIER, FieldTable::default()),
    ] {
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
    }
}

async fn publish_persistent(ch: &Channel, queue: &str, bodies: impl Iterator<Item = String>) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for body in bodies {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
    }
    assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "a nack");
}

/// Every body in `queue` (basic.get no-ack until empty), counted.
async fn contents(url: &str, queue: &str) -> BTreeMap<String, usize> {
    let (_conn, ch) = channel(url).await;
    let mut out = BTreeMap::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        *out.entry(String::from_utf8(m.delivery.data).unwrap())
            .or_default() += 1;
    }
    out
}

async fn count(ch: &Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue.into(),
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

/// Reject (requeue=false) every delivery from `WORK` until stopped.
async fn reject_all(url: String) {
    let (_conn, ch) = channel(&url).await;
    ch.basic_qos(50, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            WORK.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    while let Some(Ok(d)) = consumer.next().await {
        if ch
            .basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
            .await
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn a_dead_lettered_persistent_message_survives_kill_9_after_the_move() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    let n = 200;
    rt.block_on(async {
        let (_conn, ch) = channel(&url).await;
        declare_all(&ch).await;
        publish_persistent(&ch, WORK, (0..n).map(|i| format!("m-{i}"))).await;
        let rejecter = tokio::spawn(reject_all(url.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while count(&ch, DLQ).await < n {
            assert!(std::time::Instant::now() < deadline, "not all dead-lettered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rejecter.abort();
        // A confirmed persistent publish after the moves: the store writes in submission
        // order, so every move before it is on disk once it is confirmed.
        let (_c2, barrier) = channel(&url).await;
        publish_persistent(&barrier, BARRIER, std::iter::once("barrier".to_string())).await;
    });
    broker.kill();
    let broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    rt.block_on(async {
        let dead = contents(&url, DLQ).await;
        let work = contents(&url, WORK).await;
        assert!(work.is_empty(), "moved messages came back to the work queue: {work:?}");
        assert_eq!(dead.len(), n as usize, "dead-lettered messages lost");
        assert!(dead.values().all(|c| *c == 1), "duplicates: {dead:?}");
    });
    broker.kill();
}

#[test]
fn kill_9_during_a_stream_of_dead_letterings_loses_and_duplicates_nothing() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let n = 2000;
    let mut broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    rt.block_on(async {
        let (_conn, ch) = channel(&url).await;
        declare_all(&ch).await;
        publish_persistent(&ch, WORK, (0..n).map(|i| format!("m-{i}"))).await;
    });
    for cycle in 0..3 {
        let url = broker.url();
        rt.block_on(async {
            let rejecter = tokio::spawn(reject_all(url.clone()));
            // Kill once some (not all) have moved.
            let (_conn, ch) = channel(&url).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let start = count(&ch, DLQ).await;
            while count(&ch, DLQ).await < start + 50 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rejecter.abort();
        });
        broker.kill();
        broker = BinaryBroker::spawn(&data);
        let url = broker.url();
        rt.block_on(async {
            let (_conn, ch) = channel(&url).await;
            let (w, d) = (count(&ch, WORK).await, count(&ch, DLQ).await);
            assert_eq!(w + d, n, "cycle {cycle}: {w} in the work queue + {d} dead-lettered");
        });
    }
    let url = broker.url();
    rt.block_on(async {
        let mut all = contents(&url, WORK).await;
        for (body, c) in contents(&url, DLQ).await {
            *all.entry(body).or_default() += c;
        }
        assert_eq!(all.len(), n as usize, "lost messages");
        assert!(all.values().all(|c| *c == 1), "duplicated messages");
    });
    broker.kill();
}
