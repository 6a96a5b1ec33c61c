//! What 100,000 held messages cost: disk, not RAM. A separate test binary from
//! `delayed_messages.rs`, so that its publishing load never runs beside the timing test
//! there. Needs the binary: `cargo build --workspace --bins`.

#![allow(clippy::unwrap_used)]

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use warren_integration::BinaryBroker;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn delayed_by(ms: i64) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-delay".into(), AMQPValue::LongLongInt(ms));
    BasicProperties::default().with_headers(headers)
}

/// VmRSS of `pid` in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// 100,000 held messages of 1 KiB cost disk, not RAM: the broker's RSS grows by far less
/// than the 100 MiB they weigh (the store's memtables and block cache are bounded). Not a
/// timed test; prints the figures.
#[test]
fn a_hundred_thousand_held_messages_do_not_grow_rss_by_their_size() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let broker = BinaryBroker::spawn(&dir.path().join("data"));
    let url = broker.url();
    let n = 100_000u32;
    let (before, half, after) = rt.block_on(async {
        let conn = warren_integration::connect(&url).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut args = FieldTable::default();
        args.insert(
            "x-delayed-type".into(),
            AMQPValue::LongString("direct".into()),
        );
        ch.exchange_declare(
            "dx-rss".into(),
            ExchangeKind::Custom("x-delayed-message".into()),
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
        let q = "dq-rss";
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
        ch.queue_bind(
            q.into(),
            "dx-rss".into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        // Warm up the paths (first allocations, RocksDB's first files) before measuring.
        for _ in 0..1_000 {
            ch.basic_publish(
                "dx-rss".into(),
                "k".into(),
                BasicPublishOptions::default(),
                &[7u8; 1024],
                delayed_by(3_600_000).with_delivery_mode(2),
            )
            .await
            .unwrap();
        }
        assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "a nack");
        let before = rss(broker.pid());
        let mut half = 0;
        for i in 0..n {
            ch.basic_publish(
                "dx-rss".into(),
                "k".into(),
                BasicPublishOptions::default(),
                &[7u8; 1024],
                delayed_by(3_600_000 + i64::from(i % 1000)).with_delivery_mode(2),
            )
            .await
            .unwrap();
            if i % 5_000 == 4_999 {
                assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "a nack");
                if i + 1 == n / 2 {
                    half = rss(broker.pid());
                }
            }
        }
        assert!(ch.wait_for_confirms().await.unwrap().is_empty(), "a nack");
        (before, half, rss(broker.pid()))
    });
    let grew = after.saturating_sub(before);
    let second_half = after.saturating_sub(half);
    println!(
        "100k held messages of 1 KiB: RSS {} MiB -> {} MiB at 50k -> {} MiB at 100k (+{} MiB; +{} MiB for the second 50k)",
        before >> 20,
        half >> 20,
        after >> 20,
        grew >> 20,
        second_half >> 20
    );
    // The store's memory is bounded (memtables, block cache): what growth there is comes
    // early and does not go on with the count. Held in RAM, the second 50k alone would add
    // over 50 MiB; the bound leaves room for a memtable filling between the two samples.
    assert!(
        grew < 48 << 20,
        "RSS grew by {} MiB for 100 MiB of held messages",
        grew >> 20
    );
    assert!(
        second_half < 24 << 20,
        "RSS grew by {} MiB for the second 50 MiB of held messages",
        second_half >> 20
    );
    broker.kill();
}
