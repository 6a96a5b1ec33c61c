//! Tutorial 6, "RPC": answer `fib(n)` requests from `rpc_queue`, replying to each
//! request's `reply_to` queue with its `correlation_id`.
//!
//! Exits after `EXPECTED_MESSAGES` requests (default 1; 0 = forever).

use futures::StreamExt;
use lapin::{BasicProperties, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let expected = warren_examples::expected_messages();
    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .queue_declare(
            "rpc_queue".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_purge("rpc_queue".into(), QueuePurgeOptions::default())
        .await?;
    channel.basic_qos(1, BasicQosOptions::default()).await?;

    let mut consumer = channel
        .basic_consume(
            "rpc_queue".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    println!(" [x] Awaiting RPC requests");

    let mut answered = 0;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let message = String::from_utf8_lossy(&delivery.data).into_owned();
        let response = match message.trim().parse::<u32>() {
            Ok(n) => {
                println!(" [.] fib({message})");
                fib(n).map(|f| f.to_string()).unwrap_or_default()
            }
            Err(e) => {
                println!(" [.] {e}");
                String::new()
            }
        };

        let mut reply_props = BasicProperties::default();
        if let Some(correlation_id) = delivery.properties.correlation_id() {
            reply_props = reply_props.with_correlation_id(correlation_id.clone());
        }
        if let Some(reply_to) = delivery.properties.reply_to() {
            channel
                .basic_publish(
                    "".into(),
                    reply_to.clone(),
                    BasicPublishOptions::default(),
                    response.as_bytes(),
                    reply_props,
                )
                .await?;
        }
        delivery.ack(BasicAckOptions::default()).await?;

        answered += 1;
        if expected == Some(answered) {
            break;
        }
    }

    connection.close(200, "Bye".into()).await
}

/// The n-th Fibonacci number, `None` past `u128`.
fn fib(n: u32) -> Option<u128> {
    let (mut a, mut b) = (0u128, 1u128);
    for _ in 0..n {
        let next = a.checked_add(b)?;
        a = b;
        b = next;
    }
    Some(a)
}
