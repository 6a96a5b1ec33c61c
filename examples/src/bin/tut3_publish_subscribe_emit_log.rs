//! Tutorial 3, "Publish/Subscribe": broadcast a log message on the `logs` fanout exchange.
//!
//! The message is the command-line arguments (default "info: Hello World!").

use lapin::{BasicProperties, ExchangeKind, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let message = warren_examples::joined_args(&args, "info: Hello World!");

    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .exchange_declare(
            "logs".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;

    channel
        .basic_publish(
            "logs".into(),
            "".into(),
            BasicPublishOptions::default(),
            message.as_bytes(),
            BasicProperties::default(),
        )
        .await?;
    println!(" [x] Sent '{message}'");

    connection.close(200, "Bye".into()).await
}
