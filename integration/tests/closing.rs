//! Closes that cross on the wire, and frames that arrive for a channel or connection the
//! server is closing: handled as RabbitMQ 3.10 handles them (`rabbit_channel`'s `closing`
//! state, `rabbit_reader`'s closing connection).
//!
//! - A client channel.close crossing the server's channel.close is answered with
//!   close-ok; the channel is freed by the client's close-ok, and the connection and its
//!   other channels live on.
//! - Until that close-ok, every other method and content frame on the channel is
//!   discarded (channel.open excepted: 504, the number is still in use).
//! - After the server's connection.close, frames on other channels and other methods on
//!   channel 0 are discarded; a client connection.close is answered with close-ok, the
//!   client's close-ok ends the connection.
//!
//! Raw sockets force the crossings exactly. (lapin 4.12 produces the channel crossing when
//! it closes a channel right after a refused publish, but then fails its own connection
//! on the close-ok, against RabbitMQ 3.10 too; the Go client program has the lapin-free
//! scenario.) Set `WARREN_TEST_URL` (e.g. `amqp://guest:guest@127.0.0.1:5673/%2f`) to
//! run these against a reference RabbitMQ, as they were.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use core_support::raw::{RawClient, RawFrame, frame, method, short};
use core_support::*;
use warren_integration::{TestBroker, TestConfig};
use warren_server::ServerConfig;

// ---------------------------------------------------------------- raw frames

fn channel_open(ch: u16) -> Vec<u8> {
    frame(1, ch, &method(20, 10, &short("")))
}

fn channel_close(ch: u16) -> Vec<u8> {
    let mut args = 200u16.to_be_bytes().to_vec();
    args.extend(short("bye"));
    args.extend_from_slice(&[0, 0, 0, 0]);
    frame(1, ch, &method(20, 40, &args))
}

fn channel_close_ok(ch: u16) -> Vec<u8> {
    frame(1, ch, &method(20, 41, &[]))
}

fn connection_close() -> Vec<u8> {
    let mut args = 200u16.to_be_bytes().to_vec();
    args.extend(short("bye"));
    args.extend_from_slice(&[0, 0, 0, 0]);
    frame(1, 0, &method(10, 50, &args))
}

fn connection_close_ok() -> Vec<u8> {
    frame(1, 0, &method(10, 51, &[]))
}

/// queue.declare (not passive, not durable; exclusive when `name` is empty).
fn queue_declare(ch: u16, name: &str) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(name));
    args.push(if name.is_empty() { 0x04 } else { 0 });
    args.extend_from_slice(&0u32.to_be_bytes());
    frame(1, ch, &method(50, 10, &args))
}

fn queue_delete(ch: u16, name: &str) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(name));
    args.push(0);
    frame(1, ch, &method(50, 40, &args))
}

/// basic.get with no-ack.
fn basic_get(ch: u16, queue: &str) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(queue));
    args.push(1);
    frame(1, ch, &method(60, 70, &args))
}

/// basic.qos prefetch-count 5.
fn basic_qos(ch: u16) -> Vec<u8> {
    frame(1, ch, &method(60, 10, &[0, 0, 0, 0, 0, 5, 0]))
}

/// channel.flow active=true.
fn channel_flow(ch: u16) -> Vec<u8> {
    frame(1, ch, &method(20, 20, &[1]))
}

/// basic.publish with its content header and one body frame.
fn raw_publish(ch: u16, exchange: &str, routing_key: &str, body: &[u8]) -> Vec<u8> {
    let mut args = 0u16.to_be_bytes().to_vec();
    args.extend(short(exchange));
    args.extend(short(routing_key));
    args.push(0);
    let mut out = frame(1, ch, &method(60, 40, &args));
    let mut header = 60u16.to_be_bytes().to_vec();
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&(body.len() as u64).to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    out.extend(frame(2, ch, &header));
    out.extend(frame(3, ch, body));
    out
}

/// The reply text of a connection.close or channel.close.
fn close_text(f: &RawFrame) -> String {
    let len = f.payload[6] as usize;
    String::from_utf8_lossy(&f.payload[7..7 + len]).into_owned()
}

/// The next frame, which must be `class/method` on `ch`.
fn expect(c: &mut RawClient, ch: u16, class_method: (u16, u16)) -> RawFrame {
    let f = c
        .read_frame()
        .unwrap_or_else(|| panic!("socket closed or silent; expected {class_method:?} on {ch}"));
    let text = f.close_code().map(|_| close_text(&f)).unwrap_or_default();
    assert_eq!(
        (f.channel, f.class_method()),
        (ch, Some(class_method)),
        "unexpected frame {f:?} {text}"
    );
    f
}

/// A connection (heartbeats off) with channels 1..=n open.
fn open_channels(addr: SocketAddr, n: u16) -> RawClient {
    let mut c = RawClient::open(addr, 0);
    for ch in 1..=n {
        c.send(&channel_open(ch));
        expect(&mut c, ch, (20, 11));
    }
    c
}

/// Publish to a missing exchange on `ch` and read the server's channel.close (404).
fn provoke_channel_close(c: &mut RawClient, ch: u16) {
    c.send(&raw_publish(ch, &unique("missing-x"), "k", b"lost"));
    let close = expect(c, ch, (20, 40));
    assert_eq!(close.close_code(), Some(404), "{}", close_text(&close));
}

/// Declare a named queue on `ch` (answered at once).
fn declare(c: &mut RawClient, ch: u16, name: &str) {
    c.send(&queue_declare(ch, name));
    expect(c, ch, (50, 11));
}

/// Provoke a connection error (a method on channel 9, never opened: 504) and read the
/// server's connection.close.
fn provoke_connection_close(c: &mut RawClient) {
    c.send(&queue_declare(9, ""));
    let close = expect(c, 0, (10, 50));
    assert_eq!(close.close_code(), Some(504), "{}", close_text(&close));
}

/// True if the broker closes the socket within `within` (reads discarded).
fn closes_socket_within(c: &mut RawClient, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        c.stream.set_read_timeout(Some(left)).unwrap();
        if c.read_frame().is_none() {
            return Instant::now() < deadline;
        }
    }
}

// ---------------------------------------------------------------- channel crossings

#[test]
fn client_close_crossing_server_close_gets_close_ok_and_connection_lives() {
    let env = Env::start();
    let mut c = open_channels(env.addr(), 2);
    // The client's close leaves before the server's 404 close can arrive: they cross.
    let exchange = unique("missing-x");
    let mut bytes = raw_publish(1, &exchange, "k", b"lost");
    bytes.extend(channel_close(1));
    c.send(&bytes);
    let close = expect(&mut c, 1, (20, 40));
    assert_eq!(close.close_code(), Some(404));
    assert_eq!(
        close_text(&close),
        format!("NOT_FOUND - no exchange '{exchange}' in vhost '/'")
    );
    expect(&mut c, 1, (20, 41));
    c.send(&channel_close_ok(1));
    // Channel 2 still works, and nothing about channel 1 came before its answer.
    c.send(&queue_declare(2, ""));
    expect(&mut c, 2, (50, 11));
    // The number is free again.
    c.send(&channel_open(1));
    expect(&mut c, 1, (20, 11));
    c.send(&queue_declare(1, ""));
    expect(&mut c, 1, (50, 11));
    c.send(&connection_close());
    expect(&mut c, 0, (10, 51));
}

#[test]
fn frames_on_a_channel_the_server_is_closing_are_discarded_until_close_ok() {
    let env = Env::start();
    let mut c = open_channels(env.addr(), 2);
    let queue = unique("discarded");
    declare(&mut c, 2, &queue);
    provoke_channel_close(&mut c, 1);
    // A publish with content (to a queue that exists), other methods: all discarded.
    let mut bytes = raw_publish(1, "", &queue, b"must not arrive");
    bytes.extend(queue_declare(1, ""));
    bytes.extend(basic_qos(1));
    bytes.extend(channel_flow(1));
    bytes.extend(basic_get(1, &queue));
    // Then channel 2, whose answer must be the next frame: an empty queue.
    bytes.extend(basic_get(2, &queue));
    c.send(&bytes);
    expect(&mut c, 2, (60, 72)); // get-empty
    // A client channel.close now (even twice) is answered, and the server still waits.
    c.send(&channel_close(1));
    expect(&mut c, 1, (20, 41));
    c.send(&channel_close(1));
    expect(&mut c, 1, (20, 41));
    c.send(&queue_declare(1, ""));
    c.send(&queue_declare(2, ""));
    expect(&mut c, 2, (50, 11));
    // close-ok frees the number.
    c.send(&channel_close_ok(1));
    c.send(&channel_open(1));
    expect(&mut c, 1, (20, 11));
    c.send(&basic_get(1, &queue));
    expect(&mut c, 1, (60, 72));
    c.send(&queue_delete(1, &queue));
    expect(&mut c, 1, (50, 41));
    c.send(&connection_close());
    expect(&mut c, 0, (10, 51));
}

#[test]
fn content_of_a_publish_refused_at_its_header_is_discarded_with_the_channel_closing() {
    // An oversized message is refused at its content header (406); its body frames, still
    // on their way, are discarded with the channel closing.
    let broker = TestBroker::start_with(TestConfig {
        broker: warren_broker::BrokerConfig {
            max_message_size: 16,
            ..Default::default()
        },
        ..Default::default()
    });
    let mut c = open_channels(broker.addr(), 2);
    c.send(&raw_publish(1, "", "q", &[7u8; 100]));
    let close = expect(&mut c, 1, (20, 40));
    assert_eq!(close.close_code(), Some(406), "{}", close_text(&close));
    c.send(&queue_declare(2, ""));
    expect(&mut c, 2, (50, 11));
    c.send(&channel_close_ok(1));
    c.send(&channel_open(1));
    expect(&mut c, 1, (20, 11));
}

#[test]
fn channel_open_on_a_channel_the_server_is_closing_is_504_as_in_rabbitmq() {
    // RabbitMQ 3.10 checks channel.open before its `closing` state: the number is in use
    // until close-ok.
    let env = Env::start();
    let mut c = open_channels(env.addr(), 1);
    provoke_channel_close(&mut c, 1);
    c.send(&channel_open(1));
    let close = expect(&mut c, 0, (10, 50));
    assert_eq!(close.close_code(), Some(504));
    assert_eq!(
        close_text(&close),
        "CHANNEL_ERROR - second 'channel.open' seen"
    );
    c.send(&connection_close_ok());
}

#[test]
fn close_ok_for_a_channel_already_closed_is_504() {
    let env = Env::start();
    let mut c = open_channels(env.addr(), 1);
    provoke_channel_close(&mut c, 1);
    c.send(&channel_close_ok(1));
    c.send(&channel_close_ok(1));
    let close = expect(&mut c, 0, (10, 50));
    assert_eq!(close.close_code(), Some(504));
    assert_eq!(
        close_text(&close),
        "CHANNEL_ERROR - expected 'channel.open'"
    );
    c.send(&connection_close_ok());
}

#[test]
fn client_connection_close_while_a_channel_is_closing_gets_close_ok() {
    let env = Env::start();
    let mut c = open_channels(env.addr(), 2);
    declare(&mut c, 2, "");
    provoke_channel_close(&mut c, 1);
    c.send(&connection_close());
    expect(&mut c, 0, (10, 51));
}

// ---------------------------------------------------------------- connection crossings

/// An in-process broker that waits long for close-ok (so a prompt socket close can only
/// come from the close-ok itself), or the external broker `WARREN_TEST_URL` names.
enum PatientBroker {
    External(Env),
    Local(TestBroker),
}

impl PatientBroker {
    fn start() -> PatientBroker {
        let env = Env::start();
        if env.is_external() {
            return PatientBroker::External(env);
        }
        drop(env);
        PatientBroker::Local(TestBroker::start_with(TestConfig {
            server: ServerConfig {
                close_timeout: Duration::from_secs(60),
                ..ServerConfig::default()
            },
            ..TestConfig::default()
        }))
    }

    fn addr(&self) -> SocketAddr {
        match self {
            PatientBroker::External(env) => env.addr(),
            PatientBroker::Local(broker) => broker.addr(),
        }
    }
}

#[test]
fn connection_close_crossing_server_close_gets_close_ok_and_close_ok_ends_it() {
    let broker = PatientBroker::start();
    let mut c = open_channels(broker.addr(), 1);
    provoke_connection_close(&mut c);
    // The client's close, as if sent before it saw the server's.
    c.send(&connection_close());
    expect(&mut c, 0, (10, 51));
    c.send(&connection_close_ok());
    assert!(
        closes_socket_within(&mut c, Duration::from_secs(20)),
        "socket still open after the client's close-ok"
    );
}

#[test]
fn frames_after_server_connection_close_are_discarded_but_close_is_answered() {
    let broker = PatientBroker::start();
    let mut c = open_channels(broker.addr(), 2);
    provoke_connection_close(&mut c);
    let mut bytes = queue_declare(1, "");
    bytes.extend(raw_publish(2, "", "q", b"discarded"));
    bytes.extend(channel_open(3));
    bytes.extend(channel_close(1));
    bytes.extend(basic_get(2, "q"));
    bytes.extend(frame(8, 0, &[])); // heartbeat
    let mut open = short("/");
    open.extend(short(""));
    open.push(0);
    bytes.extend(frame(1, 0, &method(10, 40, &open))); // connection.open, out of place
    bytes.extend(connection_close());
    c.send(&bytes);
    // Nothing but the answer to connection.close.
    expect(&mut c, 0, (10, 51));
    c.send(&queue_declare(1, ""));
    c.send(&connection_close_ok());
    assert!(
        closes_socket_within(&mut c, Duration::from_secs(20)),
        "socket still open after the client's close-ok"
    );
}
