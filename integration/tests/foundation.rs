//! The foundation: handshake, tuning, heartbeats, authentication, channel lifecycle and
//! the connection errors around them, with lapin and with hand-made frames.

#![allow(clippy::unwrap_used)]

mod raw_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use lapin::ErrorKind;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use raw_support::*;
use warren_broker::{Broker, BrokerConfig};
use warren_integration::raw::{RawClient, frame, method};
use warren_server::{Server, ServerConfig};

fn amqp_error_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_handshake_succeeds() {
    let broker = start_broker();
    let conn = warren_integration::connect(&broker.url()).await;
    assert!(conn.status().connected());
    assert_eq!(conn.status().username(), "guest");
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tune_negotiates_channel_max_2047_frame_max_131072_heartbeat_60() {
    let broker = start_broker();
    let conn = warren_integration::connect(&broker.url()).await;
    let cfg = conn.configuration();
    assert_eq!(cfg.channel_max(), 2047);
    assert_eq!(cfg.frame_max(), 131_072);
    assert_eq!(cfg.heartbeat(), 60);
    conn.close(200, "bye".into()).await.unwrap();

    // The tune frame itself carries the proposal.
    let (_c, tune) = start(broker.addr(), "PLAIN", b"\0guest\0guest");
    assert_eq!(tune.class_method(), Some((10, 30)));
    let p = &tune.payload[4..];
    assert_eq!(u16::from_be_bytes([p[0], p[1]]), 2047);
    assert_eq!(u32::from_be_bytes([p[2], p[3], p[4], p[5]]), 131_072);
    assert_eq!(u16::from_be_bytes([p[6], p[7]]), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_asking_for_a_lower_heartbeat_gets_it() {
    let broker = start_broker();
    let conn = warren_integration::connect(&format!("{}?heartbeat=7", broker.url())).await;
    assert_eq!(conn.configuration().heartbeat(), 7);
    conn.close(200, "bye".into()).await.unwrap();
}

#[test]
fn silent_client_with_heartbeat_1_is_dropped_within_3_seconds() {
    let broker = start_broker();
    let mut c = RawClient::open(broker.addr(), 1);
    let dropped = wait_for_eof(&mut c, Duration::from_secs(6))
        .expect("broker kept a silent heartbeat=1 client for 6 s");
    assert!(
        dropped >= Duration::from_millis(1500),
        "dropped after {dropped:?}, before two heartbeat intervals passed"
    );
    assert!(
        dropped <= Duration::from_millis(3500),
        "dropped only after {dropped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_client_with_heartbeat_1_stays_connected_for_4_seconds() {
    let broker = start_broker();
    let conn = warren_integration::connect(&format!("{}?heartbeat=1", broker.url())).await;
    assert_eq!(conn.configuration().heartbeat(), 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(conn.status().connected(), "lapin connection dropped");
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_with_403_access_refused() {
    let broker = start_broker();
    let url = format!("amqp://guest:wrong@{}/%2f", broker.addr());
    let err = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect_err("login with a wrong password succeeded");
    assert_eq!(amqp_error_code(&err), Some(403), "{err}");
    assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");
}

#[test]
fn wrong_password_raw_client_receives_close_403_before_the_socket_closes() {
    let broker = start_broker();
    // `start` announces authentication_failure_close; without it RabbitMQ (and Warren)
    // send nothing and close the socket (tls.rs pins that).
    let (mut c, reply) = start(broker.addr(), "PLAIN", b"\0guest\0wrong");
    // Class and method 0: RabbitMQ 3.10 sends the refusal on no method.
    assert_eq!(close_details(&reply), (403, 0, 0));
    assert!(close_text(&reply).starts_with("ACCESS_REFUSED"));
    c.send_lossy(&connection_close_ok());
    assert!(wait_for_eof(&mut c, Duration::from_secs(2)).is_some());
}

#[test]
fn unknown_user_is_refused_with_403() {
    let broker = start_broker();
    let (_c, reply) = start(broker.addr(), "PLAIN", b"\0nobody\0guest");
    assert_eq!(close_details(&reply).0, 403);
}

/// A local address other than loopback, if the machine has one with a route.
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the source address.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_from_a_non_loopback_address_is_refused_with_403() {
    // Needs a second local address: listen on all interfaces and connect to the
    // machine's own non-loopback address, so the broker sees a non-loopback peer.
    let Some(ip) = non_loopback_ip() else {
        println!("skipped: no non-loopback local address to connect from");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    let config = ServerConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..ServerConfig::default()
    };
    let server = Server::bind(config, Arc::clone(&b)).await.unwrap();
    let port = server.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(server.run(stop_rx));

    let remote = format!("amqp://guest:guest@{}/%2f", SocketAddr::new(ip, port));
    let err = lapin::Connection::connect(&remote, lapin::ConnectionProperties::default())
        .await
        .expect_err("guest logged in from a non-loopback address");
    assert_eq!(amqp_error_code(&err), Some(403), "{err}");
    // The same broker lets guest in over loopback.
    let local = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let conn = warren_integration::connect(&local).await;
    conn.close(200, "bye".into()).await.unwrap();

    stop_tx.send(true).unwrap();
    serving.await.unwrap();
    b.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_opens_and_closes() {
    let broker = start_broker();
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    assert!(ch.status().connected());
    ch.close(200, "done".into()).await.unwrap();
    assert!(!ch.status().connected());
    // The connection stays usable and hands out new channels.
    let ch2 = conn.create_channel().await.unwrap();
    ch2.queue_declare(
        "".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    assert!(conn.status().connected());
    conn.close(200, "bye".into()).await.unwrap();
}

#[test]
fn channel_open_above_channel_max_closes_connection_with_530() {
    let broker = start_broker();
    // Negotiated 2047 (the broker's maximum).
    let mut c = RawClient::open(broker.addr(), 0);
    c.send(&channel_open(2047));
    let ok = c.read_frame().unwrap();
    assert_eq!((ok.channel, ok.class_method()), (2047, Some((20, 11))));
    c.send(&channel_open(2048));
    // Warren holds channel numbers to 1..=channel_max as the 0-9-1 spec says; RabbitMQ
    // 3.10 counts open channels instead (and would open 2048 here).
    let close = expect_connection_close(&mut c, 530);
    assert!(close_text(&close).starts_with("NOT_ALLOWED"));

    // A client that negotiated fewer channels is held to its own number.
    let (mut c, tune) = start(broker.addr(), "PLAIN", b"\0guest\0guest");
    assert_eq!(tune.class_method(), Some((10, 30)));
    tune_and_open(&mut c, 10, 131_072, 0);
    c.send(&channel_open(10));
    assert_eq!(c.read_frame().unwrap().class_method(), Some((20, 11)));
    c.send(&channel_open(11));
    expect_connection_close(&mut c, 530);
    assert_broker_still_serves(broker.addr());
}

#[test]
fn method_on_a_channel_that_is_not_open_closes_connection_with_504() {
    let broker = start_broker();
    let mut c = RawClient::open(broker.addr(), 0);
    c.send(&queue_declare(5, "q"));
    let close = expect_connection_close(&mut c, 504);
    assert_eq!(close_details(&close), (504, 50, 10));
    assert!(close_text(&close).starts_with("CHANNEL_ERROR"));

    // Also after the channel was closed.
    let mut c = RawClient::open(broker.addr(), 0);
    c.send(&channel_open(1));
    assert_eq!(c.read_frame().unwrap().class_method(), Some((20, 11)));
    let mut close_args = 200u16.to_be_bytes().to_vec();
    close_args.extend(warren_integration::raw::short("bye"));
    close_args.extend_from_slice(&[0, 0, 0, 0]);
    c.send(&frame(1, 1, &method(20, 40, &close_args)));
    assert_eq!(c.read_frame().unwrap().class_method(), Some((20, 41)));
    c.send(&queue_declare(1, "q"));
    expect_connection_close(&mut c, 504);
    assert_broker_still_serves(broker.addr());
}

#[test]
fn amqplain_login_succeeds() {
    let broker = start_broker();
    let (mut c, tune) = start(broker.addr(), "AMQPLAIN", &amqplain("guest", "guest"));
    assert_eq!(tune.class_method(), Some((10, 30)));
    tune_and_open(&mut c, 0, 131_072, 0);
    c.send(&channel_open(1));
    assert_eq!(c.read_frame().unwrap().class_method(), Some((20, 11)));
}

#[test]
fn amqplain_with_a_wrong_password_is_refused_with_403() {
    let broker = start_broker();
    let (_c, reply) = start(broker.addr(), "AMQPLAIN", &amqplain("guest", "nope"));
    assert_eq!(close_details(&reply), (403, 0, 0));
}

#[test]
fn handshake_with_an_unknown_mechanism_closes_the_socket_without_a_frame() {
    let broker = start_broker();
    let mut c = RawClient::connect(broker.addr());
    c.send(b"AMQP\x00\x00\x09\x01");
    assert_eq!(c.read_frame().unwrap().class_method(), Some((10, 10)));
    c.send(&start_ok("CRAM-MD5", b""));
    // As RabbitMQ 3.10 (command_invalid during the handshake): no connection.close,
    // the socket closes after the silent-close delay (3 s).
    assert_eq!(c.read_frame(), None);
    assert!(wait_for_eof(&mut c, Duration::from_secs(30)).is_some());
    assert_broker_still_serves(broker.addr());
}
