//! Regression tests for differences from RabbitMQ that the client-compatibility programs
//! (`integration/clients/`, run by `tests/clients.rs`) found. Each test pins, over a raw
//! socket or lapin, the behaviour RabbitMQ 3.10 shows, so that it holds without the
//! client that found it.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use warren_integration::TestBroker;
use warren_integration::raw::{RawClient, frame};

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
