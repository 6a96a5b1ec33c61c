//! The consumer timeout (`consumer_timeout`): a delivery left unacknowledged longer than
//! the timeout closes its channel with 406 and RabbitMQ's text, and its message is requeued;
//! acked and no-ack deliveries never trigger it; and the key goes through the binary's
//! layered configuration (default 30 minutes, as RabbitMQ).
//!
//! In-process brokers with a short timeout (the reference RabbitMQ runs with its 30-minute
//! default, which these tests cannot wait for; the text was read from RabbitMQ 3.10.9's
//! `rabbit_channel:evaluate_consumer_timeout`). Margins are generous: the sweep runs every
//! quarter of the timeout, and the tests allow 10 s for a close due after 1 s. The
//! configuration test runs the real binary: it needs `cargo build -p warren` first.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use core_support::*;
use futures::StreamExt;
use lapin::options::*;
use lapin::{Channel, Connection, Consumer};
use warren_integration::{TestBroker, TestConfig, warren_binary};
use warren_server::ServerConfig;

fn broker_with_timeout(timeout: Duration) -> TestBroker {
    TestBroker::start_with(TestConfig {
        server: ServerConfig {
            consumer_timeout: Some(timeout),
            ..ServerConfig::default()
        },
        ..TestConfig::default()
    })
}

async fn channel(broker: &TestBroker) -> (Connection, Channel) {
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

/// The error the consumer's stream ends with once the server closes its channel, within
/// `within` (deliveries before it are skipped).
async fn stream_error(consumer: &mut Consumer, within: Duration) -> lapin::Error {
    tokio::time::timeout(within, async {
        loop {
            match consumer.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return e,
                None => panic!("consumer stream ended without an error"),
            }
        }
    })
    .await
    .expect("the channel was not closed in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_delivery_past_the_timeout_closes_the_channel_with_406_and_is_requeued() {
    let broker = broker_with_timeout(Duration::from_secs(1));
    let (conn, ch) = channel(&broker).await;
    let q = declare_queue(&ch).await;
    let mut consumer = consume(&ch, &q, false).await;
    publish(&ch, "", &q, b"slow").await;
    let d = next(&mut consumer).await;
    assert!(!d.redelivered);
    let error = stream_error(&mut consumer, Duration::from_secs(10)).await;
    let result: lapin::Result<()> = Err(error);
    assert_eq!(
        error_text(&result),
        format!(
            "PRECONDITION_FAILED - delivery acknowledgement on channel {} timed out. Timeout value used: 1000 ms. This timeout value can be configured, see consumers doc guide to learn more",
            ch.id()
        )
    );
    assert_channel_error(&conn, &ch, result, 406).await;
    // Requeued: the next consumer gets it, flagged redelivered.
    let other = conn.create_channel().await.unwrap();
    let mut next_consumer = consume(&other, &q, false).await;
    let again = next(&mut next_consumer).await;
    assert_eq!(
        (again.data.as_slice(), again.redelivered),
        (&b"slow"[..], true)
    );
    again.ack(BasicAckOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_basic_get_past_the_timeout_closes_the_channel_too() {
    let broker = broker_with_timeout(Duration::from_secs(1));
    let (conn, ch) = channel(&broker).await;
    let q = declare_queue(&ch).await;
    publish(&ch, "", &q, b"got").await;
    assert!(get(&ch, &q).await.is_some());
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while ch.status().connected() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "channel still open 10 s after a 1 s timeout"
    );
    assert!(conn.status().connected(), "the connection was closed");
    let other = conn.create_channel().await.unwrap();
    let (_, body, redelivered, _) = get(&other, &q).await.unwrap();
    assert_eq!((body.as_slice(), redelivered), (&b"got"[..], true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_acked_within_the_timeout_keep_the_channel_open() {
    // Each delivery is acked 1 s after it arrives, under a 3 s timeout, for 5 s in all.
    let broker = broker_with_timeout(Duration::from_secs(3));
    let (_conn, ch) = channel(&broker).await;
    let q = declare_queue(&ch).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume(&ch, &q, false).await;
    for i in 0..5 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    for i in 0..5 {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
        tokio::time::sleep(Duration::from_secs(1)).await;
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    // Nothing left unacked: the sweeps after the last ack find nothing to time out.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        ch.status().connected(),
        "channel closed though every ack was in time"
    );
    assert_count(&ch, &q, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_deliveries_never_trigger_the_timeout() {
    let broker = broker_with_timeout(Duration::from_secs(1));
    let (_conn, ch) = channel(&broker).await;
    let q = declare_queue(&ch).await;
    let mut consumer = consume(&ch, &q, false).await;
    for i in 0..3 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
        next(&mut consumer)
            .await
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        ch.status().connected(),
        "channel closed with nothing unacked"
    );
    publish(&ch, "", &q, b"after").await;
    let d = next(&mut consumer).await;
    assert_eq!(d.data, b"after");
    d.ack(BasicAckOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_ack_consumer_never_triggers_the_timeout() {
    let broker = broker_with_timeout(Duration::from_secs(1));
    let (_conn, ch) = channel(&broker).await;
    let q = declare_queue(&ch).await;
    let mut consumer = consume(&ch, &q, true).await;
    publish(&ch, "", &q, b"m0").await;
    assert_eq!(next(&mut consumer).await.data, b"m0");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        ch.status().connected(),
        "a no-ack consumer's channel was closed"
    );
    publish(&ch, "", &q, b"m1").await;
    assert_eq!(next(&mut consumer).await.data, b"m1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_channel_holding_the_late_delivery_is_closed() {
    let broker = broker_with_timeout(Duration::from_secs(1));
    let (conn, slow) = channel(&broker).await;
    let idle = conn.create_channel().await.unwrap();
    let q = declare_queue(&slow).await;
    let mut consumer = consume(&slow, &q, false).await;
    publish(&slow, "", &q, b"late").await;
    next(&mut consumer).await;
    stream_error(&mut consumer, Duration::from_secs(10)).await;
    assert!(wait_until(|| !slow.status().connected()).await);
    assert!(idle.status().connected(), "another channel was closed too");
    assert_eq!(message_count(&idle, &q).await, 1);
}

/// `--print-config` with `env`: the `consumer_timeout` line.
fn printed_consumer_timeout(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(warren_binary());
    cmd.arg("--print-config").stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("WARREN_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("consumer_timeout"))
        .expect("consumer_timeout in the printed configuration")
        .to_string()
}

#[test]
fn consumer_timeout_defaults_to_30_minutes_and_warren_consumer_timeout_sets_it() {
    assert_eq!(printed_consumer_timeout(&[]), "consumer_timeout = 1800000");
    assert_eq!(
        printed_consumer_timeout(&[("WARREN_CONSUMER_TIMEOUT", "5000")]),
        "consumer_timeout = 5000"
    );
}
