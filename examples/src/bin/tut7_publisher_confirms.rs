//! Tutorial 7, "Publisher Confirms": publish `MESSAGE_COUNT` messages (default 50,000)
//! with confirms on, three ways, and print how long each took:
//!
//! 1. individually: wait for each message's confirm before publishing the next;
//! 2. in batches: wait for the confirms of every 100 messages;
//! 3. asynchronously: publish everything while a separate task handles the confirms as
//!    they arrive.
//!
//! Each strategy uses its own connection and an exclusive server-named queue (the tutorial
//! uses a UUID-named auto-delete queue; exclusive leaves nothing behind).

use std::time::{Duration, Instant};

use lapin::{
    BasicProperties, Channel, Connection, PublisherConfirm, options::*, types::FieldTable,
};
use warren_examples::with_thousands;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BATCH_SIZE: usize = 100;
/// `waitForConfirmsOrDie(5_000)` in the tutorial.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// The asynchronous strategy gives up after this long, as the tutorial does.
const ALL_CONFIRMED_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<()> {
    let count = warren_examples::env_number("MESSAGE_COUNT", 50_000).unwrap_or(50_000);
    publish_messages_individually(count).await?;
    publish_messages_in_batch(count).await?;
    handle_publish_confirms_asynchronously(count).await?;
    Ok(())
}

/// A connection and a channel in confirm mode publishing to a fresh exclusive queue.
async fn confirm_channel() -> Result<(Connection, Channel, String)> {
    let connection = warren_examples::connect().await?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        )
        .await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok((connection, channel, queue.name().to_string()))
}

async fn publish(channel: &Channel, queue: &str, body: &str) -> Result<PublisherConfirm> {
    Ok(channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await?)
}

/// Wait (at most [`CONFIRM_TIMEOUT`]) for a confirm; a nack is an error.
async fn confirmed(confirm: PublisherConfirm) -> Result<()> {
    let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
        .await
        .map_err(|_| "no confirm within 5 seconds")??;
    if confirmation.is_nack() {
        return Err("message nack-ed".into());
    }
    Ok(())
}

async fn publish_messages_individually(count: u64) -> Result<()> {
    let (connection, channel, queue) = confirm_channel().await?;

    let start = Instant::now();
    for i in 0..count {
        let confirm = publish(&channel, &queue, &i.to_string()).await?;
        confirmed(confirm).await?;
    }
    let elapsed = start.elapsed();
    println!(
        "Published {} messages individually in {} ms",
        with_thousands(count.into()),
        with_thousands(elapsed.as_millis())
    );

    connection.close(200, "Bye".into()).await?;
    Ok(())
}

async fn publish_messages_in_batch(count: u64) -> Result<()> {
    let (connection, channel, queue) = confirm_channel().await?;

    let start = Instant::now();
    let mut outstanding = Vec::with_capacity(BATCH_SIZE);
    for i in 0..count {
        outstanding.push(publish(&channel, &queue, &i.to_string()).await?);
        if outstanding.len() == BATCH_SIZE {
            for confirm in outstanding.drain(..) {
                confirmed(confirm).await?;
            }
        }
    }
    for confirm in outstanding.drain(..) {
        confirmed(confirm).await?;
    }
    let elapsed = start.elapsed();
    println!(
        "Published {} messages in batch in {} ms",
        with_thousands(count.into()),
        with_thousands(elapsed.as_millis())
    );

    connection.close(200, "Bye".into()).await?;
    Ok(())
}

async fn handle_publish_confirms_asynchronously(count: u64) -> Result<()> {
    let (connection, channel, queue) = confirm_channel().await?;

    // The confirm handler: takes each outstanding (body, confirm) as it is published and
    // settles it when the broker's ack or nack arrives, while the publisher carries on.
    let (outstanding, mut to_settle) =
        tokio::sync::mpsc::unbounded_channel::<(String, PublisherConfirm)>();
    let handler = tokio::spawn(async move {
        let mut nacked = 0u64;
        while let Some((body, confirm)) = to_settle.recv().await {
            let confirmation = confirm.await?;
            if confirmation.is_nack() {
                eprintln!("Message with body {body} has been nack-ed");
                nacked += 1;
            }
        }
        lapin::Result::Ok(nacked)
    });

    let start = Instant::now();
    for i in 0..count {
        let body = i.to_string();
        let confirm = publish(&channel, &queue, &body).await?;
        outstanding
            .send((body, confirm))
            .map_err(|_| "the confirm handler stopped")?;
    }
    drop(outstanding);
    let nacked = tokio::time::timeout(ALL_CONFIRMED_TIMEOUT, handler)
        .await
        .map_err(|_| "All messages could not be confirmed in 60 seconds")???;
    let elapsed = start.elapsed();
    if nacked > 0 {
        return Err(format!("{nacked} messages were nack-ed").into());
    }
    println!(
        "Published {} messages and handled confirms asynchronously in {} ms",
        with_thousands(count.into()),
        with_thousands(elapsed.as_millis())
    );

    connection.close(200, "Bye".into()).await?;
    Ok(())
}
