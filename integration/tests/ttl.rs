//! Message TTL (`x-message-ttl`, the `expiration` property) and queue expiry (`x-expires`),
//! as RabbitMQ: messages expire at the head of the queue and are dropped (or dead-lettered:
//! see dead_letter.rs); a TTL of 0 still reaches a
//! consumer that can take the message at once; an unused queue deletes itself.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::time::Duration;

use core_support::*;
use lapin::BasicProperties;
use lapin::options::{BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

fn args(key: &str, value: AMQPValue) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(key.into(), value);
    t
}

async fn declare_with(ch: &lapin::Channel, name: &str, durable: bool, table: FieldTable) {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        },
        table,
    )
    .await
    .unwrap();
}

fn expiring(ms: &str) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_message_ttl_drops_messages_that_wait_longer() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("ttl");
    declare_with(
        &ch,
        &q,
        false,
        args("x-message-ttl", AMQPValue::LongInt(100)),
    )
    .await;
    publish(&ch, "", &q, b"old").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    publish(&ch, "", &q, b"new").await;
    assert_count(&ch, &q, 1).await;
    assert_eq!(get(&ch, &q).await.map(|m| m.1), Some(b"new".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_message_expiration_drops_the_message_at_the_head() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_with(&ch, "", &q, b"short", expiring("50")).await;
    publish_with(&ch, "", &q, b"long", expiring("60000")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(get(&ch, &q).await.map(|m| m.1), Some(b"long".to_vec()));
    assert!(get(&ch, &q).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_zero_without_a_consumer_is_dropped_at_once() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_with(&ch, "", &q, b"now or never", expiring("0")).await;
    assert_count(&ch, &q, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_zero_reaches_a_waiting_consumer() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let consumer_channel = env.connect().await.create_channel().await.unwrap();
    consumer_channel
        .basic_qos(10, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consume(&consumer_channel, &q, true).await;
    publish_with(&ch, "", &q, b"now or never", expiring("0")).await;
    assert_eq!(next(&mut consumer).await.data, b"now or never");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_message_ttl_argument_closes_channel_with_406() {
    let env = Env::start();
    let conn = env.connect().await;
    for value in [AMQPValue::LongInt(-1), AMQPValue::LongString("10".into())] {
        let ch = conn.create_channel().await.unwrap();
        let result = ch
            .queue_declare(
                unique("bad-ttl").as_str().into(),
                QueueDeclareOptions::default(),
                args("x-message-ttl", value),
            )
            .await;
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_queue_with_x_expires_deletes_itself() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = unique("expires");
    declare_with(&ch, &q, false, args("x-expires", AMQPValue::LongInt(200))).await;
    // Not polled: a passive declare counts as use and would renew the lease.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let probe = conn.create_channel().await.unwrap();
    let result = probe
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &probe, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_with_x_expires_and_a_consumer_stays() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("expires-used");
    declare_with(&ch, &q, false, args("x-expires", AMQPValue::LongInt(200))).await;
    let _consumer = consume(&ch, &q, true).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_count(&ch, &q, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_message_ttl_counts_from_the_original_publish_across_a_restart() {
    let env = Env::start();
    if env.is_external() {
        return;
    }
    let q = unique("ttl-durable");
    {
        let (_conn, ch) = env.channel().await;
        declare_with(&ch, &q, true, FieldTable::default()).await;
        let persistent = BasicProperties::default().with_delivery_mode(2);
        publish_with(
            &ch,
            "",
            &q,
            b"short",
            persistent.clone().with_expiration("300".into()),
        )
        .await;
        publish_with(&ch, "", &q, b"kept", persistent).await;
        ch.wait_for_confirms().await.ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let env = env.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_conn, ch) = env.channel().await;
    assert_eq!(drain(&ch, &q).await, bodies(&["kept"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_with_a_sign_is_accepted_as_rabbitmq_does() {
    // RabbitMQ parses `expiration` with string:to_integer: "+100" is 100 ms, "-0" is 0.
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_with(&ch, "", &q, b"plus", expiring("+100")).await;
    publish_with(&ch, "", &q, b"minus zero", expiring("-0")).await;
    publish(&ch, "", &q, b"kept").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(drain(&ch, &q).await, bodies(&["kept"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_and_expiry_arguments_take_up_to_ten_years() {
    // RabbitMQ's limit is 315,360,000,000 ms, well past 2^32.
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    for key in ["x-message-ttl", "x-expires"] {
        let q = unique("ten-years");
        declare_with(
            &ch,
            &q,
            false,
            args(key, AMQPValue::LongLongInt(315_360_000_000)),
        )
        .await;
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
    for (key, value, why) in [
        (
            "x-message-ttl",
            315_360_000_001,
            "{value_too_large,315360000001}",
        ),
        ("x-message-ttl", -1, "{value_negative,-1}"),
        ("x-expires", 0, "{value_zero,0}"),
    ] {
        let conn = env.connect().await;
        let ch = conn.create_channel().await.unwrap();
        let q = unique("bad-ttl");
        let result = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::default(),
                args(key, AMQPValue::LongLongInt(value)),
            )
            .await;
        assert_eq!(
            error_text(&result),
            format!(
                "PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {why}"
            )
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_expiration_closes_channel_with_406_in_rabbitmqs_words() {
    let env = Env::start();
    let q = declare_queue(&env.connect().await.create_channel().await.unwrap()).await;
    for (bad, why) in [
        ("abc", "no_integer"),
        ("", "no_integer"),
        (" 100", "no_integer"),
        ("1.5", "{leftover_string,\".5\"}"),
        ("-1", "{value_negative,-1}"),
        ("315360000001", "{value_too_large,315360000001}"),
    ] {
        let (conn, ch, result) = publish_refused(&env, &q, expiring(bad)).await;
        assert_eq!(
            error_text(&result),
            format!("PRECONDITION_FAILED - invalid expiration '{bad}': {why}")
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
    // Ten years is fine.
    let (_conn, ch) = env.channel().await;
    publish_with(&ch, "", &q, b"long-lived", expiring("315360000000")).await;
    assert_count(&ch, &q, 1).await;
}
