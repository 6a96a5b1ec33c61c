//! Tutorial 2, "Work Queues": send a persistent task to the durable `task_queue`.
//!
//! The task is the command-line arguments (default "Hello World!"); each `.` in it is one
//! second of work for the worker.

use lapin::{BasicProperties, options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let message = warren_examples::joined_args(&args, "Hello World!");

    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .queue_declare(
            "task_queue".into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;

    channel
        .basic_publish(
            "".into(),
            "task_queue".into(),
            BasicPublishOptions::default(),
            message.as_bytes(),
            // PERSISTENT_TEXT_PLAIN
            BasicProperties::default()
                .with_content_type("text/plain".into())
                .with_delivery_mode(2),
        )
        .await?;
    println!(" [x] Sent '{message}'");

    connection.close(200, "Bye".into()).await
}
