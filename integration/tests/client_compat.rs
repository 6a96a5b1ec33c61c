//! Regression tests for differences from RabbitMQ that the client-compatibility programs
//! (`integration/clients/`, run by `tests/clients.rs`) found. Each test pins, over a raw
//! socket or lapin, the behaviour RabbitMQ 3.10 shows, so that it holds without the
//! client that found it.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ErrorKind, ExchangeKind};
use warren_integration::TestBroker;
use warren_integration::raw::{RawClient, frame, method, short};

/// (reply code, reply text) of the AMQP error `result` failed with.
fn amqp_error<T: std::fmt::Debug>(result: lapin::Result<T>) -> (u16, String) {
    let error = result.expect_err("expected an AMQP error");
    match error.kind() {
        ErrorKind::ProtocolError(e) => (e.get_id(), e.get_message().to_string()),
        other => panic!("expected an AMQP error, got {other:?}"),
    }
}

fn declare(exclusive: bool, durable: bool) -> QueueDeclareOptions {
    QueueDeclareOptions {
        exclusive,
        durable,
        ..QueueDeclareOptions::default()
    }
}

async fn redeclare(
    conn: &Connection,
    name: &str,
    first: QueueDeclareOptions,
    second: QueueDeclareOptions,
) -> lapin::Result<lapin::Queue> {
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(name.into(), first, FieldTable::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(name.into(), second, FieldTable::default())
        .await
}

/// An idle connection gets a heartbeat every heartbeat/2 seconds, as RabbitMQ sends them.
/// Found by @cloudamqp/amqp-client, which sends no heartbeats of its own (it only answers
/// the broker's) and drops the socket after one heartbeat interval without data: Warren
/// sent one every interval, so the client timed out and closed the connection.
#[test]
fn idle_connection_gets_heartbeats_every_half_interval() {
    let broker = TestBroker::start();
    let mut client = RawClient::open(broker.addr(), 2);
    let start = Instant::now();
    let mut arrivals = Vec::new();
    while start.elapsed() < Duration::from_millis(5_500) {
        let f = client
            .read_frame()
            .expect("connection dropped while answering heartbeats");
        assert_eq!(f.frame_type, 8, "only heartbeats expected, got {f:?}");
        arrivals.push(start.elapsed());
        // Answer like a client that only echoes the broker's heartbeats.
        client.send(&frame(8, 0, &[]));
    }
    // 1 s apart: about five in 5.5 s; one interval (2 s) apart would give two.
    assert!(
        arrivals.len() >= 4,
        "heartbeats at {arrivals:?}: expected one every second (heartbeat 2 s)"
    );
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < Duration::from_millis(1_600),
            "{gap:?} between heartbeats with heartbeat 2 s: {arrivals:?}"
        );
    }
}

/// After answering the client's connection.close with close-ok the broker leaves the
/// socket to the client to close (close-ok tells the client it is "safe to close the
/// socket"), as RabbitMQ does, and closes it itself only after a grace period. Found by
/// amqp091-go: Warren closed the socket right behind close-ok, the client's reader hit EOF
/// before the close-ok was processed, and `Connection.Close()` reported the clean close as
/// `Exception (501) Reason: "EOF"` on NotifyClose.
#[test]
fn client_close_is_answered_without_closing_the_socket_first() {
    let broker = TestBroker::start();
    let mut client = RawClient::open(broker.addr(), 0);
    let mut close = 200u16.to_be_bytes().to_vec();
    close.extend(short("bye"));
    close.extend_from_slice(&[0, 0, 0, 0]);
    client.send(&frame(1, 0, &method(10, 50, &close)));
    let close_ok = client.read_frame().expect("connection.close-ok");
    assert_eq!(close_ok.class_method(), Some((10, 51)));

    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        !client.is_closed_by_peer(),
        "the broker closed the socket right after close-ok"
    );
    // Bounded: a client that never closes is dropped after the close timeout.
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    assert!(client.is_closed_by_peer(), "socket never closed");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

/// Redeclaring a queue with the other exclusive flag, on the connection that may use it,
/// is RabbitMQ's exclusive-access check (405 RESOURCE_LOCKED, checked before durable and
/// auto-delete), not an argument mismatch (406). Found by comparing pika's errors.
#[test]
fn redeclare_with_other_exclusive_flag_closes_channel_with_405() {
    let broker = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = warren_integration::connect(&broker.url()).await;
        for (name, first, second) in [
            ("plain-then-exclusive", declare(false, false), declare(true, false)),
            ("exclusive-then-plain", declare(true, false), declare(false, false)),
            ("plain-then-exclusive-durable", declare(false, false), declare(true, true)),
        ] {
            let (code, text) = amqp_error(redeclare(&conn, name, first, second).await);
            assert_eq!(code, 405, "{name}: {text}");
            assert_eq!(
                text,
                format!(
                    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. \
                     It could be originally declared on another connection or the exclusive property \
                     value does not match that of the original declaration."
                ),
                "{name}"
            );
        }
    });
}

/// An exclusive queue is never durable (RabbitMQ declares it with durable = durable and
/// not exclusive), so redeclaring it with the other durable flag is no mismatch.
#[test]
fn exclusive_queue_redeclared_with_other_durable_flag_is_equivalent() {
    let broker = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = warren_integration::connect(&broker.url()).await;
        redeclare(
            &conn,
            "excl-durable",
            declare(true, true),
            declare(true, false),
        )
        .await
        .expect("exclusive durable, then exclusive");
        redeclare(&conn, "excl", declare(true, false), declare(true, true))
            .await
            .expect("exclusive, then exclusive durable");
    });
}

/// An exchange.declare with an unknown type closes the connection with 503 and RabbitMQ's
/// words, "unknown exchange type".
#[test]
fn unknown_exchange_type_closes_connection_with_503_unknown_exchange_type() {
    let broker = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = warren_integration::connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        let result = ch
            .exchange_declare(
                "e".into(),
                ExchangeKind::Custom("nosuch".into()),
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await;
        assert_eq!(
            amqp_error(result),
            (
                503,
                "COMMAND_INVALID - unknown exchange type 'nosuch'".to_owned()
            )
        );
    });
}

/// connection.start's server properties carry `cluster_name`, as RabbitMQ's do (clients
/// show it: the Java client's getServerProperties, pika's server_properties).
#[test]
fn server_properties_carry_a_cluster_name() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());
    client.send(b"AMQP\x00\x00\x09\x01");
    let start = client.read_frame().expect("connection.start");
    assert_eq!(start.class_method(), Some((10, 10)));
    let key = b"\x0ccluster_nameS";
    let at = start
        .payload
        .windows(key.len())
        .position(|w| w == key)
        .expect("no cluster_name long string in the server properties");
    let len_at = at + key.len();
    let len = u32::from_be_bytes(start.payload[len_at..len_at + 4].try_into().unwrap()) as usize;
    let name = std::str::from_utf8(&start.payload[len_at + 4..len_at + 4 + len]).unwrap();
    assert!(name.starts_with("warren@") && name.len() > 7, "{name}");
}

/// The capabilities table advertises `consumer_priorities` and `direct_reply_to`, as
/// RabbitMQ's does: Warren honours the `x-priority` consumer argument and implements
/// `amq.rabbitmq.reply-to`.
#[test]
fn server_properties_advertise_consumer_priorities_and_direct_reply_to() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());
    client.send(b"AMQP\x00\x00\x09\x01");
    let start = client.read_frame().expect("connection.start");
    assert_eq!(start.class_method(), Some((10, 10)));
    for entry in [
        &b"\x13consumer_prioritiest\x01"[..],
        &b"\x0fdirect_reply_tot\x01"[..],
    ] {
        assert!(
            start.payload.windows(entry.len()).any(|w| w == entry),
            "{} missing from the capabilities",
            String::from_utf8_lossy(entry)
        );
    }
}
