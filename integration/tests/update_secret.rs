//! connection.update-secret (clients refreshing credentials, e.g. OAuth 2 tokens): the new
//! secret is checked as the password of the connection's user, as at login.
//!
//! RabbitMQ 3.10's internal backend answers update-secret-ok to any secret; Warren
//! refuses a wrong one with RabbitMQ's refusal (530 NOT_ALLOWED "New secret was refused
//! by one of the backends"), a deliberate difference (README). Set `WARREN_TEST_URL` to
//! run these against a reference RabbitMQ: the wrong-secret tests then expect 3.10's
//! acceptance, the handshake test its 504.

#![allow(clippy::unwrap_used)]

mod core_support;

use core_support::raw::{RawClient, RawFrame, frame, method, short};
use core_support::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, LongString};

const REFUSED: &str = "NOT_ALLOWED - New secret was refused by one of the backends";

fn update_secret(secret: &str, reason: &str) -> Vec<u8> {
    let mut args = (secret.len() as u32).to_be_bytes().to_vec();
    args.extend_from_slice(secret.as_bytes());
    args.extend(short(reason));
    frame(1, 0, &method(10, 70, &args))
}

/// (code, text, class, method) of a connection.close.
fn close_details(f: &RawFrame) -> (u16, String, u16, u16) {
    assert_eq!(
        f.class_method(),
        Some((10, 50)),
        "not a connection.close: {f:?}"
    );
    let p = &f.payload;
    let len = p[6] as usize;
    let at = 7 + len;
    (
        u16::from_be_bytes([p[4], p[5]]),
        String::from_utf8_lossy(&p[7..at]).into_owned(),
        u16::from_be_bytes([p[at], p[at + 1]]),
        u16::from_be_bytes([p[at + 2], p[at + 3]]),
    )
}

async fn declare_exclusive(ch: &lapin::Channel) -> lapin::Result<()> {
    ch.queue_declare(
        "".into(),
        QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_secret_with_the_users_password_is_answered_and_the_connection_keeps_working() {
    let env = Env::start();
    let (conn, ch) = env.channel().await;
    conn.update_secret(LongString::from("guest"), "token refresh".into())
        .await
        .unwrap();
    assert!(conn.status().connected());
    declare_exclusive(&ch).await.unwrap();
    let second = conn.create_channel().await.unwrap();
    declare_exclusive(&second).await.unwrap();
    // Again: a client refreshes as often as its token expires.
    conn.update_secret(LongString::from("guest"), "token refresh".into())
        .await
        .unwrap();
    declare_exclusive(&ch).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_secret_with_a_wrong_secret_closes_the_connection_with_530() {
    let env = Env::start();
    let (conn, _ch) = env.channel().await;
    let result = conn
        .update_secret(LongString::from("not the password"), "token refresh".into())
        .await;
    if env.is_external() {
        // RabbitMQ 3.10's internal backend accepts any secret.
        result.unwrap();
        return;
    }
    assert_eq!(error_text(&result), REFUSED);
    assert_connection_error(&conn, result, 530).await;
}

#[test]
fn wrong_secret_close_names_update_secret_and_the_broker_still_serves() {
    let env = Env::start();
    let mut c = RawClient::open(env.addr(), 0);
    c.send(&update_secret("wrong", "refresh"));
    let reply = c.read_frame().expect("a reply to update-secret");
    if env.is_external() {
        assert_eq!(reply.class_method(), Some((10, 71)));
        return;
    }
    assert_eq!(close_details(&reply), (530, REFUSED.to_owned(), 10, 70));
    c.send(&frame(1, 0, &method(10, 51, &[])));
    // The refusal ended this connection only.
    let mut again = RawClient::open(env.addr(), 0);
    again.send(&update_secret("guest", "refresh"));
    let ok = again.read_frame().expect("update-secret-ok");
    assert_eq!((ok.channel, ok.class_method()), (0, Some((10, 71))));
}

#[test]
fn update_secret_before_connection_open_is_a_connection_error() {
    let env = Env::start();
    let mut c = RawClient::connect(env.addr());
    c.send(b"AMQP\x00\x00\x09\x01");
    assert_eq!(c.read_frame().unwrap().class_method(), Some((10, 10)));
    let mut start_ok = 0u32.to_be_bytes().to_vec();
    start_ok.extend(short("PLAIN"));
    let response = b"\0guest\0guest";
    start_ok.extend_from_slice(&(response.len() as u32).to_be_bytes());
    start_ok.extend_from_slice(response);
    start_ok.extend(short("en_US"));
    c.send(&frame(1, 0, &method(10, 11, &start_ok)));
    assert_eq!(c.read_frame().unwrap().class_method(), Some((10, 30)));
    let mut tune_ok = 2047u16.to_be_bytes().to_vec();
    tune_ok.extend_from_slice(&131_072u32.to_be_bytes());
    tune_ok.extend_from_slice(&0u16.to_be_bytes());
    c.send(&frame(1, 0, &method(10, 31, &tune_ok)));
    c.send(&update_secret("guest", "too early"));
    let close = c.read_frame().expect("connection.close");
    let expected = if env.is_external() {
        // RabbitMQ 3.10's words for any method out of place in the handshake.
        (
            504,
            "CHANNEL_ERROR - unexpected method in connection state opening".to_owned(),
        )
    } else {
        (
            503,
            "COMMAND_INVALID - expected 'connection.open'".to_owned(),
        )
    };
    let (code, text, class, method_id) = close_details(&close);
    assert_eq!((code, text), expected);
    assert_eq!((class, method_id), (10, 70));
}
