//! basic.publish: missing exchanges, mandatory returns (and their order against confirms),
//! immediate, and properties / field tables surviving the trip byte for byte.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::raw::{self, RawFrame, frame, method, short};
use core_support::*;
use lapin::options::*;
use lapin::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use lapin::{BasicProperties, Channel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_missing_exchange_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
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
async fn publish_to_missing_exchange_in_confirm_mode_closes_channel_with_404() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            unique("missing").as_str().into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await;
    assert_channel_error(&conn, &ch, confirm, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_unroutable_publish_is_returned_with_312_no_route() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let key = unique("nowhere");
    let props = BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_message_id("id-1".into());
    let confirm = ch
        .basic_publish(
            "amq.direct".into(),
            key.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"returned body",
            props.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    // Unroutable is still confirmed (ack), with the return attached before it.
    assert!(confirm.is_ack());
    let returned = confirm.take_message().expect("basic.return before the ack");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.exchange.as_str(), "amq.direct");
    assert_eq!(returned.delivery.routing_key.as_str(), key);
    assert_eq!(returned.delivery.data, b"returned body");
    assert_eq!(returned.delivery.properties, props);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_return_arrives_before_the_confirm() {
    let env = Env::start();
    let mut c = raw::open(env.addr());
    raw::confirm_select(&mut c);
    let q = unique("q");
    raw::queue_declare(&mut c, &q);
    let key = unique("nowhere");
    // Unroutable, routable, unroutable: returns come before their own ack every time.
    let mut bytes = raw::publish_bytes("", &key, true, &[], b"one");
    bytes.extend(raw::publish_bytes("", &q, true, &[], b"two"));
    bytes.extend(raw::publish_bytes("", &key, true, &[], b"three"));
    c.send(&bytes);
    let mut returns = 0;
    let mut acked_up_to = 0u64;
    while acked_up_to < 3 {
        let f = raw::next_frame(&mut c);
        match f.class_method() {
            Some((60, 50)) => {
                let code = u16::from_be_bytes([f.payload[4], f.payload[5]]);
                assert_eq!(code, 312);
                returns += 1;
                // The returned message's seq is 1 or 3; its ack must not have come yet.
                let seq = if returns == 1 { 1 } else { 3 };
                assert!(
                    acked_up_to < seq,
                    "basic.return for publish {seq} came after its ack"
                );
                let header = raw::next_frame(&mut c);
                assert_eq!(header.frame_type, 2);
                let body = raw::next_frame(&mut c);
                assert_eq!(body.frame_type, 3);
            }
            Some((60, 80)) => {
                let (tag, _multiple) = raw::ack_fields(&f);
                assert!(tag > acked_up_to);
                acked_up_to = tag;
            }
            other => panic!("unexpected frame {other:?}: {f:?}"),
        }
    }
    assert_eq!(returns, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publish_without_mandatory_is_dropped_and_confirmed() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            "amq.direct".into(),
            unique("nowhere").as_str().into(),
            BasicPublishOptions::default(),
            b"dropped",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(confirm.take_message().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_routable_publish_is_not_returned() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(confirm.take_message().is_none());
    assert_eq!(drain(&ch, &q).await, bodies(&["m"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_publish_closes_connection_with_540() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions {
                immediate: true,
                ..BasicPublishOptions::default()
            },
            b"m",
            BasicProperties::default(),
        ),
    )
    .await;
    assert_connection_error(&conn, result, 540).await;
}

/// A headers table with every field type RabbitMQ and lapin both speak.
fn every_field_type() -> FieldTable {
    let mut nested = FieldTable::default();
    nested.insert("inner-int".into(), AMQPValue::LongInt(-7));
    nested.insert("inner-str".into(), AMQPValue::LongString("inner".into()));
    let mut deeper = FieldTable::default();
    deeper.insert("deepest".into(), AMQPValue::Boolean(false));
    nested.insert("deeper".into(), AMQPValue::FieldTable(deeper));
    let array = FieldArray::from(vec![
        AMQPValue::LongInt(1),
        AMQPValue::LongString("two".into()),
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Boolean(true)])),
        AMQPValue::FieldTable(nested.clone()),
        AMQPValue::Void,
    ]);
    let mut t = FieldTable::default();
    let mut put = |k: &str, v: AMQPValue| {
        t.insert(ShortString::from(k), v);
    };
    put("bool-true", AMQPValue::Boolean(true));
    put("bool-false", AMQPValue::Boolean(false));
    put("i8", AMQPValue::ShortShortInt(-128));
    put("u8", AMQPValue::ShortShortUInt(255));
    put("i16", AMQPValue::ShortInt(-32768));
    put("u16", AMQPValue::ShortUInt(65535));
    put("i32", AMQPValue::LongInt(i32::MIN));
    put("u32", AMQPValue::LongUInt(u32::MAX));
    put("i64", AMQPValue::LongLongInt(i64::MIN));
    put("f32", AMQPValue::Float(3.5));
    put("f64", AMQPValue::Double(-1.25e300));
    put(
        "decimal",
        AMQPValue::DecimalValue(DecimalValue {
            scale: 3,
            value: 123_456,
        }),
    );
    put("long-string", AMQPValue::LongString("héllo wörld".into()));
    put(
        "binary-long-string",
        AMQPValue::LongString(LongString::from(vec![0u8, 1, 2, 255])),
    );
    put("array", AMQPValue::FieldArray(array));
    put("empty-array", AMQPValue::FieldArray(FieldArray::default()));
    put("timestamp", AMQPValue::Timestamp(1_700_000_000));
    put("table", AMQPValue::FieldTable(nested));
    put("empty-table", AMQPValue::FieldTable(FieldTable::default()));
    put(
        "bytes",
        AMQPValue::ByteArray(ByteArray::from(vec![0u8, 0xCE, 0xFF, 7])),
    );
    put("void", AMQPValue::Void);
    t
}

/// All 14 basic properties set.
fn every_property() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(every_field_type())
        .with_delivery_mode(2)
        .with_priority(7)
        .with_correlation_id("corr-1".into())
        .with_reply_to("reply-queue".into())
        .with_expiration("600000".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_700_000_001)
        .with_type("kind".into())
        .with_user_id("guest".into())
        .with_app_id("warren-tests".into())
        .with_cluster_id("cluster-1".into())
}

async fn round_trip_via_consume_and_get(ch: &Channel, props: BasicProperties, body: &[u8]) {
    let q = declare_queue(ch).await;
    publish_with(ch, "", &q, body, props.clone()).await;
    publish_with(ch, "", &q, body, props.clone()).await;
    let got = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.properties, props, "basic.get");
    assert_eq!(got.delivery.data, body);
    let mut consumer = consume(ch, &q, true).await;
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.properties, props, "basic.deliver");
    assert_eq!(delivery.data, body);
    delete_queue(ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_basic_properties_survive_a_round_trip() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    round_trip_via_consume_and_get(&ch, every_property(), b"body").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_table_type_survives_a_round_trip() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let props = BasicProperties::default().with_headers(every_field_type());
    round_trip_via_consume_and_get(&ch, props, b"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_properties_and_empty_body_survive_a_round_trip() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    round_trip_via_consume_and_get(&ch, BasicProperties::default(), b"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_larger_than_frame_max_survives_a_round_trip() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    round_trip_via_consume_and_get(&ch, every_property(), &body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_foreign_user_id_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default().with_user_id("mallory".into()),
        ),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

// ---------------------------------------------------------------- byte for byte

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_an_unknown_delivery_mode_closes_channel_with_406() {
    let env = Env::start();
    let q = declare_queue(&env.connect().await.create_channel().await.unwrap()).await;
    for mode in [0u8, 3, 255] {
        let (conn, ch, result) = publish_refused(
            &env,
            &q,
            BasicProperties::default().with_delivery_mode(mode),
        )
        .await;
        assert_eq!(
            error_text(&result),
            format!("PRECONDITION_FAILED - invalid message: {{delivery_mode_unknown,{mode}}}")
        );
        assert_channel_error(&conn, &ch, result, 406).await;
    }
}

fn sstr(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn lstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// A field table on the wire with every RabbitMQ type tag, nested.
fn raw_table(depth: u8) -> Vec<u8> {
    let mut e = Vec::new();
    let mut field = |key: &str, tag: u8, value: &[u8]| {
        sstr(&mut e, key);
        e.push(tag);
        e.extend_from_slice(value);
    };
    field("t", b't', &[1]);
    field("b", b'b', &[0x80]);
    field("B", b'B', &[0xFF]);
    field("s", b's', &(-2i16).to_be_bytes());
    field("u", b'u', &0xFFFEu16.to_be_bytes());
    field("I", b'I', &(-3i32).to_be_bytes());
    field("i", b'i', &0xFFFF_FFFDu32.to_be_bytes());
    field("l", b'l', &(-4i64).to_be_bytes());
    field("f", b'f', &1.5f32.to_be_bytes());
    field("d", b'd', &(-2.75f64).to_be_bytes());
    let mut decimal = vec![2u8];
    decimal.extend_from_slice(&31_415u32.to_be_bytes());
    field("D", b'D', &decimal);
    let mut long = Vec::new();
    lstr(&mut long, b"long \x00 string");
    field("S", b'S', &long);
    field("T", b'T', &1_700_000_002u64.to_be_bytes());
    let mut bytes = Vec::new();
    lstr(&mut bytes, &[0xCE, 0, 1]);
    field("x", b'x', &bytes);
    field("V", b'V', &[]);
    // An array of one of each simple kind plus a nested array.
    let mut items = vec![b'I'];
    items.extend_from_slice(&5i32.to_be_bytes());
    items.push(b'S');
    lstr(&mut items, b"in-array");
    items.push(b'V');
    items.push(b'A');
    lstr(&mut items, &[b't', 0]);
    let mut array = Vec::new();
    lstr(&mut array, &items);
    field("A", b'A', &array);
    if depth > 0 {
        field("F", b'F', &raw_table(depth - 1));
    }
    let mut out = Vec::new();
    lstr(&mut out, &e);
    out
}

/// Flags with all 14 properties, then the property list.
fn raw_properties() -> Vec<u8> {
    let mut p = 0xFFFCu16.to_be_bytes().to_vec();
    sstr(&mut p, "text/plain");
    sstr(&mut p, "identity");
    p.extend(raw_table(3));
    p.push(1); // delivery mode
    p.push(9); // priority
    sstr(&mut p, "correlation");
    sstr(&mut p, "reply-to");
    sstr(&mut p, "600000");
    sstr(&mut p, "message-id");
    p.extend_from_slice(&1_700_000_003u64.to_be_bytes());
    sstr(&mut p, "type");
    sstr(&mut p, "guest");
    sstr(&mut p, "app");
    sstr(&mut p, "cluster");
    p
}

fn read_content(c: &mut raw::RawClient) -> (RawFrame, Vec<u8>) {
    let header = raw::next_frame(c);
    assert_eq!(header.frame_type, 2, "content header");
    let mut size = [0u8; 8];
    size.copy_from_slice(&header.payload[4..12]);
    let size = u64::from_be_bytes(size) as usize;
    let mut body = Vec::new();
    while body.len() < size {
        let f = raw::next_frame(c);
        assert_eq!(f.frame_type, 3, "content body");
        body.extend(f.payload);
    }
    (header, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_header_is_delivered_byte_for_byte() {
    let env = Env::start();
    let addr = env.addr();
    tokio::task::spawn_blocking(move || {
        let mut c = raw::open(addr);
        let q = unique("q");
        raw::queue_declare(&mut c, &q);
        let props = raw_properties();
        let body = b"exact body";
        c.send(&raw::publish_bytes("", &q, false, &props, body));
        c.send(&raw::publish_bytes("", &q, false, &props, body));
        let expected = raw::header_payload(body.len() as u64, &props);

        // basic.get
        let mut get = 0u16.to_be_bytes().to_vec();
        get.extend(short(&q));
        get.push(1); // no-ack
        let ok = raw::call(&mut c, 60, 70, &get);
        assert_eq!(ok.class_method(), Some((60, 71)), "basic.get-ok: {ok:?}");
        let (header, got) = read_content(&mut c);
        assert_eq!(header.payload, expected, "basic.get header bytes");
        assert_eq!(got, body);

        // basic.consume
        let mut consume = 0u16.to_be_bytes().to_vec();
        consume.extend(short(&q));
        consume.extend(short("ctag"));
        consume.push(0b0010); // no-ack
        consume.extend_from_slice(&0u32.to_be_bytes());
        c.send(&frame(1, 1, &method(60, 20, &consume)));
        let ok = raw::next_frame(&mut c);
        assert_eq!(ok.class_method(), Some((60, 21)), "basic.consume-ok");
        let deliver = raw::next_frame(&mut c);
        assert_eq!(deliver.class_method(), Some((60, 60)), "basic.deliver");
        let (header, got) = read_content(&mut c);
        assert_eq!(header.payload, expected, "basic.deliver header bytes");
        assert_eq!(got, body);
    })
    .await
    .unwrap();
}
