//! rabbitmqadmin v2 (RabbitMQ's own Rust CLI of the management HTTP API) against a spawned
//! `warren` with its HTTP API (`mgmt_support`): the commands an operator uses most, each
//! checked through its output and through the API or AMQP.
//!
//! Set-up, on first use: `cargo install rabbitmqadmin --version 2.35.0 --locked` into
//! `$CARGO_TARGET_DIR/rabbitmqadmin` (under a lock file, so parallel tests install once;
//! measured 8.5 minutes with `-j 1` and 11 minutes with other builds keeping 2 cores busy;
//! its 500 MB build directory is removed afterwards). Skipped with one printed line only when
//! cargo is absent or crates.io cannot be reached; any other install failure fails.
//!
//! What rabbitmqadmin 2.35.0 (rabbitmq_http_client 0.92) sends and needs, observed through
//! a logging proxy in front of RabbitMQ 3.10 and read from its response types. It
//! percent-encodes every non-alphanumeric byte of a path segment, `-` too
//! (`/api/vhosts/ctl%2Dra`): the API must decode all of them. A field marked * must be in
//! the answer (serde without a default), the others may be absent or null.
//! - `declare vhost --name V`: PUT /api/vhosts/V `{"name","tracing":false}` -> 201/204.
//! - `declare queue --name Q [--type T]`: PUT /api/queues/V/Q `{"name","durable":true,
//!   "auto_delete":false,"exclusive":false,"arguments":{"x-queue-type":"classic"}}`.
//! - `declare user --name U --password P --tags T`: PUT /api/users/U `{"name",
//!   "password_hash": base64(salt4 ++ SHA-256(salt4 ++ P)),"tags":"T"}` (hashed client-side,
//!   no `hashing_algorithm`: SHA-256 is implied).
//! - `declare permissions --user U --configure C --read R --write W`: PUT
//!   /api/permissions/V/U `{"user","vhost","configure","read","write"}`.
//! - `declare policy --name N --pattern P --definition D --priority I --apply-to A`: PUT
//!   /api/policies/V/N `{"vhost","name","pattern","apply-to","priority","definition"}`.
//! - `purge queue --name Q`: DELETE /api/queues/V/Q/contents; `delete queue|user|vhost|policy`:
//!   DELETE /api/queues/V/Q, /api/users/U, /api/vhosts/V, /api/policies/V/N.
//! - `list queues`: GET /api/queues/V; each: *name *vhost *type *durable *auto_delete
//!   *exclusive *arguments, then node state leader members online memory consumers
//!   consumer_utilisation exclusive_consumer_tag policy operator_policy
//!   effective_policy_definition message_bytes(_persistent,_ram,_ready,_unacknowledged)
//!   messages messages_persistent messages_ram messages_unacknowledged.
//! - `list users`: GET /api/users; *name *tags (a JSON array of strings), password_hash.
//! - `list vhosts`: GET /api/vhosts; *name, tags description default_queue_type metadata.
//! - `list exchanges`: GET /api/exchanges/V (`/` by default); *name *vhost *type *durable
//!   *auto_delete *arguments.
//! - `list connections`: GET /api/connections; *name *node *protocol *user *connected_at
//!   (an integer, ms) *client_properties (an object), state host port peer_host peer_port
//!   channel_max channels.
//! - `list permissions`: GET /api/permissions; *user *vhost *configure *read *write.
//! - `list policies`: GET /api/policies; *name *vhost *pattern *apply-to (queues,
//!   classic_queues, quorum_queues, streams, exchanges, all) *priority (fits i16) *definition.
//! - `definitions export --stdout`: GET /api/definitions, printed as it came.
//! - `show overview`: GET /api/overview; every field optional, but each `listeners` entry
//!   needs *node *protocol *port *ip_address; it shows product_name, product_version,
//!   rabbitmq_version, erlang_version, erlang_full_version, object_totals, queue_totals,
//!   message_stats.*_details.rate, cluster_tags, node_tags.
//! - Errors: it prints "API responded with a 404 Not Found", or the body's `reason` for a
//!   400 (a policy definition RabbitMQ refuses), and exits 65.
//!
//! The tests run against a spawned `warren` with its HTTP API; they can run against the
//! reference RabbitMQ as well:
//! `WARREN_TEST_HTTP_URL=http://127.0.0.1:15673 WARREN_TEST_URL=amqp://guest:guest@127.0.0.1:5673/%2f
//! cargo test --workspace --test rabbitmqadmin`.

#![allow(clippy::unwrap_used)]

mod mgmt_support;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use mgmt_support::{ApiBroker, eventually, target_dir, unique};
use warren_ctl::client::{ApiClient, path};
use warren_ctl::error::Subject;

const VERSION: &str = "2.35.0";
const STATS: Duration = Duration::from_secs(30);

/// One line past the test harness's output capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Messages of `cargo install` that mean "no network", not "broken build".
const OFFLINE: &[&str] = &[
    "failed to query replaced source registry",
    "failed to download",
    "failed to fetch",
    "failed to get",
    "Could not resolve host",
    "Couldn't resolve host",
    "network failure",
    "spurious network error",
    "failed to update registry",
    "[6] Couldn't resolve",
    "[7] Couldn't connect",
];

/// The rabbitmqadmin binary, installed on first use; `Err` says why the test is skipped.
fn rabbitmqadmin() -> &'static Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = target_dir().join("rabbitmqadmin");
        let bin = root.join("bin").join("rabbitmqadmin");
        let installed = || {
            Command::new(&bin)
                .arg("--version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(VERSION))
        };
        if installed() {
            return Ok(bin.clone());
        }
        std::fs::create_dir_all(target_dir()).unwrap();
        let lock = File::create(target_dir().join("rabbitmqadmin.lock")).unwrap();
        lock.lock().unwrap();
        if installed() {
            return Ok(bin.clone());
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        say(&format!(
            "rabbitmqadmin.rs: installing rabbitmqadmin {VERSION} into {} (a few minutes, once)",
            root.display()
        ));
        let build_dir = target_dir().join("rabbitmqadmin-build");
        let output = match Command::new(&cargo)
            .args([
                "install",
                "rabbitmqadmin",
                "--version",
                VERSION,
                "--locked",
                "--root",
            ])
            .arg(&root)
            // Its own build directory: never the one `cargo test` is using.
            .env("CARGO_TARGET_DIR", &build_dir)
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) => o,
            Err(e) => return Err(format!("cargo ({cargo}) cannot be run: {e}")),
        };
        let _ = std::fs::remove_dir_all(&build_dir);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() && installed() {
            return Ok(bin.clone());
        }
        if OFFLINE.iter().any(|m| stderr.contains(m)) {
            return Err(format!(
                "crates.io cannot be reached to install rabbitmqadmin: {}",
                stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
            ));
        }
        panic!(
            "cargo install rabbitmqadmin failed ({}):\n{stderr}",
            output.status
        );
    })
}

/// rabbitmqadmin, or `None` (after one printed line) when it cannot be installed here.
fn admin_or_skip(test: &str) -> Option<PathBuf> {
    match rabbitmqadmin() {
        Ok(bin) => Some(bin.clone()),
        Err(why) => {
            say(&format!("SKIP {test}: {why}"));
            None
        }
    }
}

/// `rabbitmqadmin --host H --port P --username guest --password guest --non-interactive
/// [--vhost V] <args>`, run to completion.
fn admin(bin: &PathBuf, api: &ApiBroker, vhost: Option<&str>, args: &[&str]) -> Output {
    let (host, port) = api.http_host_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--host", &host, "--port", &port.to_string()])
        .args([
            "--username",
            "guest",
            "--password",
            "guest",
            "--non-interactive",
        ])
        // The flags win over whatever ~/.rabbitmqadmin.conf says.
        .env_remove("RABBITMQADMIN_CONFIG_FILE_PATH")
        .env_remove("RABBITMQADMIN_NODE_ALIAS");
    if let Some(v) = vhost {
        cmd.args(["--vhost", v]);
    }
    cmd.args(args).output().expect("run rabbitmqadmin")
}

/// stdout of a command that must succeed.
#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The first cell of every row of `--non-interactive` output (cells are space-aligned).
fn first_cells(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The row whose first cell is `name`, split on whitespace.
fn row(stdout: &str, name: &str) -> Option<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().is_some_and(|c| c == name))
}

#[test]
fn rabbitmqadmin_declares_lists_purges_and_deletes_a_queue() {
    let Some(bin) = admin_or_skip("rabbitmqadmin_declares_lists_purges_and_deletes_a_queue") else {
        return;
    };
    let api = ApiBroker::start();
    let queue = unique("admin-q");
    ok(admin(
        &bin,
        &api,
        Some("/"),
        &["declare", "queue", "--name", &queue],
    ));
    let listed = ok(admin(&bin, &api, Some("/"), &["list", "queues"]));
    let cells = row(&listed, &queue).unwrap_or_else(|| panic!("{queue} not listed:\n{listed}"));
    // name, vhost, queue_type, durable, ...
    assert_eq!(cells[1..4], ["/", "classic", "true"], "{listed}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = warren_integration::connect(&api.amqp_url).await;
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for body in [&b"one"[..], b"two"] {
            ch.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
        conn.close(200, "done".into()).await.unwrap();
    });
    let client = api.client();
    let queue_path = path(&["queues", "/", &queue]);
    let messages = |n: u64| {
        let q = client.get(&queue_path, Subject::Other).unwrap();
        (q["messages"].as_u64() == Some(n)).then_some(())
    };
    eventually("2 messages", STATS, || messages(2));

    ok(admin(
        &bin,
        &api,
        Some("/"),
        &["purge", "queue", "--name", &queue],
    ));
    eventually("the purge", STATS, || messages(0));

    ok(admin(
        &bin,
        &api,
        Some("/"),
        &["delete", "queue", "--name", &queue],
    ));
    assert!(
        client
            .get_optional(&queue_path, Subject::Other)
            .unwrap()
            .is_none()
    );
    let listed = ok(admin(&bin, &api, Some("/"), &["list", "queues"]));
    assert!(!first_cells(&listed).contains(&queue), "{listed}");
}

#[test]
fn rabbitmqadmin_manages_vhosts_users_permissions_and_policies() {
    let test = "rabbitmqadmin_manages_vhosts_users_permissions_and_policies";
    let Some(bin) = admin_or_skip(test) else {
        return;
    };
    let api = ApiBroker::start();
    let vhost = unique("admin-vhost");
    let user = unique("admin-user");
    ok(admin(
        &bin,
        &api,
        None,
        &["declare", "vhost", "--name", &vhost],
    ));
    let vhosts = ok(admin(&bin, &api, None, &["list", "vhosts"]));
    assert!(first_cells(&vhosts).contains(&vhost), "{vhosts}");

    // rabbitmqadmin hashes the password itself and sends `password_hash`.
    ok(admin(
        &bin,
        &api,
        None,
        &[
            "declare",
            "user",
            "--name",
            &user,
            "--password",
            "admin-pass",
            "--tags",
            "monitoring",
        ],
    ));
    let users = ok(admin(&bin, &api, None, &["list", "users"]));
    let cells = row(&users, &user).unwrap_or_else(|| panic!("{user} not listed:\n{users}"));
    assert_eq!(cells[1], "monitoring", "{users}");
    let as_user = ApiClient::new(&api.http_url, &user, "admin-pass", Duration::from_secs(30));
    let whoami = as_user.get(&path(&["whoami"]), Subject::Other).unwrap();
    assert_eq!(whoami["name"], user.as_str());

    ok(admin(
        &bin,
        &api,
        Some(&vhost),
        &[
            "declare",
            "permissions",
            "--user",
            &user,
            "--configure",
            "^$",
            "--read",
            ".*",
            "--write",
            "^admin",
        ],
    ));
    let permissions = ok(admin(&bin, &api, None, &["list", "permissions"]));
    assert!(
        permissions
            .lines()
            .any(|l| l.contains(&user) && l.contains(&vhost) && l.contains("^admin")),
        "{permissions}"
    );
    let permission = api
        .client()
        .get(&path(&["permissions", &vhost, &user]), Subject::Other)
        .unwrap();
    assert_eq!(
        (
            &permission["configure"],
            &permission["write"],
            &permission["read"]
        ),
        (&"^$".into(), &"^admin".into(), &".*".into())
    );

    ok(admin(
        &bin,
        &api,
        Some(&vhost),
        &[
            "declare",
            "policy",
            "--name",
            "admin-ttl",
            "--pattern",
            "^admin",
            "--definition",
            r#"{"message-ttl":1000}"#,
            "--priority",
            "3",
            "--apply-to",
            "queues",
        ],
    ));
    let policies = ok(admin(&bin, &api, None, &["list", "policies"]));
    assert!(policies.contains("admin-ttl"), "{policies}");
    let policy = api
        .client()
        .get(&path(&["policies", &vhost, "admin-ttl"]), Subject::Other)
        .unwrap();
    assert_eq!(policy["priority"], 3);
    assert_eq!(policy["apply-to"], "queues");
    assert_eq!(policy["definition"]["message-ttl"], 1000);
    ok(admin(
        &bin,
        &api,
        Some(&vhost),
        &["delete", "policy", "--name", "admin-ttl"],
    ));

    ok(admin(
        &bin,
        &api,
        None,
        &["delete", "user", "--name", &user],
    ));
    ok(admin(
        &bin,
        &api,
        None,
        &["delete", "vhost", "--name", &vhost],
    ));
    let users = ok(admin(&bin, &api, None, &["list", "users"]));
    assert!(!first_cells(&users).contains(&user), "{users}");
    let vhosts = ok(admin(&bin, &api, None, &["list", "vhosts"]));
    assert!(!first_cells(&vhosts).contains(&vhost), "{vhosts}");
}

#[test]
fn rabbitmqadmin_exports_definitions_and_shows_the_overview() {
    let test = "rabbitmqadmin_exports_definitions_and_shows_the_overview";
    let Some(bin) = admin_or_skip(test) else {
        return;
    };
    let api = ApiBroker::start();
    let queue = unique("admin-export-q");
    ok(admin(
        &bin,
        &api,
        Some("/"),
        &["declare", "queue", "--name", &queue],
    ));
    let exported: serde_json::Value = serde_json::from_str(&ok(admin(
        &bin,
        &api,
        None,
        &["definitions", "export", "--stdout"],
    )))
    .unwrap();
    assert!(
        exported["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == queue.as_str() && q["vhost"] == "/"),
        "{exported}"
    );

    let overview = ok(admin(&bin, &api, None, &["show", "overview"]));
    let product = api
        .client()
        .get(&path(&["overview"]), Subject::Other)
        .unwrap();
    let product_name = product["product_name"].as_str().unwrap();
    assert!(
        overview
            .lines()
            .any(|l| l.starts_with("Product name") && l.contains(product_name)),
        "{overview}"
    );
    ok(admin(
        &bin,
        &api,
        Some("/"),
        &["delete", "queue", "--name", &queue],
    ));
}

#[test]
fn rabbitmqadmin_reports_a_missing_queue_and_a_refused_policy_with_exit_65() {
    let test = "rabbitmqadmin_reports_a_missing_queue_and_a_refused_policy_with_exit_65";
    let Some(bin) = admin_or_skip(test) else {
        return;
    };
    let api = ApiBroker::start();
    let missing = unique("admin-missing");
    let out = admin(
        &bin,
        &api,
        Some("/"),
        &["delete", "queue", "--name", &missing],
    );
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{out:?}"
    );
    let out = admin(&bin, &api, Some(&missing), &["list", "queues"]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");

    let policy = unique("admin-bad-policy");
    let out = admin(
        &bin,
        &api,
        Some("/"),
        &[
            "declare",
            "policy",
            "--name",
            &policy,
            "--pattern",
            "^x",
            "--definition",
            r#"{"message-ttl":"soon"}"#,
            "--apply-to",
            "queues",
        ],
    );
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let policy_path = path(&["policies", "/", &policy]);
    assert!(
        api.client()
            .get_optional(&policy_path, Subject::Other)
            .unwrap()
            .is_none()
    );
}
