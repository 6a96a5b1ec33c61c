//! basic.consume / cancel / get / qos: tags, exclusivity, no-ack, round-robin, prefetch
//! per consumer and per channel, consumer priorities (`x-priority`) and argument checks, and
//! what closing a channel or connection gives back.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::collections::HashSet;
use std::time::Duration;

use core_support::*;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};

async fn consume_tagged(ch: &Channel, queue: &str, tag: &str) -> lapin::Result<Consumer> {
    ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
}

async fn publish_n(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_generates_unique_consumer_tags() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let mut tags = HashSet::new();
    let mut consumers = Vec::new();
    for _ in 0..10 {
        let c = consume(&ch, &q, false).await;
        let tag = c.tag().as_str().to_owned();
        assert!(tag.starts_with("amq.ctag-"), "{tag}");
        assert!(tags.insert(tag), "duplicate generated tag");
        consumers.push(c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_chosen_consumer_tag_is_used() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let mut c = consume_tagged(&ch, &q, "my-tag").await.unwrap();
    assert_eq!(c.tag().as_str(), "my-tag");
    publish(&ch, "", &q, b"m").await;
    assert_eq!(next(&mut c).await.data, b"m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_consumer_tag_on_a_channel_closes_connection_with_530() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let _first = consume_tagged(&ch, &q, "dup").await.unwrap();
    let result = consume_tagged(&ch, &q, "dup").await;
    assert_connection_error(&conn, result.map(drop), 530).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_consumer_tag_on_two_channels_is_allowed() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch1 = conn.create_channel().await.unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    let q = declare_queue(&ch1).await;
    let _a = consume_tagged(&ch1, &q, "same").await.unwrap();
    let _b = consume_tagged(&ch2, &q, "same").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_missing_queue_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = consume_tagged(&ch, &unique("missing"), "").await;
    assert_channel_error(&conn, &ch, result.map(drop), 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_consumer_locks_out_other_consumers_with_403() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = declare_queue(&ch).await;
    let exclusive = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let other = conn.create_channel().await.unwrap();
    let result = consume_tagged(&other, &q, "").await;
    assert_channel_error(&conn, &other, result.map(drop), 403).await;
    // Once the exclusive consumer goes, others may consume.
    ch.basic_cancel(exclusive.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let other = conn.create_channel().await.unwrap();
    consume_tagged(&other, &q, "").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_consume_on_a_queue_with_consumers_closes_channel_with_403() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = declare_queue(&ch).await;
    let _c = consume_tagged(&ch, &q, "").await.unwrap();
    let other = conn.create_channel().await.unwrap();
    let result = other
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &other, result.map(drop), 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_consumer_takes_messages_for_good() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    let consumer_ch = conn.create_channel().await.unwrap();
    let mut c = consume(&consumer_ch, &q, true).await;
    for i in 0..3 {
        let d = next(&mut c).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
        assert!(!d.redelivered);
    }
    // Closing the channel gives nothing back: no-ack deliveries are settled.
    consumer_ch.close(200, "bye".into()).await.unwrap();
    assert_count(&ch, &q, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_receive_round_robin() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let consumer_conn = env.connect().await;
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let c_ch = consumer_conn.create_channel().await.unwrap();
        consumers.push(consume(&c_ch, &q, true).await);
    }
    publish_n(&ch, &q, 9).await;
    for (i, c) in consumers.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(String::from_utf8(next(c).await.data).unwrap());
        }
        let expected: Vec<String> = (0..3).map(|k| format!("m{}", i + 3 * k)).collect();
        assert_eq!(got, expected, "consumer {i}");
        assert_no_delivery(c, 100).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_deliveries_and_ends_the_stream() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let mut c = consume(&ch, &q, true).await;
    publish(&ch, "", &q, b"before").await;
    assert_eq!(next(&mut c).await.data, b"before");
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .expect("stream did not end");
    assert!(end.is_none());
    publish(&ch, "", &q, b"after").await;
    assert_count(&ch, &q, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_an_unknown_tag_answers_cancel_ok() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.basic_cancel("no-such-consumer".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    // The channel is still open.
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_consumers_unacked_messages_stay_unacked_until_settled() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    let mut c = consume(&ch, &q, false).await;
    let d1 = next(&mut c).await;
    let d2 = next(&mut c).await;
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    // Still ackable after cancel.
    ch.basic_ack(d1.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    ch.basic_reject(d2.delivery_tag, BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    let (_, body, redelivered, _) = get(&ch, &q).await.unwrap();
    assert_eq!(body, b"m1");
    assert!(redelivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_returns_messages_with_the_remaining_count_then_get_empty() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    assert!(get(&ch, &q).await.is_none(), "get-empty on an empty queue");
    publish_n(&ch, &q, 3).await;
    assert_count(&ch, &q, 3).await;
    for i in 0..3u32 {
        let (_, body, redelivered, count) = get(&ch, &q).await.unwrap();
        assert_eq!(body, format!("m{i}").as_bytes());
        assert!(!redelivered);
        assert_eq!(count, 2 - i);
    }
    assert!(get(&ch, &q).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_from_missing_queue_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .basic_get(
            unique("missing").as_str().into(),
            BasicGetOptions::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result.map(drop), 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_prefetch_limits_each_consumer_when_not_global() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 10).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(2, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut a = consume(&consumer_ch, &q, false).await;
    let mut b = consume(&consumer_ch, &q, false).await;
    // Each consumer gets its own two.
    let a1 = next(&mut a).await;
    next(&mut a).await;
    next(&mut b).await;
    next(&mut b).await;
    assert_no_delivery(&mut a, 200).await;
    assert_no_delivery(&mut b, 100).await;
    assert_count(&ch, &q, 6).await;
    // Acking one of a's frees one slot, for a only.
    consumer_ch
        .basic_ack(a1.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    next(&mut a).await;
    assert_no_delivery(&mut b, 200).await;
    assert_count(&ch, &q, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_prefetch_is_shared_by_the_channel_when_global() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 10).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(3, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut a = consume(&consumer_ch, &q, false).await;
    let mut b = consume(&consumer_ch, &q, false).await;
    let mut tags = Vec::new();
    // Three in flight on the channel in total, however they are spread.
    for _ in 0..3 {
        tokio::select! {
            Some(Ok(d)) = a.next() => tags.push(d.delivery_tag),
            Some(Ok(d)) = b.next() => tags.push(d.delivery_tag),
        }
    }
    assert_no_delivery(&mut a, 200).await;
    assert_no_delivery(&mut b, 100).await;
    assert_count(&ch, &q, 7).await;
    consumer_ch
        .basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    tokio::select! {
        Some(Ok(_)) = a.next() => {}
        Some(Ok(_)) = b.next() => {}
    }
    assert_count(&ch, &q, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_global_and_per_consumer_limits_both_apply() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 10).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions { global: false })
        .await
        .unwrap();
    consumer_ch
        .basic_qos(5, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut a = consume(&consumer_ch, &q, false).await;
    let mut b = consume(&consumer_ch, &q, false).await;
    next(&mut a).await;
    next(&mut b).await;
    assert_no_delivery(&mut a, 200).await;
    assert_no_delivery(&mut b, 100).await;
    assert_count(&ch, &q, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_applies_to_consumers_started_after_it() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 10).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut a = consume(&consumer_ch, &q, false).await;
    next(&mut a).await;
    // Raising the per-consumer prefetch later does not change `a`.
    consumer_ch
        .basic_qos(4, BasicQosOptions::default())
        .await
        .unwrap();
    assert_no_delivery(&mut a, 200).await;
    let mut b = consume(&consumer_ch, &q, false).await;
    for _ in 0..4 {
        next(&mut b).await;
    }
    assert_no_delivery(&mut b, 200).await;
    assert_count(&ch, &q, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_channel_requeues_its_unacked_messages() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    let consumer_ch = conn.create_channel().await.unwrap();
    let mut c = consume(&consumer_ch, &q, false).await;
    let first = next(&mut c).await;
    next(&mut c).await;
    next(&mut c).await;
    consumer_ch
        .basic_ack(first.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    consumer_ch.close(200, "bye".into()).await.unwrap();
    assert_count(&ch, &q, 2).await;
    for expected in ["m1", "m2"] {
        let (_, body, redelivered, _) = get(&ch, &q).await.unwrap();
        assert_eq!(body, expected.as_bytes());
        assert!(redelivered, "{expected} not marked redelivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_connection_requeues_its_unacked_messages() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    let consumer_conn = env.connect().await;
    let consumer_ch = consumer_conn.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(2, BasicQosOptions::default())
        .await
        .unwrap();
    let mut c = consume(&consumer_ch, &q, false).await;
    for _ in 0..2 {
        next(&mut c).await;
    }
    // A basic.get delivery is requeued too.
    let other_ch = consumer_conn.create_channel().await.unwrap();
    let _ = get(&other_ch, &q).await.unwrap();
    consumer_conn.close(200, "bye".into()).await.unwrap();
    assert_count(&ch, &q, 3).await;
    for expected in ["m0", "m1", "m2"] {
        let (_, body, redelivered, _) = get(&ch, &q).await.unwrap();
        assert_eq!(body, expected.as_bytes());
        assert!(redelivered);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeued_message_goes_to_another_consumer() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let a_conn = env.connect().await;
    let a_ch = a_conn.create_channel().await.unwrap();
    a_ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut a = consume(&a_ch, &q, false).await;
    publish(&ch, "", &q, b"m").await;
    let d = next(&mut a).await;
    assert!(!d.redelivered);
    let b_ch = env.connect().await.create_channel().await.unwrap();
    let mut b = consume(&b_ch, &q, false).await;
    a_conn.close(200, "bye".into()).await.unwrap();
    let d = next(&mut b).await;
    assert_eq!(d.data, b"m");
    assert!(d.redelivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_does_not_limit_no_ack_consumers() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 5).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut c = consume(&consumer_ch, &q, true).await;
    for i in 0..5 {
        assert_eq!(next(&mut c).await.data, format!("m{i}").as_bytes());
    }
}

/// basic.consume with `arguments` (e.g. `x-priority`), acks on, tag chosen by the server.
async fn consume_with(
    ch: &Channel,
    queue: &str,
    arguments: &[(&str, AMQPValue)],
) -> lapin::Result<Consumer> {
    let mut table = FieldTable::default();
    for (key, value) in arguments {
        table.insert((*key).into(), value.clone());
    }
    ch.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions::default(),
        table,
    )
    .await
}

async fn body(consumer: &mut Consumer) -> String {
    String::from_utf8(next(consumer).await.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_with_higher_priority_gets_all_messages_while_it_has_credit() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    // The low one subscribes first: priority, not order, decides.
    let mut low = consume_with(&consumer_ch, &q, &[]).await.unwrap();
    let mut high = consume_with(&consumer_ch, &q, &[("x-priority", AMQPValue::LongInt(10))])
        .await
        .unwrap();
    publish_n(&ch, &q, 10).await;
    for i in 0..10 {
        assert_eq!(body(&mut high).await, format!("m{i}"));
    }
    assert_no_delivery(&mut low, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_priority_consumer_gets_messages_when_higher_is_blocked_by_prefetch() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(2, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut high = consume_with(&consumer_ch, &q, &[("x-priority", AMQPValue::ShortInt(5))])
        .await
        .unwrap();
    let mut low = consume_with(
        &consumer_ch,
        &q,
        &[("x-priority", AMQPValue::ShortShortInt(-1))],
    )
    .await
    .unwrap();
    publish_n(&ch, &q, 5).await;
    let h0 = next(&mut high).await;
    assert_eq!(h0.data, b"m0");
    assert_eq!(body(&mut high).await, "m1");
    // The high one is at its prefetch: the low one takes the overflow, up to its own.
    assert_eq!(body(&mut low).await, "m2");
    assert_eq!(body(&mut low).await, "m3");
    assert_count(&ch, &q, 1).await;
    // Credit back on the high one: the rest goes there, not to the low one.
    consumer_ch
        .basic_ack(h0.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    assert_eq!(body(&mut high).await, "m4");
    assert_no_delivery(&mut low, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_priority_consumers_share_round_robin() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let consumer_conn = env.connect().await;
    let low_ch = consumer_conn.create_channel().await.unwrap();
    let mut low = consume_with(&low_ch, &q, &[]).await.unwrap();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let c_ch = consumer_conn.create_channel().await.unwrap();
        let priority = AMQPValue::LongLongInt(7);
        consumers.push(
            consume_with(&c_ch, &q, &[("x-priority", priority)])
                .await
                .unwrap(),
        );
    }
    publish_n(&ch, &q, 9).await;
    for (i, c) in consumers.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(body(c).await);
        }
        let expected: Vec<String> = (0..3).map(|k| format!("m{}", i + 3 * k)).collect();
        assert_eq!(got, expected, "consumer {i}");
        assert_no_delivery(c, 100).await;
    }
    assert_no_delivery(&mut low, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_integer_x_priority_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = consume_with(
        &ch,
        &q,
        &[("x-priority", AMQPValue::LongString("high".into()))],
    )
    .await
    .map(drop);
    assert_eq!(
        error_text(&result),
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{q}' in vhost '/': \"expected integer, got longstr\""
        )
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_offset_on_a_classic_queue_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = consume_with(
        &ch,
        &q,
        &[("x-stream-offset", AMQPValue::LongString("first".into()))],
    )
    .await
    .map(drop);
    assert_eq!(
        error_text(&result),
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '{q}' in vhost '/' of queue type rabbit_classic_queue"
        )
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_ha_failover_must_be_a_boolean_and_unknown_arguments_are_ignored() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    consume_with(
        &ch,
        &q,
        &[
            ("x-cancel-on-ha-failover", AMQPValue::Boolean(true)),
            ("x-no-such-argument", AMQPValue::LongString("x".into())),
        ],
    )
    .await
    .unwrap();
    let result = consume_with(
        &ch,
        &q,
        &[("x-cancel-on-ha-failover", AMQPValue::LongInt(1))],
    )
    .await
    .map(drop);
    assert_eq!(
        error_text(&result),
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-cancel-on-ha-failover' for queue '{q}' in vhost '/': {{unacceptable_type,signedint}}"
        )
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}
