//! confirm.select: every publish confirmed exactly once, acks coalesced, the tx/confirm
//! exclusion, and delivery tags never reused on a channel.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::collections::HashSet;

use core_support::raw;
use core_support::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

/// Publish `n` messages to `queue` on a raw channel with confirms and read every
/// basic.ack / basic.nack. Returns (acks seen, how many had multiple=true).
fn publish_and_count_confirms(
    addr: std::net::SocketAddr,
    queue: &str,
    n: u64,
    delivery_mode: u8,
) -> (u64, u64) {
    let mut c = raw::open(addr);
    raw::confirm_select(&mut c);
    let mut reader = raw::RawClient {
        stream: c.stream.try_clone().unwrap(),
    };
    let props = {
        let mut p = 0x1000u16.to_be_bytes().to_vec(); // delivery-mode only
        p.push(delivery_mode);
        p
    };
    let queue_name = queue.to_owned();
    let writer = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend(raw::publish_bytes(
                "",
                &queue_name,
                false,
                &props,
                format!("m{i}").as_bytes(),
            ));
            if batch.len() > 64 * 1024 {
                c.send(&batch);
                batch.clear();
            }
        }
        c.send(&batch);
        c
    });
    let mut confirmed = vec![false; n as usize + 1];
    let mut highest = 0u64; // every seq <= highest is confirmed
    let mut acks = 0u64;
    let mut multiples = 0u64;
    while highest < n {
        let f = raw::next_frame(&mut reader);
        match f.class_method() {
            Some((60, 80)) => {
                let (tag, multiple) = raw::ack_fields(&f);
                acks += 1;
                assert!(tag >= 1 && tag <= n, "ack for unknown seq {tag}");
                if multiple {
                    multiples += 1;
                    let newly = (1..=tag).filter(|s| !confirmed[*s as usize]).count();
                    assert!(newly > 0, "multiple ack {tag} confirmed nothing new");
                    for s in 1..=tag {
                        confirmed[s as usize] = true;
                    }
                } else {
                    assert!(!confirmed[tag as usize], "seq {tag} confirmed twice");
                    confirmed[tag as usize] = true;
                }
                while highest < n && confirmed[highest as usize + 1] {
                    highest += 1;
                }
            }
            Some((60, 120)) => panic!("basic.nack: {f:?}"),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let _c = writer.join().unwrap();
    (acks, multiples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_is_confirmed_exactly_once_and_acks_are_coalesced() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    let addr = env.addr();
    let queue = q.clone();
    let (acks, multiples) =
        tokio::task::spawn_blocking(move || publish_and_count_confirms(addr, &queue, 10_000, 1))
            .await
            .unwrap();
    assert!(
        multiples > 0,
        "no basic.ack with multiple=true in {acks} acks"
    );
    assert!(
        acks < 10_000,
        "acks not coalesced: {acks} for 10000 publishes"
    );
    assert_count(&ch, &q, 10_000).await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_publishes_to_a_durable_queue_are_each_confirmed_once() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = unique("durable");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let addr = env.addr();
    let queue = q.clone();
    let (_acks, multiples) =
        tokio::task::spawn_blocking(move || publish_and_count_confirms(addr, &queue, 5_000, 2))
            .await
            .unwrap();
    assert!(multiples > 0, "fsynced confirms not coalesced");
    assert_count(&ch, &q, 5_000).await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_sees_every_one_of_10k_publishes_acked() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    let q = declare_queue(&ch).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::with_capacity(10_000);
    for i in 0..10_000u32 {
        confirms.push(
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap(),
        );
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
    assert!(ch.wait_for_confirms().await.unwrap().is_empty());
    assert!(ch.status().connected());
    assert_count(&ch, &q, 10_000).await;
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_select_on_a_transactional_channel_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    ch.tx_select().await.unwrap();
    let result = ch.confirm_select(ConfirmSelectOptions::default()).await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_select_on_a_confirm_channel_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let result = ch.tx_select().await;
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_select_twice_is_allowed() {
    let env = Env::start();
    let (_conn, ch) = env.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let q = declare_queue(&ch).await;
    let confirm = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_sequence_numbers_start_at_one_and_count_every_publish() {
    let env = Env::start();
    let addr = env.addr();
    tokio::task::spawn_blocking(move || {
        let mut c = raw::open(addr);
        let q = unique("q");
        raw::queue_declare(&mut c, &q);
        // Publishes before confirm.select are not numbered.
        c.send(&raw::publish_bytes("", &q, false, &[], b"before"));
        raw::confirm_select(&mut c);
        // Routed, unroutable and unroutable-mandatory publishes all take a number.
        let nowhere = unique("nowhere");
        let mut bytes = raw::publish_bytes("", &q, false, &[], b"1");
        bytes.extend(raw::publish_bytes("", &nowhere, false, &[], b"2"));
        bytes.extend(raw::publish_bytes("", &nowhere, true, &[], b"3"));
        bytes.extend(raw::publish_bytes("amq.fanout", "", false, &[], b"4"));
        c.send(&bytes);
        let mut confirmed = [false; 5];
        while !confirmed[1..].iter().all(|c| *c) {
            let f = raw::next_frame(&mut c);
            match f.class_method() {
                Some((60, 80)) => {
                    let (tag, multiple) = raw::ack_fields(&f);
                    assert!(
                        (1..=4).contains(&tag),
                        "ack {tag} is not one of the 4 numbered publishes"
                    );
                    if multiple {
                        confirmed[1..=tag as usize].fill(true);
                    } else {
                        assert!(!confirmed[tag as usize], "seq {tag} confirmed twice");
                        confirmed[tag as usize] = true;
                    }
                }
                Some((60, 50)) => {
                    raw::next_frame(&mut c);
                    raw::next_frame(&mut c);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .unwrap();
}

/// Every delivery tag a channel hands out, by every route, is new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_tags_are_never_reused_on_a_channel() {
    let env = Env::start();
    let (_conn, publisher) = env.channel().await;
    let consumer_conn = env.connect().await;
    let ch = consumer_conn.create_channel().await.unwrap();
    let q = declare_queue(&publisher).await;
    for i in 0..6u8 {
        publish(&publisher, "", &q, &[i]).await;
    }
    assert_count(&publisher, &q, 6).await;
    let mut tags: Vec<u64> = Vec::new();
    // basic.get, then reject with requeue: the redelivery gets a new tag.
    let (t1, _, _, _) = get(&ch, &q).await.unwrap();
    tags.push(t1);
    ch.basic_reject(t1, BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    let (t2, body, redelivered, _) = get(&ch, &q).await.unwrap();
    assert_eq!((body, redelivered), (vec![0], true));
    tags.push(t2);
    ch.basic_ack(t2, BasicAckOptions::default()).await.unwrap();
    // A consumer, a nack with requeue, a recover, a cancel and a new consumer.
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let mut c = consume(&ch, &q, false).await;
    let d1 = next(&mut c).await;
    let d2 = next(&mut c).await;
    tags.extend([d1.delivery_tag, d2.delivery_tag]);
    ch.basic_nack(
        d1.delivery_tag,
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    )
    .await
    .unwrap();
    let d3 = next(&mut c).await;
    tags.push(d3.delivery_tag);
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    let d4 = next(&mut c).await;
    let d5 = next(&mut c).await;
    tags.extend([d4.delivery_tag, d5.delivery_tag]);
    ch.basic_cancel(c.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    ch.basic_nack(
        0,
        BasicNackOptions {
            multiple: true,
            requeue: true,
        },
    )
    .await
    .unwrap();
    let mut c = consume(&ch, &q, true).await;
    for _ in 0..5 {
        tags.push(next(&mut c).await.delivery_tag);
    }
    let unique_tags: HashSet<u64> = tags.iter().copied().collect();
    assert_eq!(unique_tags.len(), tags.len(), "a tag was reused: {tags:?}");
    let mut sorted = tags.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, tags, "tags not increasing: {tags:?}");
}

/// Each channel numbers its deliveries from 1 on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_tags_are_per_channel() {
    let env = Env::start();
    let conn = env.connect().await;
    let a = conn.create_channel().await.unwrap();
    let b = conn.create_channel().await.unwrap();
    let q = declare_queue(&a).await;
    for i in 0..4u8 {
        publish(&a, "", &q, &[i]).await;
    }
    assert_count(&a, &q, 4).await;
    let first_a = get(&a, &q).await.unwrap().0;
    let first_b = get(&b, &q).await.unwrap().0;
    let second_a = get(&a, &q).await.unwrap().0;
    assert_eq!((first_a, first_b, second_a), (1, 1, 2));
}
