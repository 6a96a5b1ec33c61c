//! Tutorial 6, "RPC": ask the RPC server for `fib(n)` for each `n` on the command line
//! (default 30), waiting for each answer on an exclusive callback queue and matching it by
//! `correlation_id`.

use futures::StreamExt;
use lapin::{BasicProperties, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let mut requests: Vec<String> = std::env::args().skip(1).collect();
    if requests.is_empty() {
        requests.push("30".to_string());
    }

    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    let callback_queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await?;
    let mut responses = channel
        .basic_consume(
            callback_queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;

    for (i, n) in requests.iter().enumerate() {
        let correlation_id = format!("{}-{i}", std::process::id());
        println!(" [x] Requesting fib({n})");
        channel
            .basic_publish(
                "".into(),
                "rpc_queue".into(),
                BasicPublishOptions::default(),
                n.as_bytes(),
                BasicProperties::default()
                    .with_reply_to(callback_queue.name().clone())
                    .with_correlation_id(correlation_id.as_str().into()),
            )
            .await?;

        loop {
            let Some(delivery) = responses.next().await else {
                eprintln!("the connection closed before the reply came");
                std::process::exit(1);
            };
            let delivery = delivery?;
            let matches = delivery
                .properties
                .correlation_id()
                .as_ref()
                .is_some_and(|id| id.as_str() == correlation_id);
            if matches {
                println!(" [.] Got '{}'", String::from_utf8_lossy(&delivery.data));
                break;
            }
        }
    }

    connection.close(200, "Bye".into()).await
}
