//! Dead lettering (`x-dead-letter-exchange`, `x-dead-letter-routing-key`) as RabbitMQ 3.10
//! does it: rejected (requeue=false), expired and maxlen-dropped messages go to the
//! dead-letter exchange with an `x-death` record; a missing exchange drops them; automatic
//! cycles are broken. Every test here also passes against RabbitMQ (`WARREN_TEST_URL`),
//! except the restart ones, which need the in-process broker.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::time::Duration;

use core_support::*;
use lapin::options::{
    BasicNackOptions, BasicQosOptions, BasicRejectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

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

async fn declare(ch: &Channel, name: &str, durable: bool, args: FieldTable) {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .unwrap();
}

/// A fanout exchange bound to a new queue: the dead-letter exchange and its queue.
async fn dead_letter_exchange(ch: &Channel, durable: bool) -> (String, String) {
    let dlx = unique("dlx");
    let dlq = unique("dlq");
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(ch, &dlq, durable, FieldTable::default()).await;
    ch.queue_bind(
        dlq.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    (dlx, dlq)
}

/// basic.get (no-ack) the next message of `queue`, waiting up to 10 s for one to arrive.
async fn get_message(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    for _ in 0..1000 {
        if let Some(m) = ch
            .basic_get(
                queue.into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no message in {queue} within 10 s");
}

fn headers(m: &lapin::message::Delivery) -> &FieldTable {
    m.properties.headers().as_ref().expect("headers")
}

/// The `x-death` tables of a message, newest first.
fn deaths(m: &lapin::message::Delivery) -> Vec<FieldTable> {
    match headers(m).inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry is not a table: {other:?}"),
            })
            .collect(),
        other => panic!("no x-death array: {other:?}"),
    }
}

fn field<'a>(t: &'a FieldTable, key: &str) -> &'a AMQPValue {
    t.inner()
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {t:?}"))
}

fn long_string(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("not a long string: {other:?}"),
    }
}

fn routing_keys(t: &FieldTable) -> Vec<String> {
    match field(t, "routing-keys") {
        AMQPValue::FieldArray(a) => a.as_slice().iter().map(long_string).collect(),
        other => panic!("routing-keys is not an array: {other:?}"),
    }
}

fn count(t: &FieldTable) -> i64 {
    match field(t, "count") {
        AMQPValue::LongLongInt(n) => *n,
        other => panic!("count is not a long: {other:?}"),
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Consume one message from `queue` with acks and reject it without requeue.
async fn reject_one(ch: &Channel, queue: &str) {
    let mut consumer = consume(ch, queue, false).await;
    let d = next(&mut consumer).await;
    ch.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    ch.basic_cancel(consumer.tag().as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_message_reaches_the_dead_letter_exchange_with_x_death() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (dlx, dlq) = dead_letter_exchange(&ch, false).await;
    let work = unique("work");
    declare(&ch, &work, false, table(&[("x-dead-letter-exchange", text(&dlx))])).await;
    let cc = FieldArray::from(vec![text("cc-key")]);
    let props = BasicProperties::default()
        .with_expiration("60000".into())
        .with_message_id("m-1".into())
        .with_headers(table(&[
            ("CC", AMQPValue::FieldArray(cc)),
            ("app", text("kept")),
        ]));
    publish_with(&ch, "", &work, b"payload", props).await;
    let before = now_secs();
    reject_one(&ch, &work).await;

    let m = get_message(&ch, &dlq).await;
    let d = &m.delivery;
    assert_eq!(d.data, b"payload");
    assert_eq!(d.exchange.as_str(), dlx);
    assert_eq!(d.routing_key.as_str(), work, "routed with its own routing key");
    assert!(!d.redelivered);
    assert_eq!(d.properties.expiration(), &None, "expiration is removed");
    assert_eq!(
        d.properties.message_id().as_ref().map(ShortString::as_str),
        Some("m-1")
    );
    let h = headers(d);
    assert_eq!(long_string(field(h, "app")), "kept");
    assert!(h.inner().contains_key("CC"), "CC stays without a DLRK");
    assert_eq!(long_string(field(h, "x-first-death-reason")), "rejected");
    assert_eq!(long_string(field(h, "x-first-death-queue")), work);
    assert_eq!(long_string(field(h, "x-first-death-exchange")), "");
    let deaths = deaths(d);
    assert_eq!(deaths.len(), 1);
    let death = &deaths[0];
    assert_eq!(count(death), 1);
    assert_eq!(long_string(field(death, "reason")), "rejected");
    assert_eq!(long_string(field(death, "queue")), work);
    assert_eq!(long_string(field(death, "exchange")), "");
    assert_eq!(routing_keys(death), vec![work.clone(), "cc-key".into()]);
    assert_eq!(long_string(field(death, "original-expiration")), "60000");
    match field(death, "time") {
        AMQPValue::Timestamp(t) => assert!(
            *t >= before.saturating_sub(5) && *t <= now_secs() + 5,
            "time {t} is not now"
        ),
        other => panic!("time is not a timestamp: {other:?}"),
    }
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_without_requeue_dead_letters_every_message_it_names() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (dlx, dlq) = dead_letter_exchange(&ch, false).await;
    let work = unique("work");
    declare(&ch, &work, false, table(&[("x-dead-letter-exchange", text(&dlx))])).await;
    for body in ["a", "b", "c"] {
        publish(&ch, "", &work, body.as_bytes()).await;
    }
    let mut consumer = consume(&ch, &work, false).await;
    let mut last = 0;
    for _ in 0..3 {
        last = next(&mut consumer).await.delivery_tag;
    }
    ch.basic_nack(
        last,
        BasicNackOptions {
            multiple: true,
            requeue: false,
        },
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = get_message(&ch, &dlq).await;
        assert_eq!(long_string(field(&deaths(&m.delivery)[0], "reason")), "rejected");
        got.push(m.delivery.data.clone());
    }
    assert_eq!(got, bodies(&["a", "b", "c"]));
    assert_eq!(message_count(&ch, &work).await, 0);
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_routing_key_replaces_the_routing_keys_and_drops_cc() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let dlq = unique("dlq");
    declare(&ch, &dlq, false, FieldTable::default()).await;
    let work = unique("work");
    // The default exchange as the dead-letter exchange, the DLQ's name as the key.
    declare(
        &ch,
        &work,
        false,
        table(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&dlq)),
        ]),
    )
    .await;
    let props = BasicProperties::default().with_headers(table(&[(
        "CC",
        AMQPValue::FieldArray(FieldArray::from(vec![text("elsewhere")])),
    )]));
    publish_with(&ch, "", &work, b"m", props).await;
    reject_one(&ch, &work).await;
    let m = get_message(&ch, &dlq).await;
    assert_eq!(m.delivery.routing_key.as_str(), dlq);
    assert_eq!(m.delivery.exchange.as_str(), "");
    let h = headers(&m.delivery);
    assert!(!h.inner().contains_key("CC"), "CC removed with a DLRK");
    let death = &deaths(&m.delivery)[0];
    assert_eq!(
        routing_keys(death),
        vec![work.clone(), "elsewhere".into()],
        "x-death keeps the keys it was published with"
    );
    assert!(!death.inner().contains_key("original-expiration"));
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_dead_letter_with_reason_expired() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (dlx, dlq) = dead_letter_exchange(&ch, false).await;
    let work = unique("ttl-work");
    declare(
        &ch,
        &work,
        false,
        table(&[
            ("x-dead-letter-exchange", text(&dlx)),
            ("x-message-ttl", AMQPValue::LongInt(50)),
        ]),
    )
    .await;
    publish(&ch, "", &work, b"queue-ttl").await;
    let m = get_message(&ch, &dlq).await;
    assert_eq!(m.delivery.data, b"queue-ttl");
    let death = &deaths(&m.delivery)[0];
    assert_eq!(long_string(field(death, "reason")), "expired");
    assert_eq!(long_string(field(death, "queue")), work);
    assert!(!death.inner().contains_key("original-expiration"));

    // Per-message TTL: original-expiration recorded, expiration removed.
    let plain = unique("msg-ttl-work");
    declare(&ch, &plain, false, table(&[("x-dead-letter-exchange", text(&dlx))])).await;
    publish_with(
        &ch,
        "",
        &plain,
        b"message-ttl",
        BasicProperties::default().with_expiration("30".into()),
    )
    .await;
    let m = get_message(&ch, &dlq).await;
    assert_eq!(m.delivery.data, b"message-ttl");
    assert_eq!(m.delivery.properties.expiration(), &None);
    let death = &deaths(&m.delivery)[0];
    assert_eq!(long_string(field(death, "reason")), "expired");
    assert_eq!(long_string(field(death, "original-expiration")), "30");
    assert_eq!(message_count(&ch, &plain).await, 0);
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &plain).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_dropped_by_max_length_dead_letter_with_reason_maxlen() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (dlx, dlq) = dead_letter_exchange(&ch, false).await;
    let work = unique("maxlen-work");
    declare(
        &ch,
        &work,
        false,
        table(&[
            ("x-dead-letter-exchange", text(&dlx)),
            ("x-max-length", AMQPValue::LongInt(2)),
        ]),
    )
    .await;
    for body in ["1", "2", "3", "4"] {
        publish(&ch, "", &work, body.as_bytes()).await;
    }
    for expected in ["1", "2"] {
        let m = get_message(&ch, &dlq).await;
        assert_eq!(m.delivery.data, expected.as_bytes());
        assert_eq!(long_string(field(&deaths(&m.delivery)[0], "reason")), "maxlen");
    }
    assert_eq!(drain(&ch, &work).await, bodies(&["3", "4"]));
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_exchange_drops_the_message() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let work = unique("work");
    declare(
        &ch,
        &work,
        false,
        table(&[("x-dead-letter-exchange", text(&unique("no-such-exchange")))]),
    )
    .await;
    publish(&ch, "", &work, b"m").await;
    reject_one(&ch, &work).await;
    // Nothing comes back and nothing is left.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&ch, &work).await, 0);
    // The channel is still fine.
    publish(&ch, "", &work, b"again").await;
    assert_count(&ch, &work, 1).await;
    delete_queue(&ch, &work).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_through_a_ttl_queue_counts_each_round_in_x_death() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let work = unique("work");
    let retry = unique("retry");
    // work --rejected--> retry (TTL 20 ms) --expired--> work, through the default exchange.
    declare(
        &ch,
        &work,
        false,
        table(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&retry)),
        ]),
    )
    .await;
    declare(
        &ch,
        &retry,
        false,
        table(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&work)),
            ("x-message-ttl", AMQPValue::LongInt(20)),
        ]),
    )
    .await;
    publish(&ch, "", &work, b"job").await;
    let mut consumer = consume(&ch, &work, false).await;
    let rounds = 3;
    for round in 0..=rounds {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, b"job");
        if round > 0 {
            let deaths = deaths(&d);
            assert_eq!(deaths.len(), 2, "one record per (queue, reason)");
            // Newest first: the expiry from the retry queue.
            assert_eq!(long_string(field(&deaths[0], "queue")), retry);
            assert_eq!(long_string(field(&deaths[0], "reason")), "expired");
            assert_eq!(count(&deaths[0]), round);
            assert_eq!(long_string(field(&deaths[1], "queue")), work);
            assert_eq!(long_string(field(&deaths[1], "reason")), "rejected");
            assert_eq!(count(&deaths[1]), round);
            let h = headers(&d);
            assert_eq!(long_string(field(h, "x-first-death-reason")), "rejected");
            assert_eq!(long_string(field(h, "x-first-death-queue")), work);
        }
        if round < rounds {
            ch.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
                .await
                .unwrap();
        } else {
            ch.basic_ack(d.delivery_tag, Default::default())
                .await
                .unwrap();
        }
    }
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &retry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_dead_letter_cycle_drops_the_message() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let a = unique("cycle-a");
    let b = unique("cycle-b");
    // a --expired--> b --expired--> a: no client decides anything in this loop.
    for (name, next_queue) in [(&a, &b), (&b, &a)] {
        declare(
            &ch,
            name,
            false,
            table(&[
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text(next_queue)),
                ("x-message-ttl", AMQPValue::LongInt(10)),
            ]),
        )
        .await;
    }
    publish(&ch, "", &a, b"loop").await;
    // It goes a -> b -> (back to a: a cycle) and is dropped: both queues end up empty
    // and stay empty.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (na, nb) = (message_count(&ch, &a).await, message_count(&ch, &b).await);
        if na == 0 && nb == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still looping: {na} {nb}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&ch, &a).await, 0);
    assert_eq!(message_count(&ch, &b).await, 0);
    delete_queue(&ch, &a).await;
    delete_queue(&ch, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_in_the_loop_is_not_a_cycle() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    // A queue that dead-letters rejected messages to itself: the client decides each
    // round, so the message comes back every time.
    let q = unique("self");
    declare(
        &ch,
        &q,
        false,
        table(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&q)),
        ]),
    )
    .await;
    publish(&ch, "", &q, b"m").await;
    let mut consumer = consume(&ch, &q, false).await;
    for round in 1..=3 {
        let d = next(&mut consumer).await;
        ch.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
            .await
            .unwrap();
        let d = next(&mut consumer).await;
        assert_eq!(count(&deaths(&d)[0]), round);
        ch.basic_nack(
            d.delivery_tag,
            BasicNackOptions {
                multiple: false,
                requeue: true,
            },
        )
        .await
        .unwrap();
    }
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_arguments_are_type_checked_with_rabbitmq_texts() {
    let env = Env::start();
    let conn = env.connect().await;
    let cases: Vec<(FieldTable, String)> = vec![
        (
            table(&[("x-dead-letter-routing-key", text("k"))]),
            "routing_key_but_no_dlx_defined".into(),
        ),
        (
            table(&[
                ("x-dead-letter-exchange", text("x")),
                ("x-dead-letter-routing-key", AMQPValue::LongInt(1)),
            ]),
            "{unacceptable_type,signedint}".into(),
        ),
    ];
    for (args, why) in cases {
        let ch = conn.create_channel().await.unwrap();
        let name = unique("bad-dl");
        let key = "x-dead-letter-routing-key";
        let result = ch
            .queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
            .await;
        assert_eq!(
            error_text(&result),
            format!("PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {why}")
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_message_keeps_its_persistence_and_other_properties() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (dlx, dlq) = dead_letter_exchange(&ch, false).await;
    let work = unique("work");
    declare(&ch, &work, false, table(&[("x-dead-letter-exchange", text(&dlx))])).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("text/plain".into())
        .with_correlation_id("corr".into())
        .with_reply_to("somewhere".into())
        .with_priority(3);
    publish_with(&ch, "", &work, b"m", props).await;
    reject_one(&ch, &work).await;
    let m = get_message(&ch, &dlq).await;
    let p = &m.delivery.properties;
    assert_eq!(p.delivery_mode(), &Some(2));
    assert_eq!(p.content_type().as_ref().map(ShortString::as_str), Some("text/plain"));
    assert_eq!(p.correlation_id().as_ref().map(ShortString::as_str), Some("corr"));
    assert_eq!(p.reply_to().as_ref().map(ShortString::as_str), Some("somewhere"));
    assert_eq!(p.priority(), &Some(3));
    delete_queue(&ch, &work).await;
    delete_queue(&ch, &dlq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_dead_letter_in_a_durable_queue_survives_a_restart() {
    let env = Env::start();
    if env.is_external() {
        return; // needs the in-process broker to restart it
    }
    let (conn, ch) = env.channel().await;
    let (dlx, dlq) = dead_letter_exchange(&ch, true).await;
    let work = unique("work");
    declare(&ch, &work, true, table(&[("x-dead-letter-exchange", text(&dlx))])).await;
    publish_with(
        &ch,
        "",
        &work,
        b"keep me",
        BasicProperties::default().with_delivery_mode(2),
    )
    .await;
    reject_one(&ch, &work).await;
    assert_count(&ch, &dlq, 1).await;
    drop(ch);
    conn.close(200, "bye".into()).await.unwrap();
    let env = env.restart().unwrap();
    let (_conn, ch) = env.channel().await;
    assert_eq!(message_count(&ch, &work).await, 0);
    let m = get_message(&ch, &dlq).await;
    assert_eq!(m.delivery.data, b"keep me");
    assert_eq!(long_string(field(&deaths(&m.delivery)[0], "reason")), "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_death_records_are_regrouped_as_rabbitmq_3_10_does() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let [q1, q2, q3, q4] = ["chain-1", "chain-2", "chain-3", "chain-4"].map(unique);
    // q1 --expired--> q2 --expired--> q3 --rejected--> q4.
    for (queue, next_queue, ttl) in [(&q1, &q2, true), (&q2, &q3, true), (&q3, &q4, false)] {
        let mut args = vec![
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(next_queue)),
        ];
        if ttl {
            args.push(("x-message-ttl", AMQPValue::LongInt(10)));
        }
        declare(&ch, queue, false, table(&args)).await;
    }
    declare(&ch, &q4, false, FieldTable::default()).await;
    publish(&ch, "", &q1, b"m").await;
    let mut consumer = consume(&ch, &q3, false).await;
    let d = next(&mut consumer).await;
    let order = |d: &lapin::message::Delivery| -> Vec<String> {
        deaths(d)
            .iter()
            .map(|t| long_string(field(t, "queue")))
            .collect()
    };
    assert_eq!(order(&d), vec![q2.clone(), q1.clone()], "newest first");
    ch.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let m = get_message(&ch, &q4).await;
    // RabbitMQ 3.10 regroups the older records before putting the new one first, which
    // reverses them: q3, then q1, then q2 (checked against RabbitMQ 3.10).
    assert_eq!(order(&m.delivery), vec![q3.clone(), q1.clone(), q2.clone()]);
    for q in [&q1, &q2, &q3, &q4] {
        delete_queue(&ch, q).await;
    }
}
