//! Helpers for the foundation test files (foundation, raw_protocol, binary): raw
//! handshakes, the "still serves" check, broker-panic detection.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use warren_integration::raw::{RawClient, RawFrame, frame, method, short};
use warren_integration::{TestBroker, TestConfig};

static PANIC_HOOK: Once = Once::new();
static BROKER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Count panics on tokio worker threads (where the in-process broker's connection
/// tasks run; tokio would otherwise swallow them), then run the default hook.
pub fn watch_broker_panics() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if thread
                .name()
                .is_some_and(|n| n.starts_with("tokio-runtime-worker"))
            {
                BROKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// An in-process broker, with broker-panic detection on.
pub fn start_broker() -> TestBroker {
    start_broker_with(TestConfig::default())
}

/// Same, with settings.
pub fn start_broker_with(config: TestConfig) -> TestBroker {
    watch_broker_panics();
    TestBroker::start_with(config)
}

/// Panics seen on runtime worker threads so far.
pub fn broker_panics() -> usize {
    BROKER_PANICS.load(Ordering::SeqCst)
}

/// A fresh lapin connection opens a channel, declares a queue, publishes a message and
/// gets it back; and no broker task has panicked.
pub fn assert_broker_still_serves(addr: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("amqp://guest:guest@{addr}/%2f");
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            let conn = warren_integration::connect(&url).await;
            let ch = conn.create_channel().await.unwrap();
            let queue = ch
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            ch.basic_publish(
                "".into(),
                queue.name().clone(),
                BasicPublishOptions::default(),
                b"still serving",
                BasicProperties::default(),
            )
            .await
            .unwrap();
            let got = ch
                .basic_get(queue.name().clone(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
                .expect("the message just published");
            assert_eq!(got.delivery.data, b"still serving");
            conn.close(200, "bye".into()).await.unwrap();
        })
        .await;
        assert!(result.is_ok(), "broker no longer serves a fresh client");
    });
    assert_eq!(broker_panics(), 0, "a broker task panicked");
}

/// Start-ok arguments: client properties announcing the `authentication_failure_close`
/// capability (as pika, lapin and the Java client do: a refused login then gets
/// connection.close 403 rather than a silently closed socket), mechanism, response, locale.
pub fn start_ok(mechanism: &str, response: &[u8]) -> Vec<u8> {
    let mut caps = short("authentication_failure_close");
    caps.extend_from_slice(b"t\x01");
    let mut props = short("capabilities");
    props.push(b'F');
    props.extend_from_slice(&(caps.len() as u32).to_be_bytes());
    props.extend(caps);
    let mut args = (props.len() as u32).to_be_bytes().to_vec();
    args.extend(props);
    args.extend(short(mechanism));
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response);
    args.extend(short("en_US"));
    frame(1, 0, &method(10, 11, &args))
}

/// An AMQPLAIN response: a field table without its length prefix.
pub fn amqplain(login: &str, password: &str) -> Vec<u8> {
    let mut t = Vec::new();
    for (k, v) in [("LOGIN", login), ("PASSWORD", password)] {
        t.extend(short(k));
        t.push(b'S');
        t.extend_from_slice(&(v.len() as u32).to_be_bytes());
        t.extend_from_slice(v.as_bytes());
    }
    t
}

/// Send the header and a start-ok; return the client and the broker's reply to
/// start-ok (connection.tune, or connection.close when refused).
pub fn start(addr: SocketAddr, mechanism: &str, response: &[u8]) -> (RawClient, RawFrame) {
    let mut c = RawClient::connect(addr);
    c.send(b"AMQP\x00\x00\x09\x01");
    let start = c.read_frame().expect("connection.start");
    assert_eq!(start.class_method(), Some((10, 10)));
    c.send(&start_ok(mechanism, response));
    let reply = c.read_frame().expect("reply to start-ok");
    (c, reply)
}

/// Complete a handshake after [`start`] with the given tune-ok values.
pub fn tune_and_open(c: &mut RawClient, channel_max: u16, frame_max: u32, heartbeat: u16) {
    let mut tune_ok = channel_max.to_be_bytes().to_vec();
    tune_ok.extend_from_slice(&frame_max.to_be_bytes());
    tune_ok.extend_from_slice(&heartbeat.to_be_bytes());
    c.send(&frame(1, 0, &method(10, 31, &tune_ok)));
    let mut open = short("/");
    open.extend(short(""));
    open.push(0);
    c.send(&frame(1, 0, &method(10, 40, &open)));
    let open_ok = c.read_frame().expect("connection.open-ok");
    assert_eq!(open_ok.class_method(), Some((10, 41)));
}

/// channel.open on `channel`.
pub fn channel_open(channel: u16) -> Vec<u8> {
    frame(1, channel, &method(20, 10, &short("")))
}

/// queue.declare of a transient queue named `name`.
pub fn queue_declare(channel: u16, name: &str) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(name));
    args.push(0);
    args.extend_from_slice(&0u32.to_be_bytes());
    frame(1, channel, &method(50, 10, &args))
}

/// basic.publish to the default exchange.
pub fn basic_publish(channel: u16, routing_key: &str) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(""));
    args.extend(short(routing_key));
    args.push(0);
    frame(1, channel, &method(60, 40, &args))
}

/// A basic content header announcing `body_size` bytes, no properties.
pub fn content_header(channel: u16, body_size: u64) -> Vec<u8> {
    let mut p = 60u16.to_be_bytes().to_vec();
    p.extend_from_slice(&0u16.to_be_bytes());
    p.extend_from_slice(&body_size.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    frame(2, channel, &p)
}

/// connection.close-ok.
pub fn connection_close_ok() -> Vec<u8> {
    frame(1, 0, &method(10, 51, &[]))
}

/// (code, class, method) of a connection.close frame.
pub fn close_details(f: &RawFrame) -> (u16, u16, u16) {
    assert_eq!(
        f.class_method(),
        Some((10, 50)),
        "not a connection.close: {f:?}"
    );
    let p = &f.payload;
    let code = u16::from_be_bytes([p[4], p[5]]);
    let text_len = p[6] as usize;
    let at = 7 + text_len;
    (
        code,
        u16::from_be_bytes([p[at], p[at + 1]]),
        u16::from_be_bytes([p[at + 2], p[at + 3]]),
    )
}

/// The reply text of a connection.close or channel.close frame.
pub fn close_text(f: &RawFrame) -> String {
    let p = &f.payload;
    let len = p[6] as usize;
    String::from_utf8_lossy(&p[7..7 + len]).into_owned()
}

/// Read (and discard) until the broker closes the socket; the time it took, or None if
/// the socket is still open after `within`.
pub fn wait_for_eof(c: &mut RawClient, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        c.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match c.stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// Expect a connection.close with `code` (skipping other frames), answer close-ok, and
/// expect the broker to close the socket promptly. Returns the close frame.
pub fn expect_connection_close(c: &mut RawClient, code: u16) -> RawFrame {
    let close = loop {
        let f = c
            .read_frame()
            .unwrap_or_else(|| panic!("socket closed before connection.close {code}"));
        if f.class_method() == Some((10, 50)) {
            break f;
        }
    };
    assert_eq!(
        close.close_code(),
        Some(code),
        "connection.close code; text: {}",
        close_text(&close)
    );
    c.send_lossy(&connection_close_ok());
    assert!(
        wait_for_eof(c, Duration::from_secs(2)).is_some(),
        "socket still open after close-ok"
    );
    close
}
