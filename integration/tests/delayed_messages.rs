//! Delayed exchanges over real AMQP: RabbitMQ's delayed-message plugin's interface
//! (`x-delayed-message` with `x-delayed-type`, the `x-delay` header) and LavinMQ's
//! `x-delayed-exchange: true`. Declare rules and their errors, routing order and timing,
//! the routing types, mandatory, the management view, definitions, restarts (graceful and
//! kill -9 of the binary, which needs `cargo build --workspace --bins`) and exchange
//! deletion. What 100k held messages cost in RSS is measured in `delayed_messages_scale.rs`
//! (its own test binary, so its load does not run beside the timing test here).
//!
//! The reference RabbitMQ has no delayed plugin, so the expected behaviour comes from the
//! plugin's source (`rabbit_exchange_type_delayed_message`, `rabbit_delayed_message`,
//! `rabbit_delayed_message_utils`, release 3.10.2): see `warren_broker::delayed`.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::time::{Duration, Instant};

use core_support::*;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer, ExchangeKind};
use serde_json::Value;
use warren_integration::http::Api;
use warren_integration::{BinaryBroker, TestBroker, TestConfig};

/// The timing test runs alone (write); every other test here shares (read). The tests of
/// one file run in parallel threads of one process, and a broker starting or a binary
/// being killed beside the timing test is load that test is not about.
static QUIET: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn delayed_args(routing: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-delayed-type".into(),
        AMQPValue::LongString(routing.into()),
    );
    args
}

fn durable() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Declare a delayed exchange (the plugin's form) routing as `routing`.
async fn declare_delayed(ch: &Channel, name: &str, routing: &str, options: ExchangeDeclareOptions) {
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Custom("x-delayed-message".into()),
        options,
        delayed_args(routing),
    )
    .await
    .unwrap();
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        args,
    )
    .await
    .unwrap();
}

fn delay_header(delay: AMQPValue) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert("x-delay".into(), delay);
    headers
}

fn delayed_by(ms: i64) -> BasicProperties {
    BasicProperties::default().with_headers(delay_header(AMQPValue::LongLongInt(ms)))
}

/// Publish and wait for the broker's confirm (the channel is in confirm mode).
async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "nacked");
}

async fn confirming_channel(env: &Env) -> (lapin::Connection, Channel) {
    let (conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (conn, ch)
}

/// The next delivery's body, within `within`.
async fn next_body(consumer: &mut Consumer, within: Duration) -> Option<String> {
    let delivery = tokio::time::timeout(within, consumer.next()).await.ok()??;
    let delivery = delivery.unwrap();
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    Some(String::from_utf8(delivery.data).unwrap())
}

/// The next delivery (acked), within `within`.
async fn next_delivery(consumer: &mut Consumer, within: Duration) -> lapin::message::Delivery {
    let delivery = tokio::time::timeout(within, consumer.next())
        .await
        .expect("no delivery in time")
        .expect("consumer ended")
        .unwrap();
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    delivery
}

// ------------------------------------------------------------------------------ declare

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_delayed_message_needs_an_existing_x_delayed_type_as_the_plugin_says() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let conn = env.connect().await;
    let kind = || ExchangeKind::Custom("x-delayed-message".into());

    let ch = conn.create_channel().await.unwrap();
    let missing = ch
        .exchange_declare(
            unique("dx").as_str().into(),
            kind(),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(
        error_text(&missing),
        "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type"
    );
    assert_channel_error(&conn, &ch, missing, 406).await;

    let ch = conn.create_channel().await.unwrap();
    let mut number = FieldTable::default();
    number.insert("x-delayed-type".into(), AMQPValue::LongInt(1));
    let not_a_string = ch
        .exchange_declare(
            unique("dx").as_str().into(),
            kind(),
            ExchangeDeclareOptions::default(),
            number,
        )
        .await;
    assert_channel_error(&conn, &ch, not_a_string, 406).await;

    let ch = conn.create_channel().await.unwrap();
    let itself = ch
        .exchange_declare(
            unique("dx").as_str().into(),
            kind(),
            ExchangeDeclareOptions::default(),
            delayed_args("x-delayed-message"),
        )
        .await;
    assert_eq!(
        error_text(&itself),
        "PRECONDITION_FAILED - Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"
    );
    assert_channel_error(&conn, &ch, itself, 406).await;

    // A declared exchange is redeclared and passively declared like any other.
    let ch = conn.create_channel().await.unwrap();
    let name = unique("dx");
    declare_delayed(&ch, &name, "topic", ExchangeDeclareOptions::default()).await;
    declare_delayed(&ch, &name, "topic", ExchangeDeclareOptions::default()).await;
    ch.exchange_declare(
        name.as_str().into(),
        kind(),
        ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let as_direct = ch
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, as_direct, 406).await;

    // An unknown x-delayed-type is an unknown exchange type: 503, a connection error.
    let ch = conn.create_channel().await.unwrap();
    let unknown = ch
        .exchange_declare(
            unique("dx").as_str().into(),
            kind(),
            ExchangeDeclareOptions::default(),
            delayed_args("x-no-such-type"),
        )
        .await;
    assert_eq!(
        error_text(&unknown),
        "COMMAND_INVALID - unknown exchange type 'x-no-such-type'"
    );
    assert_connection_error(&conn, unknown, 503).await;
}

// ------------------------------------------------------------------------------ routing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_are_routed_in_due_time_order_and_undelayed_ones_at_once() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let x = unique("dx");
    declare_delayed(&ch, &x, "direct", ExchangeDeclareOptions::default()).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    let mut consumer = consume(&ch, &q, false).await;

    let string = |s: &str| {
        BasicProperties::default().with_headers(delay_header(AMQPValue::LongString(s.into())))
    };
    let sends: Vec<(&str, BasicProperties)> = vec![
        ("d600", delayed_by(600)),
        ("d200", delayed_by(200)),
        ("now-zero", delayed_by(0)),
        ("d400", string("400")),
        ("now-negative", delayed_by(-1000)),
        ("now-absent", BasicProperties::default()),
        (
            "now-bool",
            BasicProperties::default().with_headers(delay_header(AMQPValue::Boolean(true))),
        ),
        (
            "d100",
            BasicProperties::default().with_headers(delay_header(AMQPValue::Double(100.7))),
        ),
    ];
    for (body, props) in sends {
        publish_confirmed(&ch, &x, "k", body.as_bytes(), props).await;
    }
    let mut got = Vec::new();
    while got.len() < 8 {
        got.push(
            next_body(&mut consumer, Duration::from_secs(10))
                .await
                .expect("a message"),
        );
    }
    assert_eq!(
        got,
        [
            "now-zero",
            "now-negative",
            "now-absent",
            "now-bool",
            "d100",
            "d200",
            "d400",
            "d600"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_due_in_200_ms_is_routed_no_earlier_and_within_50_ms_after() {
    let _alone = QUIET.write().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let x = unique("dx");
    declare_delayed(&ch, &x, "direct", ExchangeDeclareOptions::default()).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    let mut consumer = consume(&ch, &q, false).await;
    for round in 0..5 {
        // The broker cannot know of the message before it is sent, nor start its delay
        // after confirming it: "not before 200 ms" counts from the send, "within 50 ms
        // after" from the confirm.
        let sent = Instant::now();
        publish_confirmed(
            &ch,
            &x,
            "k",
            format!("r{round}").as_bytes(),
            delayed_by(200),
        )
        .await;
        let confirmed = Instant::now();
        let body = next_body(&mut consumer, Duration::from_secs(10))
            .await
            .expect("routed");
        let arrived = Instant::now();
        assert_eq!(body, format!("r{round}"));
        let after_send = arrived - sent;
        let after_confirm = arrived.saturating_duration_since(confirmed);
        assert!(
            after_send >= Duration::from_millis(200),
            "round {round}: arrived {after_send:?} after the send"
        );
        assert!(
            after_confirm <= Duration::from_millis(250),
            "round {round}: arrived {after_confirm:?} after the confirm"
        );
        println!(
            "round {round}: {after_send:?} after the send, {after_confirm:?} after the confirm"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_and_headers_routing_apply_when_due_with_the_published_properties() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;

    let topic = unique("dx-topic");
    declare_delayed(&ch, &topic, "topic", ExchangeDeclareOptions::default()).await;
    let (q_a, q_all) = (declare_queue(&ch).await, declare_queue(&ch).await);
    bind(&ch, &q_a, &topic, "a.*", FieldTable::default()).await;
    bind(&ch, &q_all, &topic, "#", FieldTable::default()).await;
    let mut headers = delay_header(AMQPValue::LongInt(150));
    headers.insert("app".into(), AMQPValue::LongString("kept".into()));
    let props = BasicProperties::default()
        .with_headers(headers)
        .with_content_type("text/plain".into())
        .with_message_id("m-1".into())
        .with_priority(3)
        .with_delivery_mode(2);
    publish_confirmed(&ch, &topic, "a.b", b"ab", props).await;
    publish_confirmed(&ch, &topic, "c.d", b"cd", delayed_by(100)).await;
    let mut a = consume(&ch, &q_a, false).await;
    let mut all = consume(&ch, &q_all, false).await;
    let d = next_delivery(&mut a, Duration::from_secs(10)).await;
    assert_eq!(d.data, b"ab");
    let p = &d.properties;
    assert_eq!(
        p.content_type().as_ref().map(ShortString::as_str),
        Some("text/plain")
    );
    assert_eq!(
        p.message_id().as_ref().map(ShortString::as_str),
        Some("m-1")
    );
    assert_eq!(*p.priority(), Some(3));
    assert_eq!(*p.delivery_mode(), Some(2));
    let h = p.headers().clone().unwrap();
    // As the plugin: x-delay becomes -delay once routed (so nothing downstream delays it
    // again); other headers are kept.
    assert_eq!(h.inner().get("x-delay"), Some(&AMQPValue::LongInt(-150)));
    assert_eq!(
        h.inner().get("app"),
        Some(&AMQPValue::LongString("kept".into()))
    );
    let mut seen = vec![
        next_body(&mut all, Duration::from_secs(10)).await.unwrap(),
        next_body(&mut all, Duration::from_secs(10)).await.unwrap(),
    ];
    seen.sort();
    assert_eq!(seen, ["ab", "cd"]);
    assert_eq!(next_body(&mut a, Duration::from_millis(300)).await, None);

    let hx = unique("dx-headers");
    declare_delayed(&ch, &hx, "headers", ExchangeDeclareOptions::default()).await;
    let q_h = declare_queue(&ch).await;
    let mut binding = FieldTable::default();
    binding.insert("x-match".into(), AMQPValue::LongString("all".into()));
    binding.insert("colour".into(), AMQPValue::LongString("red".into()));
    bind(&ch, &q_h, &hx, "", binding).await;
    for (colour, body) in [("blue", "blue"), ("red", "red")] {
        let mut headers = delay_header(AMQPValue::LongInt(100));
        headers.insert("colour".into(), AMQPValue::LongString(colour.into()));
        publish_confirmed(
            &ch,
            &hx,
            "",
            body.as_bytes(),
            BasicProperties::default().with_headers(headers),
        )
        .await;
    }
    let mut h = consume(&ch, &q_h, false).await;
    assert_eq!(
        next_body(&mut h, Duration::from_secs(10)).await.as_deref(),
        Some("red")
    );
    assert_eq!(next_body(&mut h, Duration::from_millis(400)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mandatory_delayed_publish_is_returned_at_once_and_still_routed_when_due() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let x = unique("dx");
    declare_delayed(&ch, &x, "direct", ExchangeDeclareOptions::default()).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    let mut consumer = consume(&ch, &q, false).await;

    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    // Delayed: the plugin's route returns no queue, so RabbitMQ returns it (312
    // NO_ROUTE) before the confirm, although the message is held and routed later.
    let confirm = ch
        .basic_publish(
            x.as_str().into(),
            "k".into(),
            mandatory,
            b"held",
            delayed_by(150),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let returned = confirm
        .take_message()
        .expect("basic.return with the confirm");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.data, b"held");
    // Not delayed: routed now, no return.
    let confirm = ch
        .basic_publish(
            x.as_str().into(),
            "k".into(),
            mandatory,
            b"now",
            delayed_by(0),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        confirm.take_message().is_none(),
        "an undelayed routable message was returned"
    );
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("now")
    );
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("held")
    );

    // When due and unroutable, it is dropped: no return then (the plugin routes without
    // the publish's mandatory flag).
    let confirm = ch
        .basic_publish(
            x.as_str().into(),
            "nowhere".into(),
            mandatory,
            b"lost",
            delayed_by(100),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.take_message().is_some());
    let next = ch
        .basic_publish(
            x.as_str().into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"after",
            delayed_by(300),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(next.take_message().is_none());
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("after")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lavinmq_x_delayed_exchange_delays_on_any_type_counts_as_routed_and_drops_x_delay() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let x = unique("lx");
    let mut args = FieldTable::default();
    args.insert("x-delayed-exchange".into(), AMQPValue::Boolean(true));
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        args,
    )
    .await
    .unwrap();
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "", FieldTable::default()).await;
    let mut consumer = consume(&ch, &q, false).await;
    let mut headers = delay_header(AMQPValue::LongInt(300));
    headers.insert("keep".into(), AMQPValue::LongString("me".into()));
    let sent = Instant::now();
    let confirm = ch
        .basic_publish(
            x.as_str().into(),
            "any".into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"later",
            BasicProperties::default().with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        confirm.take_message().is_none(),
        "LavinMQ counts a held message as routed"
    );
    publish_confirmed(&ch, &x, "any", b"now", BasicProperties::default()).await;
    let first = next_delivery(&mut consumer, Duration::from_secs(5)).await;
    assert_eq!(first.data, b"now");
    let second = next_delivery(&mut consumer, Duration::from_secs(5)).await;
    assert!(sent.elapsed() >= Duration::from_millis(300));
    assert_eq!(second.data, b"later");
    let h = second.properties.headers().clone().unwrap();
    assert!(!h.contains_key("x-delay"), "LavinMQ removes x-delay: {h:?}");
    assert!(h.contains_key("keep"));
}

// ------------------------------------------------------- exchange-to-exchange bindings

/// Bind exchange `destination` to `source` with `key`.
async fn bind_exchange(ch: &Channel, destination: &str, source: &str, key: &str) {
    ch.exchange_bind(
        destination.into(),
        source.into(),
        key.into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_exchange_reached_through_an_exchange_binding_holds_while_other_queues_get_it_at_once()
 {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let src = unique("src");
    ch.exchange_declare(
        src.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let dx = unique("dx");
    declare_delayed(&ch, &dx, "direct", ExchangeDeclareOptions::default()).await;
    bind_exchange(&ch, &dx, &src, "k").await;
    let now_q = declare_queue(&ch).await;
    bind(&ch, &now_q, &src, "k", FieldTable::default()).await;
    let dq = declare_queue(&ch).await;
    bind(&ch, &dq, &dx, "k", FieldTable::default()).await;
    let mut now_consumer = consume(&ch, &now_q, false).await;
    let mut delayed_consumer = consume(&ch, &dq, false).await;

    let sent = Instant::now();
    // mandatory: the publish reached a queue (now_q), so nothing is returned although the
    // delayed exchange's share looks unroutable.
    let confirm = ch
        .basic_publish(
            src.as_str().into(),
            "k".into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"m",
            delayed_by(400),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(
        confirm.take_message().is_none(),
        "returned though a queue got it"
    );
    let at_once = next_delivery(&mut now_consumer, Duration::from_secs(5)).await;
    assert_eq!(at_once.data, b"m");
    assert_eq!(
        at_once
            .properties
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .get("x-delay"),
        Some(&AMQPValue::LongLongInt(400)),
        "the queue bound to the source gets the message as published"
    );
    let later = next_delivery(&mut delayed_consumer, Duration::from_secs(5)).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(400),
        "the delayed exchange routed it after {:?}",
        sent.elapsed()
    );
    assert_eq!(later.data, b"m");
    assert_eq!(
        later.exchange.as_str(),
        src,
        "delivered as published to the source"
    );
    assert_eq!(
        later
            .properties
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .get("x-delay"),
        Some(&AMQPValue::LongInt(-400)),
        "the plugin negates x-delay when it routes"
    );
    assert_eq!(
        next_body(&mut now_consumer, Duration::from_millis(300)).await,
        None
    );
    assert_eq!(
        next_body(&mut delayed_consumer, Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mandatory_publish_reaching_only_a_delayed_exchange_through_a_binding_is_returned_and_held()
 {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let src = unique("src");
    ch.exchange_declare(
        src.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // Two delayed exchanges in a chain below the source (src -> dx1 -> dx2) and a
    // LavinMQ-form one (which LavinMQ's walk does not delay when reached through a
    // binding).
    let dx1 = unique("dx1");
    declare_delayed(&ch, &dx1, "fanout", ExchangeDeclareOptions::default()).await;
    let dx2 = unique("dx2");
    declare_delayed(&ch, &dx2, "fanout", ExchangeDeclareOptions::default()).await;
    bind_exchange(&ch, &dx1, &src, "").await;
    bind_exchange(&ch, &dx2, &dx1, "").await;
    let q1 = declare_queue(&ch).await;
    bind(&ch, &q1, &dx1, "", FieldTable::default()).await;
    let q2 = declare_queue(&ch).await;
    bind(&ch, &q2, &dx2, "", FieldTable::default()).await;
    let mut c1 = consume(&ch, &q1, false).await;
    let mut c2 = consume(&ch, &q2, false).await;

    let sent = Instant::now();
    let confirm = ch
        .basic_publish(
            src.as_str().into(),
            "any".into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"held",
            delayed_by(300),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    let returned = confirm
        .take_message()
        .expect("no queue now: basic.return as the plugin's empty route gives");
    assert_eq!(returned.reply_code, 312);
    // dx1 holds it; when due it routes with x-delay negated, so dx2 (reached from dx1)
    // does not hold it again.
    let first = next_delivery(&mut c1, Duration::from_secs(5)).await;
    assert!(sent.elapsed() >= Duration::from_millis(300));
    assert_eq!(first.data, b"held");
    let second = next_delivery(&mut c2, Duration::from_secs(5)).await;
    assert_eq!(second.data, b"held");
    assert!(
        sent.elapsed() < Duration::from_millis(300 + 2_000),
        "held twice: {:?}",
        sent.elapsed()
    );
    assert_eq!(next_body(&mut c1, Duration::from_millis(300)).await, None);
    assert_eq!(next_body(&mut c2, Duration::from_millis(300)).await, None);

    // LavinMQ's form reached through a binding routes at once.
    let lx = unique("lx");
    let mut args = FieldTable::default();
    args.insert("x-delayed-exchange".into(), AMQPValue::Boolean(true));
    ch.exchange_declare(
        lx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        args,
    )
    .await
    .unwrap();
    let src2 = unique("src");
    ch.exchange_declare(
        src2.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    bind_exchange(&ch, &lx, &src2, "").await;
    let lq = declare_queue(&ch).await;
    bind(&ch, &lq, &lx, "", FieldTable::default()).await;
    let mut lc = consume(&ch, &lq, false).await;
    let sent = Instant::now();
    publish_confirmed(&ch, &src2, "", b"lavinmq", delayed_by(5_000)).await;
    assert_eq!(
        next_body(&mut lc, Duration::from_secs(3)).await.as_deref(),
        Some("lavinmq")
    );
    assert!(sent.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_through_an_exchange_binding_is_durable_as_the_delayed_exchange_is() {
    let _shared = QUIET.read().await;
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let (src, dx, q) = ("src-e2e-restart", "dx-e2e-restart", "dq-e2e-restart");
    let sent = {
        let conn = warren_integration::connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.exchange_declare(
            src.into(),
            ExchangeKind::Topic,
            durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        declare_delayed(&ch, dx, "direct", durable()).await;
        bind_exchange(&ch, dx, src, "a.*").await;
        ch.queue_declare(
            q.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, q, dx, "a.b", FieldTable::default()).await;
        let sent = Instant::now();
        publish_confirmed(
            &ch,
            src,
            "a.b",
            b"persistent",
            delayed_by(1_500).with_delivery_mode(2),
        )
        .await;
        publish_confirmed(&ch, src, "a.b", b"transient", delayed_by(1_000)).await;
        let api = Api::new(broker.http_url());
        let x = api.get("/api/exchanges/%2f/dx-e2e-restart").await;
        assert_eq!(x.body["messages_delayed"], 2, "{:?}", x.body);
        sent
    };
    let broker = broker.restart();
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    let mut consumer = consume(&ch, q, false).await;
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("persistent")
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(1_500),
        "routed before it was due"
    );
    assert_eq!(
        next_body(&mut consumer, Duration::from_millis(500)).await,
        None
    );
}

// ------------------------------------------------------------------- lifecycle, views

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_exchange_drops_its_held_messages() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let x = unique("dx");
    declare_delayed(&ch, &x, "direct", durable()).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    for i in 0..3 {
        let props = delayed_by(300).with_delivery_mode(2);
        publish_confirmed(&ch, &x, "k", format!("m{i}").as_bytes(), props).await;
    }
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    // The same name again, bound again: nothing of the old exchange comes through it.
    declare_delayed(&ch, &x, "direct", durable()).await;
    bind(&ch, &q, &x, "k", FieldTable::default()).await;
    publish_confirmed(&ch, &x, "k", b"new", delayed_by(500)).await;
    let mut consumer = consume(&ch, &q, false).await;
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("new")
    );
    assert_eq!(
        next_body(&mut consumer, Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_shows_the_type_and_messages_delayed() {
    let _shared = QUIET.read().await;
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let api = Api::new(broker.http_url());
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_delayed(&ch, "dx-mgmt", "direct", ExchangeDeclareOptions::default()).await;
    for _ in 0..2 {
        publish_confirmed(&ch, "dx-mgmt", "k", b"x", delayed_by(60_000)).await;
    }
    let x = api.get("/api/exchanges/%2f/dx-mgmt").await;
    assert_eq!(x.status, 200);
    assert_eq!(x.body["type"], "x-delayed-message");
    assert_eq!(x.body["arguments"]["x-delayed-type"], "direct");
    assert_eq!(x.body["messages_delayed"], 2);
    let list = api.get("/api/exchanges/%2f").await;
    let listed = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "dx-mgmt")
        .unwrap();
    assert_eq!(listed["messages_delayed"], 2);
    let direct = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "amq.direct")
        .unwrap();
    assert!(direct.get("messages_delayed").is_none());
    let overview = api.get("/api/overview").await;
    let types: Vec<&str> = overview.body["exchange_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(types.contains(&"x-delayed-message"), "{types:?}");
    // Declared over HTTP too, with the same rule.
    let bad = api
        .put(
            "/api/exchanges/%2f/dx-http",
            serde_json::json!({"type": "x-delayed-message"}),
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let good = api
        .put(
            "/api/exchanges/%2f/dx-http",
            serde_json::json!({"type": "x-delayed-message", "arguments": {"x-delayed-type": "fanout"}}),
        )
        .await;
    assert_eq!(good.status, 201, "{:?}", good.body);
    let shown = api.get("/api/exchanges/%2f/dx-http").await;
    assert_eq!(shown.body["messages_delayed"], Value::from(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_export_and_import_round_trip_a_delayed_exchange() {
    let _shared = QUIET.read().await;
    let source = TestBroker::start();
    let conn = warren_integration::connect(&source.url()).await;
    let ch2 = conn.create_channel().await.unwrap();
    declare_delayed(&ch2, "dx-defs", "topic", durable()).await;
    let exported = source.broker().export_definitions();
    let text: Value = serde_json::from_slice(&exported.to_json().unwrap()).unwrap();
    let x = text["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "dx-defs")
        .unwrap()
        .clone();
    assert_eq!(x["type"], "x-delayed-message");
    assert_eq!(x["arguments"]["x-delayed-type"], "topic");

    let target = TestBroker::start();
    target.broker().import_definitions(&exported).unwrap();
    let conn = warren_integration::connect(&target.url()).await;
    let ch3 = conn.create_channel().await.unwrap();
    ch3.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let q = declare_queue(&ch3).await;
    bind(&ch3, &q, "dx-defs", "a.#", FieldTable::default()).await;
    let sent = Instant::now();
    publish_confirmed(&ch3, "dx-defs", "a.b", b"imported", delayed_by(200)).await;
    let mut consumer = consume(&ch3, &q, false).await;
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("imported")
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(200),
        "the imported exchange does not delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lavinmq_definitions_file_imports_its_delayed_exchange_in_the_lavinmq_form() {
    let _shared = QUIET.read().await;
    // LavinMQ exports a delayed exchange as type `x-delayed-exchange` with the routing in
    // `x-delayed-type`.
    let file = serde_json::json!({
        "vhosts": [{"name": "/"}],
        "exchanges": [{
            "name": "lx-defs", "vhost": "/", "type": "x-delayed-exchange", "durable": true,
            "auto_delete": false, "internal": false, "arguments": {"x-delayed-type": "fanout"}
        }]
    });
    let defs = warren_broker::Definitions::parse(file.to_string().as_bytes()).unwrap();
    let broker = TestBroker::start();
    broker.broker().import_definitions(&defs).unwrap();
    let x = broker
        .broker()
        .vhost("/")
        .unwrap()
        .exchange("lx-defs")
        .unwrap();
    assert_eq!(x.spec.kind, "fanout");
    assert_eq!(
        x.spec.arguments.inner().get("x-delayed-exchange"),
        Some(&AMQPValue::Boolean(true))
    );
    assert_eq!(
        x.hold().map(|h| h.form()),
        Some(warren_broker::delayed::DelayForm::LavinMq)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_messages_of_a_durable_exchange_survive_a_restart_transient_ones_do_not() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    if env.is_external() {
        return;
    }
    let x = "dx-restart";
    let transient_x = "dx-transient";
    let q = "dq-restart";
    let sent = {
        let (_conn, ch) = confirming_channel(&env).await;
        declare_delayed(&ch, x, "direct", durable()).await;
        declare_delayed(
            &ch,
            transient_x,
            "direct",
            ExchangeDeclareOptions::default(),
        )
        .await;
        ch.queue_declare(
            q.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, q, x, "k", FieldTable::default()).await;
        bind(&ch, q, transient_x, "k", FieldTable::default()).await;
        let sent = Instant::now();
        publish_confirmed(
            &ch,
            x,
            "k",
            b"persistent",
            delayed_by(1_500).with_delivery_mode(2),
        )
        .await;
        publish_confirmed(&ch, x, "k", b"transient-message", delayed_by(1_000)).await;
        publish_confirmed(
            &ch,
            transient_x,
            "k",
            b"transient-exchange",
            delayed_by(1_000).with_delivery_mode(2),
        )
        .await;
        sent
    };
    let env = env.restart().unwrap();
    let (_conn, ch) = env.channel().await;
    let mut consumer = consume(&ch, q, false).await;
    assert_eq!(
        next_body(&mut consumer, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("persistent")
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(1_500),
        "routed before it was due"
    );
    assert_eq!(
        next_body(&mut consumer, Duration::from_millis(500)).await,
        None
    );
}

// ------------------------------------------------------------------------ dead letters

/// A queue whose dead letters go to `dlx` (with `dl_key` when given) and whose messages
/// expire after `ttl_ms` when given.
async fn declare_dead_lettering_queue(
    ch: &Channel,
    name: &str,
    durable: bool,
    dlx: &str,
    dl_key: Option<&str>,
    ttl_ms: Option<i32>,
) {
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.into()),
    );
    if let Some(key) = dl_key {
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(key.into()),
        );
    }
    if let Some(ttl) = ttl_ms {
        args.insert("x-message-ttl".into(), AMQPValue::LongInt(ttl));
    }
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

/// Waits (up to 10 s) until `queue` is empty: its messages were dead-lettered.
async fn wait_empty(ch: &Channel, queue: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while message_count(ch, queue).await != 0 {
        assert!(
            Instant::now() < deadline,
            "{queue} still has messages after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The first `x-death` record of a delivery, as a table.
fn first_death(delivery: &lapin::message::Delivery) -> FieldTable {
    let headers = delivery.properties.headers().as_ref().expect("headers");
    match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(deaths)) => match deaths.as_slice().first() {
            Some(AMQPValue::FieldTable(death)) => death.clone(),
            other => panic!("x-death record: {other:?}"),
        },
        other => panic!("x-death: {other:?}"),
    }
}

fn text_of(table: &FieldTable, key: &str) -> String {
    match table.inner().get(key) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("{key}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expiring_into_a_delayed_dead_letter_exchange_is_held_for_its_x_delay_with_x_death()
 {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let dx = unique("dlx-delayed");
    declare_delayed(&ch, &dx, "direct", ExchangeDeclareOptions::default()).await;
    let dq = declare_queue(&ch).await;
    bind(&ch, &dq, &dx, "dead", FieldTable::default()).await;
    let src = unique("ttl-src");
    declare_dead_lettering_queue(&ch, &src, false, &dx, Some("dead"), Some(100)).await;
    let mut consumer = consume(&ch, &dq, false).await;

    let sent = Instant::now();
    publish_confirmed(&ch, "", &src, b"expiring", delayed_by(700)).await;
    // Expired after its 100 ms TTL, then held 700 ms from that moment.
    wait_empty(&ch, &src).await;
    let delivery = next_delivery(&mut consumer, Duration::from_secs(10)).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(800),
        "routed {:?} after the publish: before its TTL plus x-delay",
        sent.elapsed()
    );
    assert_eq!(delivery.data, b"expiring");
    assert_eq!(
        delivery.exchange.as_str(),
        dx,
        "routed from the dead-letter exchange"
    );
    assert_eq!(delivery.routing_key.as_str(), "dead");
    let death = first_death(&delivery);
    assert_eq!(text_of(&death, "reason"), "expired");
    assert_eq!(text_of(&death, "queue"), src);
    assert_eq!(death.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
    let headers = delivery.properties.headers().as_ref().unwrap();
    assert_eq!(
        headers.inner().get("x-delay"),
        Some(&AMQPValue::LongInt(-700)),
        "the plugin negates x-delay when it routes"
    );
    assert_eq!(
        text_of(headers, "x-first-death-reason"),
        "expired",
        "x-first-death-* as for any dead letter"
    );
    assert_eq!(
        next_body(&mut consumer, Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_reaching_a_delayed_exchange_through_the_dead_letter_exchange_is_held() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    let (_conn, ch) = confirming_channel(&env).await;
    let dlx = unique("dlx");
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let dx = unique("dx");
    declare_delayed(&ch, &dx, "direct", ExchangeDeclareOptions::default()).await;
    bind_exchange(&ch, &dx, &dlx, "k").await;
    let now_q = declare_queue(&ch).await;
    bind(&ch, &now_q, &dlx, "k", FieldTable::default()).await;
    let dq = declare_queue(&ch).await;
    bind(&ch, &dq, &dx, "k", FieldTable::default()).await;
    let src = unique("reject-src");
    declare_dead_lettering_queue(&ch, &src, false, &dlx, Some("k"), None).await;
    publish_confirmed(&ch, "", &src, b"rejected", delayed_by(600)).await;
    let mut now_consumer = consume(&ch, &now_q, false).await;
    let mut delayed_consumer = consume(&ch, &dq, false).await;

    let (tag, body, _, _) = get(&ch, &src).await.expect("the message");
    assert_eq!(body, b"rejected");
    let rejected = Instant::now();
    ch.basic_reject(tag, BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let at_once = next_delivery(&mut now_consumer, Duration::from_secs(5)).await;
    assert_eq!(text_of(&first_death(&at_once), "reason"), "rejected");
    assert_eq!(
        at_once
            .properties
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .get("x-delay"),
        Some(&AMQPValue::LongLongInt(600)),
        "the queue bound to the dead-letter exchange gets it at once, as dead-lettered"
    );
    let later = next_delivery(&mut delayed_consumer, Duration::from_secs(10)).await;
    assert!(
        rejected.elapsed() >= Duration::from_millis(600),
        "the delayed exchange routed it {:?} after the reject",
        rejected.elapsed()
    );
    assert_eq!(later.data, b"rejected");
    assert_eq!(later.exchange.as_str(), dlx, "as dead-lettered to the DLX");
    let death = first_death(&later);
    assert_eq!(text_of(&death, "reason"), "rejected");
    assert_eq!(text_of(&death, "queue"), src);
    assert_eq!(
        next_body(&mut now_consumer, Duration::from_millis(300)).await,
        None
    );
    assert_eq!(
        next_body(&mut delayed_consumer, Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_dead_letter_held_by_a_durable_delayed_exchange_survives_a_restart() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    if env.is_external() {
        return;
    }
    let dx = "dlx-delayed-restart";
    let dq = "dq-dead-restart";
    let src = "ttl-src-restart";
    let sent = {
        let (_conn, ch) = confirming_channel(&env).await;
        declare_delayed(&ch, dx, "direct", durable()).await;
        ch.queue_declare(
            dq.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, dq, dx, "k", FieldTable::default()).await;
        declare_dead_lettering_queue(&ch, src, true, dx, Some("k"), Some(50)).await;
        let sent = Instant::now();
        publish_confirmed(
            &ch,
            "",
            src,
            b"persistent",
            delayed_by(1_500).with_delivery_mode(2),
        )
        .await;
        // The dead letter keeps its delivery mode: a transient one is not kept.
        publish_confirmed(&ch, "", src, b"transient", delayed_by(1_500)).await;
        wait_empty(&ch, src).await;
        assert_eq!(message_count(&ch, dq).await, 0, "held, not routed");
        sent
    };
    let env = env.restart().unwrap();
    let (_conn, ch) = env.channel().await;
    assert_eq!(message_count(&ch, src).await, 0, "in one place only");
    let mut consumer = consume(&ch, dq, false).await;
    let delivery = next_delivery(&mut consumer, Duration::from_secs(10)).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(1_550),
        "routed {:?} after the publish: before its TTL plus x-delay",
        sent.elapsed()
    );
    assert_eq!(delivery.data, b"persistent");
    assert_eq!(delivery.properties.delivery_mode(), &Some(2));
    let death = first_death(&delivery);
    assert_eq!(text_of(&death, "reason"), "expired");
    assert_eq!(text_of(&death, "queue"), src);
    assert_eq!(
        next_body(&mut consumer, Duration::from_millis(500)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queues_at_least_once_dead_letter_counts_a_hold_as_taken() {
    let _shared = QUIET.read().await;
    let env = Env::start();
    if env.is_external() {
        return;
    }
    let (_conn, ch) = confirming_channel(&env).await;
    let dx = unique("dlx-delayed-qq");
    declare_delayed(&ch, &dx, "direct", durable()).await;
    let dq = declare_queue(&ch).await;
    bind(&ch, &dq, &dx, "k", FieldTable::default()).await;
    let src = unique("qq-src");
    let mut args = FieldTable::default();
    for (key, value) in [
        ("x-queue-type", "quorum"),
        ("x-dead-letter-strategy", "at-least-once"),
        ("x-overflow", "reject-publish"),
        ("x-dead-letter-exchange", dx.as_str()),
        ("x-dead-letter-routing-key", "k"),
    ] {
        args.insert(key.into(), AMQPValue::LongString(value.into()));
    }
    ch.queue_declare(
        src.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .unwrap();
    publish_confirmed(
        &ch,
        "",
        &src,
        b"at-least-once",
        delayed_by(500).with_delivery_mode(2),
    )
    .await;
    let mut consumer = consume(&ch, &dq, false).await;
    let (tag, _, _, _) = get(&ch, &src).await.expect("the message");
    let rejected = Instant::now();
    ch.basic_reject(tag, BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    // Moved out of the source (the hold took it).
    wait_empty(&ch, &src).await;
    let delivery = next_delivery(&mut consumer, Duration::from_secs(10)).await;
    assert!(
        rejected.elapsed() >= Duration::from_millis(500),
        "routed {:?} after the reject",
        rejected.elapsed()
    );
    assert_eq!(delivery.data, b"at-least-once");
    assert_eq!(text_of(&first_death(&delivery), "reason"), "rejected");
    assert_eq!(message_count(&ch, &src).await, 0);
    assert_eq!(
        next_body(&mut consumer, Duration::from_millis(300)).await,
        None
    );
}

// ------------------------------------------------------------------------ kill -9

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn held_messages_survive_kill_9_and_one_due_during_the_downtime_is_routed_at_once() {
    let _shared = QUIET.blocking_read();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    let x = "dx-kill";
    let q = "dq-kill";
    let (overdue_at, later_at) = rt.block_on(async {
        let conn = warren_integration::connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        declare_delayed(&ch, x, "direct", durable()).await;
        ch.queue_declare(
            q.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, q, x, "k", FieldTable::default()).await;
        let sent = Instant::now();
        publish_confirmed(
            &ch,
            x,
            "k",
            b"overdue",
            delayed_by(300).with_delivery_mode(2),
        )
        .await;
        publish_confirmed(
            &ch,
            x,
            "k",
            b"later",
            delayed_by(4_000).with_delivery_mode(2),
        )
        .await;
        (
            sent + Duration::from_millis(300),
            sent + Duration::from_millis(4_000),
        )
    });
    broker.kill();
    // Down past the first message's due time.
    std::thread::sleep(
        overdue_at.saturating_duration_since(Instant::now()) + Duration::from_millis(200),
    );
    let broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    rt.block_on(async {
        let conn = warren_integration::connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        let mut consumer = consume(&ch, q, false).await;
        assert_eq!(
            next_body(&mut consumer, Duration::from_secs(5))
                .await
                .as_deref(),
            Some("overdue")
        );
        let later = next_body(&mut consumer, Duration::from_secs(15)).await;
        assert!(Instant::now() >= later_at, "routed before it was due");
        assert_eq!(later.as_deref(), Some("later"));
        assert_eq!(
            next_body(&mut consumer, Duration::from_millis(300)).await,
            None
        );
    });
    broker.kill();
}

/// A kill -9 in a stream of rejects whose dead letters a durable delayed exchange holds:
/// after the restart each message is in its source queue or routed from the hold, once.
/// (The atomicity itself is the move's one `WriteOp::Group`; the commit loop also merges
/// neighbouring submissions into one batch, so a split write would seldom show here: this
/// guards against loss and duplicates, not against that split.)
#[test]
fn kill_9_during_a_stream_of_dead_letters_into_a_delayed_exchange_leaves_each_in_one_place() {
    let _shared = QUIET.blocking_read();
    const N: usize = 300;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    let dx = "dlx-delayed-kill";
    let dq = "dq-dead-kill";
    let src = "reject-src-kill";
    let rejects = rt.block_on(async {
        let conn = warren_integration::connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        declare_delayed(&ch, dx, "direct", durable()).await;
        ch.queue_declare(
            dq.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, dq, dx, "k", FieldTable::default()).await;
        declare_dead_lettering_queue(&ch, src, true, dx, Some("k"), None).await;
        for i in 0..N {
            ch.basic_publish(
                "".into(),
                src.into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                delayed_by(1_000).with_delivery_mode(2),
            )
            .await
            .unwrap();
        }
        assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "returned");
        // Reject in a stream; the kill lands while the moves are being written.
        ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
        let mut consumer = consume(&ch, src, false).await;
        let mut rejects = 0;
        while rejects < N / 2 {
            let delivery = next(&mut consumer).await;
            delivery
                .reject(BasicRejectOptions { requeue: false })
                .await
                .unwrap();
            rejects += 1;
        }
        rejects
    });
    broker.kill();
    let broker = BinaryBroker::spawn(&data);
    let url = broker.url();
    rt.block_on(async {
        let conn = warren_integration::connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        // Every held one is due within a second of its dead-lettering: wait until all are
        // accounted for, then a little longer for any duplicate.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let total = queue_count(&ch, src).await + queue_count(&ch, dq).await;
            if total as usize >= N {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {total} of {N} messages in the source or routed after the restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let in_src = contents(&ch, src).await;
        let in_dq = contents(&ch, dq).await;
        // How far the stream got is up to the kill (at least the rejects that freed the
        // prefetch window were received; their writes may not have been synced).
        eprintln!(
            "{rejects} rejected before the kill: {} routed, {} back in the source",
            in_dq.len(),
            in_src.len()
        );
        for i in 0..N {
            let body = format!("m{i}");
            let places =
                in_src.get(&body).copied().unwrap_or(0) + in_dq.get(&body).copied().unwrap_or(0);
            assert_eq!(
                places,
                1,
                "{body}: in the source {:?}, routed {:?}",
                in_src.get(&body),
                in_dq.get(&body)
            );
        }
    });
    broker.kill();
}

/// Every body in `queue` (basic.get no-ack until empty), counted.
async fn contents(ch: &Channel, queue: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        *out.entry(String::from_utf8(m.delivery.data).unwrap())
            .or_default() += 1;
    }
    out
}

async fn queue_count(ch: &Channel, queue: &str) -> u32 {
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

/// The `messages_delayed` of a delayed exchange, from the management API.
async fn messages_delayed(api: &Api, exchange: &str) -> u64 {
    let x = api.get(&format!("/api/exchanges/%2f/{exchange}")).await;
    x.body["messages_delayed"].as_u64().unwrap()
}

#[test]
fn kill_9_during_a_stream_of_due_messages_routes_each_exactly_once() {
    let _shared = QUIET.blocking_read();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (x, q) = ("dx-stream", "dq-stream");
    let n: u32 = 4_000; // 16 bursts
    let mut broker = BinaryBroker::spawn(&data);
    rt.block_on(async {
        let conn = warren_integration::connect(&broker.url()).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        declare_delayed(&ch, x, "direct", durable()).await;
        ch.queue_declare(
            q.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, q, x, "k", FieldTable::default()).await;
        // Due in bursts of 250 every 500 ms, from 500 ms on (a burst is routed in
        // batches, so the store's write batches end anywhere in it).
        for i in 0..n {
            ch.basic_publish(
                x.into(),
                "k".into(),
                BasicPublishOptions::default(),
                format!("m-{i}").as_bytes(),
                delayed_by(500 + 500 * i64::from(i / 250)).with_delivery_mode(2),
            )
            .await
            .unwrap();
        }
        assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "a nack");
    });
    // Kill while due messages are being routed (a stream at first, then the burst of
    // those that fell due while the broker was down), a few times. (The routing that
    // wrote a queue's put and the held delete in two batches duplicated a message in
    // some of such runs, mostly at the start of a burst, when the commit loop wakes for
    // the first put alone: so each kill comes as soon as a burst starts.)
    let mut kills = 0;
    for _ in 0..12 {
        let url = broker.url();
        let moving = rt.block_on(async {
            let conn = warren_integration::connect(&url).await;
            let ch = conn.create_channel().await.unwrap();
            let start = queue_count(&ch, q).await;
            if start >= n {
                return false;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while queue_count(&ch, q).await == start && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            true
        });
        if !moving {
            break;
        }
        broker.kill();
        kills += 1;
        broker = BinaryBroker::spawn(&data);
    }
    assert!(kills > 0, "every message was routed before the first kill");
    eprintln!("killed {kills} times while due messages were being routed");
    let api = Api::new(format!("http://127.0.0.1:{}", broker.http_port));
    let url = broker.url();
    rt.block_on(async {
        let conn = warren_integration::connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while messages_delayed(&api, x).await > 0 {
            assert!(Instant::now() < deadline, "still held after a minute");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = contents(&ch, q).await;
        let duplicated: Vec<_> = got.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            duplicated.is_empty(),
            "{} routed more than once after {kills} kills: {:?}",
            duplicated.len(),
            duplicated.iter().take(5).collect::<Vec<_>>()
        );
        assert_eq!(got.len(), n as usize, "lost messages after {kills} kills");
    });
    broker.kill();
}
