//! Tutorial 4, "Routing": bind a fresh exclusive queue to `direct_logs` once per severity
//! given on the command line, and print what arrives.
//!
//! Usage: `tut4_routing_receive_logs_direct [info] [warning] [error]`.
//! Exits after `EXPECTED_MESSAGES` messages (default 1; 0 = forever).

use futures::StreamExt;
use lapin::{ExchangeKind, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let severities: Vec<String> = std::env::args().skip(1).collect();
    if severities.is_empty() {
        eprintln!("Usage: tut4_routing_receive_logs_direct [info] [warning] [error]");
        std::process::exit(1);
    }
    let expected = warren_examples::expected_messages();
    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .exchange_declare(
            "direct_logs".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await?;
    for severity in &severities {
        channel
            .queue_bind(
                queue.name().clone(),
                "direct_logs".into(),
                severity.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    println!(" [*] Waiting for messages. To exit press CTRL+C");

    let mut received = 0;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        println!(
            " [x] Received '{}':'{}'",
            delivery.routing_key,
            String::from_utf8_lossy(&delivery.data)
        );
        received += 1;
        if expected == Some(received) {
            break;
        }
    }

    connection.close(200, "Bye".into()).await
}
