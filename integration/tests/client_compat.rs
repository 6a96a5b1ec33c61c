//! Regression tests for differences from RabbitMQ that the client-compatibility programs
//! (`integration/clients/`, run by `tests/clients.rs`) found. Each test pins, over a raw
//! socket or lapin, the behaviour RabbitMQ 3.10 shows, so that it holds without the
//! client that found it.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use warren_integration::TestBroker;
use warren_integration::raw::{RawClient, frame, method, short};

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
