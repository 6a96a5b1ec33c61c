//! queue.declare (passive, durable, exclusive, auto-delete, server-named, equivalence,
//! counts), queue.bind / unbind, purge and delete, with RabbitMQ's reply codes.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::time::Duration;

use core_support::*;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    }
}

async fn declare(
    ch: &Channel,
    name: &str,
    options: QueueDeclareOptions,
) -> lapin::Result<lapin::Queue> {
    ch.queue_declare(name.into(), options, FieldTable::default())
        .await
}

/// A queue argument RabbitMQ checks on redeclare and that Warren accepts
/// (`x-max-in-memory-length`: RabbitMQ 3.10's classic queues accept and do not use it).
/// An argument both Warren and RabbitMQ accept on a classic queue and compare on redeclare.
fn ttl_args(n: i32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(n * 1000));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_missing_queue_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = declare(&ch, &unique("missing"), passive()).await;
    assert_channel_error(&conn, &ch, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_ignores_flags_and_reports_counts() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    for body in ["a", "b", "c"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    let other = env.connect().await.create_channel().await.unwrap();
    other
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consume(&other, &q, false).await;
    next(&mut consumer).await;
    let ok = declare(
        &ch,
        &q,
        QueueDeclareOptions {
            passive: true,
            durable: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((ok.message_count(), ok.consumer_count()), (2, 1));
    assert_eq!(ok.name().as_str(), q);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_ok_counts_ready_messages_and_consumers() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let ok = declare(&ch, &q, QueueDeclareOptions::default())
        .await
        .unwrap();
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 0));
    for i in 0..5u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    // One message delivered and unacked is not counted as ready.
    let (tag, _, _, left) = get(&ch, &q).await.unwrap();
    assert_eq!(left, 4);
    let ok = declare(&ch, &q, QueueDeclareOptions::default())
        .await
        .unwrap();
    assert_eq!((ok.message_count(), ok.consumer_count()), (4, 0));
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let _c1 = consume(&consumer_ch, &q, false).await;
    let _c2 = consume(&consumer_ch, &q, false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = declare(&ch, &q, QueueDeclareOptions::default())
        .await
        .unwrap();
    assert_eq!((ok.message_count(), ok.consumer_count()), (2, 2));
    ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_named_queue_gets_an_amq_gen_name() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let ok = declare(&ch, "", QueueDeclareOptions::default())
        .await
        .unwrap();
    let name = ok.name().as_str().to_owned();
    assert!(name.starts_with("amq.gen-"), "{name}");
    assert!(name.len() > "amq.gen-".len() + 8, "{name}");
    let second = declare(&ch, "", QueueDeclareOptions::default())
        .await
        .unwrap();
    assert_ne!(second.name().as_str(), name);
    // The generated name is a real queue.
    publish(&ch, "", &name, b"m").await;
    assert_eq!(drain(&ch, &name).await, bodies(&["m"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_queue_name_means_the_last_declared_queue() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let ok = declare(&ch, "", QueueDeclareOptions::default())
        .await
        .unwrap();
    let name = ok.name().as_str().to_owned();
    ch.queue_bind(
        "".into(),
        "amq.fanout".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "", &name, b"m").await;
    let got = ch
        .basic_get("".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.data, b"m");
    ch.queue_unbind(
        "".into(),
        "amq.fanout".into(),
        "".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_with_reserved_amq_prefix_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = declare(&ch, "amq.mine", QueueDeclareOptions::default()).await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_durable_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = declare(&ch, &q, QueueDeclareOptions::durable()).await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_auto_delete_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = declare(
        &ch,
        &q,
        QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_arguments_closes_channel_with_406() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let q = unique("q");
    setup
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            ttl_args(10),
        )
        .await
        .unwrap();
    // Same arguments: fine.
    setup
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            ttl_args(10),
        )
        .await
        .unwrap();
    for args in [ttl_args(11), FieldTable::default()] {
        let ch = conn.create_channel().await.unwrap();
        let result = ch
            .queue_declare(q.as_str().into(), QueueDeclareOptions::default(), args)
            .await;
        assert_channel_error(&conn, &ch, result, 406).await;
    }
    delete_queue(&setup, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_queue_and_persistent_messages_survive_a_restart() {
    let env = Env::start();
    let q = unique("durable");
    {
        let (conn, ch) = env.channel().await;
        declare(&ch, &q, QueueDeclareOptions::durable())
            .await
            .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for (body, mode) in [("persistent", 2), ("transient", 1)] {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_delivery_mode(mode),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        conn.close(200, "bye".into()).await.unwrap();
    }
    let Some(env) = env.restart() else {
        return; // external broker: cannot restart it from here
    };
    let (_conn, ch) = env.channel().await;
    let ok = declare(&ch, &q, QueueDeclareOptions::durable())
        .await
        .unwrap();
    assert_eq!(ok.message_count(), 1);
    assert_eq!(drain(&ch, &q).await, bodies(&["persistent"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_queue_is_gone_after_a_restart() {
    let env = Env::start();
    let q = unique("transient");
    {
        let (conn, ch) = env.channel().await;
        declare(&ch, &q, QueueDeclareOptions::default())
            .await
            .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }
    let Some(env) = env.restart() else {
        return;
    };
    let (_conn, ch) = env.channel().await;
    assert_eq!(reply_code(declare(&ch, &q, passive()).await), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_is_locked_to_its_connection_with_405() {
    let env = Env::start();
    let (_owner, owner_ch) = env.channel().await;
    let q = unique("excl");
    declare(&owner_ch, &q, QueueDeclareOptions::exclusive())
        .await
        .unwrap();
    // The owner may use it freely.
    publish(&owner_ch, "", &q, b"m").await;
    assert_count(&owner_ch, &q, 1).await;

    let other = env.connect().await;
    let attempts: Vec<&str> = vec![
        "declare", "passive", "consume", "get", "bind", "purge", "delete",
    ];
    for what in attempts {
        let ch = other.create_channel().await.unwrap();
        let result: lapin::Result<()> = match what {
            "declare" => declare(&ch, &q, QueueDeclareOptions::exclusive())
                .await
                .map(drop),
            "passive" => declare(&ch, &q, passive()).await.map(drop),
            "consume" => ch
                .basic_consume(
                    q.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map(drop),
            "get" => ch
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .map(drop),
            "bind" => {
                ch.queue_bind(
                    q.as_str().into(),
                    "amq.direct".into(),
                    "k".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
            }
            "purge" => ch
                .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                .await
                .map(drop),
            _ => ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .map(drop),
        };
        let code = reply_code(result);
        assert_eq!(code, 405, "{what}");
    }
    assert_eq!(message_count(&owner_ch, &q).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let env = Env::start();
    let q = unique("excl");
    let owner = env.connect().await;
    let ch = owner.create_channel().await.unwrap();
    declare(&ch, &q, QueueDeclareOptions::exclusive())
        .await
        .unwrap();
    let (_conn, watcher) = env.channel().await;
    assert_eq!(reply_code(declare(&watcher, &q, passive()).await), 405);
    owner.close(200, "bye".into()).await.unwrap();
    let watcher = _conn.create_channel().await.unwrap();
    let mut gone = false;
    for _ in 0..50 {
        let ch = _conn.create_channel().await.unwrap();
        match declare(&ch, &q, passive()).await {
            Err(e) => {
                let code = reply_code::<()>(Err(e));
                if code == 404 {
                    gone = true;
                    break;
                }
                assert_eq!(code, 405);
            }
            Ok(_) => panic!("passive declare of another connection's exclusive queue succeeded"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "exclusive queue outlived its connection");
    // The name is free again.
    declare(&watcher, &q, QueueDeclareOptions::default())
        .await
        .unwrap();
    delete_queue(&watcher, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_is_deleted_when_its_last_consumer_goes() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("auto");
    declare(
        &ch,
        &q,
        QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    )
    .await
    .unwrap();
    // Never consumed: stays.
    assert_eq!(message_count(&ch, &q).await, 0);
    let c1 = consume(&ch, &q, false).await;
    let c2 = consume(&ch, &q, false).await;
    ch.basic_cancel(c1.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    // One consumer left: still there.
    assert_eq!(message_count(&ch, &q).await, 0);
    ch.basic_cancel(c2.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let check = _conn.create_channel().await.unwrap();
    assert_eq!(reply_code(declare(&check, &q, passive()).await), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_is_deleted_when_its_consumers_channel_closes() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("auto");
    declare(
        &ch,
        &q,
        QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    )
    .await
    .unwrap();
    let _c = consume(&ch, &q, false).await;
    ch.close(200, "bye".into()).await.unwrap();
    let check = conn.create_channel().await.unwrap();
    assert_eq!(reply_code(declare(&check, &q, passive()).await), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_to_missing_exchange_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = ch
        .queue_bind(
            q.as_str().into(),
            unique("missing").as_str().into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_of_missing_queue_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .queue_bind(
            unique("missing").as_str().into(),
            "amq.direct".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 404).await;
}

// RabbitMQ (checked against 3.10) answers unbind-ok when the binding does not exist, even
// when its exchange or queue does not exist either: unbind is idempotent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbind_from_missing_exchange_succeeds() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    ch.queue_unbind(
        q.as_str().into(),
        unique("missing").as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    assert_count(&ch, &q, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbind_of_missing_queue_succeeds() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.queue_unbind(
        unique("missing").as_str().into(),
        "amq.direct".into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // The channel is still open.
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_and_unbind_control_routing() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let key = unique("k");
    ch.queue_bind(
        q.as_str().into(),
        "amq.direct".into(),
        key.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "amq.direct", &key, b"bound").await;
    ch.queue_unbind(
        q.as_str().into(),
        "amq.direct".into(),
        key.as_str().into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "amq.direct", &key, b"unbound").await;
    assert_eq!(drain(&ch, &q).await, bodies(&["bound"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_drops_ready_messages_and_reports_the_count() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    for i in 0..4u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    // One delivered, unacked: purge leaves it alone.
    let (tag, body, _, _) = get(&ch, &q).await.unwrap();
    assert_eq!(body, vec![0]);
    let purged = ch
        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(purged, 3);
    assert_eq!(message_count(&ch, &q).await, 0);
    ch.basic_reject(tag, BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    assert_eq!(drain(&ch, &q).await, vec![vec![0]]);
    let purged = ch
        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(purged, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_of_missing_queue_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .queue_purge(
            unique("missing").as_str().into(),
            QueuePurgeOptions::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_reports_the_ready_count_and_removes_the_queue() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    for i in 0..3u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let count = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(reply_code(declare(&ch, &q, passive()).await), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_missing_queue_succeeds_with_zero() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let count = ch
        .queue_delete(
            unique("missing").as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_with_a_consumer_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let other = conn.create_channel().await.unwrap();
    let _c = consume(&other, &q, false).await;
    let result = ch
        .queue_delete(
            q.as_str().into(),
            QueueDeleteOptions {
                if_unused: true,
                ..QueueDeleteOptions::default()
            },
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
    let check = conn.create_channel().await.unwrap();
    assert_eq!(message_count(&check, &q).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_empty_with_messages_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish(&ch, "", &q, b"m").await;
    let result = ch
        .queue_delete(
            q.as_str().into(),
            QueueDeleteOptions {
                if_empty: true,
                ..QueueDeleteOptions::default()
            },
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
    let check = conn.create_channel().await.unwrap();
    assert_count(&check, &q, 1).await;
    // Empty now: if-empty succeeds.
    drain(&check, &q).await;
    check
        .queue_delete(
            q.as_str().into(),
            QueueDeleteOptions {
                if_empty: true,
                if_unused: true,
                ..QueueDeleteOptions::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_queue_cancels_its_consumers() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let consumer_conn = env.connect().await;
    let consumer_ch = consumer_conn.create_channel().await.unwrap();
    let mut consumer = consume(&consumer_ch, &q, false).await;
    ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    // basic.cancel from the server ends the consumer's stream.
    let end = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("consumer not cancelled within 5 s");
    assert!(end.is_none(), "expected the stream to end, got {end:?}");
    // The channel stays open.
    assert!(consumer_ch.status().connected());
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_queue_removes_its_bindings() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("q");
    let key = unique("k");
    declare(&ch, &q, QueueDeclareOptions::default())
        .await
        .unwrap();
    ch.queue_bind(
        q.as_str().into(),
        "amq.direct".into(),
        key.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    declare(&ch, &q, QueueDeclareOptions::default())
        .await
        .unwrap();
    publish(&ch, "amq.direct", &key, b"m").await;
    assert!(drain(&ch, &q).await.is_empty());
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_a_classic_queue_with_another_types_argument_closes_channel_with_406() {
    let env = Env::start();
    let conn = env.connect().await;
    for key in ["x-delivery-limit", "x-max-age", "x-quorum-initial-group-size"] {
        let ch = conn.create_channel().await.unwrap();
        let name = unique("other-type-arg");
        let mut args = FieldTable::default();
        let value = if key == "x-max-age" {
            AMQPValue::LongString("1D".into())
        } else {
            AMQPValue::LongInt(1)
        };
        args.insert(key.into(), value);
        let result = ch
            .queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
            .await;
        let text = format!(
            "PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/' of queue type rabbit_classic_queue"
        );
        assert_eq!(error_text(&result), text);
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_ignores_differences_in_unknown_arguments() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("unknown-args");
    for value in [1, 2] {
        let mut args = FieldTable::default();
        args.insert("x-foo".into(), AMQPValue::LongInt(value));
        ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), args)
            .await
            .unwrap();
    }
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbind_with_empty_queue_and_key_means_the_last_declared_queue() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let ok = declare(&ch, "", QueueDeclareOptions::default())
        .await
        .unwrap();
    let name = ok.name().as_str().to_owned();
    // Bound with the queue's name as the key...
    ch.queue_bind(
        "".into(),
        "amq.direct".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "amq.direct", &name, b"bound").await;
    // ...and unbound the same way.
    ch.queue_unbind(
        "".into(),
        "amq.direct".into(),
        "".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "amq.direct", &name, b"unbound").await;
    assert_eq!(drain(&ch, &name).await, bodies(&["bound"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_with_client_chosen_amq_gen_name_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = declare(&ch, &unique("amq.gen-mine"), QueueDeclareOptions::default()).await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_redeclaring_exclusive_queue_as_non_exclusive_gets_405() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = unique("excl");
    declare(&ch, &q, QueueDeclareOptions::exclusive())
        .await
        .unwrap();
    let result = declare(&ch, &q, QueueDeclareOptions::default()).await;
    assert_channel_error(&conn, &ch, result, 405).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclaring_a_shared_queue_as_exclusive_gets_405() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = declare(&ch, &q, QueueDeclareOptions::exclusive()).await;
    assert_channel_error(&conn, &ch, result, 405).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_redeclare_of_a_server_named_queue_by_name_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let ok = declare(&ch, "", QueueDeclareOptions::default())
        .await
        .unwrap();
    let name = ok.name().as_str().to_owned();
    // Passive is fine...
    declare(&ch, &name, passive()).await.unwrap();
    // ...an active declare of an amq.* name is not, even for an existing queue.
    let result = declare(&ch, &name, QueueDeclareOptions::default()).await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_queue_is_deleted_when_its_consumers_connection_closes() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("auto");
    declare(
        &ch,
        &q,
        QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    )
    .await
    .unwrap();
    let consumer_conn = env.connect().await;
    let consumer_ch = consumer_conn.create_channel().await.unwrap();
    let _c = consume(&consumer_ch, &q, false).await;
    consumer_conn.close(200, "bye".into()).await.unwrap();
    let mut gone = false;
    for _ in 0..50 {
        let check = _conn.create_channel().await.unwrap();
        if declare(&check, &q, passive()).await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "auto-delete queue outlived its last consumer's connection"
    );
}

fn one_arg(key: &str, value: AMQPValue) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(key.into(), value);
    args
}

/// Declare `q` once with each value of the argument `key`: each must be equivalent to the
/// first (the declares succeed).
async fn declare_with_each<const N: usize>(
    ch: &Channel,
    q: &str,
    key: &str,
    values: [AMQPValue; N],
) {
    for value in values {
        ch.queue_declare(
            q.into(),
            QueueDeclareOptions::default(),
            one_arg(key, value),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_the_same_number_in_another_integer_type_is_equivalent() {
    // RabbitMQ compares integer arguments by value across widths: a Java client sending a
    // long and a Python client sending an int share one queue.
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("int-widths");
    declare_with_each(
        &ch,
        &q,
        "x-message-ttl",
        [
            AMQPValue::LongInt(60_000),
            AMQPValue::LongLongInt(60_000),
            AMQPValue::LongUInt(60_000),
        ],
    )
    .await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_another_value_names_both_values() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("ttl-values");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        one_arg("x-message-ttl", AMQPValue::LongInt(1000)),
    )
    .await
    .unwrap();
    let result = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            one_arg("x-message-ttl", AMQPValue::LongLongInt(2000)),
        )
        .await;
    let text = error_text(&result);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': received '2000' but current is '1000'"
        )
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_type_given_as_a_byte_array_is_the_same_type() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("qtype-bytes");
    declare_with_each(
        &ch,
        &q,
        "x-queue-type",
        [
            AMQPValue::LongString("classic".into()),
            AMQPValue::ByteArray(b"classic".to_vec().into()),
        ],
    )
    .await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_queue_type_or_mode_closes_channel_with_406() {
    let env = Env::start();
    let conn = env.connect().await;
    for (key, value, why) in [
        ("x-queue-type", "foo", "unsupported queue type 'foo'"),
        ("x-queue-mode", "fast", "unsupported queue mode 'fast'"),
    ] {
        let ch = conn.create_channel().await.unwrap();
        let q = unique("bad-arg");
        let result = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::default(),
                one_arg(key, AMQPValue::LongString(value.into())),
            )
            .await;
        assert_eq!(
            error_text(&result),
            format!(
                "PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': \"{why}\""
            )
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
    let (_conn, ch) = env.channel().await;
    for mode in ["default", "lazy"] {
        let q = unique("mode");
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            one_arg("x-queue-mode", AMQPValue::LongString(mode.into())),
        )
        .await
        .unwrap();
        delete_queue(&ch, &q).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_an_empty_name_closes_channel_with_404_even_after_a_declare() {
    // "" is not the last declared queue for a passive declare (RabbitMQ looks for a
    // queue named "", which cannot exist).
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    declare(&ch, "", QueueDeclareOptions::default())
        .await
        .unwrap();
    let result = declare(&ch, "", passive()).await;
    assert_eq!(error_text(&result), "NOT_FOUND - no queue '' in vhost '/'");
    assert_channel_error(&conn, &ch, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbinding_what_is_not_bound_from_another_connections_exclusive_queue_succeeds() {
    // As RabbitMQ: a binding that does not exist is not looked at further; removing one
    // that exists is 405 like every other use of the queue.
    let env = Env::start();
    let (_owner, owner_ch) = env.channel().await;
    let q = unique("excl-unbind");
    declare(&owner_ch, &q, QueueDeclareOptions::exclusive())
        .await
        .unwrap();
    owner_ch
        .queue_bind(
            q.as_str().into(),
            "amq.direct".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (other, other_ch) = env.channel().await;
    other_ch
        .queue_unbind(
            q.as_str().into(),
            "amq.direct".into(),
            "not-bound".into(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let result = other_ch
        .queue_unbind(
            q.as_str().into(),
            "amq.direct".into(),
            "k".into(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&other, &other_ch, result, 405).await;
    publish(&owner_ch, "amq.direct", "k", b"still routed").await;
    assert_eq!(message_count(&owner_ch, &q).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_with_missing_exchange_and_queue_names_the_exchange() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let (x, q) = (unique("missing-x"), unique("missing-q"));
    let result = ch
        .queue_bind(
            q.as_str().into(),
            x.as_str().into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(
        error_text(&result),
        format!("NOT_FOUND - no exchange '{x}' in vhost '/'")
    );
    assert_channel_error(&conn, &ch, result, 404).await;
}
