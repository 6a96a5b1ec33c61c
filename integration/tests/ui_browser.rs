//! The web UI in a real browser: headless Chromium (Debian's `chromium` package) driven by
//! Playwright (`playwright-core`, which downloads no browser) runs the Node scripts in
//! `integration/ui/` against an in-process broker with the management API.
//!
//! Set-up, on first use (under lock files in the target directory, so parallel tests and
//! test processes never install at once): `apt-get install chromium nodejs npm` when
//! missing and running as root, and `npm install` of `integration/ui/package.json` into
//! `$CARGO_TARGET_DIR/node-ui` (redone when the package file changes). Where no browser can
//! be installed (not root, no apt-get), the test prints one line saying so and passes.
//! Screenshots go to `$CARGO_TARGET_DIR/ui-screenshots/`.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::types::LongString;
use lapin::{BasicProperties, Connection, ConnectionProperties, ErrorKind, Event};
use warren_integration::{TestBroker, TestConfig, connect};

const CHROMIUM: &str = "/usr/bin/chromium";
const FIREFOX: &str = "/usr/bin/firefox-esr";

/// How long one browser script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// `$CARGO_TARGET_DIR`, else the target directory holding this test.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        }
    }
}

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// An exclusive lock on `$CARGO_TARGET_DIR/<name>.lock` while the returned file lives.
fn lock(name: &str) -> File {
    let dir = target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = File::create(dir.join(format!("{name}.lock"))).unwrap();
    file.lock().unwrap();
    file
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run an install step; `Err` with its output if it fails.
fn step(cmd: &mut Command) -> Result<(), String> {
    let output = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Chromium, Node and npm from Debian's packages. `Err` says why they cannot be had
/// (then the test skips); an install that was possible but failed panics.
fn ensure_browser() -> Result<(), String> {
    ensure_packages(
        || {
            runs(CHROMIUM, &["--version"])
                && runs("node", &["--version"])
                && runs("npm", &["--version"])
        },
        &["chromium", "nodejs", "npm"],
    )
}

/// Firefox ESR (driven over WebDriver BiDi), Node and npm from Debian's packages.
fn ensure_firefox() -> Result<(), String> {
    ensure_packages(
        || {
            runs(FIREFOX, &["--version"])
                && runs("node", &["--version"])
                && runs("npm", &["--version"])
        },
        &["firefox-esr", "nodejs", "npm"],
    )
}

/// `apt-get install packages` unless `present()`, under a lock shared with the client
/// tests' installs. `Err` says why they cannot be had (not root, no apt-get).
fn ensure_packages(present: impl Fn() -> bool, packages: &[&str]) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root || !runs("apt-get", &["--version"]) {
        return Err(format!(
            "installing it needs root and apt-get: apt-get install {}",
            packages.join(" ")
        ));
    }
    let _apt = lock("apt-clients");
    if present() {
        return Ok(());
    }
    let install = || {
        step(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(["-o", "DPkg::Lock::Timeout=600"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        step(
            Command::new("apt-get")
                .args(["update", "-q", "-o", "DPkg::Lock::Timeout=600"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .unwrap();
        install().unwrap();
    }
    assert!(present(), "{packages:?} missing after apt-get install");
    Ok(())
}

/// `node_modules` with playwright-core and puppeteer-core, installed from `integration/ui/package.json`.
fn node_modules() -> PathBuf {
    let package = std::fs::read_to_string(ui_dir().join("package.json")).unwrap();
    let dir = target_dir().join("node-ui");
    let modules = dir.join("node_modules");
    let stamp = dir.join("package.json");
    let _lock = lock("node-ui");
    let fresh = modules.join("playwright-core").exists()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(package.as_str());
    if !fresh {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&stamp, &package).unwrap();
        step(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
        )
        .unwrap();
    }
    modules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_see_a_declared_queue_appear_get_its_message_and_log_out() {
    if let Err(why) = ensure_browser() {
        say(&format!("ui_browser: skipping: no browser ({why})"));
        return;
    }
    let modules = tokio::task::spawn_blocking(node_modules).await.unwrap();
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let shots = target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let queue = "ui-browser-declared";

    let mut child = Command::new("node")
        .arg(ui_dir().join("login_queue.cjs"))
        .args([&broker.http_url(), "guest", "guest", queue])
        .arg(&shots)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let kill = || {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    };

    // The script has logged in and shows the queues list without the queue.
    let mut output = Vec::new();
    let ready = tokio::time::timeout(SCRIPT_TIMEOUT, async {
        while let Some(line) = lines.recv().await {
            output.push(line.clone());
            if line == "READY" {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "the script never got to the queues list:\n{}\n{}",
            output.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let conn = connect(&broker.url()).await;
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"hello from lapin",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let finished = tokio::time::timeout(SCRIPT_TIMEOUT, async {
        while let Some(line) = lines.recv().await {
            output.push(line);
        }
    })
    .await;
    if finished.is_err() {
        kill();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success() && finished.is_ok(),
        "browser script failed ({}):\n{}\n{}",
        out.status,
        output.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        output.iter().any(|l| l.starts_with("refused delete: ")),
        "{output:?}"
    );
    for shot in ["overview.png", "queues.png", "queue.png"] {
        let len = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot} is {len} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_an_exchange_bind_publish_from_its_page_and_get_the_message_from_the_queue() {
    if let Err(why) = ensure_browser() {
        say(&format!("ui_browser: skipping: no browser ({why})"));
        return;
    }
    let modules = tokio::task::spawn_blocking(node_modules).await.unwrap();
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let shots = target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (exchange, queue) = ("ui-browser-x", "ui-browser-bound");

    let conn = connect(&broker.url()).await;
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let (status, stdout, stderr) = run_script(
        "exchange_publish.cjs",
        &[&broker.http_url(), "guest", "guest", exchange, queue],
        &shots,
        &modules,
    )
    .await;
    assert!(
        status.success(),
        "browser script failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("refused redeclare: "), "{stdout}");
    // The script's unbind and delete went through the broker, not just the page.
    let left = reqwest::Client::new()
        .get(format!(
            "{}/api/exchanges/%2F/{exchange}",
            broker.http_url()
        ))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 404, "the exchange outlived its delete");
    for shot in ["exchanges.png", "exchange.png", "topology.png"] {
        let len = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot} is {len} bytes");
    }
}

/// Run `script` (in `integration/ui/`) with `args` and the screenshot dir to its end,
/// killed after SCRIPT_TIMEOUT; its exit status, stdout and stderr.
async fn run_script(
    script: &str,
    args: &[&str],
    shots: &Path,
    modules: &Path,
) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new("node")
        .arg(ui_dir().join(script))
        .args(args)
        .arg(shots)
        .env("NODE_PATH", modules)
        .env("CHROMIUM", CHROMIUM)
        .env("FIREFOX", FIREFOX)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waited = tokio::time::timeout(
        SCRIPT_TIMEOUT,
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut stdout = String::new();
            let mut stderr = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            (child.wait().unwrap(), stdout, stderr)
        }),
    )
    .await;
    let Ok(joined) = waited else {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("{script} ran over {SCRIPT_TIMEOUT:?}");
    };
    joined.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn see_a_connection_and_its_channel_and_close_it_with_a_reason() {
    if let Err(why) = ensure_browser() {
        say(&format!("ui_browser: skipping: no browser ({why})"));
        return;
    }
    let modules = tokio::task::spawn_blocking(node_modules).await.unwrap();
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let shots = target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (client, reason) = ("ui-browser-client", "closed from the web UI");

    let props = ConnectionProperties::default()
        .with_connection_name(LongString::from(client.as_bytes().to_vec()));
    let conn = Connection::connect(&broker.url(), props).await.unwrap();
    let mut events = conn.events_listener();
    let _channel = conn.create_channel().await.unwrap();

    let (status, stdout, stderr) = run_script(
        "connection_close.cjs",
        &[&broker.http_url(), "guest", "guest", client, reason],
        &shots,
        &modules,
    )
    .await;
    assert!(
        status.success(),
        "browser script failed ({status}):\n{stdout}\n{stderr}"
    );
    // The client got connection.close 320 with the reason typed in the form.
    let error = tokio::time::timeout(SCRIPT_TIMEOUT, async {
        while let Some(event) = events.next().await {
            if let Event::Error(e) = event {
                return e;
            }
        }
        panic!("lapin's event stream ended without an error");
    })
    .await
    .expect("lapin saw no connection error");
    match error.kind() {
        ErrorKind::ProtocolError(e) => {
            assert_eq!(e.get_id(), 320, "{error}");
            assert_eq!(
                e.get_message().as_str(),
                format!("CONNECTION_FORCED - {reason}")
            );
        }
        other => panic!("expected connection.close 320, got {other:?}"),
    }
    for shot in ["connections.png", "connection.png"] {
        let len = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot} is {len} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_a_vhost_user_permissions_and_policy_export_and_import_definitions_and_log_in_as_the_user()
 {
    if let Err(why) = ensure_browser() {
        say(&format!("ui_browser: skipping: no browser ({why})"));
        return;
    }
    let modules = tokio::task::spawn_blocking(node_modules).await.unwrap();
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let shots = target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let (status, stdout, stderr) = run_script(
        "admin.cjs",
        &[&broker.http_url(), "guest", "guest"],
        &shots,
        &modules,
    )
    .await;
    assert!(
        status.success(),
        "browser script failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("refused permission: "), "{stdout}");
    assert!(stdout.contains("refused policy: "), "{stdout}");
    assert!(
        stdout.contains("refused users page: Not administrator user"),
        "{stdout}"
    );
    assert!(stdout.contains("LOGGED IN AS ui-user"), "{stdout}");
    // What the forms did is in the broker: the imported queue, the policy, the password.
    let get = |path: &str, user: &str, pass: &str| {
        reqwest::Client::new()
            .get(format!("{}{path}", broker.http_url()))
            .basic_auth(user, Some(pass))
            .send()
    };
    let q = get("/api/queues/ui-imported/imported-q", "guest", "guest")
        .await
        .unwrap();
    assert_eq!(q.status(), 200);
    let p = get("/api/policies/ui-vh/ui-pol", "guest", "guest")
        .await
        .unwrap();
    assert_eq!(p.status(), 200);
    let me = get("/api/whoami", "ui-user", "second-pw").await.unwrap();
    assert_eq!(me.status(), 200);
    for shot in ["users.png", "policies.png"] {
        let len = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot} is {len} bytes");
    }
}

/// Where the README's screenshots go, and how many seconds the charts fill first:
/// `$WARREN_UI_SCREENSHOTS_DIR` and 60 s when set (the `scripts/ui-screenshots` command
/// points it at `docs/screenshots`), else the target dir and no wait.
fn readme_shots() -> (PathBuf, &'static str) {
    match std::env::var_os("WARREN_UI_SCREENSHOTS_DIR") {
        Some(dir) if !dir.is_empty() => (PathBuf::from(dir), "60"),
        _ => (target_dir().join("ui-screenshots").join("readme"), "0"),
    }
}

/// Declare `name` (durable) with `args`, bound to `exchange` with `key` when given.
async fn declare_bound(
    channel: &lapin::Channel,
    name: &str,
    args: FieldTable,
    binding: Option<(&str, &str)>,
) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
    if let Some((exchange, key)) = binding {
        channel
            .queue_bind(
                name.into(),
                exchange.into(),
                key.into(),
                lapin::options::QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
}

/// The load the screenshots show: a topic exchange `orders` and a fanout `notifications`
/// with queues behind them, two publishers (about 400 messages a second each, so the
/// browser keeps its share of the two cores) and consumers acking on two of the queues;
/// the others fill up to their length limits. Runs until `stop` is set.
async fn office_load(url: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
    use lapin::types::AMQPValue;
    use std::sync::atomic::Ordering;

    let conn = connect(&url).await;
    let setup = conn.create_channel().await.unwrap();
    for (exchange, kind) in [
        ("orders", lapin::ExchangeKind::Topic),
        ("notifications", lapin::ExchangeKind::Fanout),
    ] {
        setup
            .exchange_declare(
                exchange.into(),
                kind,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let limited = |n: i64| {
        let mut t = FieldTable::default();
        t.insert("x-max-length".into(), AMQPValue::LongLongInt(n));
        t
    };
    let mut ttl = limited(50_000);
    ttl.insert("x-message-ttl".into(), AMQPValue::LongLongInt(600_000));
    // A quorum queue dead-lettering into the fanout exchange.
    let mut dlx = FieldTable::default();
    dlx.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("notifications".into()),
    );
    dlx.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let mut priority = FieldTable::default();
    priority.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(10));
    declare_bound(
        &setup,
        "orders.created",
        FieldTable::default(),
        Some(("orders", "orders.created")),
    )
    .await;
    declare_bound(&setup, "orders.audit", ttl, Some(("orders", "orders.#"))).await;
    declare_bound(
        &setup,
        "email",
        FieldTable::default(),
        Some(("notifications", "")),
    )
    .await;
    declare_bound(&setup, "sms", limited(20_000), Some(("notifications", ""))).await;
    declare_bound(&setup, "billing.retry", dlx, None).await;
    declare_bound(&setup, "reports", priority, None).await;

    let mut tasks = Vec::new();
    for queue in ["orders.created", "email"] {
        let channel = conn.create_channel().await.unwrap();
        channel
            .basic_qos(200, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                format!("ui-{queue}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        }));
    }
    for (exchange, keys) in [
        (
            "orders",
            &["orders.created", "orders.paid", "orders.shipped"][..],
        ),
        ("notifications", &[""][..]),
    ] {
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![b'x'; 512];
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let mut confirms = Vec::with_capacity(20);
                for _ in 0..20 {
                    let key = keys[n % keys.len()];
                    n += 1;
                    let props = BasicProperties::default().with_delivery_mode(2);
                    confirms.push(
                        channel
                            .basic_publish(
                                exchange.into(),
                                key.into(),
                                BasicPublishOptions::default(),
                                &body,
                                props,
                            )
                            .await
                            .unwrap(),
                    );
                }
                for c in confirms {
                    c.await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = conn.close(200, "load done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_charts_move_under_load_and_every_view_fits_a_phone() {
    if let Err(why) = ensure_browser() {
        say(&format!("ui_browser: skipping: no browser ({why})"));
        return;
    }
    let modules = tokio::task::spawn_blocking(node_modules).await.unwrap();
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let (shots, settle) = readme_shots();
    let phone = target_dir().join("ui-screenshots").join("phone");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::create_dir_all(&phone).unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(office_load(broker.url(), stop.clone()));

    let (status, stdout, stderr) = run_script(
        "under_load.cjs",
        &[
            &broker.http_url(),
            "guest",
            "guest",
            "orders.created",
            settle,
            shots.to_str().unwrap(),
        ],
        &phone,
        &modules,
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(30), load).await;
    assert!(
        status.success(),
        "browser script failed ({status}):\n{stdout}\n{stderr}"
    );
    let moved = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MOVED "))
        .unwrap_or_else(|| panic!("the charts never moved:\n{stdout}"));
    say(&format!("ui_browser: overview charts moved: {moved}"));
    for shot in ["overview.png", "queues.png", "queue.png", "topology.png"] {
        let len = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot} is {len} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_renders_in_firefox_at_laptop_and_phone_width() {
    if let Err(why) = ensure_firefox() {
        say(&format!(
            "ui_browser: skipping the Firefox pass: no Firefox ({why})"
        ));
        return;
    }
    let modules = tokio::task::spawn_blocking(node_modules).await.unwrap();
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let shots = target_dir().join("ui-screenshots").join("firefox");
    std::fs::create_dir_all(&shots).unwrap();
    let queue = "ui-firefox";
    let conn = connect(&broker.url()).await;
    let channel = conn.create_channel().await.unwrap();
    declare_bound(&channel, queue, FieldTable::default(), None).await;
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"seen in firefox",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let (status, stdout, stderr) = run_script(
        "firefox_views.cjs",
        &[&broker.http_url(), "guest", "guest", queue],
        &shots,
        &modules,
    )
    .await;
    assert!(
        status.success(),
        "Firefox script failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("VIEWS 24"), "{stdout}");
}
