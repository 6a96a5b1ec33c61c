//! Tutorial 1, "Hello World!": send one message to the `hello` queue.

use lapin::{BasicProperties, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .queue_declare(
            "hello".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let message = "Hello World!";
    channel
        .basic_publish(
            "".into(),
            "hello".into(),
            BasicPublishOptions::default(),
            message.as_bytes(),
            BasicProperties::default(),
        )
        .await?;
    println!(" [x] Sent '{message}'");

    connection.close(200, "Bye".into()).await
}
