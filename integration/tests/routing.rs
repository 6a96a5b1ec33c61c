//! End-to-end routing through direct, fanout, topic and headers exchanges.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

/// Declare `kind` exchange, bind one queue per (key, args) and return the queue names.
async fn topology(
    ch: &Channel,
    kind: ExchangeKind,
    bindings: &[(&str, FieldTable)],
) -> (String, Vec<String>) {
    let x = unique("x");
    ch.exchange_declare(
        x.as_str().into(),
        kind,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut queues = Vec::new();
    for (key, args) in bindings {
        let q = declare_queue(ch).await;
        ch.queue_bind(
            q.as_str().into(),
            x.as_str().into(),
            (*key).into(),
            QueueBindOptions::default(),
            args.clone(),
        )
        .await
        .unwrap();
        queues.push(q);
    }
    (x, queues)
}

async fn cleanup(ch: &Channel, queues: &[String]) {
    for q in queues {
        delete_queue(ch, q).await;
    }
}

/// Which of `queues` received the message published with `key` (in order).
async fn routed_to(ch: &Channel, x: &str, queues: &[String], key: &str) -> Vec<usize> {
    publish(ch, x, key, key.as_bytes()).await;
    let mut hit = Vec::new();
    for (i, q) in queues.iter().enumerate() {
        let got = drain(ch, q).await;
        assert!(got.len() <= 1, "queue {i} got {} copies", got.len());
        if !got.is_empty() {
            hit.push(i);
        }
    }
    hit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_exchange_routes_by_queue_name() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish(&ch, "", &q, b"direct-to-queue").await;
    publish(&ch, "", "no-such-queue", b"dropped").await;
    assert_eq!(drain(&ch, &q).await, bodies(&["direct-to-queue"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exchange_routes_on_exact_key() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let none = FieldTable::default;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Direct,
        &[("red", none()), ("red", none()), ("green", none())],
    )
    .await;
    assert_eq!(routed_to(&ch, &x, &qs, "red").await, vec![0, 1]);
    assert_eq!(routed_to(&ch, &x, &qs, "green").await, vec![2]);
    assert_eq!(routed_to(&ch, &x, &qs, "Red").await, Vec::<usize>::new());
    assert_eq!(routed_to(&ch, &x, &qs, "").await, Vec::<usize>::new());
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bound_twice_gets_one_copy() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (x, qs) = topology(&ch, ExchangeKind::Topic, &[("a.*", FieldTable::default())]).await;
    ch.queue_bind(
        qs[0].as_str().into(),
        x.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    assert_eq!(routed_to(&ch, &x, &qs, "a.b").await, vec![0]);
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_exchange_ignores_the_routing_key() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let none = FieldTable::default;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Fanout,
        &[("a", none()), ("b", none()), ("", none())],
    )
    .await;
    assert_eq!(routed_to(&ch, &x, &qs, "anything").await, vec![0, 1, 2]);
    assert_eq!(routed_to(&ch, &x, &qs, "").await, vec![0, 1, 2]);
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_star_matches_exactly_one_word() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let none = FieldTable::default;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Topic,
        &[
            ("*.orange.*", none()),
            ("*.*.rabbit", none()),
            ("*", none()),
        ],
    )
    .await;
    assert_eq!(
        routed_to(&ch, &x, &qs, "quick.orange.rabbit").await,
        vec![0, 1]
    );
    assert_eq!(
        routed_to(&ch, &x, &qs, "lazy.orange.elephant").await,
        vec![0]
    );
    assert_eq!(routed_to(&ch, &x, &qs, "quick.brown.rabbit").await, vec![1]);
    assert_eq!(routed_to(&ch, &x, &qs, "orange").await, vec![2]);
    assert_eq!(
        routed_to(&ch, &x, &qs, "quick.orange.male.rabbit").await,
        Vec::<usize>::new()
    );
    assert_eq!(
        routed_to(&ch, &x, &qs, "a.orange").await,
        Vec::<usize>::new()
    );
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_hash_matches_zero_or_more_words() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let none = FieldTable::default;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Topic,
        &[
            ("lazy.#", none()),
            ("#.end", none()),
            ("a.#.z", none()),
            ("#", none()),
        ],
    )
    .await;
    assert_eq!(routed_to(&ch, &x, &qs, "lazy").await, vec![0, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "lazy.a.b.c").await, vec![0, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "end").await, vec![1, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "x.y.end").await, vec![1, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "a.z").await, vec![2, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "a.b.c.z").await, vec![2, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "lazy.end").await, vec![0, 1, 3]);
    assert_eq!(routed_to(&ch, &x, &qs, "other").await, vec![3]);
    assert_eq!(routed_to(&ch, &x, &qs, "").await, vec![3]);
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_empty_words_are_words() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let none = FieldTable::default;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Topic,
        &[
            ("a.*.b", none()),
            ("a..b", none()),
            ("*", none()),
            ("*.*", none()),
            ("", none()),
        ],
    )
    .await;
    // "a..b" has an empty middle word: `*` matches it and so does a literal empty word.
    assert_eq!(routed_to(&ch, &x, &qs, "a..b").await, vec![0, 1]);
    assert_eq!(routed_to(&ch, &x, &qs, "a.x.b").await, vec![0]);
    // "." is two empty words; "" is no word at all (RabbitMQ: `*` does not match it).
    assert_eq!(routed_to(&ch, &x, &qs, ".").await, vec![3]);
    assert_eq!(routed_to(&ch, &x, &qs, "").await, vec![4]);
    assert_eq!(routed_to(&ch, &x, &qs, "a.").await, vec![3]);
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_unbind_removes_only_that_pattern() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let none = FieldTable::default;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Topic,
        &[("a.*", none()), ("a.#", none())],
    )
    .await;
    ch.queue_unbind(
        qs[0].as_str().into(),
        x.as_str().into(),
        "a.*".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    assert_eq!(routed_to(&ch, &x, &qs, "a.b").await, vec![1]);
    cleanup(&ch, &qs).await;
}

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.into())
}

/// Publish with `headers`; which queues got it.
async fn headers_routed_to(
    ch: &Channel,
    x: &str,
    queues: &[String],
    headers: FieldTable,
) -> Vec<usize> {
    publish_with(
        ch,
        x,
        "",
        b"h",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    let mut hit = Vec::new();
    for (i, q) in queues.iter().enumerate() {
        let got = drain(ch, q).await;
        assert!(got.len() <= 1);
        if !got.is_empty() {
            hit.push(i);
        }
    }
    hit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_all_needs_every_header_to_match() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Headers,
        &[
            (
                "",
                table(&[
                    ("x-match", s("all")),
                    ("format", s("pdf")),
                    ("type", s("report")),
                ]),
            ),
            // x-match defaults to all.
            ("", table(&[("format", s("pdf"))])),
        ],
    )
    .await;
    let both = table(&[("format", s("pdf")), ("type", s("report"))]);
    assert_eq!(headers_routed_to(&ch, &x, &qs, both).await, vec![0, 1]);
    let one = table(&[("format", s("pdf"))]);
    assert_eq!(headers_routed_to(&ch, &x, &qs, one).await, vec![1]);
    let wrong = table(&[("format", s("zip")), ("type", s("report"))]);
    assert_eq!(
        headers_routed_to(&ch, &x, &qs, wrong).await,
        Vec::<usize>::new()
    );
    assert_eq!(
        headers_routed_to(&ch, &x, &qs, FieldTable::default()).await,
        Vec::<usize>::new()
    );
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_any_needs_one_header_to_match() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Headers,
        &[(
            "",
            table(&[
                ("x-match", s("any")),
                ("format", s("pdf")),
                ("type", s("report")),
            ]),
        )],
    )
    .await;
    let one = table(&[("type", s("report")), ("other", s("x"))]);
    assert_eq!(headers_routed_to(&ch, &x, &qs, one).await, vec![0]);
    let none = table(&[("format", s("zip"))]);
    assert_eq!(
        headers_routed_to(&ch, &x, &qs, none).await,
        Vec::<usize>::new()
    );
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_match_compares_values_by_type() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Headers,
        &[("", table(&[("n", AMQPValue::LongInt(42))]))],
    )
    .await;
    let same = table(&[("n", AMQPValue::LongInt(42))]);
    assert_eq!(headers_routed_to(&ch, &x, &qs, same).await, vec![0]);
    let other = table(&[("n", AMQPValue::LongInt(43))]);
    assert_eq!(
        headers_routed_to(&ch, &x, &qs, other).await,
        Vec::<usize>::new()
    );
    let as_string = table(&[("n", s("42"))]);
    assert_eq!(
        headers_routed_to(&ch, &x, &qs, as_string).await,
        Vec::<usize>::new()
    );
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_any_ignores_x_headers_but_any_with_x_matches_them() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (x, qs) = topology(
        &ch,
        ExchangeKind::Headers,
        &[
            ("", table(&[("x-match", s("any")), ("x-tag", s("t"))])),
            (
                "",
                table(&[("x-match", s("any-with-x")), ("x-tag", s("t"))]),
            ),
            ("", table(&[("x-match", s("all")), ("x-tag", s("t"))])),
            (
                "",
                table(&[("x-match", s("all-with-x")), ("x-tag", s("t"))]),
            ),
        ],
    )
    .await;
    let tagged = table(&[("x-tag", s("t"))]);
    // `all` over no non-x conditions matches everything; `any` over none matches nothing.
    assert_eq!(headers_routed_to(&ch, &x, &qs, tagged).await, vec![1, 2, 3]);
    let untagged = table(&[("x-tag", s("u"))]);
    assert_eq!(headers_routed_to(&ch, &x, &qs, untagged).await, vec![2]);
    cleanup(&ch, &qs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_binding_with_invalid_x_match_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = ch
        .queue_bind(
            q.as_str().into(),
            "amq.headers".into(),
            "".into(),
            QueueBindOptions::default(),
            table(&[("x-match", s("some"))]),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_exchange_routes_through_amq_match() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let key = unique("k");
    ch.queue_bind(
        q.as_str().into(),
        "amq.match".into(),
        "".into(),
        QueueBindOptions::default(),
        table(&[("key", s(&key))]),
    )
    .await
    .unwrap();
    publish_with(
        &ch,
        "amq.match",
        "ignored",
        b"m",
        BasicProperties::default().with_headers(table(&[("key", s(&key))])),
    )
    .await;
    assert_eq!(drain(&ch, &q).await, bodies(&["m"]));
    delete_queue(&ch, &q).await;
}

// ---------------------------------------------------------------- CC and BCC

fn routes(keys: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(
        keys.iter()
            .map(|k| AMQPValue::LongString((*k).into()))
            .collect::<Vec<_>>()
            .into(),
    )
}

/// basic.get one message with acks off; its headers.
async fn get_headers(ch: &Channel, q: &str) -> Option<FieldTable> {
    ch.basic_get(q.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .map(|m| m.delivery.properties.headers().clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_and_bcc_headers_add_routing_keys_and_bcc_is_removed() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (q1, q2, q3) = (
        declare_queue(&ch).await,
        declare_queue(&ch).await,
        declare_queue(&ch).await,
    );
    let mut headers = FieldTable::default();
    // q2 named twice: still one copy.
    headers.insert("CC".into(), routes(&[&q2, &q2]));
    headers.insert("BCC".into(), routes(&[&q3]));
    headers.insert("x".into(), AMQPValue::LongInt(1));
    publish_with(
        &ch,
        "",
        &q1,
        b"m",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    for q in [&q1, &q2, &q3] {
        let got = get_headers(&ch, q).await.expect("a copy in each queue");
        assert!(got.inner().contains_key("CC"), "CC stays");
        assert!(!got.inner().contains_key("BCC"), "BCC is removed");
        assert_eq!(got.inner().get("x"), Some(&AMQPValue::LongInt(1)));
        assert!(get_headers(&ch, q).await.is_none(), "one copy only");
    }
    // Through an exchange: each CC key is routed like the routing key.
    let bound = declare_queue(&ch).await;
    ch.queue_bind(
        bound.as_str().into(),
        "amq.direct".into(),
        "cc-key".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), routes(&["cc-key"]));
    publish_with(
        &ch,
        "amq.direct",
        "no-such-key",
        b"m",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    assert!(get_headers(&ch, &bound).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_that_is_not_an_array_closes_channel_with_406() {
    let env = Env::start();
    let q = declare_queue(&env.connect().await.create_channel().await.unwrap()).await;
    for (value, kind) in [
        (AMQPValue::LongString("q".into()), "longstr"),
        (AMQPValue::LongInt(5), "signedint"),
    ] {
        let mut headers = FieldTable::default();
        headers.insert("CC".into(), value);
        let (conn, ch, result) =
            publish_refused(&env, &q, BasicProperties::default().with_headers(headers)).await;
        assert_eq!(
            error_text(&result),
            format!(
                "PRECONDITION_FAILED - invalid message: {{unacceptable_type_in_header,\"CC\",{kind}}}"
            )
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}
