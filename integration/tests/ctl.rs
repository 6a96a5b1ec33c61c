//! `warren ctl`: the built binary run as a process against a real broker's management HTTP
//! API (the `warren` binary spawned with `--http-listen`, see `mgmt_support`), checking
//! output, effects (through the API and over AMQP) and exit codes.
//!
//! The tests that need an API run against a spawned `warren` with its HTTP API; they can
//! run against the reference RabbitMQ as well:
//! `WARREN_TEST_HTTP_URL=http://127.0.0.1:15673 WARREN_TEST_URL=amqp://guest:guest@127.0.0.1:5673/%2f
//! cargo test --workspace --test ctl`.
//! The others need no API (usage errors, an unreachable broker, the broker's configuration).

#![allow(clippy::unwrap_used)]

mod mgmt_support;

use std::process::Command;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use mgmt_support::{ApiBroker, ctl, ctl_as, eventually, ok, rows, unique};
use warren_integration::{free_port, warren_binary};

const STATS: Duration = Duration::from_secs(30);

fn run_warren(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(warren_binary());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("WARREN_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run warren")
}

#[test]
fn ctl_usage_errors_exit_64_and_help_exits_0() {
    let out = run_warren(&["ctl", "no_such_command"], &[]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let out = run_warren(&["ctl", "add_user", "only-a-name"], &[]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let out = run_warren(&["ctl", "--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["list_queues", "set_policy", "export_definitions", "status"] {
        assert!(help.contains(command), "{command} not in help:\n{help}");
    }
    // The broker's own flags keep clap's exit code.
    let out = run_warren(&["--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn ctl_against_an_unreachable_broker_exits_69_naming_the_url() {
    // A port nothing listens on: bound then released.
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run_warren(&["ctl", "--url", &url, "list_queues"], &[]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    // The same through WARREN_CTL_URL.
    let out = run_warren(&["ctl", "list_vhosts"], &[("WARREN_CTL_URL", &url)]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
}

#[test]
fn ctl_bad_column_and_bad_policy_definition_fail_before_any_request() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run_warren(&["ctl", "--url", &url, "list_queues", "colour"], &[]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
    let out = run_warren(
        &["ctl", "--url", &url, "set_policy", "p", ".*", "{not json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(65), "{out:?}");
}

#[test]
fn warren_ctl_environment_does_not_disturb_the_brokers_configuration() {
    let env = [
        ("WARREN_CTL_URL", "http://127.0.0.1:1"),
        ("WARREN_CTL_USERNAME", "someone"),
        ("WARREN_CTL_PASSWORD", "secret"),
    ];
    let out = run_warren(&["--print-config"], &env);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(
        !config.contains("someone") && !config.contains("ctl"),
        "{config}"
    );
}

#[test]
fn ctl_user_lifecycle_add_tag_change_password_delete() {
    let api = ApiBroker::start();
    let user = unique("ctl-user");
    ok(ctl(&api, &["-q", "add_user", &user, "first-pass"]));
    // add_user of an existing user fails and changes nothing.
    let out = ctl(&api, &["-q", "add_user", &user, "other-pass"]);
    assert_eq!(out.status.code(), Some(70), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    ok(ctl(
        &api,
        &["-q", "set_user_tags", &user, "administrator", "monitoring"],
    ));
    let users = rows(&ok(ctl(&api, &["-s", "list_users"])));
    let row = users.iter().find(|r| r[0] == user).expect("user listed");
    assert_eq!(row[1], "[administrator, monitoring]");

    // The old password works until it is changed; then only the new one does, and the
    // tags stay.
    ok(ctl_as(&api, &user, "first-pass", &["-q", "list_vhosts"]));
    ok(ctl(&api, &["-q", "change_password", &user, "second-pass"]));
    let out = ctl_as(&api, &user, "first-pass", &["-q", "list_vhosts"]);
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    ok(ctl_as(&api, &user, "second-pass", &["-q", "list_users"]));
    // set_user_tags keeps the password.
    ok(ctl(&api, &["-q", "set_user_tags", &user, "administrator"]));
    ok(ctl_as(&api, &user, "second-pass", &["-q", "list_users"]));

    ok(ctl(&api, &["-q", "delete_user", &user]));
    let out = ctl(&api, &["-q", "delete_user", &user]);
    assert_eq!(out.status.code(), Some(67), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("404"), "{stderr}");
    let out = ctl(&api, &["-q", "change_password", &user, "x"]);
    assert_eq!(out.status.code(), Some(67), "{out:?}");
}

#[test]
fn ctl_vhost_permissions_and_policies() {
    let api = ApiBroker::start();
    let vhost = unique("ctl-vhost/with slash");
    let user = unique("ctl-perm-user");
    ok(ctl(
        &api,
        &["-q", "add_vhost", &vhost, "--description", "made by ctl"],
    ));
    let vhosts = rows(&ok(ctl(
        &api,
        &["-s", "list_vhosts", "name", "description"],
    )));
    assert!(
        vhosts.contains(&vec![vhost.clone(), "made by ctl".to_string()]),
        "{vhosts:?}"
    );

    ok(ctl(&api, &["-q", "add_user", &user, "pass"]));
    ok(ctl(
        &api,
        &[
            "-q",
            "-p",
            &vhost,
            "set_permissions",
            &user,
            "^$",
            "^ctl\\.",
            ".*",
        ],
    ));
    let perms = rows(&ok(ctl(&api, &["-s", "-p", &vhost, "list_permissions"])));
    assert!(
        perms.contains(&vec![
            user.clone(),
            "^$".to_string(),
            "^ctl\\.".to_string(),
            ".*".to_string()
        ]),
        "{perms:?}"
    );

    ok(ctl(
        &api,
        &[
            "-q",
            "-p",
            &vhost,
            "set_policy",
            "ctl-ttl",
            "^ctl\\.",
            r#"{"message-ttl":60000}"#,
            "--priority",
            "7",
            "--apply-to",
            "queues",
        ],
    ));
    let policies = rows(&ok(ctl(&api, &["-s", "-p", &vhost, "list_policies"])));
    assert_eq!(policies.len(), 1, "{policies:?}");
    let p = &policies[0];
    assert_eq!(
        (p[0].as_str(), p[1].as_str(), p[2].as_str()),
        (vhost.as_str(), "ctl-ttl", "^ctl\\.")
    );
    assert_eq!(p[3], "queues");
    let definition: serde_json::Value = serde_json::from_str(&p[4]).unwrap();
    assert_eq!(definition, serde_json::json!({"message-ttl": 60000}));
    assert_eq!(p[5], "7");

    // A definition the broker refuses: 400 from the API, exit 65, its reason shown.
    let out = ctl(
        &api,
        &[
            "-q",
            "-p",
            &vhost,
            "set_policy",
            "bad",
            ".*",
            r#"{"message-ttl":"soon"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("400"));

    ok(ctl(&api, &["-q", "-p", &vhost, "clear_policy", "ctl-ttl"]));
    assert_eq!(ok(ctl(&api, &["-s", "-p", &vhost, "list_policies"])), "");

    ok(ctl(&api, &["-q", "delete_user", &user]));
    ok(ctl(&api, &["-q", "delete_vhost", &vhost]));
    let out = ctl(&api, &["-q", "delete_vhost", &vhost]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let out = ctl(&api, &["-q", "-p", &vhost, "list_queues"]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
}

#[test]
fn ctl_lists_queues_consumers_connections_then_purges_deletes_and_closes() {
    let api = ApiBroker::start();
    let queue = unique("ctl-q");
    let consumed = unique("ctl-consumed");
    let tag = unique("ctl-tag");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conn_name = unique("ctl-connection");
    let (conn, _consumer) = rt.block_on(async {
        // A connection name of its own: on a shared broker, the test closes only its own.
        let properties =
            lapin::ConnectionProperties::default().with_connection_name(conn_name.as_str().into());
        let conn = lapin::Connection::connect(&api.amqp_url, properties)
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(queue.as_str().into(), durable, FieldTable::default())
            .await
            .unwrap();
        ch.queue_declare(
            consumed.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for i in 0..3 {
            ch.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        let consumer = ch
            .basic_consume(
                consumed.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        (conn, consumer)
    });

    // Columns in the order asked; the statistics may lag (RabbitMQ emits them every 5 s).
    let row = eventually("the queue's message count", STATS, || {
        let out = ok(ctl(
            &api,
            &[
                "-s",
                "list_queues",
                "name",
                "messages",
                "consumers",
                "durable",
            ],
        ));
        rows(&out)
            .into_iter()
            .find(|r| r[0] == queue && r[1] == "3")
    });
    assert_eq!(row, [queue.as_str(), "3", "0", "true"]);
    // The table has rabbitmqctl's banner and header unless told otherwise.
    let full = ok(ctl(&api, &["list_queues"]));
    let mut lines = full.lines();
    assert_eq!(lines.next(), Some("Listing queues for vhost / ..."));
    assert_eq!(lines.next(), Some("name\tmessages"));
    // The JSON formatter: an array of objects keyed by column.
    let json: serde_json::Value = serde_json::from_str(&ok(ctl(
        &api,
        &["--formatter", "json", "list_queues", "name", "durable"],
    )))
    .unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": queue, "durable": true})),
        "{json}"
    );

    let consumers = eventually("the consumer", STATS, || {
        let out = ok(ctl(
            &api,
            &[
                "-s",
                "list_consumers",
                "queue_name",
                "consumer_tag",
                "ack_required",
            ],
        ));
        rows(&out).into_iter().find(|r| r[1] == tag)
    });
    assert_eq!(consumers, [consumed.as_str(), tag.as_str(), "true"]);

    let exchanges = rows(&ok(ctl(&api, &["-s", "list_exchanges"])));
    assert!(
        exchanges.contains(&vec!["amq.topic".to_string(), "topic".to_string()]),
        "{exchanges:?}"
    );
    let bindings = rows(&ok(ctl(&api, &["-s", "list_bindings"])));
    assert!(
        bindings.contains(&vec![
            String::new(),
            "exchange".into(),
            queue.clone(),
            "queue".into(),
            queue.clone(),
            "{}".into()
        ]),
        "{bindings:?}"
    );

    ok(ctl(&api, &["-q", "purge_queue", &queue]));
    eventually("the purge", STATS, || {
        let out = ok(ctl(&api, &["-s", "list_queues", "name", "messages"]));
        rows(&out)
            .into_iter()
            .find(|r| r[0] == queue && r[1] == "0")
    });
    // if-empty refuses a non-empty queue only; this one is empty now.
    ok(ctl(&api, &["-q", "delete_queue", &queue, "--if-empty"]));
    let out = ctl(&api, &["-q", "delete_queue", &queue]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");

    // close_connection by the name list_connections shows; the client sees 320.
    let name = eventually("the connection", STATS, || {
        let out = ok(ctl(
            &api,
            &[
                "-s",
                "list_connections",
                "name",
                "user",
                "client_properties",
            ],
        ));
        rows(&out)
            .into_iter()
            .find(|r| r[1] == "guest" && r[2].contains(&conn_name))
            .map(|r| r[0].clone())
    });
    ok(ctl(
        &api,
        &["-q", "close_connection", &name, "closed by the ctl test"],
    ));
    eventually("the connection to close", STATS, || {
        (!conn.status().connected()).then_some(())
    });
    rt.block_on(async {
        let ch = warren_integration::connect(&api.amqp_url)
            .await
            .create_channel()
            .await
            .unwrap();
        ch.queue_delete(consumed.as_str().into(), Default::default())
            .await
            .unwrap();
    });
}

#[test]
fn ctl_export_then_import_definitions_round_trips_a_vhost() {
    let api = ApiBroker::start();
    let vhost = unique("ctl-defs");
    ok(ctl(&api, &["-q", "add_vhost", &vhost]));
    ok(ctl(
        &api,
        &[
            "-q",
            "-p",
            &vhost,
            "set_policy",
            "cap",
            "^c",
            r#"{"max-length":10}"#,
        ],
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("defs.json");
    let file_arg = file.to_str().unwrap();
    ok(ctl(&api, &["-q", "export_definitions", file_arg]));
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        exported["vhosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == vhost.as_str()),
        "{exported}"
    );
    // `-` writes to stdout, with no banner.
    let stdout: serde_json::Value =
        serde_json::from_str(&ok(ctl(&api, &["export_definitions", "-"]))).unwrap();
    assert!(
        stdout["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["vhost"] == vhost.as_str())
    );

    ok(ctl(&api, &["-q", "delete_vhost", &vhost]));
    ok(ctl(&api, &["-q", "import_definitions", file_arg]));
    let policies = rows(&ok(ctl(&api, &["-s", "-p", &vhost, "list_policies"])));
    assert_eq!(policies.len(), 1, "{policies:?}");
    assert_eq!(policies[0][1], "cap");

    std::fs::write(&file, "{not json").unwrap();
    let out = ctl(&api, &["-q", "import_definitions", file_arg]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let out = ctl(
        &api,
        &["-q", "import_definitions", "/nonexistent/defs.json"],
    );
    assert_eq!(out.status.code(), Some(66), "{out:?}");
    ok(ctl(&api, &["-q", "delete_vhost", &vhost]));
}

#[test]
fn ctl_status_names_the_node_and_its_amqp_listener() {
    let api = ApiBroker::start();
    let out = ok(ctl(&api, &["-q", "status"]));
    let node = out
        .lines()
        .find_map(|l| l.strip_prefix("node: "))
        .unwrap_or_else(|| panic!("no node line:\n{out}"));
    assert!(!node.is_empty());
    let amqp_port = api
        .amqp_url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap();
    let listeners = out
        .lines()
        .find_map(|l| l.strip_prefix("listeners: "))
        .unwrap();
    let amqp = format!(":{amqp_port}");
    assert!(
        listeners
            .trim_matches(['[', ']'])
            .split(", ")
            .any(|l| l.starts_with("amqp ") && l.ends_with(&amqp)),
        "{listeners}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(ctl(&api, &["--formatter", "json", "status"]))).unwrap();
    assert_eq!(json["node"], node);
    assert!(json["queues"].is_number(), "{json}");
    // Wrong credentials: 401, exit 77.
    let out = ctl_as(&api, "guest", "wrong", &["status"]);
    assert_eq!(out.status.code(), Some(77), "{out:?}");
}
