//! Shared helpers for the management HTTP API client tests (`ctl.rs`, `rabbitmqadmin.rs`).
//!
//! [`ApiBroker::start`] spawns the `warren` binary with its HTTP API on a free port
//! (`--http-listen 127.0.0.1:PORT`) and a temp data directory, and waits until
//! `GET /api/overview` answers. Set `WARREN_TEST_HTTP_URL` (and `WARREN_TEST_URL` for AMQP),
//! for example `http://127.0.0.1:15673` and `amqp://guest:guest@127.0.0.1:5673/%2f`, to run
//! the same tests against another broker instead, such as the reference RabbitMQ: that is how
//! the expected behaviour was checked. Names are made unique ([`unique`]) so tests may share a
//! broker; each test deletes what it created.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use warren_ctl::client::{ApiClient, path};
use warren_ctl::error::Subject;
use warren_integration::{BinaryBroker, free_port, warren_binary};

/// A broker with its management HTTP API: a spawned `warren`, or the one of
/// `WARREN_TEST_HTTP_URL`.
pub struct ApiBroker {
    /// `http://127.0.0.1:PORT`
    pub http_url: String,
    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub amqp_url: String,
    _broker: Option<BinaryBroker>,
    _dir: Option<tempfile::TempDir>,
}

impl ApiBroker {
    /// Spawn `warren` with its HTTP API (or use `WARREN_TEST_HTTP_URL`), ready to answer.
    pub fn start() -> ApiBroker {
        if let Ok(http_url) = std::env::var("WARREN_TEST_HTTP_URL") {
            let amqp_url = std::env::var("WARREN_TEST_URL")
                .expect("WARREN_TEST_HTTP_URL needs WARREN_TEST_URL (the same broker's AMQP URL)");
            let broker = ApiBroker {
                http_url,
                amqp_url,
                _broker: None,
                _dir: None,
            };
            broker.wait_ready(None);
            return broker;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let http_port = free_port();
        let listen = format!("127.0.0.1:{http_port}");
        let broker = BinaryBroker::spawn_with(&data_dir, &["--http-listen", &listen], &[]);
        let api = ApiBroker {
            http_url: format!("http://{listen}"),
            amqp_url: broker.url(),
            _broker: Some(broker),
            _dir: Some(dir),
        };
        api.wait_ready(api._broker.as_ref());
        api
    }

    fn wait_ready(&self, broker: Option<&BinaryBroker>) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.get(&path(&["overview"]), Subject::Other) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "the management API at {} did not answer: {e}; log:\n{}",
                    self.http_url,
                    broker.map(BinaryBroker::log_text).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// An API client as guest.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.http_url, "guest", "guest", Duration::from_secs(30))
    }

    /// Host and port of the HTTP API (for clients taking them apart).
    pub fn http_host_port(&self) -> (String, u16) {
        let rest = self
            .http_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').expect("host:port");
        (host.to_string(), port.parse().expect("port"))
    }
}

/// `prefix-<pid>-<n>`: unique on a shared broker.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `warren ctl --url <api> <args>` run to completion.
pub fn ctl(api: &ApiBroker, args: &[&str]) -> Output {
    ctl_as(api, "guest", "guest", args)
}

/// Same, as another user.
pub fn ctl_as(api: &ApiBroker, user: &str, pass: &str, args: &[&str]) -> Output {
    Command::new(warren_binary())
        .arg("ctl")
        .args([
            "--url",
            &api.http_url,
            "--username",
            user,
            "--password",
            pass,
        ])
        .args(args)
        .env_remove("WARREN_CTL_URL")
        .env_remove("WARREN_CTL_USERNAME")
        .env_remove("WARREN_CTL_PASSWORD")
        .output()
        .expect("run warren ctl")
}

/// stdout of a command that must succeed (exit 0).
#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The rows of a `-s` (silent: no banner, no header) table: cells split on tabs.
pub fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Poll `check` until it returns `Some` or `timeout` passes (the API's statistics may lag).
#[track_caller]
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The target directory (`$CARGO_TARGET_DIR`, else the one holding this test).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let exe = std::env::current_exe().expect("current exe");
            exe.ancestors()
                .nth(3)
                .expect("target/<profile>/deps/<test>")
                .to_path_buf()
        }
    }
}
