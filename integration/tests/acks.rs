//! basic.ack / nack / reject (single and multiple), requeue to the original position,
//! unknown delivery tags, and basic.recover.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::Channel;
use lapin::options::*;

async fn publish_n(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

/// basic.get (with acks) of every ready message: tags in order.
async fn get_all(ch: &Channel, queue: &str) -> Vec<u64> {
    let mut tags = Vec::new();
    while let Some((tag, _, _, _)) = get(ch, queue).await {
        tags.push(tag);
    }
    tags
}

/// Every ready message as (body, redelivered), taken with no-ack.
async fn contents(ch: &Channel, queue: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push((
            String::from_utf8(m.delivery.data).unwrap(),
            m.delivery.redelivered,
        ));
    }
    out
}

fn expect(items: &[(&str, bool)]) -> Vec<(String, bool)> {
    items.iter().map(|(s, r)| (s.to_string(), *r)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_removes_the_message() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    assert_count(&ch, &q, 2).await;
    let tags = get_all(&ch, &q).await;
    ch.basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    ch.close(200, "bye".into()).await.unwrap();
    // Only the unacked one comes back.
    let (_conn, ch) = env.channel().await;
    assert_eq!(contents(&ch, &q).await, expect(&[("m1", true)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_multiple_acks_every_tag_up_to_and_including() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 5).await;
    assert_count(&ch, &q, 5).await;
    let tags = get_all(&ch, &q).await;
    assert_eq!(tags.len(), 5);
    ch.basic_ack(tags[1], BasicAckOptions::default())
        .await
        .unwrap();
    // Acks tags[0] and tags[2]; tags[1] is already settled.
    ch.basic_ack(tags[2], BasicAckOptions { multiple: true })
        .await
        .unwrap();
    ch.close(200, "bye".into()).await.unwrap();
    let (_conn, ch) = env.channel().await;
    assert_eq!(
        contents(&ch, &q).await,
        expect(&[("m3", true), ("m4", true)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_multiple_with_tag_zero_acks_everything_outstanding() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    assert_count(&ch, &q, 3).await;
    get_all(&ch, &q).await;
    ch.basic_ack(0, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    ch.close(200, "bye".into()).await.unwrap();
    let (_conn, ch) = env.channel().await;
    assert!(contents(&ch, &q).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_multiple_without_requeue_drops_the_messages() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 4).await;
    assert_count(&ch, &q, 4).await;
    let tags = get_all(&ch, &q).await;
    ch.basic_nack(
        tags[2],
        BasicNackOptions {
            multiple: true,
            requeue: false,
        },
    )
    .await
    .unwrap();
    ch.close(200, "bye".into()).await.unwrap();
    let (_conn, ch) = env.channel().await;
    assert_eq!(contents(&ch, &q).await, expect(&[("m3", true)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_multiple_with_requeue_returns_them_in_order() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    assert_count(&ch, &q, 3).await;
    let tags = get_all(&ch, &q).await;
    publish(&ch, "", &q, b"later").await;
    ch.basic_nack(
        tags[2],
        BasicNackOptions {
            multiple: true,
            requeue: true,
        },
    )
    .await
    .unwrap();
    assert_count(&ch, &q, 4).await;
    assert_eq!(
        contents(&ch, &q).await,
        expect(&[("m0", true), ("m1", true), ("m2", true), ("later", false)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_without_requeue_drops_the_message() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    assert_count(&ch, &q, 2).await;
    let (tag, _, _, _) = get(&ch, &q).await.unwrap();
    ch.basic_reject(tag, BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    assert_eq!(contents(&ch, &q).await, expect(&[("m1", false)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_returns_a_message_to_its_original_position_marked_redelivered() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 5).await;
    assert_count(&ch, &q, 5).await;
    let tags = get_all(&ch, &q).await; // m0..m4 unacked
    publish(&ch, "", &q, b"m5").await;
    // Requeue out of order, with a reject, a nack and a single one acked / dropped.
    ch.basic_reject(tags[3], BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    ch.basic_reject(tags[1], BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    ch.basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    ch.basic_nack(
        tags[4],
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    )
    .await
    .unwrap();
    ch.basic_nack(
        tags[2],
        BasicNackOptions {
            multiple: false,
            requeue: false,
        },
    )
    .await
    .unwrap();
    assert_count(&ch, &q, 4).await;
    assert_eq!(
        contents(&ch, &q).await,
        expect(&[("m1", true), ("m3", true), ("m4", true), ("m5", false)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_message_is_redelivered_to_a_consumer_before_newer_ones() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut c = consume(&consumer_ch, &q, false).await;
    let d = next(&mut c).await;
    assert_eq!((d.data.as_slice(), d.redelivered), (&b"m0"[..], false));
    consumer_ch
        .basic_reject(d.delivery_tag, BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    let d = next(&mut c).await;
    assert_eq!((d.data.as_slice(), d.redelivered), (&b"m0"[..], true));
    consumer_ch
        .basic_ack(d.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    let d = next(&mut c).await;
    assert_eq!((d.data.as_slice(), d.redelivered), (&b"m1"[..], false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_of_an_unknown_delivery_tag_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = then_sync(&conn, &ch, ch.basic_ack(42, BasicAckOptions::default())).await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_of_an_already_acked_delivery_tag_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    assert_count(&ch, &q, 2).await;
    let tags = get_all(&ch, &q).await;
    ch.basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_ack(tags[0], BasicAckOptions::default()),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
    // The close requeued the other one.
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(contents(&ch, &q).await, expect(&[("m1", true)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_and_nack_of_an_unknown_delivery_tag_close_channel_with_406() {
    let env = Env::start();
    let conn = env.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_reject(7, BasicRejectOptions { requeue: true }),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
    let ch = conn.create_channel().await.unwrap();
    let result = then_sync(&conn, &ch, ch.basic_nack(7, BasicNackOptions::default())).await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_multiple_beyond_the_last_delivery_tag_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    assert_count(&ch, &q, 2).await;
    get_all(&ch, &q).await; // tags 1 and 2
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_ack(5, BasicAckOptions { multiple: true }),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_of_a_no_ack_delivery_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 1).await;
    let mut c = consume(&ch, &q, true).await;
    let d = next(&mut c).await;
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default()),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_with_requeue_redelivers_unacked_messages() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    let consumer_ch = env.connect().await.create_channel().await.unwrap();
    let mut c = consume(&consumer_ch, &q, false).await;
    let first = next(&mut c).await;
    let second = next(&mut c).await;
    assert!(!first.redelivered && !second.redelivered);
    consumer_ch
        .basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    let again = [next(&mut c).await, next(&mut c).await];
    let mut got: Vec<(Vec<u8>, bool)> = again
        .iter()
        .map(|d| (d.data.clone(), d.redelivered))
        .collect();
    got.sort();
    assert_eq!(got, vec![(b"m0".to_vec(), true), (b"m1".to_vec(), true)]);
    // The new tags are new: the old ones are gone.
    for d in &again {
        assert!(d.delivery_tag > second.delivery_tag);
        consumer_ch
            .basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await
            .unwrap();
    }
    assert_count(&ch, &q, 0).await;
    consumer_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_multiple_naming_an_already_acked_tag_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    assert_count(&ch, &q, 3).await;
    let tags = get_all(&ch, &q).await;
    ch.basic_ack(tags[1], BasicAckOptions::default())
        .await
        .unwrap();
    // tags[0] is still outstanding, but the tag named must be too.
    let result = then_sync(
        &conn,
        &ch,
        ch.basic_ack(tags[1], BasicAckOptions { multiple: true }),
    )
    .await;
    assert_channel_error(&conn, &ch, result, 406).await;
    // Nothing was acked by the refused ack: both come back.
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(
        contents(&ch, &q).await,
        expect(&[("m0", true), ("m2", true)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_without_requeue_closes_connection_with_540() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .basic_recover(BasicRecoverOptions { requeue: false })
        .await;
    assert_connection_error(&conn, result, 540).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_deliveries_of_a_deleted_queue_is_allowed() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    publish_n(&ch, &q, 3).await;
    assert_count(&ch, &q, 3).await;
    let tags = get_all(&ch, &q).await;
    let other = conn.create_channel().await.unwrap();
    other
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    ch.basic_reject(tags[1], BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    ch.basic_nack(tags[2], BasicNackOptions::default())
        .await
        .unwrap();
    // The channel is still open and the queue stays deleted.
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let result = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await;
    assert_eq!(reply_code(result), 404);
}
