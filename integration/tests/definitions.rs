//! RabbitMQ definitions at boot (`load_definitions`) and export: a file exported from
//! RabbitMQ 3.10 (`fixtures/rabbitmq-3.10-export.json`, made by
//! `fixtures/make_rabbitmq_export.sh`) imports as it is, its users log in with the passwords
//! RabbitMQ knew them by, its topology routes, its policies, parameters and limits land in
//! the registry (limits enforced); a malformed file stops the `warren` binary with one line
//! and imports nothing; an export imported into a fresh broker gives the same state.
//!
//! The binary tests need `cargo build -p warren` first.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use warren_broker::access::{PolicyKind, UserLimits, VhostLimits};
use warren_broker::{Broker, BrokerConfig, Definitions};
use warren_integration::{BinaryBroker, TestBroker, TestConfig, warren_binary};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rabbitmq-3.10-export.json")
}

fn with_definitions(path: &Path) -> TestConfig {
    TestConfig {
        broker: BrokerConfig {
            load_definitions: Some(path.to_path_buf()),
            ..BrokerConfig::default()
        },
        ..TestConfig::default()
    }
}

fn url(broker: &TestBroker, user: &str, pass: &str, vhost: &str) -> String {
    let vhost = vhost.replace('/', "%2f");
    format!("amqp://{user}:{pass}@{}/{vhost}", broker.addr())
}

async fn try_connect(url: &str) -> Result<Connection, lapin::Error> {
    Connection::connect(url, ConnectionProperties::default()).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn rabbitmq_export_users_log_in_with_their_rabbitmq_passwords() {
    let broker = TestBroker::start_with(with_definitions(&fixture()));
    runtime().block_on(async {
        // SHA-256 (RabbitMQ's own hash), SHA-512 and MD5 (imported into RabbitMQ, exported
        // back by it), and RabbitMQ's guest.
        for (user, pass, vhost) in [
            ("defs-alice", "defs-alice-pass", "defs-app"),
            ("defs-carol", "defs-carol-pass", "defs-app"),
            ("defs-dave", "defs-dave-pass", "defs-app"),
            ("guest", "guest", "/"),
        ] {
            let conn = try_connect(&url(&broker, user, pass, vhost))
                .await
                .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"));
            conn.close(200, "bye".into()).await.unwrap();
            let wrong = try_connect(&url(&broker, user, "not-the-password", vhost)).await;
            let err = wrong
                .err()
                .unwrap_or_else(|| panic!("{user}: wrong password accepted"));
            assert!(err.to_string().contains("ACCESS_REFUSED"), "{user}: {err}");
        }
    });
    let alice = broker.broker().access().user("defs-alice").unwrap();
    assert_eq!(alice.tags, ["administrator"]);
    let bob = broker.broker().access().user("defs-bob").unwrap();
    assert_eq!(bob.tags, ["monitoring", "management"]);
}

#[test]
fn a_user_without_a_password_cannot_log_in_with_plain() {
    let broker = TestBroker::start_with(with_definitions(&fixture()));
    let erin = broker.broker().access().user("defs-erin").unwrap();
    assert!(
        !erin.password.is_set(),
        "defs-erin has an empty password_hash"
    );
    runtime().block_on(async {
        for pass in ["unused-then-cleared", "x"] {
            let err = try_connect(&url(&broker, "defs-erin", pass, "defs-app"))
                .await
                .expect_err("a user without a password logged in");
            assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");
        }
    });
}

#[test]
fn imported_exchanges_queues_and_bindings_route_messages() {
    let broker = TestBroker::start_with(with_definitions(&fixture()));
    runtime().block_on(async {
        let conn = try_connect(&url(&broker, "defs-alice", "defs-alice-pass", "defs-app"))
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let publish = |exchange: &'static str, key: &'static str, headers: Option<FieldTable>| {
            let ch = ch.clone();
            async move {
                let mut props = BasicProperties::default();
                if let Some(h) = headers {
                    props = props.with_headers(h);
                }
                ch.basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    key.as_bytes(),
                    props,
                )
                .await
                .unwrap()
                .await
                .unwrap();
            }
        };
        // Topic binding, plus the exchange-to-exchange binding to the fanout and on to audit.
        publish("defs.orders", "orders.eu.42", None).await;
        // No binding matches: the alternate exchange takes it.
        publish("defs.orders", "invoices.1", None).await;
        // Headers binding with x-match=all.
        let mut headers = FieldTable::default();
        headers.insert("kind".into(), AMQPValue::LongString("audit".into()));
        publish("defs.headers", "h", Some(headers)).await;
        publish("defs.headers", "no-headers", None).await;

        let mut got = Vec::new();
        for queue in ["defs.orders.eu", "defs.unrouted", "defs.audit"] {
            while let Some(m) = ch
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                got.push((queue, String::from_utf8(m.delivery.data.clone()).unwrap()));
            }
        }
        got.sort();
        assert_eq!(
            got,
            [
                ("defs.audit", "h".to_owned()),
                ("defs.audit", "orders.eu.42".to_owned()),
                ("defs.orders.eu", "orders.eu.42".to_owned()),
                ("defs.unrouted", "invoices.1".to_owned()),
            ]
        );
        conn.close(200, "bye".into()).await.unwrap();
    });
}

#[test]
fn policies_parameters_and_limits_are_kept_in_the_registry() {
    let broker = TestBroker::start_with(with_definitions(&fixture()));
    let state = broker.broker().access().read(|s| s.clone());
    let policy = &state.policies[&(PolicyKind::Policy, "defs-app".into(), "defs-ttl".into())];
    assert_eq!(policy.pattern, "^defs\\.ttl\\.");
    assert_eq!(policy.apply_to, "queues");
    assert_eq!(policy.priority, 1);
    assert_eq!(policy.definition["message-ttl"], Value::from(60000));
    // RabbitMQ exports an operator policy as a runtime parameter with a pair-list definition.
    let op = &state.policies[&(
        PolicyKind::OperatorPolicy,
        "defs-app".into(),
        "defs-cap".into(),
    )];
    assert_eq!(op.definition["max-length"], Value::from(1000));
    assert_eq!(op.apply_to, "queues");
    let upstream = &state.parameters[&(
        "federation-upstream".into(),
        "defs-app".into(),
        "defs-upstream".into(),
    )];
    assert_eq!(upstream["uri"], "amqp://127.0.0.1:5999");
    assert!(state.global_parameters.contains_key("defs-global"));
    assert_eq!(
        state.vhosts["defs-limited"].limits,
        VhostLimits {
            max_connections: Some(1),
            max_queues: Some(1),
        }
    );
    let app = &state.vhosts["defs-app"];
    assert_eq!(app.description, "Warren definitions fixture");
    assert_eq!(app.tags, ["fixture", "app"]);
    assert_eq!(app.default_queue_type.as_deref(), Some("classic"));
    assert_eq!(
        state.users["defs-bob"].limits,
        UserLimits {
            max_connections: Some(5),
            max_channels: Some(20),
        }
    );
    let topic =
        &state.topic_permissions[&("defs-app".into(), "defs-bob".into(), "amq.topic".into())];
    assert_eq!(topic.write, "^defs\\.");
    assert_eq!(
        state.permissions[&("defs-app".into(), "defs-bob".into())].configure,
        "^$"
    );
}

#[test]
fn vhost_limits_from_the_file_refuse_connections_and_queues() {
    let broker = TestBroker::start_with(with_definitions(&fixture()));
    runtime().block_on(async {
        let limited = url(&broker, "defs-alice", "defs-alice-pass", "defs-limited");
        let first = try_connect(&limited).await.unwrap();
        let err = try_connect(&limited)
            .await
            .expect_err("max-connections 1 let a second connection in");
        assert!(err.to_string().contains("NOT_ALLOWED"), "{err}");
        // max-queues 1, and the file's `defs.only` is that one.
        let ch = first.create_channel().await.unwrap();
        let err = ch
            .queue_declare(
                "defs.second".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect_err("max-queues 1 let a second queue in");
        assert!(err.to_string().contains("queue limit"), "{err}");
        first.close(200, "bye".into()).await.unwrap();
    });
}

#[test]
fn the_default_guest_user_is_not_seeded_when_definitions_are_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("defs.json");
    // A hand-written file: a cleartext password (hashed at import) and comma-separated tags.
    std::fs::write(
        &file,
        r#"{"users": [{"name": "app", "password": "app-pass", "tags": "management, monitoring"}],
            "vhosts": [{"name": "/"}],
            "permissions": [{"user": "app", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]}"#,
    )
    .unwrap();
    let broker = TestBroker::start_with(with_definitions(&file));
    let users: Vec<String> = broker
        .broker()
        .access()
        .read(|s| s.users.keys().cloned().collect());
    assert_eq!(users, ["app"]);
    assert_eq!(
        broker.broker().access().user("app").unwrap().tags,
        ["management", "monitoring"]
    );
    runtime().block_on(async {
        let err = try_connect(&broker.url()).await.expect_err("guest exists");
        assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");
        let conn = try_connect(&url(&broker, "app", "app-pass", "/"))
            .await
            .unwrap();
        conn.close(200, "bye".into()).await.unwrap();
    });
}

#[test]
fn users_without_an_algorithm_get_md5_from_rabbitmq_3_5_files_and_sha256_otherwise() {
    // salt 0x908DC60A ++ H(salt ++ "guest"), as in access/password.rs.
    let md5 = "kI3GCsLphS59YDqYemSoxQGij64=";
    let sha256 = "kI3GCrswBLNZQzHJJ95QLoyfAVooYhnvf7jbqiW9BjOYUloe";
    for (version, hash) in [("3.5.7", md5), ("3.10.8", sha256)] {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("defs.json");
        let json = serde_json::json!({
            "rabbit_version": version,
            "users": [{"name": "old", "password_hash": hash, "tags": ""}],
        });
        std::fs::write(&file, json.to_string()).unwrap();
        let config = BrokerConfig {
            load_definitions: Some(file),
            ..BrokerConfig::default()
        };
        let broker = Broker::open(&tmp.path().join("data"), config).unwrap();
        let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
        assert!(
            broker
                .authenticate("PLAIN", "old", "guest", localhost)
                .is_ok(),
            "{version}"
        );
        broker.close().unwrap();
    }
}

#[test]
fn every_boot_imports_the_file_again() {
    let broker = TestBroker::start_with(with_definitions(&fixture()));
    broker.broker().delete_user("defs-bob").unwrap();
    broker
        .broker()
        .vhost("defs-app")
        .unwrap()
        .delete_queue("defs.audit", false, false, 0)
        .unwrap();
    let broker = broker.restart();
    assert!(broker.broker().access().user("defs-bob").is_some());
    assert!(
        broker
            .broker()
            .vhost("defs-app")
            .unwrap()
            .queue("defs.audit", 0)
            .is_ok()
    );
}

#[test]
fn export_then_import_into_a_fresh_broker_gives_the_same_state() {
    let first = TestBroker::start_with(with_definitions(&fixture()));
    // Something the file did not have: an internal exchange, a binding from amq.direct.
    let app = first.broker().vhost("defs-app").unwrap();
    app.declare_exchange(
        warren_broker::ExchangeSpec {
            name: "defs.internal".into(),
            kind: "direct".into(),
            durable: true,
            auto_delete: false,
            internal: true,
            arguments: FieldTable::default(),
        },
        false,
    )
    .unwrap();
    app.bind(
        "amq.direct",
        warren_broker::Dest::Queue("defs.audit".into()),
        "k",
        &FieldTable::default(),
        0,
    )
    .unwrap();
    let exported = first.broker().export_definitions();
    let state = first.broker().access().read(|s| s.clone());
    drop(app);
    drop(first);

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("warren-export.json");
    std::fs::write(&file, exported.to_json().unwrap()).unwrap();
    // The export parses back to itself.
    assert_eq!(Definitions::read(&file).unwrap(), exported);
    let second = TestBroker::start_with(with_definitions(&file));
    assert_eq!(second.broker().access().read(|s| s.clone()), state);
    assert_eq!(second.broker().export_definitions(), exported);
    let names: Vec<&str> = exported.exchanges.iter().map(|x| x.name.as_str()).collect();
    assert!(names.contains(&"defs.internal"), "{names:?}");
    assert!(
        exported
            .bindings
            .iter()
            .any(|b| b.source == "amq.direct" && b.destination == "defs.audit")
    );
}

// ---------------------------------------------------------------- the binary

/// Run the binary until it exits (20 s at most) with `args`, without inherited `WARREN_*`.
fn run_warren(args: &[&str]) -> Output {
    let mut cmd = Command::new(warren_binary());
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("WARREN_") {
            cmd.env_remove(k);
        }
    }
    // Never the default management port 15672: tests run side by side.
    cmd.env("WARREN_HTTP_LISTEN", "127.0.0.1:0");
    cmd.env("WARREN_PROMETHEUS_LISTEN", "127.0.0.1:0");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// The fixture with one change applied to its JSON.
fn broken_fixture(dir: &Path, name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
    let mut json: Value = serde_json::from_slice(&std::fs::read(fixture()).unwrap()).unwrap();
    change(&mut json);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    path
}

#[test]
fn a_malformed_definitions_file_stops_the_binary_with_one_line_and_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_json = tmp.path().join("bad-json.json");
    std::fs::write(&bad_json, "{\"users\": [\n  {\"name\": \"x\",}\n]}").unwrap();
    let wrong_type = broken_fixture(tmp.path(), "wrong-type", |j| {
        j["users"][2]["tags"] = Value::from(7);
    });
    let missing_queue = broken_fixture(tmp.path(), "missing-queue", |j| {
        j["bindings"][1]["destination"] = Value::from("defs.nowhere");
    });
    for (file, expect, parsed) in [
        (&bad_json, "not valid JSON: ", false),
        (
            &wrong_type,
            "users[2].tags: expected a list of strings or a comma-separated string, got a number",
            false,
        ),
        (
            &missing_queue,
            "bindings[1].destination: queue 'defs.nowhere' in vhost 'defs-app' is neither in the file nor in the broker",
            true,
        ),
    ] {
        let data = tmp.path().join(format!(
            "data-{}",
            file.file_stem().unwrap().to_string_lossy()
        ));
        let out = run_warren(&[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--load-definitions",
            file.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{expect}: exit {:?}", out.status);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("warren:"))
            .collect();
        assert_eq!(errors.len(), 1, "{expect}: stderr:\n{stderr}");
        let line = errors[0];
        assert_eq!(
            Some(line),
            stderr.lines().last(),
            "{expect}: stderr:\n{stderr}"
        );
        let prefix = format!("warren: cannot load definitions from {}: ", file.display());
        assert!(
            line.starts_with(&prefix) && line.contains(expect),
            "{expect}: {line}"
        );
        if !parsed {
            // Refused before the store was opened: one line in all, no data directory.
            assert_eq!(stderr.lines().count(), 1, "stderr:\n{stderr}");
            assert!(!data.exists(), "data dir created by a refused file");
            continue;
        }
        // Refused after recovery: the data directory has none of the file's users.
        let config = BrokerConfig {
            seed_defaults: false,
            ..BrokerConfig::default()
        };
        let broker = Broker::open(&data, config).unwrap();
        let users = broker.access().read(|s| s.users.len());
        let vhosts: Vec<String> = broker.access().read(|s| s.vhosts.keys().cloned().collect());
        assert_eq!(users, 0, "half-imported users");
        assert!(vhosts.is_empty(), "half-imported vhosts: {vhosts:?}");
        broker.close().unwrap();
    }
}

#[test]
fn the_binary_loads_definitions_named_in_its_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("warren.toml");
    std::fs::write(
        &config,
        format!("load_definitions = {:?}\n", fixture().to_str().unwrap()),
    )
    .unwrap();
    let broker = BinaryBroker::spawn_with(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    runtime().block_on(async {
        let url = format!(
            "amqp://defs-alice:defs-alice-pass@127.0.0.1:{}/defs-app",
            broker.port
        );
        let conn = try_connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", broker.log_text()));
        let ch = conn.create_channel().await.unwrap();
        let declared = ch
            .queue_declare(
                "defs.orders.eu".into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        assert_eq!(declared.message_count(), 0);
        conn.close(200, "bye".into()).await.unwrap();
    });
    assert_eq!(broker.terminate(), Some(0));
}
