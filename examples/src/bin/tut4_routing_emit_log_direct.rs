//! Tutorial 4, "Routing": publish a log message on the `direct_logs` exchange with its
//! severity as the routing key.
//!
//! Usage: `tut4_routing_emit_log_direct [severity] [message...]` (defaults: `info`,
//! "Hello World!").

use lapin::{BasicProperties, ExchangeKind, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let severity = args.first().map_or("info", String::as_str).to_string();
    let message = warren_examples::joined_args(args.get(1..).unwrap_or_default(), "Hello World!");

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

    channel
        .basic_publish(
            "direct_logs".into(),
            severity.as_str().into(),
            BasicPublishOptions::default(),
            message.as_bytes(),
            BasicProperties::default(),
        )
        .await?;
    println!(" [x] Sent '{severity}':'{message}'");

    connection.close(200, "Bye".into()).await
}
