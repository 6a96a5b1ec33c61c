//! Shared helpers for the lapin messaging-core tests (exchanges, queues, publish, consume,
//! acks, confirms, tx, routing).
//!
//! Every test starts its own in-process broker ([`Env::start`]). Set `WARREN_TEST_URL` (for
//! example `amqp://guest:guest@127.0.0.1:5673/%2f`) to run the same tests against another
//! broker instead, such as a reference RabbitMQ: that is how the expected behaviour was
//! checked. Names are made unique ([`unique`]) so tests may share a broker.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use warren_integration::TestBroker;

/// A broker to talk to: in-process, or the one `WARREN_TEST_URL` names.
pub struct Env {
    url: String,
    broker: Option<TestBroker>,
}

impl Env {
    pub fn start() -> Env {
        match std::env::var("WARREN_TEST_URL") {
            Ok(url) if !url.is_empty() => Env { url, broker: None },
            _ => {
                let broker = TestBroker::start();
                Env {
                    url: broker.url(),
                    broker: Some(broker),
                }
            }
        }
    }

    /// Stop the in-process broker gracefully and start it again on the same data directory
    /// (`None` against an external broker, which cannot be restarted from here).
    pub fn restart(self) -> Option<Env> {
        let broker = self.broker?.restart();
        Some(Env {
            url: broker.url(),
            broker: Some(broker),
        })
    }

    /// Whether the tests run against an external broker.
    pub fn is_external(&self) -> bool {
        self.broker.is_none()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// host:port of the broker.
    pub fn addr(&self) -> std::net::SocketAddr {
        let rest = self.url.rsplit('@').next().unwrap();
        let hostport = rest.split('/').next().unwrap();
        hostport.parse().unwrap()
    }

    pub async fn connect(&self) -> Connection {
        warren_integration::connect(&self.url).await
    }

    /// A fresh connection and a channel on it.
    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = self.connect().await;
        let ch = conn.create_channel().await.unwrap();
        (conn, ch)
    }
}

/// `prefix` plus a suffix unique to this process and call.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The AMQP reply code an operation failed with.
pub fn reply_code<T: std::fmt::Debug>(result: lapin::Result<T>) -> u16 {
    match result {
        Ok(v) => panic!("expected an AMQP error, got Ok({v:?})"),
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp) => amqp.get_id(),
            other => panic!("expected an AMQP error, got {other:?}"),
        },
    }
}

/// The reply text (`"CODE_NAME - explanation"`) an operation failed with.
pub fn error_text<T: std::fmt::Debug>(result: &lapin::Result<T>) -> String {
    match result {
        Ok(v) => panic!("expected an AMQP error, got Ok({v:?})"),
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
            other => panic!("expected an AMQP error, got {other:?}"),
        },
    }
}

/// Assert `result` failed with `code` as a channel error: the channel is closed, the
/// connection still usable.
pub async fn assert_channel_error<T: std::fmt::Debug>(
    conn: &Connection,
    ch: &Channel,
    result: lapin::Result<T>,
    code: u16,
) {
    assert_eq!(reply_code(result), code, "reply code");
    let closed = wait_until(|| !ch.status().connected()).await;
    assert!(closed, "channel still open after a channel error");
    assert!(
        conn.status().connected(),
        "connection closed by a channel error"
    );
    let other = conn.create_channel().await;
    assert!(other.is_ok(), "connection unusable after a channel error");
}

/// Assert `result` failed with `code` as a connection error: the connection is closed.
pub async fn assert_connection_error<T: std::fmt::Debug>(
    conn: &Connection,
    result: lapin::Result<T>,
    code: u16,
) {
    assert_eq!(reply_code(result), code, "reply code");
    let closed = wait_until(|| !conn.status().connected()).await;
    assert!(closed, "connection still open after a connection error");
}

/// Poll `f` for up to 5 s.
pub async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// Declare a transient queue with a unique name and return the name.
pub async fn declare_queue(ch: &Channel) -> String {
    let name = unique("q");
    ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    name
}

/// Publish `body` through `exchange` with `routing_key` (no confirm wait).
pub async fn publish(ch: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    publish_with(ch, exchange, routing_key, body, BasicProperties::default()).await;
}

/// Publish with properties.
pub async fn publish_with(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    ch.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await
    .unwrap();
}

/// Start a consumer with a server-generated tag.
pub async fn consume(ch: &Channel, queue: &str, no_ack: bool) -> Consumer {
    ch.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions {
            no_ack,
            ..BasicConsumeOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
}

/// The next delivery on `consumer` within 5 s.
pub async fn next(consumer: &mut Consumer) -> lapin::message::Delivery {
    tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("no delivery within 5 s")
        .expect("consumer stream ended")
        .expect("delivery error")
}

/// Assert nothing arrives on `consumer` for `ms` milliseconds.
pub async fn assert_no_delivery(consumer: &mut Consumer, ms: u64) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(ms), consumer.next()).await {
        panic!("unexpected delivery: {d:?}");
    }
}

/// basic.get with acks: `Some((tag, body, redelivered, message_count))`.
pub async fn get(ch: &Channel, queue: &str) -> Option<(u64, Vec<u8>, bool, u32)> {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .map(|m| {
            (
                m.delivery.delivery_tag,
                m.delivery.data,
                m.delivery.redelivered,
                m.message_count,
            )
        })
}

/// Bodies of every message in `queue` (basic.get with no-ack until empty).
pub async fn drain(ch: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push(m.delivery.data);
    }
    out
}

/// Ready-message count of `queue` (passive declare).
pub async fn message_count(ch: &Channel, queue: &str) -> u32 {
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

/// Delete a queue (cleanup when running against a shared broker).
pub async fn delete_queue(ch: &Channel, queue: &str) {
    let _ = ch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
}

/// Bodies as byte vectors, for comparisons.
pub fn bodies(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Assert `queue` reaches `expected` ready messages within 5 s (RabbitMQ's counts may lag
/// a publish briefly; Warren's do not, so there the first look decides).
pub async fn assert_count(ch: &Channel, queue: &str, expected: u32) {
    let mut last = 0;
    for _ in 0..100 {
        last = message_count(ch, queue).await;
        if last == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("queue {queue} has {last} ready messages, expected {expected}");
}

/// Hand-made frames for what lapin hides (frame order, `multiple` flags, exact bytes).
pub mod raw {
    use std::net::SocketAddr;

    pub use warren_integration::raw::{RawClient, RawFrame, frame, method, short};

    /// A handshaken raw connection (no heartbeats) with channel 1 open.
    pub fn open(addr: SocketAddr) -> RawClient {
        let mut c = RawClient::open(addr, 0);
        c.send(&frame(1, 1, &method(20, 10, &short(""))));
        let ok = next_method(&mut c);
        assert_eq!(ok.class_method(), Some((20, 11)), "channel.open-ok");
        c
    }

    /// The next frame that is not a heartbeat.
    pub fn next_frame(c: &mut RawClient) -> RawFrame {
        loop {
            let f = c.read_frame().expect("a frame from the broker");
            if f.frame_type != 8 {
                return f;
            }
        }
    }

    /// The next method frame (content frames are returned too; callers check).
    pub fn next_method(c: &mut RawClient) -> RawFrame {
        next_frame(c)
    }

    /// Send a method on channel 1 and return the broker's next frame.
    pub fn call(c: &mut RawClient, class: u16, m: u16, args: &[u8]) -> RawFrame {
        c.send(&frame(1, 1, &method(class, m, args)));
        next_method(c)
    }

    /// confirm.select on channel 1.
    pub fn confirm_select(c: &mut RawClient) {
        let ok = call(c, 85, 10, &[0]);
        assert_eq!(ok.class_method(), Some((85, 11)), "confirm.select-ok");
    }

    /// queue.declare of a transient queue on channel 1.
    pub fn queue_declare(c: &mut RawClient, name: &str) {
        let mut args = 0u16.to_be_bytes().to_vec();
        args.extend(short(name));
        args.push(0);
        args.extend_from_slice(&0u32.to_be_bytes());
        let ok = call(c, 50, 10, &args);
        assert_eq!(ok.class_method(), Some((50, 11)), "queue.declare-ok");
    }

    /// The bytes of a basic.publish with its content header and one body frame, on
    /// channel 1. `properties` is flags + property list as on the wire.
    pub fn publish_bytes(
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        properties: &[u8],
        body: &[u8],
    ) -> Vec<u8> {
        let mut args = 0u16.to_be_bytes().to_vec();
        args.extend(short(exchange));
        args.extend(short(routing_key));
        args.push(u8::from(mandatory));
        let mut out = frame(1, 1, &method(60, 40, &args));
        out.extend(frame(2, 1, &header_payload(body.len() as u64, properties)));
        if !body.is_empty() {
            out.extend(frame(3, 1, body));
        }
        out
    }

    /// A content header payload: class 60, weight 0, body size, properties.
    pub fn header_payload(body_size: u64, properties: &[u8]) -> Vec<u8> {
        let mut p = 60u16.to_be_bytes().to_vec();
        p.extend_from_slice(&0u16.to_be_bytes());
        p.extend_from_slice(&body_size.to_be_bytes());
        if properties.is_empty() {
            p.extend_from_slice(&0u16.to_be_bytes());
        } else {
            p.extend_from_slice(properties);
        }
        p
    }

    /// (delivery tag, multiple) of a basic.ack or basic.nack payload.
    pub fn ack_fields(f: &RawFrame) -> (u64, bool) {
        let p = &f.payload;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&p[4..12]);
        (u64::from_be_bytes(tag), p[12] & 1 == 1)
    }
}

/// Publish `props` to `queue` through the default exchange on a channel of a new
/// connection, and return the connection, the channel and the error the publish caused
/// (see `then_sync`). A connection each, because lapin's error events carry no channel id:
/// one channel's close must not be read as the next one's.
pub async fn publish_refused(
    env: &Env,
    queue: &str,
    props: BasicProperties,
) -> (Connection, Channel, lapin::Result<()>) {
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"m",
            props,
        ),
    )
    .await;
    (conn, ch, result)
}

/// Send `fire` (a method without a reply: publish, ack, nack, reject), then a basic.qos,
/// and return the qos outcome: a channel or connection error caused by `fire` shows up
/// here with its reply code. If lapin saw the close before the qos could be sent, the
/// reason is taken from the connection's error events — which carry no channel id, so a
/// test that closes several channels this way uses a connection for each.
pub async fn then_sync<T>(
    conn: &Connection,
    ch: &Channel,
    fire: impl std::future::Future<Output = lapin::Result<T>>,
) -> lapin::Result<()> {
    let mut events = Box::pin(conn.events_listener());
    if let Err(e) = fire.await
        && !matches!(e.kind(), lapin::ErrorKind::ProtocolError(_))
    {
        panic!("sending failed: {e}");
    }
    let qos = ch
        .basic_qos(0, lapin::options::BasicQosOptions::default())
        .await;
    match qos {
        Err(e)
            if matches!(
                e.kind(),
                lapin::ErrorKind::InvalidChannelState(..)
                    | lapin::ErrorKind::InvalidConnectionState(..)
            ) =>
        {
            loop {
                match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
                    Ok(Some(lapin::Event::Error(reason))) => return Err(reason),
                    Ok(Some(_)) => continue,
                    _ => return Err(e),
                }
            }
        }
        other => other,
    }
}
