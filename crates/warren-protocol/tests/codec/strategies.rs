//! Proptest generators: short strings up to the 255-byte limit, field values of every
//! type amq-protocol can read back (nested tables and arrays included), basic
//! properties, and every method of AMQP 0-9-1.

use amq_protocol::types::{ByteArray, DecimalValue};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::Union;
use warren_protocol::{
    AMQPClass, AMQPValue, BasicProperties, FieldTable, LongString, ShortString, basic, channel,
    confirm, connection, exchange, queue, tx,
};

/// `s` cut to at most `max` bytes on a char boundary.
fn truncate_to(mut s: String, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Any UTF-8 short string: mostly short, sometimes right at the 255-byte limit.
pub fn short_string() -> impl Strategy<Value = ShortString> {
    prop_oneof![
        4 => "(?s).{0,24}",
        1 => "(?s).{0,255}",
        1 => "[a-z]{255}",
    ]
    .prop_map(|s| ShortString::from(truncate_to(s, 255)))
}

/// Any long string (raw bytes, not necessarily UTF-8).
pub fn long_string() -> impl Strategy<Value = LongString> {
    vec(any::<u8>(), 0..300).prop_map(LongString::from)
}

/// Floats that compare equal to themselves (NaN != NaN would fail any equality check).
fn f32_not_nan() -> impl Strategy<Value = f32> {
    use proptest::num::f32::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

fn f64_not_nan() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

/// Scalar field values of every type that survives amq-protocol's encoding.
///
/// `AMQPValue::ShortString` is left out on purpose: amq-protocol writes it with type
/// tag `_`, which neither it nor RabbitMQ can read (see
/// `round_trip::short_string_field_values_cannot_be_decoded`).
fn scalar_value() -> impl Strategy<Value = AMQPValue> {
    let numbers = prop_oneof![
        any::<bool>().prop_map(AMQPValue::Boolean),
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u8>().prop_map(AMQPValue::ShortShortUInt),
        any::<i16>().prop_map(AMQPValue::ShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i32>().prop_map(AMQPValue::LongInt),
        any::<u32>().prop_map(AMQPValue::LongUInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        f32_not_nan().prop_map(AMQPValue::Float),
        f64_not_nan().prop_map(AMQPValue::Double),
    ];
    let others = prop_oneof![
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        long_string().prop_map(AMQPValue::LongString),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        vec(any::<u8>(), 0..64).prop_map(|b| AMQPValue::ByteArray(ByteArray::from(b))),
        Just(AMQPValue::Void),
    ];
    prop_oneof![2 => numbers, 1 => others]
}

/// Any field value, tables and arrays nested up to four levels.
pub fn field_value() -> impl Strategy<Value = AMQPValue> {
    scalar_value().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(|v| AMQPValue::FieldArray(v.into())),
            btree_map(short_string(), inner, 0..6)
                .prop_map(|m| AMQPValue::FieldTable(FieldTable::from(m))),
        ]
    })
}

/// Any field table (keys are a `BTreeMap`'s, so their order is canonical).
pub fn field_table() -> impl Strategy<Value = FieldTable> {
    btree_map(short_string(), field_value(), 0..8).prop_map(FieldTable::from)
}

/// Any basic properties, each property present or not.
pub fn properties() -> impl Strategy<Value = BasicProperties> {
    let strings = (
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
    );
    let others = (
        proptest::option::of(field_table()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u64>()),
    );
    (strings, others).prop_map(
        |(
            (
                content_type,
                encoding,
                correlation,
                reply_to,
                expiration,
                id,
                kind,
                user,
                app,
                cluster,
            ),
            (headers, mode, priority, timestamp),
        )| {
            let mut p = BasicProperties::default();
            let set =
                |p: BasicProperties,
                 v: Option<ShortString>,
                 f: fn(BasicProperties, ShortString) -> BasicProperties| match v {
                    Some(v) => f(p, v),
                    None => p,
                };
            p = set(p, content_type, BasicProperties::with_content_type);
            p = set(p, encoding, BasicProperties::with_content_encoding);
            p = set(p, correlation, BasicProperties::with_correlation_id);
            p = set(p, reply_to, BasicProperties::with_reply_to);
            p = set(p, expiration, BasicProperties::with_expiration);
            p = set(p, id, BasicProperties::with_message_id);
            p = set(p, kind, BasicProperties::with_type);
            p = set(p, user, BasicProperties::with_user_id);
            p = set(p, app, BasicProperties::with_app_id);
            p = set(p, cluster, BasicProperties::with_cluster_id);
            if let Some(h) = headers {
                p = p.with_headers(h);
            }
            if let Some(m) = mode {
                p = p.with_delivery_mode(m);
            }
            if let Some(pr) = priority {
                p = p.with_priority(pr);
            }
            if let Some(t) = timestamp {
                p = p.with_timestamp(t);
            }
            p
        },
    )
}

/// Any `basic.deliver`.
pub fn deliver() -> impl Strategy<Value = basic::Deliver> {
    (
        short_string(),
        any::<u64>(),
        any::<bool>(),
        short_string(),
        short_string(),
    )
        .prop_map(
            |(consumer_tag, delivery_tag, redelivered, exchange, routing_key)| basic::Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
            },
        )
}

type Boxed = BoxedStrategy<AMQPClass>;

fn conn(m: impl Strategy<Value = connection::AMQPMethod> + 'static) -> Boxed {
    m.prop_map(AMQPClass::Connection).boxed()
}
fn chan(m: impl Strategy<Value = channel::AMQPMethod> + 'static) -> Boxed {
    m.prop_map(AMQPClass::Channel).boxed()
}
fn exch(m: impl Strategy<Value = exchange::AMQPMethod> + 'static) -> Boxed {
    m.prop_map(AMQPClass::Exchange).boxed()
}
fn queue(m: impl Strategy<Value = queue::AMQPMethod> + 'static) -> Boxed {
    m.prop_map(AMQPClass::Queue).boxed()
}
fn basic(m: impl Strategy<Value = basic::AMQPMethod> + 'static) -> Boxed {
    m.prop_map(AMQPClass::Basic).boxed()
}

fn close_args() -> impl Strategy<Value = (u16, ShortString, u16, u16)> {
    (any::<u16>(), short_string(), any::<u16>(), any::<u16>())
}

fn connection_methods() -> Vec<Boxed> {
    use connection::{AMQPMethod as M, *};
    vec![
        conn(
            (
                any::<u8>(),
                any::<u8>(),
                field_table(),
                long_string(),
                long_string(),
            )
                .prop_map(
                    |(version_major, version_minor, server_properties, mechanisms, locales)| {
                        M::Start(Start {
                            version_major,
                            version_minor,
                            server_properties,
                            mechanisms,
                            locales,
                        })
                    },
                ),
        ),
        conn(
            (field_table(), short_string(), long_string(), short_string()).prop_map(
                |(client_properties, mechanism, response, locale)| {
                    M::StartOk(StartOk {
                        client_properties,
                        mechanism,
                        response,
                        locale,
                    })
                },
            ),
        ),
        conn(long_string().prop_map(|challenge| M::Secure(Secure { challenge }))),
        conn(long_string().prop_map(|response| M::SecureOk(SecureOk { response }))),
        conn((any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(channel_max, frame_max, heartbeat)| {
                M::Tune(Tune {
                    channel_max,
                    frame_max,
                    heartbeat,
                })
            },
        )),
        conn((any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(channel_max, frame_max, heartbeat)| {
                M::TuneOk(TuneOk {
                    channel_max,
                    frame_max,
                    heartbeat,
                })
            },
        )),
        conn(short_string().prop_map(|virtual_host| M::Open(Open { virtual_host }))),
        conn(Just(M::OpenOk(OpenOk {}))),
        conn(
            close_args().prop_map(|(reply_code, reply_text, class_id, method_id)| {
                M::Close(Close {
                    reply_code,
                    reply_text,
                    class_id,
                    method_id,
                })
            }),
        ),
        conn(Just(M::CloseOk(CloseOk {}))),
        conn(short_string().prop_map(|reason| M::Blocked(Blocked { reason }))),
        conn(Just(M::Unblocked(Unblocked {}))),
        conn(
            (long_string(), short_string()).prop_map(|(new_secret, reason)| {
                M::UpdateSecret(UpdateSecret { new_secret, reason })
            }),
        ),
        conn(Just(M::UpdateSecretOk(UpdateSecretOk {}))),
    ]
}

fn channel_methods() -> Vec<Boxed> {
    use channel::{AMQPMethod as M, *};
    vec![
        chan(Just(M::Open(Open {}))),
        chan(Just(M::OpenOk(OpenOk {}))),
        chan(any::<bool>().prop_map(|active| M::Flow(Flow { active }))),
        chan(any::<bool>().prop_map(|active| M::FlowOk(FlowOk { active }))),
        chan(
            close_args().prop_map(|(reply_code, reply_text, class_id, method_id)| {
                M::Close(Close {
                    reply_code,
                    reply_text,
                    class_id,
                    method_id,
                })
            }),
        ),
        chan(Just(M::CloseOk(CloseOk {}))),
    ]
}

fn exchange_methods() -> Vec<Boxed> {
    use exchange::{AMQPMethod as M, *};
    let bind_args = || {
        (
            short_string(),
            short_string(),
            short_string(),
            any::<bool>(),
            field_table(),
        )
    };
    vec![
        exch(
            (
                short_string(),
                short_string(),
                any::<[bool; 5]>(),
                field_table(),
            )
                .prop_map(
                    |(
                        exchange,
                        kind,
                        [passive, durable, auto_delete, internal, nowait],
                        arguments,
                    )| {
                        M::Declare(Declare {
                            exchange,
                            kind,
                            passive,
                            durable,
                            auto_delete,
                            internal,
                            nowait,
                            arguments,
                        })
                    },
                ),
        ),
        exch(Just(M::DeclareOk(DeclareOk {}))),
        exch((short_string(), any::<bool>(), any::<bool>()).prop_map(
            |(exchange, if_unused, nowait)| {
                M::Delete(Delete {
                    exchange,
                    if_unused,
                    nowait,
                })
            },
        )),
        exch(Just(M::DeleteOk(DeleteOk {}))),
        exch(
            bind_args().prop_map(|(destination, source, routing_key, nowait, arguments)| {
                M::Bind(Bind {
                    destination,
                    source,
                    routing_key,
                    nowait,
                    arguments,
                })
            }),
        ),
        exch(Just(M::BindOk(BindOk {}))),
        exch(
            bind_args().prop_map(|(destination, source, routing_key, nowait, arguments)| {
                M::Unbind(Unbind {
                    destination,
                    source,
                    routing_key,
                    nowait,
                    arguments,
                })
            }),
        ),
        exch(Just(M::UnbindOk(UnbindOk {}))),
    ]
}

fn queue_methods() -> Vec<Boxed> {
    use queue::{AMQPMethod as M, *};
    vec![
        queue(
            (short_string(), any::<[bool; 5]>(), field_table()).prop_map(
                |(queue, [passive, durable, exclusive, auto_delete, nowait], arguments)| {
                    M::Declare(Declare {
                        queue,
                        passive,
                        durable,
                        exclusive,
                        auto_delete,
                        nowait,
                        arguments,
                    })
                },
            ),
        ),
        queue((short_string(), any::<u32>(), any::<u32>()).prop_map(
            |(queue, message_count, consumer_count)| {
                M::DeclareOk(DeclareOk {
                    queue,
                    message_count,
                    consumer_count,
                })
            },
        )),
        queue(
            (
                short_string(),
                short_string(),
                short_string(),
                any::<bool>(),
                field_table(),
            )
                .prop_map(|(queue, exchange, routing_key, nowait, arguments)| {
                    M::Bind(Bind {
                        queue,
                        exchange,
                        routing_key,
                        nowait,
                        arguments,
                    })
                }),
        ),
        queue(Just(M::BindOk(BindOk {}))),
        queue(
            (
                short_string(),
                short_string(),
                short_string(),
                field_table(),
            )
                .prop_map(|(queue, exchange, routing_key, arguments)| {
                    M::Unbind(Unbind {
                        queue,
                        exchange,
                        routing_key,
                        arguments,
                    })
                }),
        ),
        queue(Just(M::UnbindOk(UnbindOk {}))),
        queue(
            (short_string(), any::<bool>())
                .prop_map(|(queue, nowait)| M::Purge(Purge { queue, nowait })),
        ),
        queue(any::<u32>().prop_map(|message_count| M::PurgeOk(PurgeOk { message_count }))),
        queue((short_string(), any::<[bool; 3]>()).prop_map(
            |(queue, [if_unused, if_empty, nowait])| {
                M::Delete(Delete {
                    queue,
                    if_unused,
                    if_empty,
                    nowait,
                })
            },
        )),
        queue(any::<u32>().prop_map(|message_count| M::DeleteOk(DeleteOk { message_count }))),
    ]
}

fn basic_methods() -> Vec<Boxed> {
    use basic::{AMQPMethod as M, *};
    vec![
        basic(
            (any::<u16>(), any::<bool>()).prop_map(|(prefetch_count, global)| {
                M::Qos(Qos {
                    prefetch_count,
                    global,
                })
            }),
        ),
        basic(Just(M::QosOk(QosOk {}))),
        basic(
            (
                short_string(),
                short_string(),
                any::<[bool; 4]>(),
                field_table(),
            )
                .prop_map(
                    |(queue, consumer_tag, [no_local, no_ack, exclusive, nowait], arguments)| {
                        M::Consume(Consume {
                            queue,
                            consumer_tag,
                            no_local,
                            no_ack,
                            exclusive,
                            nowait,
                            arguments,
                        })
                    },
                ),
        ),
        basic(short_string().prop_map(|consumer_tag| M::ConsumeOk(ConsumeOk { consumer_tag }))),
        basic(
            (short_string(), any::<bool>()).prop_map(|(consumer_tag, nowait)| {
                M::Cancel(Cancel {
                    consumer_tag,
                    nowait,
                })
            }),
        ),
        basic(short_string().prop_map(|consumer_tag| M::CancelOk(CancelOk { consumer_tag }))),
        basic(
            (short_string(), short_string(), any::<bool>(), any::<bool>()).prop_map(
                |(exchange, routing_key, mandatory, immediate)| {
                    M::Publish(Publish {
                        exchange,
                        routing_key,
                        mandatory,
                        immediate,
                    })
                },
            ),
        ),
        basic(
            (any::<u16>(), short_string(), short_string(), short_string()).prop_map(
                |(reply_code, reply_text, exchange, routing_key)| {
                    M::Return(Return {
                        reply_code,
                        reply_text,
                        exchange,
                        routing_key,
                    })
                },
            ),
        ),
        basic(deliver().prop_map(M::Deliver)),
        basic(
            (short_string(), any::<bool>())
                .prop_map(|(queue, no_ack)| M::Get(Get { queue, no_ack })),
        ),
        basic(
            (
                any::<u64>(),
                any::<bool>(),
                short_string(),
                short_string(),
                any::<u32>(),
            )
                .prop_map(
                    |(delivery_tag, redelivered, exchange, routing_key, message_count)| {
                        M::GetOk(GetOk {
                            delivery_tag,
                            redelivered,
                            exchange,
                            routing_key,
                            message_count,
                        })
                    },
                ),
        ),
        basic(Just(M::GetEmpty(GetEmpty {}))),
        basic(
            (any::<u64>(), any::<bool>()).prop_map(|(delivery_tag, multiple)| {
                M::Ack(Ack {
                    delivery_tag,
                    multiple,
                })
            }),
        ),
        basic(
            (any::<u64>(), any::<bool>()).prop_map(|(delivery_tag, requeue)| {
                M::Reject(Reject {
                    delivery_tag,
                    requeue,
                })
            }),
        ),
        basic(any::<bool>().prop_map(|requeue| M::RecoverAsync(RecoverAsync { requeue }))),
        basic(any::<bool>().prop_map(|requeue| M::Recover(Recover { requeue }))),
        basic(Just(M::RecoverOk(RecoverOk {}))),
        basic((any::<u64>(), any::<bool>(), any::<bool>()).prop_map(
            |(delivery_tag, multiple, requeue)| {
                M::Nack(Nack {
                    delivery_tag,
                    multiple,
                    requeue,
                })
            },
        )),
    ]
}

fn confirm_and_tx_methods() -> Vec<Boxed> {
    use AMQPClass::{Confirm, Tx};
    vec![
        any::<bool>()
            .prop_map(|nowait| Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait })))
            .boxed(),
        Just(Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {}))).boxed(),
        Just(Tx(tx::AMQPMethod::Select(tx::Select {}))).boxed(),
        Just(Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {}))).boxed(),
        Just(Tx(tx::AMQPMethod::Commit(tx::Commit {}))).boxed(),
        Just(Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {}))).boxed(),
        Just(Tx(tx::AMQPMethod::Rollback(tx::Rollback {}))).boxed(),
        Just(Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {}))).boxed(),
    ]
}

/// Every method of AMQP 0-9-1 with arbitrary arguments, each equally likely.
pub fn any_method() -> impl Strategy<Value = AMQPClass> {
    let mut all = connection_methods();
    all.extend(channel_methods());
    all.extend(exchange_methods());
    all.extend(queue_methods());
    all.extend(basic_methods());
    all.extend(confirm_and_tx_methods());
    Union::new(all)
}

/// How many distinct methods [`any_method`] draws from.
pub fn method_count() -> usize {
    connection_methods().len()
        + channel_methods().len()
        + exchange_methods().len()
        + queue_methods().len()
        + basic_methods().len()
        + confirm_and_tx_methods().len()
}
