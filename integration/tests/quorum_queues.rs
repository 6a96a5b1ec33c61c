//! Quorum queues (`x-queue-type: quorum`) on one node, over real TCP: RabbitMQ 3.10's
//! declare rules and texts (checked against the reference broker), delivery counts and the
//! `x-delivery-count` header, the delivery limit (RabbitMQ 4's default of 20, negative =
//! unlimited) dropping or dead-lettering with reason `delivery_limit`, counts surviving a
//! restart, global qos refused, the type in declare-ok, passive declare and the management
//! API, and at-least-once dead-lettering under kill -9 of the real binary (needs
//! `cargo build --workspace --bins`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use serde_json::json;
use warren_broker::access::{PolicyKind, PolicyRecord};
use warren_integration::http::Api;
use warren_integration::{BinaryBroker, TestBroker, TestConfig, connect};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn channel(url: &str) -> (Connection, Channel) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// `x-queue-type: quorum` plus `extra`.
fn quorum(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long("quorum"));
    for (k, v) in extra {
        args.insert((*k).into(), v.clone());
    }
    args
}

async fn declare(ch: &Channel, name: &str, args: FieldTable) -> lapin::Queue {
    ch.queue_declare(name.into(), durable(), args)
        .await
        .unwrap()
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await
    .unwrap();
    assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "nacked");
}

async fn get(ch: &Channel, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
}

fn header(props: &BasicProperties, name: &str) -> Option<AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
}

fn delivery_count(props: &BasicProperties) -> Option<i64> {
    match header(props, "x-delivery-count")? {
        AMQPValue::LongLongInt(n) => Some(n),
        other => panic!("x-delivery-count of the wrong type: {other:?}"),
    }
}

/// Wait until `ok()` (10 s).
async fn wait_until(mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok().await {
        assert!(Instant::now() < deadline, "condition never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count(ch: &Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

#[test]
fn quorum_declare_rules_refuse_with_rabbitmq_texts_and_close_only_the_channel() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let conn = connect(&broker.url()).await;
        let plain = QueueDeclareOptions::default();
        let cases: Vec<(&str, QueueDeclareOptions, FieldTable, &str)> = vec![
            (
                "qq-transient",
                plain,
                quorum(&[]),
                "invalid property 'non-durable' for queue 'qq-transient' in vhost '/'",
            ),
            (
                "qq-exclusive",
                QueueDeclareOptions {
                    exclusive: true,
                    ..durable()
                },
                quorum(&[]),
                "invalid property 'exclusive-owner' for queue 'qq-exclusive' in vhost '/'",
            ),
            (
                "qq-auto-delete",
                QueueDeclareOptions {
                    auto_delete: true,
                    ..durable()
                },
                quorum(&[]),
                "invalid property 'auto-delete' for queue 'qq-auto-delete' in vhost '/'",
            ),
            (
                "qq-priority",
                durable(),
                quorum(&[("x-max-priority", AMQPValue::LongInt(5))]),
                "invalid arg 'x-max-priority' for queue 'qq-priority' in vhost '/' of queue type rabbit_quorum_queue",
            ),
            (
                "qq-mode",
                durable(),
                quorum(&[("x-queue-mode", long("lazy"))]),
                "invalid arg 'x-queue-mode' for queue 'qq-mode' in vhost '/' of queue type rabbit_quorum_queue",
            ),
            (
                "qq-version",
                durable(),
                quorum(&[("x-queue-version", AMQPValue::LongInt(2))]),
                "invalid arg 'x-queue-version' for queue 'qq-version' in vhost '/' of queue type rabbit_quorum_queue",
            ),
            (
                "qq-master",
                durable(),
                quorum(&[("x-queue-master-locator", long("min-masters"))]),
                "invalid arg 'x-queue-master-locator' for queue 'qq-master' in vhost '/' of queue type rabbit_quorum_queue",
            ),
            (
                "qq-age",
                durable(),
                quorum(&[("x-max-age", long("1D"))]),
                "invalid arg 'x-max-age' for queue 'qq-age' in vhost '/' of queue type rabbit_quorum_queue",
            ),
            (
                "qq-overflow",
                durable(),
                quorum(&[("x-overflow", long("foo"))]),
                "invalid arg 'x-overflow' for queue 'qq-overflow' in vhost '/': invalid_overflow",
            ),
            (
                "qq-strategy",
                durable(),
                quorum(&[("x-dead-letter-strategy", long("foo"))]),
                "invalid arg 'x-dead-letter-strategy' for queue 'qq-strategy' in vhost '/': invalid_dlx_strategy",
            ),
            (
                "qq-strategy-int",
                durable(),
                quorum(&[("x-dead-letter-strategy", AMQPValue::LongInt(5))]),
                "invalid arg 'x-dead-letter-strategy' for queue 'qq-strategy-int' in vhost '/': {unacceptable_type,signedint}",
            ),
            (
                "qq-group",
                durable(),
                quorum(&[("x-quorum-initial-group-size", AMQPValue::LongInt(0))]),
                "invalid arg 'x-quorum-initial-group-size' for queue 'qq-group' in vhost '/': {value_zero,0}",
            ),
            (
                "",
                durable(),
                quorum(&[]),
                "Cannot declare a server-named queue for type rabbit_quorum_queue",
            ),
        ];
        for (name, options, args, text) in cases {
            let ch = conn.create_channel().await.unwrap();
            let error = ch
                .queue_declare(name.into(), options, args)
                .await
                .expect_err(name)
                .to_string();
            assert!(
                error.contains(&format!("PRECONDITION_FAILED - {text}")),
                "{name}: {error}"
            );
            assert!(conn.status().connected(), "{name}: a channel error");
        }
        // Accepted as RabbitMQ 3.10 accepts them.
        let ch = conn.create_channel().await.unwrap();
        for (name, args) in [
            (
                "qq-all",
                quorum(&[
                    ("x-delivery-limit", AMQPValue::LongInt(3)),
                    ("x-dead-letter-strategy", long("at-least-once")),
                    ("x-overflow", long("reject-publish")),
                    ("x-message-ttl", AMQPValue::LongInt(60_000)),
                    ("x-expires", AMQPValue::LongInt(600_000)),
                    ("x-max-length", AMQPValue::LongInt(10)),
                    ("x-max-length-bytes", AMQPValue::LongInt(10_000)),
                    ("x-max-in-memory-length", AMQPValue::LongInt(5)),
                    ("x-max-in-memory-bytes", AMQPValue::LongInt(500)),
                    ("x-single-active-consumer", AMQPValue::Boolean(true)),
                    ("x-quorum-initial-group-size", AMQPValue::LongInt(3)),
                    ("x-queue-leader-locator", long("balanced")),
                    ("x-dead-letter-exchange", long("dlx")),
                    ("x-dead-letter-routing-key", long("rk")),
                ]),
            ),
            (
                "qq-dlx-overflow",
                quorum(&[("x-overflow", long("reject-publish-dlx"))]),
            ),
            (
                "qq-limit-text",
                quorum(&[("x-delivery-limit", long("abc"))]),
            ),
        ] {
            declare(&ch, name, args).await;
        }
    });
}

#[test]
fn redeclaring_with_another_queue_type_is_inequivalent() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let conn = connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        declare(&ch, "qq", quorum(&[])).await;
        declare(&ch, "cq", FieldTable::default()).await;
        let mut classic = FieldTable::default();
        classic.insert("x-queue-type".into(), long("classic"));
        let cases = [
            (
                "qq",
                classic,
                "inequivalent arg 'x-queue-type' for queue 'qq' in vhost '/': received 'classic' but current is 'quorum'",
            ),
            (
                "qq",
                FieldTable::default(),
                "inequivalent arg 'x-queue-type' for queue 'qq' in vhost '/': received none but current is the value 'quorum' of type 'longstr'",
            ),
            (
                "cq",
                quorum(&[]),
                "inequivalent arg 'x-queue-type' for queue 'cq' in vhost '/': received the value 'quorum' of type 'longstr' but current is none",
            ),
            (
                "qq",
                quorum(&[("x-delivery-limit", AMQPValue::LongInt(3))]),
                "inequivalent arg 'x-delivery-limit' for queue 'qq' in vhost '/': received the value '3' of type 'signedint' but current is none",
            ),
        ];
        for (name, args, text) in cases {
            let ch = conn.create_channel().await.unwrap();
            let error = ch
                .queue_declare(name.into(), durable(), args)
                .await
                .expect_err(name)
                .to_string();
            assert!(error.contains(text), "{error}");
            assert!(conn.status().connected());
        }
        // The same declare again is fine.
        let ch = conn.create_channel().await.unwrap();
        declare(&ch, "qq", quorum(&[])).await;
    });
}

#[test]
fn declare_ok_and_passive_declare_count_a_quorum_queues_messages() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        let ok = declare(&ch, "qq-count", quorum(&[])).await;
        assert_eq!(ok.message_count(), 0);
        for body in [b"a", b"b"] {
            publish(&ch, "", "qq-count", body, BasicProperties::default()).await;
        }
        assert_eq!(
            declare(&ch, "qq-count", quorum(&[])).await.message_count(),
            2
        );
        assert_eq!(count(&ch, "qq-count").await, 2);
    });
}

#[test]
fn redeliveries_carry_x_delivery_count_from_one_and_basic_get_always_carries_it() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-hdr", quorum(&[])).await;
        let mut headers = FieldTable::default();
        headers.insert("a".into(), AMQPValue::LongInt(1));
        publish(
            &ch,
            "",
            "qq-hdr",
            b"m",
            BasicProperties::default().with_headers(headers),
        )
        .await;
        // A consumer: the first delivery has no header, the redeliveries count from 1.
        let (_c2, consumer_ch) = channel(&broker.url()).await;
        let mut consumer = consumer_ch
            .basic_consume(
                "qq-hdr".into(),
                "c".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        for expected in [None, Some(1), Some(2), Some(3)] {
            let d = consumer.next().await.unwrap().unwrap();
            assert_eq!(delivery_count(&d.properties), expected);
            assert_eq!(d.redelivered, expected.is_some());
            assert_eq!(header(&d.properties, "a"), Some(AMQPValue::LongInt(1)));
            if expected == Some(3) {
                d.ack(Default::default()).await.unwrap();
                break;
            }
            consumer_ch
                .basic_nack(
                    d.delivery_tag,
                    BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    },
                )
                .await
                .unwrap();
        }
        consumer_ch
            .basic_cancel("c".into(), Default::default())
            .await
            .unwrap();
        // basic.get of a message never returned: the header with 0, not redelivered.
        publish(&ch, "", "qq-hdr", b"n", BasicProperties::default()).await;
        let m = get(&ch, "qq-hdr").await.unwrap();
        assert_eq!(delivery_count(&m.properties), Some(0));
        assert!(!m.delivery.redelivered);
    });
}

#[test]
fn losing_the_consumers_connection_and_basic_recover_count_as_returns() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-loss", quorum(&[])).await;
        publish(&ch, "", "qq-loss", b"m", BasicProperties::default()).await;
        let (other, other_ch) = channel(&broker.url()).await;
        assert!(get(&other_ch, "qq-loss").await.is_some());
        other.close(200, "bye".into()).await.unwrap();
        wait_until(async || count(&ch, "qq-loss").await == 1).await;
        let m = get(&ch, "qq-loss").await.unwrap();
        assert_eq!(delivery_count(&m.properties), Some(1));
        ch.basic_recover(lapin::options::BasicRecoverOptions { requeue: true })
            .await
            .unwrap();
        wait_until(async || count(&ch, "qq-loss").await == 1).await;
        let m = get(&ch, "qq-loss").await.unwrap();
        assert_eq!(delivery_count(&m.properties), Some(2));
        assert!(m.delivery.redelivered);
    });
}

/// Return `queue`'s head `times` times (basic.get + nack requeue).
async fn return_times(ch: &Channel, queue: &str, times: usize) {
    for _ in 0..times {
        let m = get(ch, queue).await.expect("the message is still there");
        ch.basic_nack(
            m.delivery.delivery_tag,
            BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            },
        )
        .await
        .unwrap();
    }
}

#[test]
fn a_message_returned_past_the_delivery_limit_without_a_dead_letter_exchange_is_dropped() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(
            &ch,
            "qq-limit",
            quorum(&[("x-delivery-limit", AMQPValue::LongInt(2))]),
        )
        .await;
        publish(&ch, "", "qq-limit", b"m", BasicProperties::default()).await;
        // Counts 1 and 2 are within the limit; the third return passes it.
        return_times(&ch, "qq-limit", 2).await;
        assert_eq!(count(&ch, "qq-limit").await, 1);
        return_times(&ch, "qq-limit", 1).await;
        assert_eq!(count(&ch, "qq-limit").await, 0);
        assert!(get(&ch, "qq-limit").await.is_none());
    });
}

#[test]
fn a_message_returned_past_the_delivery_limit_is_dead_lettered_with_reason_delivery_limit() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-dlq", FieldTable::default()).await;
        declare(
            &ch,
            "qq-poison",
            quorum(&[
                ("x-delivery-limit", AMQPValue::LongInt(1)),
                ("x-dead-letter-exchange", long("")),
                ("x-dead-letter-routing-key", long("qq-dlq")),
            ]),
        )
        .await;
        publish(&ch, "", "qq-poison", b"poison", BasicProperties::default()).await;
        return_times(&ch, "qq-poison", 2).await;
        wait_until(async || count(&ch, "qq-dlq").await == 1).await;
        assert_eq!(count(&ch, "qq-poison").await, 0);
        let m = get(&ch, "qq-dlq").await.unwrap();
        assert_eq!(m.delivery.data, b"poison");
        assert_eq!(
            header(&m.properties, "x-first-death-reason"),
            Some(long("delivery_limit"))
        );
        let Some(AMQPValue::FieldArray(deaths)) = header(&m.properties, "x-death") else {
            panic!("no x-death: {:?}", m.properties);
        };
        let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
            panic!("empty x-death");
        };
        assert_eq!(death.inner().get("reason"), Some(&long("delivery_limit")));
        assert_eq!(death.inner().get("queue"), Some(&long("qq-poison")));
        assert_eq!(
            header(&m.properties, "x-delivery-count"),
            None,
            "the dead letter does not carry the delivery's header"
        );
    });
}

#[test]
fn the_default_delivery_limit_is_20_and_a_negative_limit_is_unlimited() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-default", quorum(&[])).await;
        declare(
            &ch,
            "qq-unlimited",
            quorum(&[("x-delivery-limit", AMQPValue::LongInt(-1))]),
        )
        .await;
        for q in ["qq-default", "qq-unlimited"] {
            publish(&ch, "", q, b"m", BasicProperties::default()).await;
        }
        return_times(&ch, "qq-default", 20).await;
        assert_eq!(count(&ch, "qq-default").await, 1, "20 returns are allowed");
        return_times(&ch, "qq-default", 1).await;
        assert_eq!(
            count(&ch, "qq-default").await,
            0,
            "the 21st passes the limit"
        );
        return_times(&ch, "qq-unlimited", 30).await;
        assert_eq!(count(&ch, "qq-unlimited").await, 1);
    });
}

#[test]
fn a_policy_delivery_limit_applies_to_a_quorum_queue() {
    let broker = TestBroker::start();
    broker
        .broker()
        .set_policy(
            "/",
            "poison",
            PolicyKind::Policy,
            PolicyRecord {
                pattern: "^qq-pol$".into(),
                apply_to: "queues".into(),
                priority: 0,
                definition: json!({"delivery-limit": 1}).as_object().cloned().unwrap(),
            },
        )
        .unwrap();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-pol", quorum(&[])).await;
        publish(&ch, "", "qq-pol", b"m", BasicProperties::default()).await;
        return_times(&ch, "qq-pol", 1).await;
        assert_eq!(count(&ch, "qq-pol").await, 1);
        return_times(&ch, "qq-pol", 1).await;
        assert_eq!(count(&ch, "qq-pol").await, 0);
    });
}

#[test]
fn delivery_counts_and_transient_messages_survive_a_restart() {
    let broker = TestBroker::start();
    let rt = runtime();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-restart", quorum(&[])).await;
        // delivery-mode 1: a quorum queue stores it anyway.
        publish(
            &ch,
            "",
            "qq-restart",
            b"m",
            BasicProperties::default().with_delivery_mode(1),
        )
        .await;
        return_times(&ch, "qq-restart", 2).await;
    });
    let broker = broker.restart();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        let m = get(&ch, "qq-restart")
            .await
            .expect("kept across the restart");
        assert_eq!(m.delivery.data, b"m");
        assert_eq!(delivery_count(&m.properties), Some(2));
        assert!(m.delivery.redelivered);
    });
}

#[test]
fn consuming_from_a_quorum_queue_under_global_qos_is_not_implemented() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-qos", quorum(&[])).await;
        // A per-consumer prefetch is fine.
        ch.basic_qos(5, BasicQosOptions { global: false })
            .await
            .unwrap();
        ch.basic_consume(
            "qq-qos".into(),
            "ok".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let ch2 = conn.create_channel().await.unwrap();
        ch2.basic_qos(5, BasicQosOptions { global: true })
            .await
            .unwrap();
        let error = ch2
            .basic_consume(
                "qq-qos".into(),
                "global".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains(
                "NOT_IMPLEMENTED - queue 'qq-qos' in vhost '/' does not support global qos"
            ),
            "{error}"
        );
        wait_until(async || !conn.status().connected()).await;
    });
}

#[test]
fn the_management_api_and_definitions_show_a_quorum_queue_as_such() {
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-api", quorum(&[])).await;
        let api = Api::new(broker.http_url());
        let reply = api.get("/api/queues/%2F/qq-api").await;
        assert_eq!(reply.body["type"], "quorum", "{}", reply.body);
        let node = reply.body["node"].clone();
        assert_eq!(reply.body["leader"], node);
        assert_eq!(reply.body["members"], json!([node]));
        assert_eq!(reply.body["online"], json!([node]));
        let defs = api.get("/api/definitions").await.body;
        let queue = defs["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "qq-api")
            .unwrap()
            .clone();
        assert_eq!(queue["type"], "quorum");
        assert_eq!(queue["arguments"]["x-queue-type"], "quorum");
        // A queue made through the API with the type argument is a quorum queue too, and
        // the declare rules hold there as well.
        let made = api
            .put(
                "/api/queues/%2F/qq-api-made",
                json!({"durable": true, "arguments": {"x-queue-type": "quorum"}}),
            )
            .await;
        assert!(made.status.is_success(), "{made:?}");
        assert_eq!(
            api.get("/api/queues/%2F/qq-api-made").await.body["type"],
            "quorum"
        );
        let refused = api
            .put(
                "/api/queues/%2F/qq-api-transient",
                json!({"durable": false, "arguments": {"x-queue-type": "quorum"}}),
            )
            .await;
        assert_eq!(refused.status.as_u16(), 400, "{refused:?}");
    });
}

// ------------------------------------------------------------ at-least-once under kill -9

const WORK: &str = "qq-alo-work";
const DEAD: &str = "qq-alo-dead";

/// The quorum work queue (at-least-once into `DEAD` through a direct exchange) and the
/// quorum dead-letter queue.
async fn declare_at_least_once(ch: &Channel) {
    ch.exchange_declare(
        "qq-alo-dlx".into(),
        lapin::ExchangeKind::Direct,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(ch, DEAD, quorum(&[])).await;
    ch.queue_bind(
        DEAD.into(),
        "qq-alo-dlx".into(),
        "dead".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(
        ch,
        WORK,
        quorum(&[
            ("x-dead-letter-exchange", long("qq-alo-dlx")),
            ("x-dead-letter-routing-key", long("dead")),
            ("x-dead-letter-strategy", long("at-least-once")),
            ("x-overflow", long("reject-publish")),
        ]),
    )
    .await;
}

async fn contents(url: &str, queue: &str) -> BTreeMap<Vec<u8>, usize> {
    let (_conn, ch) = channel(url).await;
    let mut out = BTreeMap::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        *out.entry(m.delivery.data).or_default() += 1;
    }
    out
}

async fn reject_all(url: String) {
    let (_conn, ch) = channel(&url).await;
    ch.basic_qos(50, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            WORK.into(),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    while let Some(Ok(d)) = consumer.next().await {
        if ch
            .basic_reject(d.delivery_tag, BasicRejectOptions { requeue: false })
            .await
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn at_least_once_dead_lettering_loses_nothing_across_kill_9() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let n: u32 = 1500;
    let mut broker = BinaryBroker::spawn(&data);
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare_at_least_once(&ch).await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        // Transient messages: a quorum queue stores them all the same.
        for i in 0..n {
            ch.basic_publish(
                "".into(),
                WORK.into(),
                BasicPublishOptions::default(),
                format!("m-{i}").as_bytes(),
                BasicProperties::default().with_delivery_mode(1),
            )
            .await
            .unwrap();
        }
        assert!(ch.wait_for_confirms().await.unwrap().is_empty());
    });
    for cycle in 0..3 {
        let url = broker.url();
        rt.block_on(async {
            let rejecter = tokio::spawn(reject_all(url.clone()));
            let (_conn, ch) = channel(&url).await;
            let start = count(&ch, DEAD).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            while count(&ch, DEAD).await < start + 50 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rejecter.abort();
        });
        broker.kill();
        broker = BinaryBroker::spawn(&data);
        let url = broker.url();
        rt.block_on(async {
            let (_conn, ch) = channel(&url).await;
            let (w, d) = (count(&ch, WORK).await, count(&ch, DEAD).await);
            assert_eq!(
                w + d,
                n,
                "cycle {cycle}: {w} in the work queue + {d} dead-lettered"
            );
            assert!(d > 0, "cycle {cycle}: nothing dead-lettered");
        });
    }
    let url = broker.url();
    rt.block_on(async {
        let mut all = contents(&url, WORK).await;
        for (body, c) in contents(&url, DEAD).await {
            *all.entry(body).or_default() += c;
        }
        assert_eq!(all.len(), n as usize, "lost messages");
        assert!(all.values().all(|c| *c == 1), "duplicated messages");
    });
    broker.kill();
}

// ------------------------------------- at-least-once dead letters that no queue takes

/// A broker with the management API and a short dead-letter retry interval (RabbitMQ's
/// `dead_letter_worker_publisher_confirm_timeout`, 180 s by default).
fn retrying_broker() -> TestBroker {
    let mut config = TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    };
    config.broker.queue_limits.dead_letter_retry = Duration::from_millis(300);
    TestBroker::start_with(config)
}

/// A durable direct exchange.
async fn exchange(ch: &Channel, name: &str) {
    ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Direct,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

/// A quorum queue dead-lettering at-least-once through `dlx` with routing key `dead`.
fn at_least_once_into(dlx: &str, extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = quorum(&[
        ("x-dead-letter-exchange", long(dlx)),
        ("x-dead-letter-routing-key", long("dead")),
        ("x-dead-letter-strategy", long("at-least-once")),
        ("x-overflow", long("reject-publish")),
    ]);
    for (k, v) in extra {
        args.insert((*k).into(), v.clone());
    }
    args
}

/// Publish `bodies` to `queue` and reject each (requeue false).
async fn publish_and_reject(ch: &Channel, queue: &str, bodies: &[&[u8]]) {
    for body in bodies {
        publish(ch, "", queue, body, BasicProperties::default()).await;
    }
    for _ in bodies {
        let m = get(ch, queue).await.expect("a message to reject");
        ch.basic_reject(
            m.delivery.delivery_tag,
            BasicRejectOptions { requeue: false },
        )
        .await
        .unwrap();
    }
}

/// The management API's view of `queue`.
async fn queue_json(api: &Api, queue: &str) -> serde_json::Value {
    api.get(&format!("/api/queues/%2F/{queue}")).await.body
}

/// The reason and queue of a dead letter's latest `x-death` record.
fn latest_death(props: &BasicProperties) -> (AMQPValue, AMQPValue) {
    let Some(AMQPValue::FieldArray(deaths)) = header(props, "x-death") else {
        panic!("no x-death: {props:?}");
    };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
        panic!("empty x-death");
    };
    (
        death.inner().get("reason").cloned().unwrap(),
        death.inner().get("queue").cloned().unwrap(),
    )
}

#[test]
fn pending_at_least_once_dead_letters_count_in_the_vhost_and_overview_messages_totals() {
    let broker = retrying_broker();
    let rt = runtime();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        exchange(&ch, "qq-totals-dlx").await;
        declare(&ch, "qq-totals", at_least_once_into("qq-totals-dlx", &[])).await;
        publish_and_reject(&ch, "qq-totals", &[b"a", b"bb"]).await;
        publish(&ch, "", "qq-totals", b"ready", BasicProperties::default()).await;
        declare(&ch, "classic-totals", FieldTable::default()).await;
        for _ in 0..2 {
            publish(&ch, "", "classic-totals", b"c", BasicProperties::default()).await;
        }
        let api = Api::new(broker.http_url());
        wait_until(async || queue_json(&api, "qq-totals").await["messages_dlx"] == 2).await;
        // As RabbitMQ 3.10 (checked on it: a quorum queue with 1 ready and 2 pending dead
        // letters shows messages 3 in the queue, the vhost and queue_totals; ready and
        // unacked leave them out).
        let q = queue_json(&api, "qq-totals").await;
        assert_eq!(
            (q["messages"].as_u64(), q["messages_ready"].as_u64()),
            (Some(3), Some(1)),
            "{q}"
        );
        let vhost = api.get("/api/vhosts/%2F").await.body;
        assert_eq!(vhost["messages"], 5, "{vhost}");
        assert_eq!(vhost["messages_ready"], 3, "{vhost}");
        assert_eq!(vhost["messages_unacknowledged"], 0, "{vhost}");
        let listed = api.get("/api/vhosts").await.body;
        let listed = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "/")
            .unwrap()
            .clone();
        assert_eq!(listed["messages"], 5, "{listed}");
        let totals = api.get("/api/overview").await.body["queue_totals"].clone();
        assert_eq!(totals["messages"], 5, "{totals}");
        assert_eq!(totals["messages_ready"], 3, "{totals}");
        assert_eq!(totals["messages_unacknowledged"], 0, "{totals}");
    });
}

#[test]
fn unroutable_at_least_once_dead_letters_are_kept_across_a_restart_and_reach_a_queue_bound_later() {
    let broker = retrying_broker();
    let rt = runtime();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        exchange(&ch, "qq-keep-dlx").await;
        declare(&ch, "qq-keep", at_least_once_into("qq-keep-dlx", &[])).await;
        publish_and_reject(&ch, "qq-keep", &[b"a", b"bb", b"ccc"]).await;
        let api = Api::new(broker.http_url());
        // Routed nowhere: kept in the source as RabbitMQ 3.10 reports them.
        wait_until(async || queue_json(&api, "qq-keep").await["messages_dlx"] == 3).await;
        let q = queue_json(&api, "qq-keep").await;
        assert_eq!(q["message_bytes_dlx"], 6, "{q}");
        assert_eq!(q["messages"], 3, "{q}");
        assert_eq!(q["message_bytes"], 6, "{q}");
        assert_eq!(q["messages_ready"], 0, "{q}");
        assert_eq!(q["messages_unacknowledged"], 0, "{q}");
        assert!(get(&ch, "qq-keep").await.is_none(), "never delivered");
        assert_eq!(count(&ch, "qq-keep").await, 0);
        // Retries that still find no queue keep them.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(queue_json(&api, "qq-keep").await["messages_dlx"], 3);
    });
    let broker = broker.restart();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        let api = Api::new(broker.http_url());
        let q = queue_json(&api, "qq-keep").await;
        assert_eq!(q["messages_dlx"], 3, "kept across the restart: {q}");
        assert_eq!(q["message_bytes_dlx"], 6, "{q}");
        assert!(get(&ch, "qq-keep").await.is_none(), "still not delivered");
        declare(&ch, "qq-keep-dead", quorum(&[])).await;
        ch.queue_bind(
            "qq-keep-dead".into(),
            "qq-keep-dlx".into(),
            "dead".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        wait_until(async || count(&ch, "qq-keep-dead").await == 3).await;
        let q = queue_json(&api, "qq-keep").await;
        assert_eq!(q["messages_dlx"], 0, "{q}");
        assert_eq!(q["messages"], 0, "{q}");
        let mut bodies = Vec::new();
        while let Some(m) = get(&ch, "qq-keep-dead").await {
            assert_eq!(
                latest_death(&m.properties),
                (long("rejected"), long("qq-keep"))
            );
            assert_eq!(
                header(&m.properties, "x-first-death-reason"),
                Some(long("rejected"))
            );
            bodies.push(m.delivery.data.clone());
            m.ack(Default::default()).await.unwrap();
        }
        assert_eq!(bodies, [b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
    });
    // Moved for good: nothing comes back to the source after another restart.
    let broker = broker.restart();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        let api = Api::new(broker.http_url());
        assert_eq!(queue_json(&api, "qq-keep").await["messages_dlx"], 0);
        assert_eq!(count(&ch, "qq-keep-dead").await, 0);
    });
}

#[test]
fn a_full_reject_publish_target_refuses_at_least_once_dead_letters_until_it_drains() {
    let broker = retrying_broker();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        exchange(&ch, "qq-full-dlx").await;
        declare(
            &ch,
            "qq-full-dead",
            quorum(&[
                ("x-max-length", AMQPValue::LongInt(2)),
                ("x-overflow", long("reject-publish")),
            ]),
        )
        .await;
        ch.queue_bind(
            "qq-full-dead".into(),
            "qq-full-dlx".into(),
            "dead".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for filler in [b"f1", b"f2"] {
            publish(&ch, "", "qq-full-dead", filler, BasicProperties::default()).await;
        }
        declare(&ch, "qq-full", at_least_once_into("qq-full-dlx", &[])).await;
        publish_and_reject(&ch, "qq-full", &[b"a", b"b"]).await;
        let api = Api::new(broker.http_url());
        wait_until(async || queue_json(&api, "qq-full").await["messages_dlx"] == 2).await;
        // Refused at every retry while the target is full.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(queue_json(&api, "qq-full").await["messages_dlx"], 2);
        assert_eq!(count(&ch, "qq-full-dead").await, 2);
        for filler in [b"f1", b"f2"] {
            let m = get(&ch, "qq-full-dead").await.unwrap();
            assert_eq!(m.delivery.data, filler);
            m.ack(Default::default()).await.unwrap();
        }
        wait_until(async || count(&ch, "qq-full-dead").await == 2).await;
        assert_eq!(queue_json(&api, "qq-full").await["messages_dlx"], 0);
        for body in [b"a", b"b"] {
            let m = get(&ch, "qq-full-dead").await.unwrap();
            assert_eq!(m.delivery.data, body);
            assert_eq!(
                latest_death(&m.properties),
                (long("rejected"), long("qq-full"))
            );
        }
    });
}

#[test]
fn a_policy_switching_away_from_at_least_once_deletes_the_pending_dead_letters() {
    let broker = retrying_broker();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        exchange(&ch, "qq-switch-dlx").await;
        declare(&ch, "qq-switch", at_least_once_into("qq-switch-dlx", &[])).await;
        publish_and_reject(&ch, "qq-switch", &[b"a"]).await;
        let api = Api::new(broker.http_url());
        wait_until(async || queue_json(&api, "qq-switch").await["messages_dlx"] == 1).await;
        // Pending dead letters count against the length limit (rabbit_fifo:is_over_limit):
        // at x-max-length 1 from a policy, the next publish is refused.
        let reply = api
            .put(
                "/api/policies/%2F/qq-switch-limit",
                json!({"pattern": "^qq-switch$", "apply-to": "queues",
                       "definition": {"max-length": 1}}),
            )
            .await;
        assert!(reply.status.is_success(), "{reply:?}");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = ch
            .basic_publish(
                "".into(),
                "qq-switch".into(),
                BasicPublishOptions::default(),
                b"refused",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_nack(), "{confirm:?}");
        // Overflow drop-head makes the strategy at-most-once: RabbitMQ 3.10 deletes them.
        let reply = api
            .put(
                "/api/policies/%2F/qq-switch-limit",
                json!({"pattern": "^qq-switch$", "apply-to": "queues",
                       "definition": {"max-length": 1, "overflow": "drop-head"}}),
            )
            .await;
        assert!(reply.status.is_success(), "{reply:?}");
        wait_until(async || queue_json(&api, "qq-switch").await["messages_dlx"] == 0).await;
        assert_eq!(queue_json(&api, "qq-switch").await["messages"], 0);
        // And they are gone from the store: a queue bound now gets nothing.
        declare(&ch, "qq-switch-dead", quorum(&[])).await;
        ch.queue_bind(
            "qq-switch-dead".into(),
            "qq-switch-dlx".into(),
            "dead".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(count(&ch, "qq-switch-dead").await, 0);
    });
}

// ------------------------------------------------------------- returned messages first

/// Publish m1..m5 to `queue`, take m1..m3 with `basic.get` on a channel of `url`, ack m2
/// and give back m3 then m1 (`nack` with requeue), or close the connection (`lose`).
async fn return_m3_then_m1(url: &str, ch: &Channel, queue: &str, lose: bool) {
    for i in 1..=5 {
        publish(
            ch,
            "",
            queue,
            format!("m{i}").as_bytes(),
            BasicProperties::default(),
        )
        .await;
    }
    let (taker_conn, taker) = channel(url).await;
    let mut tags = BTreeMap::new();
    for _ in 0..3 {
        let m = get(&taker, queue).await.unwrap();
        tags.insert(m.delivery.data.clone(), m.delivery.delivery_tag);
    }
    taker
        .basic_ack(tags[&b"m2".to_vec()], Default::default())
        .await
        .unwrap();
    if lose {
        taker_conn.close(200, "bye".into()).await.unwrap();
    } else {
        for body in [b"m3", b"m1"] {
            taker
                .basic_nack(
                    tags[&body.to_vec()],
                    BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
    }
    wait_until(async || count(ch, queue).await == 4).await;
}

/// What `basic.get` finds in `queue`, in order: (body, redelivered, x-delivery-count).
async fn drain(ch: &Channel, queue: &str) -> Vec<(String, bool, Option<i64>)> {
    let mut out = Vec::new();
    while let Some(m) = get(ch, queue).await {
        out.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.redelivered,
            delivery_count(&m.properties),
        ));
        m.ack(Default::default()).await.unwrap();
    }
    out
}

fn order(expected: &[(&str, bool, i64)]) -> Vec<(String, bool, Option<i64>)> {
    expected
        .iter()
        .map(|(b, r, c)| (b.to_string(), *r, Some(*c)))
        .collect()
}

#[test]
fn a_quorum_queue_delivers_returned_messages_first_in_the_order_they_came_back() {
    // As RabbitMQ 3.10 (checked on it): with a delivery limit (Warren's default is 20) a
    // nack returns to the front, in return order; so does a consumer that goes away.
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-returns", quorum(&[])).await;
        return_m3_then_m1(&broker.url(), &ch, "qq-returns", false).await;
        assert_eq!(
            drain(&ch, "qq-returns").await,
            order(&[
                ("m3", true, 1),
                ("m1", true, 1),
                ("m4", false, 0),
                ("m5", false, 0)
            ])
        );
        return_m3_then_m1(&broker.url(), &ch, "qq-returns", true).await;
        assert_eq!(
            drain(&ch, "qq-returns").await,
            order(&[
                ("m1", true, 1),
                ("m3", true, 1),
                ("m4", false, 0),
                ("m5", false, 0)
            ])
        );
    });
}

#[test]
fn without_a_delivery_limit_a_nacked_message_goes_to_the_back_as_in_rabbitmq_3_10() {
    let broker = TestBroker::start();
    let rt = runtime();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        let unlimited = quorum(&[("x-delivery-limit", AMQPValue::LongInt(-1))]);
        declare(&ch, "qq-back", unlimited.clone()).await;
        return_m3_then_m1(&broker.url(), &ch, "qq-back", false).await;
        assert_eq!(
            drain(&ch, "qq-back").await,
            order(&[
                ("m4", false, 0),
                ("m5", false, 0),
                ("m3", true, 1),
                ("m1", true, 1)
            ])
        );
        // A consumer that goes away still returns its messages to the front.
        return_m3_then_m1(&broker.url(), &ch, "qq-back", true).await;
        assert_eq!(
            drain(&ch, "qq-back").await,
            order(&[
                ("m1", true, 1),
                ("m3", true, 1),
                ("m4", false, 0),
                ("m5", false, 0)
            ])
        );
        // The order at the back is the stored order: it survives a restart.
        declare(&ch, "qq-back-kept", unlimited).await;
        return_m3_then_m1(&broker.url(), &ch, "qq-back-kept", false).await;
    });
    let broker = broker.restart();
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        assert_eq!(
            drain(&ch, "qq-back-kept").await,
            order(&[
                ("m4", false, 0),
                ("m5", false, 0),
                ("m3", true, 1),
                ("m1", true, 1)
            ])
        );
    });
}

#[test]
fn a_classic_queue_still_puts_returned_messages_back_in_place() {
    let broker = TestBroker::start();
    runtime().block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "cq-returns", FieldTable::default()).await;
        return_m3_then_m1(&broker.url(), &ch, "cq-returns", false).await;
        let got: Vec<(String, bool)> = drain(&ch, "cq-returns")
            .await
            .into_iter()
            .map(|(b, r, _)| (b, r))
            .collect();
        let expected: Vec<(String, bool)> =
            [("m1", true), ("m3", true), ("m4", false), ("m5", false)]
                .iter()
                .map(|(b, r)| (b.to_string(), *r))
                .collect();
        assert_eq!(got, expected);
    });
}

// ------------------------------------------------------------ returns counted at a crash

/// What holds a delivery out: its connection, channel and consumer, kept open (dropping
/// the channel would close it and return the message).
type Holder = (Connection, Channel, lapin::Consumer);

/// Take one delivery of `queue` on a consumer (left unacked) and return it with its
/// `x-delivery-count` (None for a first delivery) and redelivered flag.
async fn take_one(url: &str, queue: &str) -> (Holder, Option<i64>, bool) {
    let (conn, ch) = channel(url).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "poison-taker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a delivery")
        .expect("a delivery")
        .expect("a delivery");
    assert_eq!(d.data, b"poison");
    (
        (conn, ch, consumer),
        delivery_count(&d.properties),
        d.redelivered,
    )
}

#[test]
fn a_message_out_with_a_consumer_at_each_kill_9_reaches_the_delivery_limit() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BinaryBroker::spawn(&data);
    let taker = rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        declare(&ch, "qq-crash-dlq", FieldTable::default()).await;
        declare(
            &ch,
            "qq-crash",
            quorum(&[
                ("x-delivery-limit", AMQPValue::LongInt(2)),
                ("x-dead-letter-exchange", long("")),
                ("x-dead-letter-routing-key", long("qq-crash-dlq")),
            ]),
        )
        .await;
        publish(&ch, "", "qq-crash", b"poison", BasicProperties::default()).await;
        // Behind the poison: published, never delivered; a clean stop counts nothing
        // for it, and a crash at most the lease (it is below it).
        publish(
            &ch,
            "",
            "qq-crash",
            b"bystander",
            BasicProperties::default(),
        )
        .await;
        let (holder, count, redelivered) = take_one(&broker.url(), "qq-crash").await;
        assert_eq!((count, redelivered), (None, false));
        holder
    });
    // A clean stop, the delivery still out: the broker closes the consumer's connection,
    // which returns it (counted once), and the restart does not count it again.
    assert_eq!(broker.terminate(), Some(0));
    drop(taker);
    broker = BinaryBroker::spawn(&data);
    let taker = rt.block_on(async {
        let (holder, count, redelivered) = take_one(&broker.url(), "qq-crash").await;
        assert_eq!((count, redelivered), (Some(1), true), "after a clean stop");
        holder
    });
    // The broker dies while the message is out: RabbitMQ counts it as returned.
    broker.kill();
    drop(taker);
    broker = BinaryBroker::spawn(&data);
    let taker = rt.block_on(async {
        let (holder, count, redelivered) = take_one(&broker.url(), "qq-crash").await;
        assert_eq!((count, redelivered), (Some(2), true), "after kill -9");
        holder
    });
    broker.kill();
    drop(taker);
    // Third return: past the limit of 2, dead-lettered at start.
    broker = BinaryBroker::spawn(&data);
    rt.block_on(async {
        let (_conn, ch) = channel(&broker.url()).await;
        wait_until(async || count(&ch, "qq-crash-dlq").await == 1).await;
        let m = get(&ch, "qq-crash-dlq").await.unwrap();
        assert_eq!(m.delivery.data, b"poison");
        assert_eq!(
            latest_death(&m.properties),
            (long("delivery_limit"), long("qq-crash"))
        );
        let b = get(&ch, "qq-crash").await.expect("the bystander stays");
        assert_eq!(b.delivery.data, b"bystander");
        assert!(get(&ch, "qq-crash").await.is_none());
    });
    broker.kill();
}

// ------------------------------------------------------------ the vhost's default type

#[test]
fn a_vhost_default_queue_type_of_quorum_applies_to_fitting_declares_as_in_rabbitmq_3_10() {
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    runtime().block_on(async {
        let api = Api::new(broker.http_url());
        // RabbitMQ 3.10's management API takes the type as `defaultqueuetype`.
        let made = api
            .put("/api/vhosts/dqt", json!({"defaultqueuetype": "quorum"}))
            .await;
        assert!(made.status.is_success(), "{made:?}");
        assert_eq!(
            api.get("/api/vhosts/dqt").await.body["default_queue_type"],
            "quorum"
        );
        let granted = api
            .put(
                "/api/permissions/dqt/guest",
                json!({"configure": ".*", "write": ".*", "read": ".*"}),
            )
            .await;
        assert!(granted.status.is_success(), "{granted:?}");
        let url = broker.url_as("guest", "guest", "dqt");
        let conn = connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        let shown = async |name: &str| {
            let q = api.get(&format!("/api/queues/dqt/{name}")).await.body;
            (q["type"].clone(), q["arguments"].clone())
        };
        // Durable, not exclusive, not auto-delete: the declare gets x-queue-type quorum.
        declare(&ch, "d1", FieldTable::default()).await;
        assert_eq!(
            shown("d1").await,
            (json!("quorum"), json!({"x-queue-type": "quorum"}))
        );
        // A declare the type does not fit stays classic, without the argument.
        let others = [
            ("t1", QueueDeclareOptions::default()),
            (
                "e1",
                QueueDeclareOptions {
                    exclusive: true,
                    ..durable()
                },
            ),
            (
                "a1",
                QueueDeclareOptions {
                    auto_delete: true,
                    ..durable()
                },
            ),
        ];
        for (name, options) in others {
            ch.queue_declare(name.into(), options, FieldTable::default())
                .await
                .unwrap();
            assert_eq!(shown(name).await, (json!("classic"), json!({})), "{name}");
        }
        declare(&ch, "c1", quorum_or_classic("classic")).await;
        assert_eq!(shown("c1").await.0, json!("classic"));
        // Redeclares and passive declares: the added argument takes part.
        declare(&ch, "d1", FieldTable::default()).await;
        ch.queue_declare(
            "d1".into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        let refused: Vec<(&str, QueueDeclareOptions, FieldTable, &str)> = vec![
            (
                "c1",
                durable(),
                FieldTable::default(),
                "inequivalent arg 'x-queue-type' for queue 'c1' in vhost 'dqt': received 'quorum' but current is 'classic'",
            ),
            (
                "",
                durable(),
                FieldTable::default(),
                "Cannot declare a server-named queue for type rabbit_quorum_queue",
            ),
            (
                "p1",
                durable(),
                {
                    let mut args = FieldTable::default();
                    args.insert("x-max-priority".into(), AMQPValue::LongInt(5));
                    args
                },
                "invalid arg 'x-max-priority' for queue 'p1' in vhost 'dqt' of queue type rabbit_quorum_queue",
            ),
        ];
        for (name, options, args, text) in refused {
            let ch = conn.create_channel().await.unwrap();
            let error = ch
                .queue_declare(name.into(), options, args)
                .await
                .expect_err(name)
                .to_string();
            assert!(
                error.contains(&format!("PRECONDITION_FAILED - {text}")),
                "{name}: {error}"
            );
        }
        // A transient server-named queue is classic and allowed.
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .unwrap();
        // The management API's queue PUT declares through AMQP in 3.10: the default applies.
        let made = api
            .put("/api/queues/dqt/m1", json!({"durable": true}))
            .await;
        assert!(made.status.is_success(), "{made:?}");
        assert_eq!(
            shown("m1").await,
            (json!("quorum"), json!({"x-queue-type": "quorum"}))
        );
    });
}

/// `x-queue-type: kind`.
fn quorum_or_classic(kind: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long(kind));
    args
}
