//! Fairness between connections: a publisher whose socket never runs dry must not starve
//! the consumers its publishes wake.
//!
//! Found with bench S9 (S1 into a queue with `x-max-length 1000`, drop-head): the consumer
//! got 13,000 messages/s of the publisher's 900,000, the rest dropped. A publish wakes the
//! consumer's connection task from inside the publisher's task, tokio puts it in that
//! worker's LIFO slot (which no other worker may steal) and it ran only when the publisher
//! ran out of coop budget, a few times a second. The connection task now yields after each
//! read it has handled.

#![allow(clippy::unwrap_used)]

mod core_support;
mod raw_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use warren_integration::TestBroker;
use warren_integration::raw::{RawClient, frame};

/// One publish of a 16-byte body to `queue` on channel 1: method, header, body frames.
fn one_publish(queue: &str) -> Vec<u8> {
    let mut out = raw_support::basic_publish(1, queue);
    out.extend(raw_support::content_header(1, 16));
    out.extend(frame(3, 1, &[7u8; 16]));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_publisher_does_not_starve_the_consumer_of_a_drop_head_queue() {
    let broker = TestBroker::start();
    let conn = Connection::connect(&broker.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = "fairness-drop-head";
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(1000));
    ch.queue_declare(queue.into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    let mut consumer = core_support::consume(&ch, queue, true).await;
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&consumed);
    tokio::spawn(async move {
        while let Some(Ok(_)) = consumer.next().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    // The publisher: raw frames, 2,000 publishes per write, as fast as the socket takes
    // them (a write that blocks means the broker always has more to read: a flood), for 3 s
    // and at least 100,000 publishes.
    let addr = broker.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let (stop_publisher, count) = (Arc::clone(&stop), Arc::clone(&published));
    let publisher = std::thread::spawn(move || {
        let mut c = RawClient::open(addr, 0);
        c.send(&raw_support::channel_open(1));
        let _open_ok = c.read_frame().expect("channel.open-ok");
        let batch: Vec<u8> = (0..2000).flat_map(|_| one_publish(queue)).collect();
        while !stop_publisher.load(Ordering::Relaxed) {
            c.send(&batch);
            count.fetch_add(2000, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3)
        || (published.load(Ordering::Relaxed) < 100_000
            && started.elapsed() < Duration::from_secs(30))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (during, sent) = (
        consumed.load(Ordering::Relaxed),
        published.load(Ordering::Relaxed),
    );
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || publisher.join().unwrap())
        .await
        .unwrap();
    eprintln!("published {sent}, consumed during the flood {during}, in {elapsed:?}");

    // The consumer takes what it can while the flood lasts; the queue drops the rest. A
    // starved consumer got about 1.5% of the publishes, a served one about a third.
    assert!(
        during * 10 >= sent,
        "the consumer got {during} of {sent} messages published in {elapsed:?} \
         (less than 10%): starved by the publisher"
    );
}
