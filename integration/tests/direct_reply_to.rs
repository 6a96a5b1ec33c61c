//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): an RPC client consumes from the
//! pseudo-queue with no-ack, publishes requests with `reply-to: amq.rabbitmq.reply-to`, and
//! the server's reply, published to the default exchange with the rewritten `reply-to` as
//! routing key, comes straight back to that consumer.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

fn asking_for_a_reply() -> BasicProperties {
    BasicProperties::default().with_reply_to(REPLY_TO.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_reply_comes_back_to_the_reply_consumer() {
    let env = Env::start();
    let (_client_conn, client) = env.channel().await;
    let (_server_conn, server) = env.channel().await;
    let requests = declare_queue(&server).await;
    let mut replies = consume(&client, REPLY_TO, true).await;
    publish_with(&client, "", &requests, b"2+2", asking_for_a_reply()).await;
    // The server sees the reply queue's name, not the pseudo-queue.
    let request = wait_for_get(&server, &requests).await;
    let reply_to = request
        .properties
        .reply_to()
        .clone()
        .expect("reply-to kept")
        .to_string();
    assert!(
        reply_to.starts_with("amq.rabbitmq.reply-to.") && reply_to.len() > REPLY_TO.len() + 1,
        "reply-to rewritten: {reply_to}"
    );
    publish(&server, "", &reply_to, b"4").await;
    let reply = next(&mut replies).await;
    assert_eq!(reply.data, b"4");
    assert_eq!(reply.routing_key.as_str(), reply_to);
    assert_eq!(reply.exchange.as_str(), "");
    assert!(!reply.redelivered);
}

/// Publish a request to `requests` asking for a reply, and return the `reply-to` the server
/// sees on it (the client's reply queue).
async fn ask(client: &lapin::Channel, server: &lapin::Channel, requests: &str) -> String {
    publish_with(client, "", requests, b"q", asking_for_a_reply()).await;
    wait_for_get(server, requests)
        .await
        .properties
        .reply_to()
        .clone()
        .expect("reply-to kept")
        .to_string()
}

/// basic.get until a message is there (publishes are asynchronous).
async fn wait_for_get(ch: &lapin::Channel, q: &str) -> lapin::message::BasicGetMessage {
    for _ in 0..200 {
        if let Some(m) = ch
            .basic_get(q.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no message in {q}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_asking_for_a_reply_without_a_reply_consumer_closes_channel_with_406() {
    let env = Env::start();
    let (_conn, setup) = env.channel().await;
    let q = declare_queue(&setup).await;
    let (conn, ch, result) = publish_refused(&env, &q, asking_for_a_reply()).await;
    assert_eq!(
        error_text(&result),
        "PRECONDITION_FAILED - fast reply consumer does not exist"
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_consumer_with_acks_closes_channel_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let result = ch
        .basic_consume(
            REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(
        error_text(&result),
        "PRECONDITION_FAILED - reply consumer cannot acknowledge"
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reply_consumer_on_a_channel_closes_it_with_406() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    let _first = consume(&ch, REPLY_TO, true).await;
    let result = ch
        .basic_consume(
            REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_eq!(
        error_text(&result),
        "PRECONDITION_FAILED - reply consumer already set"
    );
    assert_channel_error(&conn, &ch, result, 406).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_after_the_reply_consumer_is_cancelled_are_unroutable() {
    let env = Env::start();
    let (_client_conn, client) = env.channel().await;
    let (_server_conn, server) = env.channel().await;
    let requests = declare_queue(&server).await;
    let replies = consume(&client, REPLY_TO, true).await;
    let reply_to = ask(&client, &server, &requests).await;
    client
        .basic_cancel(replies.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    // The reply queue went with its consumer: a mandatory reply comes back.
    server
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = server
        .basic_publish(
            "".into(),
            reply_to.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"late",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let returned = confirm.take_message().expect("the reply was returned");
    assert_eq!(returned.reply_code, 312);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_the_pseudo_queue_and_a_live_reply_queue_answers() {
    let env = Env::start();
    let (conn, client) = env.channel().await;
    for passive in [true, false] {
        let ok = client
            .queue_declare(
                REPLY_TO.into(),
                QueueDeclareOptions {
                    passive,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            (ok.name().as_str(), ok.message_count(), ok.consumer_count()),
            (REPLY_TO, 0, 1)
        );
    }
    let (_server_conn, server) = env.channel().await;
    let requests = declare_queue(&server).await;
    let replies = consume(&client, REPLY_TO, true).await;
    let reply_to = ask(&client, &server, &requests).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let ok = server
        .queue_declare(reply_to.as_str().into(), passive, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(ok.consumer_count(), 1);
    client
        .basic_cancel(replies.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let result = server
        .queue_declare(reply_to.as_str().into(), passive, FieldTable::default())
        .await;
    assert_eq!(reply_code(result), 404);
    let _ = conn;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_queue_goes_when_the_client_connection_closes() {
    let env = Env::start();
    let client_conn = env.connect().await;
    let client = client_conn.create_channel().await.unwrap();
    let (_server_conn, server) = env.channel().await;
    let requests = declare_queue(&server).await;
    let _replies = consume(&client, REPLY_TO, true).await;
    let reply_to = ask(&client, &server, &requests).await;
    client_conn.close(200, "bye".into()).await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let result = server
        .queue_declare(reply_to.as_str().into(), passive, FieldTable::default())
        .await;
    assert_eq!(reply_code(result), 404);
}
