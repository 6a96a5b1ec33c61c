//! Tutorial 1, "Hello World!": print messages from the `hello` queue.
//!
//! Exits after `EXPECTED_MESSAGES` messages (default 1; 0 = forever).

use futures::StreamExt;
use lapin::{options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let expected = warren_examples::expected_messages();
    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .queue_declare(
            "hello".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut consumer = channel
        .basic_consume(
            "hello".into(),
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
            " [x] Received '{}'",
            String::from_utf8_lossy(&delivery.data)
        );
        received += 1;
        if expected == Some(received) {
            break;
        }
    }

    connection.close(200, "Bye".into()).await
}
