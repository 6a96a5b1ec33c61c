//! Vhosts, users and limits: the access registry seen from AMQP clients.
//!
//! What a fresh broker seeds (guest, administrator, `.*` on `/`, as RabbitMQ), users and
//! vhosts created at run time and kept across restarts, vhost isolation, vhost and user
//! deletion (320 CONNECTION_FORCED to their connections; a deleted vhost's queues and
//! messages are gone for good), connection.open refusals (530 texts of RabbitMQ 3.10), and
//! the vhost (`max-connections`, `max-queues`) and user (`max-connections`,
//! `max-channels`) limits with RabbitMQ's codes and texts. Permission checks per method
//! are in `permissions.rs`, login mechanisms in `tls.rs`.

#![allow(clippy::unwrap_used)]

mod core_support;

use std::net::SocketAddr;
use std::time::Duration;

use core_support::raw::{RawClient, RawFrame, frame, method, short};
use core_support::{assert_channel_error, error_text, reply_code, then_sync, wait_until};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_broker::access::{HashingAlgorithm, PasswordHash, UserLimits, VhostLimits};
use warren_broker::{AccessCommand, Broker};
use warren_integration::TestBroker;

fn add_user(broker: &Broker, name: &str, password: Option<&str>, vhost: &str) {
    broker
        .access()
        .apply_all(&[
            AccessCommand::PutUser {
                name: name.into(),
                password: password.map_or_else(PasswordHash::none, |p| {
                    PasswordHash::new(HashingAlgorithm::Sha256, p)
                }),
                tags: vec![],
            },
            AccessCommand::SetPermissions {
                user: name.into(),
                vhost: vhost.into(),
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            },
        ])
        .unwrap();
}

async fn connect(url: &str) -> lapin::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default()).await
}

/// The handshake by hand: PLAIN `user`/`pass`, then connection.open of `vhost`. Ok with
/// the open connection, or Err with the frame the broker answered connection.open with
/// (None when it closed the socket).
fn raw_open(
    addr: SocketAddr,
    user: &str,
    pass: &str,
    vhost: &str,
) -> Result<RawClient, Option<RawFrame>> {
    let mut c = RawClient::connect(addr);
    c.send(b"AMQP\x00\x00\x09\x01");
    let start = c.read_frame().expect("connection.start");
    assert_eq!(start.class_method(), Some((10, 10)));
    let mut args = 0u32.to_be_bytes().to_vec();
    args.extend(short("PLAIN"));
    let response = format!("\0{user}\0{pass}");
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response.as_bytes());
    args.extend(short("en_US"));
    c.send(&frame(1, 0, &method(10, 11, &args)));
    let Some(tune) = c.read_frame() else {
        return Err(None);
    };
    if tune.class_method() != Some((10, 30)) {
        return Err(Some(tune));
    }
    let mut tune_ok = 2047u16.to_be_bytes().to_vec();
    tune_ok.extend_from_slice(&131_072u32.to_be_bytes());
    tune_ok.extend_from_slice(&0u16.to_be_bytes());
    c.send(&frame(1, 0, &method(10, 31, &tune_ok)));
    let mut open = short(vhost);
    open.extend(short(""));
    open.push(0);
    c.send(&frame(1, 0, &method(10, 40, &open)));
    match c.read_frame() {
        Some(f) if f.class_method() == Some((10, 41)) => Ok(c),
        other => Err(other),
    }
}

fn must_open(addr: SocketAddr, user: &str, pass: &str, vhost: &str) -> RawClient {
    match raw_open(addr, user, pass, vhost) {
        Ok(c) => c,
        Err(f) => panic!(
            "connection.open of '{vhost}' as '{user}' refused: {:?}",
            f.as_ref().map(close_details)
        ),
    }
}

/// (code, text, class, method) of a connection.close or channel.close.
fn close_details(f: &RawFrame) -> (u16, String, u16, u16) {
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

fn refused_open(addr: SocketAddr, user: &str, pass: &str, vhost: &str) -> (u16, String, u16, u16) {
    match raw_open(addr, user, pass, vhost) {
        Ok(_) => panic!("connection.open of '{vhost}' as '{user}' was accepted"),
        Err(Some(f)) => {
            assert_eq!(
                f.class_method(),
                Some((10, 50)),
                "not a connection.close: {f:?}"
            );
            close_details(&f)
        }
        Err(None) => panic!("socket closed without connection.close"),
    }
}

async fn publish_and_get(conn: &Connection, queue: &str, body: &[u8]) -> Option<Vec<u8>> {
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .map(|m| m.delivery.data.clone())
}

#[test]
fn a_fresh_data_dir_seeds_guest_as_administrator_with_full_permissions_on_slash() {
    let broker = TestBroker::start();
    let (vhosts, user, permissions) = broker.broker().access().read(|s| {
        (
            s.vhosts.keys().cloned().collect::<Vec<_>>(),
            s.users.get("guest").cloned(),
            s.permissions
                .get(&("/".to_owned(), "guest".to_owned()))
                .cloned(),
        )
    });
    assert_eq!(vhosts, vec!["/".to_owned()]);
    let user = user.expect("guest seeded");
    assert_eq!(user.tags, vec!["administrator".to_owned()]);
    assert_eq!(
        user.password.hashing_algorithm,
        HashingAlgorithm::Sha256,
        "stored as RabbitMQ's default hash"
    );
    assert!(
        !user.password.password_hash.contains("guest"),
        "never in plain text"
    );
    let p = permissions.expect("permissions on /");
    assert_eq!(
        (p.configure.as_str(), p.write.as_str(), p.read.as_str()),
        (".*", ".*", ".*")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_default_user_is_not_seeded_again_at_restart() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "admin", Some("s3cret"), "/");
    broker.broker().delete_user("guest").unwrap();
    let broker = broker.restart();
    assert!(broker.broker().access().user("guest").is_none());
    assert_eq!(reply_code(connect(&broker.url()).await), 403);
    let conn = connect(&broker.url_as("admin", "s3cret", "/"))
        .await
        .unwrap();
    assert_eq!(
        publish_and_get(&conn, "q", b"hi").await.as_deref(),
        Some(&b"hi"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_vhosts_created_at_run_time_work_and_survive_a_restart() {
    let broker = TestBroker::start();
    broker
        .broker()
        .add_vhost("tenant-a", "team A", vec![], None)
        .unwrap();
    add_user(broker.broker(), "alice", Some("wonderland"), "tenant-a");
    {
        let conn = connect(&broker.url_as("alice", "wonderland", "tenant-a"))
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            "orders".into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        ch.basic_publish(
            "".into(),
            "orders".into(),
            BasicPublishOptions::default(),
            b"kept",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }
    let broker = broker.restart();
    let conn = connect(&broker.url_as("alice", "wonderland", "tenant-a"))
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let got = ch
        .basic_get("orders".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the durable message of the run-time vhost came back");
    assert_eq!(got.delivery.data, b"kept");
    assert_eq!(
        reply_code(connect(&broker.url_as("alice", "wrong", "tenant-a")).await),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_password_cannot_log_in_with_plain() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "cert-only", None, "/");
    let refused = connect(&broker.url_as("cert-only", "", "/")).await;
    assert_eq!(reply_code(refused), 403);
    let refused = connect(&broker.url_as("cert-only", "anything", "/")).await;
    assert_eq!(reply_code(refused), 403);
}

#[test]
fn connection_open_of_a_missing_vhost_is_refused_with_530_vhost_not_found() {
    let broker = TestBroker::start();
    let (code, text, class, method) = refused_open(broker.addr(), "guest", "guest", "nowhere");
    assert_eq!(
        (code, text.as_str(), class, method),
        (530, "NOT_ALLOWED - vhost nowhere not found", 10, 40)
    );
}

#[test]
fn connection_open_of_a_vhost_without_permissions_is_refused_with_530() {
    let broker = TestBroker::start();
    broker
        .broker()
        .add_vhost("private", "", vec![], None)
        .unwrap();
    let (code, text, _, _) = refused_open(broker.addr(), "guest", "guest", "private");
    assert_eq!(code, 530);
    assert_eq!(
        text,
        "NOT_ALLOWED - access to vhost 'private' refused for user 'guest'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_keep_their_queues_apart() {
    let broker = TestBroker::start();
    broker
        .broker()
        .add_vhost("other", "", vec![], None)
        .unwrap();
    add_user(broker.broker(), "guest", Some("guest"), "other");
    broker
        .broker()
        .access()
        .apply(AccessCommand::SetPermissions {
            user: "guest".into(),
            vhost: "/".into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        })
        .unwrap();
    let slash = connect(&broker.url()).await.unwrap();
    let other = connect(&broker.url_as("guest", "guest", "other"))
        .await
        .unwrap();
    assert_eq!(
        publish_and_get(&slash, "same-name", b"in /")
            .await
            .as_deref(),
        Some(&b"in /"[..])
    );
    let ch = other.create_channel().await.unwrap();
    ch.queue_declare(
        "same-name".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let ch2 = slash.create_channel().await.unwrap();
    ch2.basic_publish(
        "".into(),
        "same-name".into(),
        BasicPublishOptions::default(),
        b"only in /",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let got = ch
        .basic_get("same-name".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(
        got.is_none(),
        "a message published in / reached the queue of 'other'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_vhost_closes_its_connections_with_320_and_deletes_its_messages_for_good() {
    let broker = TestBroker::start();
    broker
        .broker()
        .add_vhost("doomed", "", vec![], None)
        .unwrap();
    add_user(broker.broker(), "dora", Some("pw"), "doomed");
    let conn = connect(&broker.url_as("dora", "pw", "doomed"))
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "jobs".into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for _ in 0..10 {
        ch.basic_publish(
            "".into(),
            "jobs".into(),
            BasicPublishOptions::default(),
            b"job",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // A bystander in another vhost is not touched.
    let bystander = connect(&broker.url()).await.unwrap();

    let mut raw = must_open(broker.addr(), "dora", "pw", "doomed");
    broker.broker().delete_vhost("doomed").unwrap();
    let close = raw
        .read_close()
        .expect("connection.close for the deleted vhost");
    let (code, text, _, _) = close_details(&close);
    assert_eq!(
        (code, text.as_str()),
        (320, "CONNECTION_FORCED - vhost 'doomed' is deleted")
    );
    assert!(
        wait_until(|| !conn.status().connected()).await,
        "lapin connection still open"
    );
    assert!(bystander.status().connected());
    assert!(broker.broker().vhost("doomed").is_none());
    assert!(
        broker
            .broker()
            .access()
            .read(|s| s.permissions.keys().all(|(v, _)| v != "doomed"))
    );

    // Recreated under the same name after a restart: empty.
    let broker = broker.restart();
    assert_eq!(
        refused_open(broker.addr(), "dora", "pw", "doomed").1,
        "NOT_ALLOWED - vhost doomed not found"
    );
    broker
        .broker()
        .add_vhost("doomed", "", vec![], None)
        .unwrap();
    add_user(broker.broker(), "dora", Some("pw"), "doomed");
    let conn = connect(&broker.url_as("dora", "pw", "doomed"))
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let passive = ch
        .queue_declare(
            "jobs".into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_eq!(
        reply_code(passive),
        404,
        "the deleted vhost's queue came back"
    );
}

#[test]
fn vhost_max_connections_refuses_the_next_connection_with_530() {
    let broker = TestBroker::start();
    broker
        .broker()
        .access()
        .apply(AccessCommand::SetVhostLimits {
            vhost: "/".into(),
            limits: VhostLimits {
                max_connections: Some(2),
                max_queues: None,
            },
        })
        .unwrap();
    let first = must_open(broker.addr(), "guest", "guest", "/");
    let _second = must_open(broker.addr(), "guest", "guest", "/");
    let (code, text, class, method) = refused_open(broker.addr(), "guest", "guest", "/");
    assert_eq!(
        (code, text.as_str(), class, method),
        (
            530,
            "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (2) is reached",
            10,
            40
        )
    );
    // A slot frees when a connection goes.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while raw_open(broker.addr(), "guest", "guest", "/").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the freed slot never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_max_queues_refuses_the_next_declare_with_406() {
    let broker = TestBroker::start();
    broker
        .broker()
        .access()
        .apply(AccessCommand::SetVhostLimits {
            vhost: "/".into(),
            limits: VhostLimits {
                max_connections: None,
                max_queues: Some(1),
            },
        })
        .unwrap();
    let conn = connect(&broker.url()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "one".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // Redeclaring an existing queue is not a new queue.
    ch.queue_declare(
        "one".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let second = ch
        .queue_declare(
            "two".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(
        error_text(&second),
        "PRECONDITION_FAILED - cannot declare queue 'two': queue limit in vhost '/' (1) is reached"
    );
    assert_channel_error(&conn, &ch, second, 406).await;
}

#[test]
fn user_max_connections_refuses_the_next_connection_with_530() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "bounded", Some("pw"), "/");
    broker
        .broker()
        .access()
        .apply(AccessCommand::SetUserLimits {
            user: "bounded".into(),
            limits: UserLimits {
                max_connections: Some(1),
                max_channels: None,
            },
        })
        .unwrap();
    let _only = must_open(broker.addr(), "bounded", "pw", "/");
    let (code, text, _, _) = refused_open(broker.addr(), "bounded", "pw", "/");
    assert_eq!(code, 530);
    assert_eq!(
        text,
        "NOT_ALLOWED - connection refused for user 'bounded': user connection limit (1) is reached"
    );
    // Other users are not affected.
    let _guest = must_open(broker.addr(), "guest", "guest", "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_max_channels_counts_all_connections_and_refuses_channel_open_with_530() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "narrow", Some("pw"), "/");
    broker
        .broker()
        .access()
        .apply(AccessCommand::SetUserLimits {
            user: "narrow".into(),
            limits: UserLimits {
                max_connections: None,
                max_channels: Some(2),
            },
        })
        .unwrap();
    let url = broker.url_as("narrow", "pw", "/");
    let a = connect(&url).await.unwrap();
    let b = connect(&url).await.unwrap();
    let _a1 = a.create_channel().await.unwrap();
    let b1 = b.create_channel().await.unwrap();
    let third = b.create_channel().await;
    assert_eq!(reply_code(third.map(|_| ())), 530);
    assert!(
        wait_until(|| !b.status().connected()).await,
        "a connection error closes the connection"
    );
    // A channel closed elsewhere gives its slot back.
    drop(b1);
    let c = connect(&url).await.unwrap();
    assert!(c.create_channel().await.is_ok());
    assert!(a.status().connected());
}

#[test]
fn user_channel_limit_text_is_rabbitmqs() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "one-channel", Some("pw"), "/");
    broker
        .broker()
        .access()
        .apply(AccessCommand::SetUserLimits {
            user: "one-channel".into(),
            limits: UserLimits {
                max_connections: None,
                max_channels: Some(0),
            },
        })
        .unwrap();
    let mut c = must_open(broker.addr(), "one-channel", "pw", "/");
    c.send(&frame(1, 1, &method(20, 10, &short(""))));
    let close = c.read_close().expect("close");
    assert_eq!(
        close_details(&close),
        (
            530,
            "NOT_ALLOWED - number of channels opened for user 'one-channel' has reached the maximum allowed user limit of (0)".to_owned(),
            20,
            10
        )
    );
}

#[test]
fn deleting_a_user_closes_its_connections_with_320() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "leaver", Some("pw"), "/");
    let mut c = must_open(broker.addr(), "leaver", "pw", "/");
    let mut guest = must_open(broker.addr(), "guest", "guest", "/");
    broker.broker().delete_user("leaver").unwrap();
    let close = c.read_close().expect("connection.close");
    assert_eq!(close_details(&close).0..=close_details(&close).0, 320..=320);
    assert_eq!(
        close_details(&close).1,
        "CONNECTION_FORCED - user 'leaver' is deleted"
    );
    guest
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        !guest.is_closed_by_peer(),
        "another user's connection was closed"
    );
}

#[test]
fn limits_and_topic_permissions_survive_a_restart() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "kept", Some("pw"), "/");
    let access = broker.broker().access();
    access
        .apply_all(&[
            AccessCommand::SetUserLimits {
                user: "kept".into(),
                limits: UserLimits {
                    max_connections: Some(5),
                    max_channels: Some(7),
                },
            },
            AccessCommand::SetVhostLimits {
                vhost: "/".into(),
                limits: VhostLimits {
                    max_connections: Some(100),
                    max_queues: Some(10),
                },
            },
            AccessCommand::SetTopicPermissions {
                user: "kept".into(),
                vhost: "/".into(),
                exchange: "amq.topic".into(),
                write: "^{username}\\.".into(),
                read: ".*".into(),
            },
        ])
        .unwrap();
    let before = access.read(|s| s.clone());
    let broker = broker.restart();
    let after = broker.broker().access().read(|s| s.clone());
    assert_eq!(before, after);
    assert_eq!(after.users["kept"].limits.max_channels, Some(7));
}

#[test]
fn a_refused_batch_of_commands_changes_nothing() {
    let broker = TestBroker::start();
    let access = broker.broker().access();
    let before = access.read(|s| s.clone());
    let refused = access.apply_all(&[
        AccessCommand::PutUser {
            name: "half".into(),
            password: PasswordHash::new(HashingAlgorithm::Sha256, "pw"),
            tags: vec![],
        },
        AccessCommand::SetPermissions {
            user: "half".into(),
            vhost: "no-such-vhost".into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        },
    ]);
    assert!(refused.is_err());
    assert_eq!(access.read(|s| s.clone()), before);
    let broker = broker.restart();
    assert!(
        broker.broker().access().user("half").is_none(),
        "half a batch reached the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_from_before_the_registry_keeps_its_vhosts_and_gets_the_default_user() {
    use warren_store::DefinitionKind;
    let broker = TestBroker::start();
    broker
        .broker()
        .add_vhost("legacy", "", vec![], None)
        .unwrap();
    add_user(broker.broker(), "guest", Some("guest"), "legacy");
    {
        let conn = connect(&broker.url_as("guest", "guest", "legacy"))
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            "old-queue".into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    }
    // Make it look like a data directory written before the registry existed: topology
    // records only.
    let store = broker.broker().store();
    for kind in [
        DefinitionKind::Vhost,
        DefinitionKind::User,
        DefinitionKind::Permission,
        DefinitionKind::Internal,
    ] {
        for (key, _) in store.definitions(kind).unwrap() {
            store.delete_definition(kind, &key).unwrap();
        }
    }
    let broker = broker.restart();
    let vhosts = broker
        .broker()
        .access()
        .read(|s| s.vhosts.keys().cloned().collect::<Vec<_>>());
    assert_eq!(vhosts, vec!["/".to_owned(), "legacy".to_owned()]);
    assert!(
        broker.broker().access().user("guest").is_some(),
        "guest seeded"
    );
    let legacy = broker
        .broker()
        .vhost("legacy")
        .expect("legacy vhost restored");
    assert!(
        legacy.queues().iter().any(|q| &**q.name() == "old-queue"),
        "the old vhost's durable queue was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_user_tagged_impersonator_may_publish_with_another_user_id() {
    let broker = TestBroker::start();
    add_user(broker.broker(), "plain-user", Some("pw"), "/");
    add_user(broker.broker(), "proxy", Some("pw"), "/");
    broker
        .broker()
        .access()
        .apply(AccessCommand::PutUser {
            name: "proxy".into(),
            password: PasswordHash::new(HashingAlgorithm::Sha256, "pw"),
            tags: vec!["impersonator".into()],
        })
        .unwrap();
    let as_other = BasicProperties::default().with_user_id("someone-else".into());
    let proxy = connect(&broker.url_as("proxy", "pw", "/")).await.unwrap();
    let ch = proxy.create_channel().await.unwrap();
    ch.queue_declare(
        "imp".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish(
        "".into(),
        "imp".into(),
        BasicPublishOptions::default(),
        b"x",
        as_other.clone(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let got = ch
        .basic_get("imp".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the impersonated message");
    assert_eq!(
        got.properties.user_id().as_ref().map(|u| u.as_str()),
        Some("someone-else")
    );

    let plain = connect(&broker.url_as("plain-user", "pw", "/"))
        .await
        .unwrap();
    let ch = plain.create_channel().await.unwrap();
    // The close may reach lapin before a following method is sent: then_sync takes the
    // reason from the connection's events in that case.
    let closed = then_sync(
        &plain,
        &ch,
        ch.basic_publish(
            "".into(),
            "imp".into(),
            BasicPublishOptions::default(),
            b"x",
            as_other,
        ),
    )
    .await;
    assert_eq!(
        error_text(&closed),
        "PRECONDITION_FAILED - user_id property set to 'someone-else' but authenticated user was 'plain-user'"
    );
}
