//! Policies and operator policies applied to queues and exchanges, as RabbitMQ 3.10 does:
//! set through `Broker::set_policy` (the HTTP API's path, not built yet), matched by
//! pattern, apply-to and priority, merged with operator policies (the lower limit wins)
//! and with the queue's own arguments, and applied to live queues at once (a lower
//! `max-length` drops the head now). Validation errors carry RabbitMQ's texts.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::sync::Arc;

use core_support::{consume, next, unique, wait_until};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use serde_json::{Value, json};
use warren_broker::access::{PolicyKind, PolicyRecord};
use warren_broker::{Broker, PolicyError, Queue};
use warren_integration::TestBroker;

fn record(pattern: &str, apply_to: &str, priority: i64, definition: Value) -> PolicyRecord {
    PolicyRecord {
        pattern: pattern.into(),
        apply_to: apply_to.into(),
        priority,
        definition: definition.as_object().cloned().unwrap(),
    }
}

fn set(broker: &Broker, name: &str, kind: PolicyKind, policy: PolicyRecord) {
    broker.set_policy("/", name, kind, policy).unwrap();
}

/// `^name$`, for a policy that matches one object.
fn only(name: &str) -> String {
    format!("^{}$", regex_escape(name))
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".+*?()|[]{}^$\\".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

async fn channel(broker: &TestBroker) -> (Connection, Channel) {
    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
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

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// Publish `bodies` to `queue` through the default exchange, each confirmed.
async fn publish_all(ch: &Channel, queue: &str, bodies: &[&str], persistent: bool) {
    ch.confirm_select(Default::default()).await.unwrap();
    for body in bodies {
        let props = if persistent {
            BasicProperties::default().with_delivery_mode(2)
        } else {
            BasicProperties::default()
        };
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "publish of {body} not acked");
    }
}

/// Ready messages, as a passive declare reports them.
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

/// Take every ready message (acked), oldest first.
async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    out
}

fn queue(broker: &Broker, name: &str) -> Arc<Queue> {
    broker
        .vhost("/")
        .unwrap()
        .queues()
        .into_iter()
        .find(|q| &**q.name() == name)
        .unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_max_length_applies_to_a_new_queue() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-new");
    set(
        b.broker(),
        "cap",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"max-length": 2})),
    );
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3", "4"], false).await;
    assert_eq!(count(&ch, &q).await, 2);
    assert_eq!(drain(&ch, &q).await, strings(&["3", "4"]));
    let view = queue(b.broker(), &q).policy_view();
    assert_eq!(view.policy.as_deref(), Some("cap"));
    assert_eq!(view.operator_policy, None);
    assert_eq!(
        Value::Object(view.effective_policy_definition),
        json!({"max-length": 2})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_max_length_drops_head_on_live_queue() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-live");
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3", "4", "5"], false).await;
    assert_eq!(count(&ch, &q).await, 5);
    set(
        b.broker(),
        "cap",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"max-length": 2})),
    );
    // Dropped when the policy is set, not at the next publish.
    assert_eq!(count(&ch, &q).await, 2);
    assert_eq!(drain(&ch, &q).await, strings(&["4", "5"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_of_argument_and_policy_max_length_wins() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-min");
    declare(
        &ch,
        &q,
        false,
        table(&[("x-max-length", AMQPValue::LongInt(3))]),
    )
    .await;
    set(
        b.broker(),
        "loose",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"max-length": 5})),
    );
    publish_all(&ch, &q, &["1", "2", "3", "4", "5", "6"], false).await;
    assert_eq!(
        count(&ch, &q).await,
        3,
        "the argument's 3 is lower than the policy's 5"
    );
    set(
        b.broker(),
        "loose",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"max-length": 1})),
    );
    assert_eq!(
        count(&ch, &q).await,
        1,
        "the policy's 1 is lower than the argument's 3"
    );
    assert_eq!(drain(&ch, &q).await, strings(&["6"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_policy_caps_a_policys_max_length() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-op");
    set(
        b.broker(),
        "generous",
        PolicyKind::Policy,
        record(
            &only(&q),
            "queues",
            0,
            json!({"max-length": 10, "overflow": "drop-head"}),
        ),
    );
    set(
        b.broker(),
        "cap",
        PolicyKind::OperatorPolicy,
        record(
            &only(&q),
            "queues",
            0,
            json!({"max-length": 2, "message-ttl": 600000}),
        ),
    );
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3", "4"], false).await;
    assert_eq!(count(&ch, &q).await, 2);
    let view = queue(b.broker(), &q).policy_view();
    assert_eq!(view.policy.as_deref(), Some("generous"));
    assert_eq!(view.operator_policy.as_deref(), Some("cap"));
    assert_eq!(
        Value::Object(view.effective_policy_definition),
        json!({"max-length": 2, "overflow": "drop-head", "message-ttl": 600000})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_policy_wins_and_only_one_applies() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-prio");
    set(
        b.broker(),
        "low",
        PolicyKind::Policy,
        record(
            &only(&q),
            "all",
            1,
            json!({"max-length": 1, "message-ttl": 600000}),
        ),
    );
    set(
        b.broker(),
        "high",
        PolicyKind::Policy,
        record("^pol-prio", "queues", 2, json!({"max-length": 3})),
    );
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3", "4"], false).await;
    assert_eq!(
        count(&ch, &q).await,
        3,
        "the higher-priority policy's limit applies"
    );
    let view = queue(b.broker(), &q).policy_view();
    assert_eq!(view.policy.as_deref(), Some("high"));
    // Only one policy applies: nothing of the lower one's definition.
    assert_eq!(
        Value::Object(view.effective_policy_definition),
        json!({"max-length": 3})
    );
    b.broker()
        .clear_policy("/", "high", PolicyKind::Policy)
        .unwrap();
    assert_eq!(
        count(&ch, &q).await,
        1,
        "the other policy applies once the first is cleared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_applying_to_exchanges_leaves_queues_alone() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-ex");
    set(
        b.broker(),
        "ex-only",
        PolicyKind::Policy,
        record(".*", "exchanges", 0, json!({"max-length": 1})),
    );
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3"], false).await;
    assert_eq!(count(&ch, &q).await, 3);
    assert_eq!(queue(b.broker(), &q).policy_view().policy, None);
    let vhost = b.broker().vhost("/").unwrap();
    // Every exchange matches, the default and amq.* ones included (as in RabbitMQ).
    for name in ["", "amq.direct", "amq.topic"] {
        let view = vhost.exchange(name).unwrap().policy_view();
        assert_eq!(view.policy.as_deref(), Some("ex-only"), "exchange '{name}'");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_policy_restores_the_queues_own_arguments() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-clear");
    declare(
        &ch,
        &q,
        false,
        table(&[("x-max-length", AMQPValue::LongInt(3))]),
    )
    .await;
    set(
        b.broker(),
        "tight",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"max-length": 1})),
    );
    publish_all(&ch, &q, &["1", "2"], false).await;
    assert_eq!(count(&ch, &q).await, 1);
    b.broker()
        .clear_policy("/", "tight", PolicyKind::Policy)
        .unwrap();
    publish_all(&ch, &q, &["3", "4", "5", "6"], false).await;
    assert_eq!(count(&ch, &q).await, 3, "back to the argument's limit");
    let view = queue(b.broker(), &q).policy_view();
    assert_eq!(view.policy, None);
    assert!(view.effective_policy_definition.is_empty());
    assert!(matches!(
        b.broker().clear_policy("/", "tight", PolicyKind::Policy),
        Err(PolicyError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_message_ttl_expires_messages() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-ttl");
    declare(&ch, &q, false, FieldTable::default()).await;
    set(
        b.broker(),
        "ttl",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"message-ttl": 50})),
    );
    publish_all(&ch, &q, &["1", "2"], false).await;
    let live = queue(b.broker(), &q);
    // The queue's own timer drops them; no client touches the queue meanwhile.
    assert!(
        wait_until(|| live.message_count() == 0).await,
        "messages did not expire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_dead_letter_exchange_receives_rejected_messages() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let (q, dlx, dlq) = (unique("pol-src"), unique("pol-dlx"), unique("pol-dlq"));
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(&ch, &dlq, false, FieldTable::default()).await;
    ch.queue_bind(
        dlq.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["dead"], false).await;
    // Set on the live queue, used by its next dead letter.
    set(
        b.broker(),
        "dlx",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"dead-letter-exchange": dlx})),
    );
    let m = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .unwrap();
    ch.basic_reject(
        m.delivery.delivery_tag,
        BasicRejectOptions { requeue: false },
    )
    .await
    .unwrap();
    let mut consumer = consume(&ch, &dlq, false).await;
    let d = next(&mut consumer).await;
    assert_eq!(d.data, b"dead");
    let headers = d.properties.headers().clone().unwrap();
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("no x-death: {headers:?}");
    };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
        panic!("empty x-death");
    };
    assert_eq!(
        death.inner().get("reason"),
        Some(&AMQPValue::LongString("rejected".into()))
    );
    d.ack(BasicAckOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_alternate_exchange_takes_unroutable_messages() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let (src, ae, aeq) = (unique("pol-ae-src"), unique("pol-ae"), unique("pol-aeq"));
    for (name, kind) in [(&src, ExchangeKind::Direct), (&ae, ExchangeKind::Fanout)] {
        ch.exchange_declare(
            name.as_str().into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    declare(&ch, &aeq, false, FieldTable::default()).await;
    ch.queue_bind(
        aeq.as_str().into(),
        ae.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let publish = |body: &'static [u8]| {
        let ch = ch.clone();
        let src = src.clone();
        async move {
            ch.basic_publish(
                src.as_str().into(),
                "nowhere".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap();
        }
    };
    publish(b"before").await;
    set(
        b.broker(),
        "ae",
        PolicyKind::Policy,
        record(
            &only(&src),
            "exchanges",
            0,
            json!({"alternate-exchange": ae}),
        ),
    );
    publish(b"after").await;
    let mut consumer = consume(&ch, &aeq, true).await;
    assert_eq!(
        next(&mut consumer).await.data,
        b"after",
        "only the publish after the policy reaches the AE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_policies_are_refused_with_rabbitmq_texts() {
    let b = TestBroker::start();
    let broker = b.broker();
    let refused = |name: &str, kind: PolicyKind, policy: PolicyRecord| match broker
        .set_policy("/", name, kind, policy)
    {
        Err(e @ PolicyError::Invalid(_)) => e.management_reason(),
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert_eq!(
        refused(
            "p1",
            PolicyKind::Policy,
            record(".*", "all", 0, json!({"foo": 1}))
        ),
        "Validation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings\n"
    );
    assert_eq!(
        refused(
            "p1",
            PolicyKind::Policy,
            record("(", "all", 0, json!({"max-length": 1}))
        ),
        "Validation failed\n\npattern should be regular expression but is invalid: {\"missing )\",1}\n"
    );
    assert_eq!(
        refused(
            "p1",
            PolicyKind::Policy,
            record(".*", "all", 0, json!({"max-length": -1}))
        ),
        "Validation failed\n\n-1 is not a valid maximum length\n"
    );
    assert_eq!(
        refused(
            "p1",
            PolicyKind::OperatorPolicy,
            record(".*", "all", 0, json!({"overflow": "drop-head"}))
        ),
        "Validation failed\n\n[{<<\"overflow\">>,<<\"drop-head\">>}] are not recognised policy settings\n"
    );
    assert!(
        broker.access().read(|s| s.policies.is_empty()),
        "a refused policy was stored"
    );
    assert!(matches!(
        broker.set_policy(
            "no-such-vhost",
            "p",
            PolicyKind::Policy,
            record(".*", "all", 0, json!({"max-length": 1}))
        ),
        Err(PolicyError::NoSuchVhost(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_expires_deletes_an_unused_queue() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-expires");
    declare(&ch, &q, false, FieldTable::default()).await;
    set(
        b.broker(),
        "exp",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"expires": 100})),
    );
    let vhost = b.broker().vhost("/").unwrap();
    assert!(
        wait_until(|| !vhost.has_queue(&q)).await,
        "queue not deleted by the policy's expires"
    );
}

#[test]
fn policies_apply_to_recovered_queues_after_a_restart() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = unique("pol-restart");
    rt.block_on(async {
        let (conn, ch) = channel(&b).await;
        declare(&ch, &q, true, FieldTable::default()).await;
        publish_all(&ch, &q, &["1", "2", "3"], true).await;
        let _ = conn.close(200, "bye".into()).await;
    });
    // Stored in the registry; the queue trims at once.
    set(
        b.broker(),
        "cap",
        PolicyKind::Policy,
        record(&only(&q), "queues", 0, json!({"max-length": 2})),
    );
    let b = b.restart();
    assert_eq!(
        queue(b.broker(), &q).policy_view().policy.as_deref(),
        Some("cap")
    );
    rt.block_on(async {
        let (_conn, ch) = channel(&b).await;
        assert_eq!(count(&ch, &q).await, 2);
        publish_all(&ch, &q, &["4"], true).await;
        assert_eq!(
            count(&ch, &q).await,
            2,
            "the policy's limit holds after recovery"
        );
        assert_eq!(drain(&ch, &q).await, strings(&["3", "4"]));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowering_max_length_dead_letters_the_excess_at_once() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let (q, dlx, dlq) = (
        unique("pol-trim"),
        unique("pol-trim-dlx"),
        unique("pol-trim-dlq"),
    );
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(&ch, &dlq, false, FieldTable::default()).await;
    ch.queue_bind(
        dlq.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3", "4"], false).await;
    // One policy sets both: the dead-letter exchange takes the messages the new limit drops.
    set(
        b.broker(),
        "trim",
        PolicyKind::Policy,
        record(
            &only(&q),
            "queues",
            0,
            json!({"max-length": 1, "dead-letter-exchange": dlx}),
        ),
    );
    assert_eq!(count(&ch, &q).await, 1);
    let target = queue(b.broker(), &dlq);
    assert!(
        wait_until(|| target.message_count() == 3).await,
        "the dropped head messages were not dead-lettered"
    );
    assert_eq!(drain(&ch, &dlq).await, strings(&["1", "2", "3"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_policies_apply_to_existing_queues() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    let q = unique("pol-import");
    declare(&ch, &q, false, FieldTable::default()).await;
    publish_all(&ch, &q, &["1", "2", "3"], false).await;
    let doc = json!({
        "policies": [{"vhost": "/", "name": "imported", "pattern": only(&q),
                      "apply-to": "queues", "priority": 0, "definition": {"max-length": 1}}]
    });
    let defs = warren_broker::Definitions::parse(doc.to_string().as_bytes()).unwrap();
    b.broker().import_definitions(&defs).unwrap();
    assert_eq!(count(&ch, &q).await, 1);
    assert_eq!(
        queue(b.broker(), &q).policy_view().policy.as_deref(),
        Some("imported")
    );
    // An invalid policy fails the import, as in RabbitMQ, and changes nothing.
    let bad = json!({
        "policies": [{"vhost": "/", "name": "bad", "pattern": ".*",
                      "apply-to": "queues", "priority": 0, "definition": {"max-length": -1}}]
    });
    let defs = warren_broker::Definitions::parse(bad.to_string().as_bytes()).unwrap();
    let error = b
        .broker()
        .import_definitions(&defs)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("-1 is not a valid maximum length"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_server_named_queues_are_matched_too() {
    let b = TestBroker::start();
    let (_conn, ch) = channel(&b).await;
    set(
        b.broker(),
        "gen",
        PolicyKind::Policy,
        record("^amq\\.gen-", "queues", 0, json!({"max-length": 1})),
    );
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .to_string();
    publish_all(&ch, &q, &["1", "2", "3"], false).await;
    assert_eq!(count(&ch, &q).await, 1);
    assert_eq!(
        queue(b.broker(), &q).policy_view().policy.as_deref(),
        Some("gen")
    );
}
