//! Length limits (`x-max-length`, `x-max-length-bytes`) and `x-overflow` (drop-head,
//! reject-publish, reject-publish-dlx), as RabbitMQ 3.10's classic queues: only ready
//! messages count, drop-head drops the oldest, reject-publish nacks under confirms and
//! drops silently without. Every test here also passes against RabbitMQ
//! (`WARREN_TEST_URL`) except the restart one.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Declare a queue with `args`; returns its name.
async fn limited(ch: &Channel, durable: bool, args: &[(&str, AMQPValue)]) -> String {
    let name = unique("limited");
    ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        },
        table(args),
    )
    .await
    .unwrap();
    name
}

/// Publish `bodies` on a confirm channel; returns one `true` (ack) or `false` (nack) each.
async fn publish_confirmed(ch: &Channel, queue: &str, bodies: &[&str]) -> Vec<bool> {
    let mut confirms = Vec::new();
    for body in bodies {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        confirms.push(confirm.is_ack());
    }
    confirms
}

async fn confirm_channel(env: &Env) -> (lapin::Connection, Channel) {
    let (conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (conn, ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_keeps_the_newest_messages() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = limited(&ch, false, &[("x-max-length", AMQPValue::LongInt(2))]).await;
    for body in ["1", "2", "3", "4", "5"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    assert_count(&ch, &q, 2).await;
    let (_, body, _, left) = get(&ch, &q).await.unwrap();
    assert_eq!((body, left), (b"4".to_vec(), 1), "get reports what is left");
    assert_eq!(drain(&ch, &q).await, bodies(&["5"]));
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_length_bytes_counts_body_bytes() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = limited(&ch, false, &[("x-max-length-bytes", AMQPValue::LongInt(10))]).await;
    for body in ["aaaa", "bbbb", "cccc"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    // 12 bytes > 10: the oldest goes.
    assert_count(&ch, &q, 2).await;
    publish(&ch, "", &q, b"dd").await; // 10 bytes: fits
    assert_count(&ch, &q, 3).await;
    assert_eq!(drain(&ch, &q).await, bodies(&["bbbb", "cccc", "dd"]));
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_nacks_what_does_not_fit_under_confirms() {
    let env = Env::start();
    let (_conn, ch) = confirm_channel(&env).await;
    let q = limited(
        &ch,
        false,
        &[
            ("x-max-length", AMQPValue::LongInt(2)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    let confirms = publish_confirmed(&ch, &q, &["1", "2", "3", "4"]).await;
    assert_eq!(confirms, vec![true, true, false, false]);
    assert_count(&ch, &q, 2).await;
    // Room again after a get: the next publish is accepted.
    get(&ch, &q).await.unwrap();
    assert_eq!(publish_confirmed(&ch, &q, &["5"]).await, vec![true]);
    assert_eq!(drain(&ch, &q).await, bodies(&["2", "5"]));
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_without_confirms_drops_silently_and_keeps_the_channel() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = limited(
        &ch,
        false,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    for body in ["1", "2", "3"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    assert_count(&ch, &q, 1).await;
    assert!(ch.status().connected() && conn.status().connected());
    assert_eq!(drain(&ch, &q).await, bodies(&["1"]));
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_refuses_even_when_a_consumer_waits() {
    let env = Env::start();
    let (_conn, ch) = confirm_channel(&env).await;
    let q = limited(
        &ch,
        false,
        &[
            ("x-max-length", AMQPValue::LongInt(0)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    let mut consumer = consume(&ch, &q, true).await;
    assert_eq!(publish_confirmed(&ch, &q, &["1"]).await, vec![false]);
    assert_no_delivery(&mut consumer, 200).await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_head_with_max_length_0_still_reaches_a_waiting_consumer() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = limited(&ch, false, &[("x-max-length", AMQPValue::LongInt(0))]).await;
    publish(&ch, "", &q, b"dropped").await;
    assert_count(&ch, &q, 0).await;
    let mut consumer = consume(&ch, &q, true).await;
    publish(&ch, "", &q, b"delivered").await;
    assert_eq!(next(&mut consumer).await.data, b"delivered");
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_do_not_count_towards_the_limit() {
    let env = Env::start();
    let (_conn, ch) = confirm_channel(&env).await;
    let q = limited(
        &ch,
        false,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume(&ch, &q, false).await;
    assert_eq!(publish_confirmed(&ch, &q, &["1"]).await, vec![true]);
    let first = next(&mut consumer).await;
    // "1" is unacked; the queue has no ready message, so one more fits, not two.
    assert_eq!(publish_confirmed(&ch, &q, &["2", "3"]).await, vec![true, false]);
    first.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(next(&mut consumer).await.data, b"2");
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeue_past_the_limit_drops_the_oldest() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = limited(&ch, false, &[("x-max-length", AMQPValue::LongInt(2))]).await;
    for body in ["1", "2"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    let (tag, body, _, _) = get(&ch, &q).await.unwrap();
    assert_eq!(body, b"1");
    publish(&ch, "", &q, b"3").await;
    assert_count(&ch, &q, 2).await;
    // "1" comes back at the head: three ready, so the head ("1") goes again.
    ch.basic_nack(
        tag,
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    )
    .await
    .unwrap();
    assert_count(&ch, &q, 2).await;
    assert_eq!(drain(&ch, &q).await, bodies(&["2", "3"]));
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_publish_dlx_nacks_and_dead_letters() {
    let env = Env::start();
    let (_conn, ch) = confirm_channel(&env).await;
    let dlq = limited(&ch, false, &[]).await;
    let q = limited(
        &ch,
        false,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish-dlx")),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&dlq)),
        ],
    )
    .await;
    assert_eq!(publish_confirmed(&ch, &q, &["1", "2"]).await, vec![true, false]);
    assert_count(&ch, &dlq, 1).await;
    let m = ch
        .basic_get(dlq.as_str().into(), Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.delivery.data, b"2");
    let headers = m.delivery.properties.headers().as_ref().unwrap();
    match headers.inner().get("x-first-death-reason") {
        Some(AMQPValue::LongString(s)) => assert_eq!(s.as_bytes(), b"maxlen"),
        other => panic!("x-first-death-reason: {other:?}"),
    }
    assert_eq!(drain(&ch, &q).await, bodies(&["1"]));
    delete_queue(&ch, &q).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_several_queues_is_nacked_when_one_refuses_it() {
    let env = Env::start();
    let (_conn, ch) = confirm_channel(&env).await;
    let full = limited(
        &ch,
        false,
        &[
            ("x-max-length", AMQPValue::LongInt(0)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    let open = limited(&ch, false, &[]).await;
    for q in [&full, &open] {
        ch.queue_bind(
            q.as_str().into(),
            "amq.fanout".into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let confirm = ch
        .basic_publish(
            "amq.fanout".into(),
            "".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_nack());
    assert_count(&ch, &open, 1).await;
    delete_queue(&ch, &full).await;
    delete_queue(&ch, &open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_arguments_are_checked_with_rabbitmq_texts() {
    let env = Env::start();
    let conn = env.connect().await;
    let cases: Vec<(&str, AMQPValue, &str)> = vec![
        ("x-max-length", AMQPValue::LongInt(-1), "{value_negative,-1}"),
        (
            "x-max-length",
            text("10"),
            "\"expected integer, got longstr\"",
        ),
        (
            "x-max-length-bytes",
            AMQPValue::LongLongInt(-5),
            "{value_negative,-5}",
        ),
        ("x-overflow", text("drop-tail"), "invalid_overflow"),
        ("x-overflow", AMQPValue::LongInt(1), "{unacceptable_type,signedint}"),
    ];
    for (key, value, why) in cases {
        let ch = conn.create_channel().await.unwrap();
        let name = unique("bad-limit");
        let result = ch
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::default(),
                table(&[(key, value)]),
            )
            .await;
        assert_eq!(
            error_text(&result),
            format!("PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {why}")
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_persistent_messages_stay_dropped_after_a_restart() {
    let env = Env::start();
    if env.is_external() {
        return;
    }
    let (conn, ch) = confirm_channel(&env).await;
    let q = limited(&ch, true, &[("x-max-length", AMQPValue::LongInt(2))]).await;
    for body in ["1", "2", "3", "4"] {
        ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    drop(ch);
    conn.close(200, "bye".into()).await.unwrap();
    let env = env.restart().unwrap();
    let (_conn, ch) = env.channel().await;
    assert_eq!(message_count(&ch, &q).await, 2);
    // The limit still holds after recovery, with body bytes known without reading bodies.
    ch.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions::default(),
        b"5",
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .unwrap();
    assert_count(&ch, &q, 2).await;
    assert_eq!(drain(&ch, &q).await, bodies(&["4", "5"]));
}
