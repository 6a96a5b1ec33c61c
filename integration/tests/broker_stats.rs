//! The broker's statistics as the management API reads them, checked at the broker's
//! interface with a lapin client: message counters per queue, exchange, channel, vhost
//! and broker move with publishes, deliveries, gets and acks; churn; the connection and
//! channel records; and rates from the sampler.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use core_support::*;
use lapin::options::*;
use warren_broker::stats::{Churn, Counter, ObjectKey, slot};
use warren_broker::{Broker, BrokerConfig};
use warren_integration::{TestBroker, TestConfig};

/// Wait (up to 10 s) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn queue_counter(broker: &Broker, queue: &str, c: Counter) -> u64 {
    let vhost = broker.vhost("/").unwrap();
    vhost.queue(queue, 0).map_or(0, |q| q.stats.get(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_publish_deliver_get_and_ack() {
    let broker = TestBroker::start();
    let b = Arc::clone(broker.broker());
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let queue = declare_queue(&ch).await;
    for i in 0..10u8 {
        ch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            &[i],
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // One unroutable publish (dropped) to a direct exchange.
    ch.basic_publish(
        "amq.direct".into(),
        "nowhere".into(),
        BasicPublishOptions::default(),
        b"x",
        lapin::BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // One basic.get (left unacked), then a consumer takes the other 9 and acks 8.
    assert!(get(&ch, &queue).await.is_some());
    let mut consumer = consume(&ch, &queue, false).await;
    for i in 0..9 {
        let d = next(&mut consumer).await;
        if i < 8 {
            d.ack(BasicAckOptions::default()).await.unwrap();
        }
    }
    // Nothing left: get-empty.
    assert!(get(&ch, &queue).await.is_none());

    eventually("queue counters", || {
        queue_counter(&b, &queue, Counter::Publish) == 10
            && queue_counter(&b, &queue, Counter::Ack) == 8
            && queue_counter(&b, &queue, Counter::Get) == 1
            && queue_counter(&b, &queue, Counter::GetEmpty) == 1
            && queue_counter(&b, &queue, Counter::Deliver) == 9
    })
    .await;
    let vhost = b.vhost("/").unwrap();
    let default = vhost.exchange("").unwrap();
    assert_eq!(default.stats.get(Counter::PublishIn), 10);
    assert_eq!(default.stats.get(Counter::PublishOut), 10);
    let direct = vhost.exchange("amq.direct").unwrap();
    assert_eq!(direct.stats.get(Counter::PublishIn), 1);
    assert_eq!(direct.stats.get(Counter::PublishOut), 0);

    let info = b.connections().list().pop().unwrap();
    let channel = info.channel_list().pop().unwrap();
    let c = channel.counters.snapshot();
    assert_eq!(c.get(Counter::Publish), 11);
    assert_eq!(c.get(Counter::Confirm), 11);
    assert_eq!(c.get(Counter::DropUnroutable), 1);
    assert_eq!(c.get(Counter::Ack), 8);
    assert_eq!(c.get(Counter::Get), 1);
    assert_eq!(c.get(Counter::GetEmpty), 1);
    assert_eq!(c.get(Counter::Deliver), 9);
    assert!(channel.confirm.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(
        channel.unacked.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        channel.consumers.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    let totals = b.stats().totals.snapshot();
    assert_eq!(totals.get(Counter::Publish), 11);
    assert_eq!(vhost.stats.get(Counter::Publish), 11);
    assert_eq!(totals.deliver_get(), 10);
    let churn = &b.stats().churn;
    assert_eq!(churn.get(Churn::ConnectionCreated), 1);
    assert_eq!(churn.get(Churn::ChannelCreated), 1);
    assert_eq!(churn.get(Churn::QueueCreated), 1);
    conn.close(200, "bye".into()).await.unwrap();
    eventually("connection closed churn", || {
        churn.get(Churn::ConnectionClosed) == 1 && churn.get(Churn::ChannelClosed) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_record_has_client_properties_and_goes_when_closed() {
    let broker = TestBroker::start();
    let b = Arc::clone(broker.broker());
    let conn = warren_integration::connect(&broker.url()).await;
    let _ch = conn.create_channel().await.unwrap();
    let info = b.connections().list().pop().unwrap();
    let d = &info.details;
    assert_eq!(d.protocol, "AMQP 0-9-1");
    assert_eq!(d.auth_mechanism, "PLAIN");
    assert_eq!(d.name, format!("{} -> {}", d.peer, broker.addr()));
    let props = warren_broker::definitions::table_to_json(&d.client_properties);
    assert_eq!(props["product"], "lapin");
    assert_eq!(props["capabilities"]["publisher_confirms"], true);
    assert!(d.tls.is_none());
    assert!(info.io.snapshot()[0] > 0, "recv_oct counts the handshake");
    eventually("channel record", || info.channel_list().len() == 1).await;
    conn.close(200, "bye".into()).await.unwrap();
    eventually("connection unregistered", || {
        b.connections().list().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampler_reports_rates_and_queue_depth() {
    let broker = TestBroker::start_with(TestConfig {
        broker: BrokerConfig {
            stats_interval: Duration::from_millis(100),
            ..BrokerConfig::default()
        },
        ..TestConfig::default()
    });
    let b = Arc::clone(broker.broker());
    assert!(b.start_sampler());
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    let queue = declare_queue(&ch).await;
    let key = ObjectKey::Queue(Arc::from("/"), Arc::from(queue.as_str()));
    let publish_slot = slot::counter(Counter::Publish);
    // Publish steadily until a sample shows a publish rate and a growing depth.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for _ in 0..20 {
            publish(&ch, "", &queue, b"m").await;
        }
        let (rate, depth_rate, depth) = b.stats().read(|h| {
            (
                h.details(&key, publish_slot, None).rate,
                h.details(&key, slot::MESSAGES, None).rate,
                h.latest(&key).map(|s| s.values[slot::MESSAGES]),
            )
        });
        if rate > 0.0 && depth_rate > 0.0 && depth.is_some_and(|d| d > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no rate after 10 s: {rate} {depth_rate} {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let broker_rate = b
        .stats()
        .read(|h| h.details(&ObjectKey::Broker, publish_slot, None).rate);
    assert!(broker_rate >= 0.0);
    // A deleted queue's ring goes at the next round.
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    eventually("ring dropped", || b.stats().read(|h| !h.contains(&key))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_record_counts_what_its_transaction_holds() {
    let broker = TestBroker::start();
    let b = Arc::clone(broker.broker());
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    let queue = declare_queue(&ch).await;
    ch.tx_select().await.unwrap();
    for _ in 0..3 {
        publish(&ch, "", &queue, b"t").await;
    }
    let info = b.connections().list().pop().unwrap();
    let channel = info.channel_list().pop().unwrap();
    let load = |a: &std::sync::atomic::AtomicU32| a.load(std::sync::atomic::Ordering::Relaxed);
    eventually("3 uncommitted publishes", || {
        load(&channel.uncommitted) == 3
    })
    .await;
    assert!(
        channel
            .transactional
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    ch.tx_commit().await.unwrap();
    eventually("nothing uncommitted", || load(&channel.uncommitted) == 0).await;
    assert_eq!(queue_counter(&b, &queue, Counter::Publish), 3);
    let (_, _, _, _) = get(&ch, &queue).await.unwrap();
    ch.basic_ack(1, BasicAckOptions::default()).await.unwrap();
    eventually("1 uncommitted ack", || load(&channel.acks_uncommitted) == 1).await;
    ch.tx_rollback().await.unwrap();
    eventually("rolled back", || load(&channel.acks_uncommitted) == 0).await;
}
