//! Message TTL runs on a timer, as in RabbitMQ: a queue that nobody touches still drops
//! its expired head messages (and releases their memory) once they expire.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;
use warren_broker::{Broker, BrokerConfig, Message, QueueDeclare};

fn ttl_args(ms: i32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(ms));
    args
}

fn message(queue: &str, properties: BasicProperties) -> Arc<Message> {
    Arc::new(
        Message::new(
            "".into(),
            queue.into(),
            &properties,
            warren_protocol::encode::properties(&properties).unwrap(),
            Bytes::from_static(&[7u8; 1000]),
            warren_broker::now_ms(),
        )
        .unwrap(),
    )
}

/// Publish `message` to `queue` through the default exchange.
fn publish(broker: &Broker, queue: &str, message: &Arc<Message>) {
    let vhost = broker.vhost("/").unwrap();
    let mut queues = Vec::new();
    vhost.route("", message, None, &[], &mut queues).unwrap();
    assert_eq!(queues.len(), 1, "routed to {queue}");
    let mut encoded = None;
    queues[0].publish(message, &mut encoded);
}

fn declare(broker: &Broker, name: &str, arguments: FieldTable) {
    declare_durable(broker, name, false, arguments);
}

fn declare_durable(broker: &Broker, name: &str, durable: bool, arguments: FieldTable) {
    let vhost = broker.vhost("/").unwrap();
    vhost
        .declare_queue(
            QueueDeclare {
                name: name.into(),
                passive: false,
                durable,
                exclusive: false,
                auto_delete: false,
                arguments,
            },
            1,
        )
        .unwrap();
}

async fn memory_drops_to_zero(broker: &Broker) -> bool {
    for _ in 0..200 {
        if broker.message_memory().used() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_ttl_expires_messages_of_an_untouched_queue() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    declare(&broker, "ttl", ttl_args(50));
    for _ in 0..3 {
        publish(&broker, "ttl", &message("ttl", BasicProperties::default()));
    }
    assert!(broker.message_memory().used() > 0);
    assert!(
        memory_drops_to_zero(&broker).await,
        "expired messages still held: {} bytes",
        broker.message_memory().used()
    );
    broker.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_message_expiration_expires_an_untouched_head_then_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    declare(&broker, "per-message", FieldTable::default());
    let expiring = |ms: &str| BasicProperties::default().with_expiration(ms.into());
    publish(
        &broker,
        "per-message",
        &message("per-message", expiring("30")),
    );
    publish(
        &broker,
        "per-message",
        &message("per-message", expiring("120")),
    );
    assert!(memory_drops_to_zero(&broker).await);
    broker.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_without_ttl_stay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    declare(&broker, "keep", FieldTable::default());
    publish(
        &broker,
        "keep",
        &message("keep", BasicProperties::default()),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(broker.message_memory().used() > 0);
    let vhost = broker.vhost("/").unwrap();
    assert_eq!(vhost.queue("keep", 1).unwrap().message_count(), 1);
    broker.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_messages_that_expired_while_the_broker_was_down_go_at_recovery() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
        declare_durable(&broker, "durable-ttl", true, ttl_args(100));
        let persistent = BasicProperties::default().with_delivery_mode(2);
        for _ in 0..3 {
            publish(
                &broker,
                "durable-ttl",
                &message("durable-ttl", persistent.clone()),
            );
        }
        broker.close().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    let queue = broker.vhost("/").unwrap().queue("durable-ttl", 1).unwrap();
    // Recovery loads only the index; the expiry check reads the head's bodies and drops
    // them, with no client touching the queue.
    let mut count = u32::MAX;
    for _ in 0..200 {
        count = queue.message_count();
        if count == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        count, 0,
        "expired persistent messages still queued after recovery"
    );
    broker.close().unwrap();
}
