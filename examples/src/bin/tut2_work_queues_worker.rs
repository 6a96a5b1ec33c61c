//! Tutorial 2, "Work Queues": take tasks from `task_queue` one at a time (prefetch 1),
//! "work" one second per `.` in the task, then ack it.
//!
//! Exits after `EXPECTED_MESSAGES` tasks (default 1; 0 = forever).

use std::time::Duration;

use futures::StreamExt;
use lapin::{options::*, types::FieldTable};

#[tokio::main]
async fn main() -> lapin::Result<()> {
    let expected = warren_examples::expected_messages();
    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;

    channel
        .queue_declare(
            "task_queue".into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    // Fair dispatch: no new task until the previous one is acked.
    channel.basic_qos(1, BasicQosOptions::default()).await?;

    let mut consumer = channel
        .basic_consume(
            "task_queue".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    println!(" [*] Waiting for messages. To exit press CTRL+C");

    let mut done = 0;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let message = String::from_utf8_lossy(&delivery.data).into_owned();
        println!(" [x] Received '{message}'");
        do_work(&message).await;
        println!(" [x] Done");
        delivery.ack(BasicAckOptions::default()).await?;
        done += 1;
        if expected == Some(done) {
            break;
        }
    }

    connection.close(200, "Bye".into()).await
}

/// One second per dot.
async fn do_work(task: &str) {
    let dots = task.chars().filter(|c| *c == '.').count();
    tokio::time::sleep(Duration::from_secs(dots as u64)).await;
}
