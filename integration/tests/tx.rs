//! tx.select / commit / rollback: publishes and acks are held until commit and discarded
//! on rollback.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};

async fn publish_n(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

/// Every ready message as (body, redelivered), taken with no-ack.
async fn contents(ch: &Channel, queue: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push((
            String::from_utf8(m.delivery.data).unwrap(),
            m.delivery.redelivered,
        ));
    }
    out
}

fn expect(items: &[(&str, bool)]) -> Vec<(String, bool)> {
    items.iter().map(|(s, r)| (s.to_string(), *r)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_held_until_commit() {
    let env = Env::start();
    let conn = env.connect().await;
    let observer = conn.create_channel().await.unwrap();
    let tx = conn.create_channel().await.unwrap();
    let q = declare_queue(&observer).await;
    tx.tx_select().await.unwrap();
    publish_n(&tx, &q, 3).await;
    // A synchronous round trip on the tx channel: the publishes have been processed.
    tx.basic_qos(0, BasicQosOptions::default()).await.unwrap();
    assert_eq!(message_count(&observer, &q).await, 0);
    tx.tx_commit().await.unwrap();
    assert_count(&observer, &q, 3).await;
    assert_eq!(
        contents(&observer, &q).await,
        expect(&[("m0", false), ("m1", false), ("m2", false)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_discards_publishes() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    ch.tx_select().await.unwrap();
    publish(&ch, "", &q, b"discarded").await;
    ch.tx_rollback().await.unwrap();
    publish(&ch, "", &q, b"kept").await;
    ch.tx_commit().await.unwrap();
    assert_count(&ch, &q, 1).await;
    assert_eq!(contents(&ch, &q).await, expect(&[("kept", false)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_held_until_commit() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let q = declare_queue(&setup).await;
    publish_n(&setup, &q, 2).await;
    assert_count(&setup, &q, 2).await;
    let ch = conn.create_channel().await.unwrap();
    ch.tx_select().await.unwrap();
    let (t0, _, _, _) = get(&ch, &q).await.unwrap();
    let (t1, _, _, _) = get(&ch, &q).await.unwrap();
    ch.basic_ack(t0, BasicAckOptions::default()).await.unwrap();
    ch.tx_commit().await.unwrap();
    ch.basic_ack(t1, BasicAckOptions::default()).await.unwrap();
    // Closing without commit: the second ack never happened, so m1 comes back.
    ch.close(200, "bye".into()).await.unwrap();
    assert_count(&setup, &q, 1).await;
    assert_eq!(contents(&setup, &q).await, expect(&[("m1", true)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_discards_acks_and_the_messages_stay_unacked() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let q = declare_queue(&setup).await;
    publish_n(&setup, &q, 2).await;
    assert_count(&setup, &q, 2).await;
    let ch = conn.create_channel().await.unwrap();
    ch.tx_select().await.unwrap();
    let (t0, _, _, _) = get(&ch, &q).await.unwrap();
    let (t1, _, _, _) = get(&ch, &q).await.unwrap();
    ch.basic_ack(t1, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    ch.tx_rollback().await.unwrap();
    // Still unacked (not requeued by the rollback)...
    assert_eq!(message_count(&setup, &q).await, 0);
    // ...and still ackable: ack one for real.
    ch.basic_ack(t0, BasicAckOptions::default()).await.unwrap();
    ch.tx_commit().await.unwrap();
    ch.close(200, "bye".into()).await.unwrap();
    assert_count(&setup, &q, 1).await;
    assert_eq!(contents(&setup, &q).await, expect(&[("m1", true)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_and_reject_with_requeue_are_held_until_commit() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let q = declare_queue(&setup).await;
    publish_n(&setup, &q, 3).await;
    assert_count(&setup, &q, 3).await;
    let ch = conn.create_channel().await.unwrap();
    ch.tx_select().await.unwrap();
    let (t0, _, _, _) = get(&ch, &q).await.unwrap();
    let (t1, _, _, _) = get(&ch, &q).await.unwrap();
    let (t2, _, _, _) = get(&ch, &q).await.unwrap();
    ch.basic_reject(t0, BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    ch.basic_nack(
        t1,
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    )
    .await
    .unwrap();
    ch.basic_nack(
        t2,
        BasicNackOptions {
            multiple: false,
            requeue: false,
        },
    )
    .await
    .unwrap();
    ch.basic_qos(0, BasicQosOptions::default()).await.unwrap();
    assert_eq!(message_count(&setup, &q).await, 0);
    ch.tx_commit().await.unwrap();
    assert_count(&setup, &q, 2).await;
    assert_eq!(
        contents(&setup, &q).await,
        expect(&[("m0", true), ("m1", true)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_of_persistent_publishes_to_a_durable_queue() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("durable");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.tx_select().await.unwrap();
    for i in 0..100u8 {
        publish_with(
            &ch,
            "",
            &q,
            &[i],
            BasicProperties::default().with_delivery_mode(2),
        )
        .await;
    }
    ch.tx_commit().await.unwrap();
    assert_count(&ch, &q, 100).await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_without_select_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch.tx_commit().await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_without_select_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch.tx_rollback().await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_publish_to_a_missing_exchange_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    ch.tx_select().await.unwrap();
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_publish(
            unique("missing").as_str().into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        ),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_ack_of_an_unknown_tag_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    ch.tx_select().await.unwrap();
    let result = then_sync(&conn, &ch, ch.basic_ack(99, BasicAckOptions::default())).await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_transactional_channel_discards_uncommitted_work() {
    let env = Env::start();
    let conn = env.connect().await;
    let observer = conn.create_channel().await.unwrap();
    let q = declare_queue(&observer).await;
    let ch = conn.create_channel().await.unwrap();
    ch.tx_select().await.unwrap();
    publish_n(&ch, &q, 2).await;
    ch.close(200, "bye".into()).await.unwrap();
    assert_eq!(message_count(&observer, &q).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acking_the_same_tag_twice_in_one_transaction_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 1).await;
    assert_count(&ch, &q, 1).await;
    ch.tx_select().await.unwrap();
    let (tag, _, _, _) = get(&ch, &q).await.unwrap();
    ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
    let result = then_sync(&conn, &ch, ch.basic_ack(tag, BasicAckOptions::default())).await;
    assert_channel_error(&conn, &ch, result, 406).await;
    // The uncommitted ack died with the channel: the message is back.
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(contents(&ch, &q).await, expect(&[("m0", true)]));
}
