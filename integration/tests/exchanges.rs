//! exchange.declare / delete / bind / unbind, predeclared exchanges, exchange-to-exchange
//! bindings, alternate and internal exchanges; every reply code RabbitMQ gives for them.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

async fn declare_exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

fn passive() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predeclared_exchanges_exist_with_their_types() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        ch.exchange_declare(name.into(), kind, passive(), FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Each routes as its type says.
    let q = declare_queue(&ch).await;
    bind(&ch, &q, "amq.direct", "k").await;
    bind(&ch, &q, "amq.fanout", "ignored").await;
    bind(&ch, &q, "amq.topic", "a.*").await;
    publish(&ch, "amq.direct", "k", b"direct").await;
    publish(&ch, "amq.fanout", "anything", b"fanout").await;
    publish(&ch, "amq.topic", "a.b", b"topic").await;
    publish(&ch, "amq.topic", "a.b.c", b"no-match").await;
    assert_eq!(
        drain(&ch, &q).await,
        vec![b"direct".to_vec(), b"fanout".to_vec(), b"topic".to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_then_passive_declare_then_delete_exchange() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let x = unique("x");
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    // Passive ignores the type and flags.
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Topic,
        passive(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // Redeclaring with the same type and flags is a no-op.
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let result = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            passive(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(reply_code(result), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_missing_exchange_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_declare(
            unique("missing").as_str().into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_type_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let x = unique("x");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let result = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_flags_closes_channel_with_406() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let x = unique("x");
    declare_exchange(&setup, &x, ExchangeKind::Direct).await;
    for options in [
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        },
        ExchangeDeclareOptions {
            internal: true,
            ..ExchangeDeclareOptions::default()
        },
    ] {
        let ch = conn.create_channel().await.unwrap();
        let result = ch
            .exchange_declare(
                x.as_str().into(),
                ExchangeKind::Direct,
                options,
                FieldTable::default(),
            )
            .await;
        assert_channel_error(&conn, &ch, result, 406).await;
    }
    setup
        .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_with_unknown_type_closes_connection_with_503() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_declare(
            unique("x").as_str().into(),
            ExchangeKind::Custom("x-no-such-type".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_connection_error(&conn, result, 503).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_with_reserved_amq_prefix_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_declare(
            "amq.foo".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_redeclare_of_predeclared_exchange_succeeds() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.exchange_declare(
        "amq.direct".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_of_predeclared_exchange_with_other_type_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_declare(
            "amq.direct".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_predeclared_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_delete("amq.fanout".into(), ExchangeDeleteOptions::default())
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_missing_exchange_succeeds() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.exchange_delete(
        unique("missing").as_str().into(),
        ExchangeDeleteOptions::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_of_exchange_with_bindings_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let x = unique("x");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "k").await;
    let result = ch
        .exchange_delete(
            x.as_str().into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..ExchangeDeleteOptions::default()
            },
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
    // Still there; unused once unbound.
    let ch = conn.create_channel().await.unwrap();
    ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_delete(
        x.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..ExchangeDeleteOptions::default()
        },
    )
    .await
    .unwrap();
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_of_exchange_without_bindings_deletes_it() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let x = unique("x");
    declare_exchange(&ch, &x, ExchangeKind::Topic).await;
    ch.exchange_delete(
        x.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..ExchangeDeleteOptions::default()
        },
    )
    .await
    .unwrap();
    let result = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Topic,
            passive(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(reply_code(result), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_exchange_removes_its_bindings() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let x = unique("x");
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "").await;
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    // A new exchange of the same name starts without the old binding.
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    publish(&ch, &x, "", b"m").await;
    assert!(drain(&ch, &q).await.is_empty());
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bind_to_default_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = ch
        .queue_bind(
            q.as_str().into(),
            "".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_unbind_from_default_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = ch
        .queue_unbind(
            q.as_str().into(),
            "".into(),
            q.as_str().into(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_bind_with_default_exchange_closes_channel_with_403() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let x = unique("x");
    declare_exchange(&setup, &x, ExchangeKind::Direct).await;
    // As destination and as source.
    for (dest, src) in [("", x.as_str()), (x.as_str(), "")] {
        let ch = conn.create_channel().await.unwrap();
        let result = ch
            .exchange_bind(
                dest.into(),
                src.into(),
                "k".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        assert_channel_error(&conn, &ch, result, 403).await;
    }
    let ch = conn.create_channel().await.unwrap();
    let result = ch
        .exchange_unbind(
            "".into(),
            x.as_str().into(),
            "k".into(),
            ExchangeUnbindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
    setup
        .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_bind_with_missing_exchange_closes_channel_with_404() {
    let env = Env::start();
    let conn = env.connect().await;
    let setup = conn.create_channel().await.unwrap();
    let x = unique("x");
    declare_exchange(&setup, &x, ExchangeKind::Direct).await;
    let missing = unique("missing");
    for (dest, src) in [
        (missing.as_str(), x.as_str()),
        (x.as_str(), missing.as_str()),
    ] {
        let ch = conn.create_channel().await.unwrap();
        let result = ch
            .exchange_bind(
                dest.into(),
                src.into(),
                "k".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        assert_channel_error(&conn, &ch, result, 404).await;
    }
    setup
        .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_bind_routes_through_and_unbind_stops_it() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let src = unique("src");
    let dst = unique("dst");
    declare_exchange(&ch, &src, ExchangeKind::Topic).await;
    declare_exchange(&ch, &dst, ExchangeKind::Direct).await;
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &dst, "a.b").await;
    ch.exchange_bind(
        dst.as_str().into(),
        src.as_str().into(),
        "a.*".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &src, "a.b", b"through").await;
    publish(&ch, &src, "a.c", b"dst-drops").await; // matches a.* but dst has no a.c
    publish(&ch, &src, "b.b", b"src-drops").await;
    assert_eq!(drain(&ch, &q).await, vec![b"through".to_vec()]);
    ch.exchange_unbind(
        dst.as_str().into(),
        src.as_str().into(),
        "a.*".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &src, "a.b", b"after-unbind").await;
    assert!(drain(&ch, &q).await.is_empty());
    for x in [&src, &dst] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbinding_what_was_never_bound_succeeds() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let x = unique("x");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let q = declare_queue(&ch).await;
    ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "never".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_unbind(
        "amq.direct".into(),
        x.as_str().into(),
        "never".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_binding_cycle_delivers_once_per_queue() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let a = unique("a");
    let b = unique("b");
    let c = unique("c");
    for x in [&a, &b, &c] {
        declare_exchange(&ch, x, ExchangeKind::Fanout).await;
    }
    // a -> b -> c -> a, and the queues hang off every one of them.
    for (dst, src) in [(&b, &a), (&c, &b), (&a, &c)] {
        ch.exchange_bind(
            dst.as_str().into(),
            src.as_str().into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let q1 = declare_queue(&ch).await;
    let q2 = declare_queue(&ch).await;
    for x in [&a, &b, &c] {
        bind(&ch, &q1, x, "").await;
    }
    bind(&ch, &q2, &c, "").await;
    publish(&ch, &a, "k", b"once").await;
    publish(&ch, &b, "k", b"twice").await;
    assert_eq!(
        drain(&ch, &q1).await,
        vec![b"once".to_vec(), b"twice".to_vec()]
    );
    assert_eq!(
        drain(&ch, &q2).await,
        vec![b"once".to_vec(), b"twice".to_vec()]
    );
    for x in [&a, &b, &c] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

fn alternate(ae: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(ae.into()),
    );
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_message_goes_to_the_alternate_exchange() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let ae = unique("ae");
    let x = unique("x");
    declare_exchange(&ch, &ae, ExchangeKind::Fanout).await;
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        alternate(&ae),
    )
    .await
    .unwrap();
    let routed = declare_queue(&ch).await;
    let unrouted = declare_queue(&ch).await;
    bind(&ch, &routed, &x, "k").await;
    bind(&ch, &unrouted, &ae, "").await;
    publish(&ch, &x, "k", b"routed").await;
    publish(&ch, &x, "other", b"unrouted").await;
    assert_eq!(drain(&ch, &routed).await, vec![b"routed".to_vec()]);
    assert_eq!(drain(&ch, &unrouted).await, vec![b"unrouted".to_vec()]);
    for e in [&x, &ae] {
        ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_publish_routed_by_alternate_exchange_is_not_returned() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let ae = unique("ae");
    let x = unique("x");
    declare_exchange(&ch, &ae, ExchangeKind::Fanout).await;
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        alternate(&ae),
    )
    .await
    .unwrap();
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &ae, "").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            x.as_str().into(),
            "nowhere".into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"m",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(confirm.take_message().is_none(), "message was returned");
    assert_eq!(drain(&ch, &q).await, vec![b"m".to_vec()]);
    for e in [&x, &ae] {
        ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_alternate_exchange_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let x = unique("x");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        alternate("ae-1"),
    )
    .await
    .unwrap();
    let result = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            alternate("ae-2"),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_internal_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let x = unique("internal");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_publish(
            x.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            b"m",
            lapin::BasicProperties::default(),
        ),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_exchange_still_routes_from_a_bound_exchange() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let front = unique("front");
    let internal = unique("internal");
    declare_exchange(&ch, &front, ExchangeKind::Direct).await;
    ch.exchange_declare(
        internal.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_bind(
        internal.as_str().into(),
        front.as_str().into(),
        "k".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &internal, "").await;
    publish(&ch, &front, "k", b"via-front").await;
    assert_eq!(drain(&ch, &q).await, vec![b"via-front".to_vec()]);
    for e in [&front, &internal] {
        ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delete_exchange_goes_when_its_last_binding_goes() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let x = unique("x");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = declare_queue(&ch).await;
    bind(&ch, &q, &x, "k").await;
    ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let result = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(reply_code(result), 404);
}

// RabbitMQ (checked against 3.10): unbinding what is not bound succeeds even when either
// exchange does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_unbind_with_missing_exchange_succeeds() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let missing = unique("missing");
    for (dest, src) in [
        (missing.as_str(), "amq.direct"),
        ("amq.direct", missing.as_str()),
    ] {
        ch.exchange_unbind(
            dest.into(),
            src.into(),
            "k".into(),
            ExchangeUnbindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_of_the_default_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_declare(
            "".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

// RabbitMQ refuses even a passive declare of the default exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declare_of_the_default_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_declare(
            "".into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_the_default_exchange_closes_channel_with_403() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .exchange_delete("".into(), ExchangeDeleteOptions::default())
        .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_exchanges_and_bindings_survive_a_restart_transient_ones_do_not() {
    let env = Env::start();
    let durable_x = unique("durable-x");
    let transient_x = unique("transient-x");
    let q = unique("durable-q");
    {
        let (conn, ch) = env.channel().await;
        for (x, durable) in [(&durable_x, true), (&transient_x, false)] {
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        bind(&ch, &q, &durable_x, "a.#").await;
        ch.exchange_bind(
            durable_x.as_str().into(),
            "amq.fanout".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }
    let Some(env) = env.restart() else {
        return; // external broker
    };
    let (_conn, ch) = env.channel().await;
    ch.exchange_declare(
        durable_x.as_str().into(),
        ExchangeKind::Topic,
        passive(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &durable_x, "a.b", b"direct").await;
    publish(&ch, "amq.fanout", "a.c", b"via-e2e").await;
    publish(&ch, &durable_x, "b", b"unmatched").await;
    assert_eq!(drain(&ch, &q).await, bodies(&["direct", "via-e2e"]));
    let result = ch
        .exchange_declare(
            transient_x.as_str().into(),
            ExchangeKind::Topic,
            passive(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(reply_code(result), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_exchange_exists_and_is_internal() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    ch.exchange_declare(
        "amq.rabbitmq.trace".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            internal: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = declare_queue(&ch).await;
    bind(&ch, &q, "amq.rabbitmq.trace", "#").await;
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_publish(
            "amq.rabbitmq.trace".into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"m",
            lapin::BasicProperties::default(),
        ),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_predeclared_exchange_names_it_as_a_system_exchange() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let result = ch
        .exchange_delete("amq.direct".into(), ExchangeDeleteOptions::default())
        .await;
    assert_eq!(
        error_text(&result),
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_of_an_exchange_that_is_only_a_binding_destination_deletes_it() {
    // RabbitMQ counts only the bindings whose source is the exchange.
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let (source, destination) = (unique("src"), unique("dst"));
    declare_exchange(&ch, &source, ExchangeKind::Fanout).await;
    declare_exchange(&ch, &destination, ExchangeKind::Fanout).await;
    ch.exchange_bind(
        destination.as_str().into(),
        source.as_str().into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_delete(
        destination.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..ExchangeDeleteOptions::default()
        },
    )
    .await
    .unwrap();
    // The source is unused now: its binding to the deleted exchange went with it.
    ch.exchange_delete(
        source.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..ExchangeDeleteOptions::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_with_different_alternate_exchange_names_both_values() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let x = unique("x");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        alternate("ae-1"),
    )
    .await
    .unwrap();
    let result = ch
        .exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            alternate("ae-2"),
        )
        .await;
    assert_eq!(
        error_text(&result),
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '{x}' in vhost '/': received 'ae-2' but current is 'ae-1'"
        )
    );
}
