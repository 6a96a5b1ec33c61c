//! Tutorial 5, "Topics": publish a log message on the `topic_logs` exchange with a
//! `<facility>.<severity>` routing key.
//!
//! Usage: `tut5_topics_emit_log_topic [routing_key] [message...]` (defaults:
//! `anonymous.info`, "Hello World!").

use lapin::{BasicProperties, ExchangeKind, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let routing_key = args
        .first()
        .map_or("anonymous.info", String::as_str)
        .to_string();
    let message = warren_examples::joined_args(args.get(1..).unwrap_or_default(), "Hello World!");

    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .exchange_declare(
            "topic_logs".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;

    channel
        .basic_publish(
            "topic_logs".into(),
            routing_key.as_str().into(),
            BasicPublishOptions::default(),
            message.as_bytes(),
            BasicProperties::default(),
        )
        .await?;
    println!(" [x] Sent '{routing_key}':'{message}'");

    connection.close(200, "Bye".into()).await
}
