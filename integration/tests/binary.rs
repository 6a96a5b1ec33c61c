//! The real `warren` binary: serving, graceful SIGTERM, start-up failures, layered
//! configuration. Needs `cargo build -p warren` first.

#![allow(clippy::unwrap_used)]

mod raw_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ErrorKind, Event};
use raw_support::*;
use warren_integration::raw::RawClient;
use warren_integration::{BinaryBroker, free_port, warren_binary};

/// Run the binary to completion with `args` and `env` (no inherited `WARREN_*`).
fn run_warren(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(warren_binary());
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("WARREN_") {
            cmd.env_remove(k);
        }
    }
    // Tests that end up serving must not take the default management port 15672.
    cmd.env("WARREN_HTTP_LISTEN", "127.0.0.1:0");
    cmd.env("WARREN_PROMETHEUS_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Never hang the suite on a binary that unexpectedly starts serving.
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

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn data_dir(tmp: &Path) -> String {
    tmp.join("data").to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_lapin_and_sigterm_closes_connections_with_320_then_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BinaryBroker::spawn(&tmp.path().join("data"));
    let addr: SocketAddr = format!("127.0.0.1:{}", broker.port).parse().unwrap();

    let conn = warren_integration::connect(&broker.url()).await;
    let mut events = conn.events_listener();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.basic_publish(
        "".into(),
        q.name().clone(),
        BasicPublishOptions::default(),
        b"hello",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let got = ch
        .basic_get("q".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("message");
    assert_eq!(got.delivery.data, b"hello");

    let raw = tokio::task::spawn_blocking(move || RawClient::open(addr, 0))
        .await
        .unwrap();
    let terminated = tokio::task::spawn_blocking(move || broker.terminate());
    // The raw client receives connection.close 320 and answers close-ok.
    let close = tokio::task::spawn_blocking(move || {
        let mut raw = raw;
        expect_connection_close(&mut raw, 320)
    })
    .await
    .unwrap();
    assert!(close_text(&close).starts_with("CONNECTION_FORCED"));
    // lapin sees the same close as an error.
    let error = tokio::time::timeout(Duration::from_secs(10), async {
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
        ErrorKind::ProtocolError(e) => assert_eq!(e.get_id(), 320, "{error}"),
        other => panic!("expected connection.close 320, got {other:?}"),
    }
    assert_eq!(
        terminated.await.unwrap(),
        Some(0),
        "exit code after SIGTERM"
    );
}

#[test]
fn sigterm_with_no_connections_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BinaryBroker::spawn(&tmp.path().join("data"));
    assert_eq!(broker.terminate(), Some(0));
}

#[test]
fn port_in_use_fails_with_one_line_naming_the_address() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_warren(
        &["--listen", &addr, "--data-dir", &data_dir(tmp.path())],
        &[],
    );
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "stderr: {lines:#?}");
    assert!(lines[0].contains(&addr), "stderr: {lines:#?}");
    assert!(lines[0].contains("in use"), "stderr: {lines:#?}");
}

#[test]
fn bad_config_file_fails_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    for (name, toml, expect) in [
        (
            "unknown-key",
            "listen = \"127.0.0.1:5672\"\nbogus = 1\n",
            "bogus",
        ),
        ("bad-type", "frame_max = \"big\"\n", "frame_max"),
        ("bad-value", "frame_max = 100\n", "frame_max"),
        ("bad-address", "listen = \"not an address\"\n", "listen"),
        ("bad-syntax", "this is not toml\n", "line 1"),
        (
            "two-watermarks",
            "vm_memory_high_watermark.relative = 0.5\nvm_memory_high_watermark.absolute = \"1GB\"\n",
            "set only one of vm_memory_high_watermark.relative",
        ),
        (
            "watermark-above-1",
            "vm_memory_high_watermark.relative = 1.5\n",
            "vm_memory_high_watermark.relative must be between 0 and 1",
        ),
        (
            "bad-size-unit",
            "disk_free_limit.absolute = \"12 parsecs\"\n",
            "disk_free_limit",
        ),
    ] {
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = run_warren(
            &["--config", path.to_str().unwrap(), "--data-dir", &dir],
            &[],
        );
        assert!(
            !out.status.success(),
            "{name}: exit status {:?}",
            out.status
        );
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{name}: stderr: {lines:#?}");
        assert!(
            lines[0].contains("configuration") && lines[0].contains(expect),
            "{name}: stderr: {lines:#?}"
        );
    }
    // A file that is not there.
    let missing = tmp.path().join("missing.toml");
    let out = run_warren(&["--config", missing.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert_eq!(stderr_lines(&out).len(), 1);
    assert!(
        !Path::new(&dir).exists(),
        "data dir created by a failed start"
    );
}

#[test]
fn print_config_prints_toml_with_the_default_listen_address() {
    let out = run_warren(&["--print-config"], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.lines().any(|l| l == "listen = \"127.0.0.1:5672\""),
        "{stdout}"
    );
    // It is TOML the binary accepts back.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("printed.toml");
    std::fs::write(&path, &stdout).unwrap();
    let again = run_warren(&["--config", path.to_str().unwrap(), "--print-config"], &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);
}

#[test]
fn warren_listen_env_is_honoured_and_the_flag_overrides_it() {
    let env = [("WARREN_LISTEN", "127.0.0.1:1234")];
    let out = run_warren(&["--print-config"], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen = \"127.0.0.1:1234\""));
    let out = run_warren(&["--print-config", "--listen", "127.0.0.1:5555"], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen = \"127.0.0.1:5555\""));
}

#[test]
fn binary_listens_where_warren_listen_says() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(warren_binary());
    cmd.args(["--data-dir", &data_dir(tmp.path())])
        .env("WARREN_LISTEN", &listen)
        .env("WARREN_HTTP_LISTEN", "127.0.0.1:0")
        .env("WARREN_PROMETHEUS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut up = false;
    for _ in 0..500 {
        if TcpStream::connect(&listen).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if up {
        assert_broker_still_serves(listen.parse().unwrap());
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert!(up, "nothing listening on WARREN_LISTEN={listen}");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_flag_overrides_warren_listen_env() {
    let tmp = tempfile::tempdir().unwrap();
    let env_port = free_port();
    let env_listen = format!("127.0.0.1:{env_port}");
    // BinaryBroker passes `--listen 127.0.0.1:<its port>`.
    let broker = BinaryBroker::spawn_with(
        &tmp.path().join("data"),
        &[],
        &[("WARREN_LISTEN", env_listen.as_str())],
    );
    let conn = warren_integration::connect(&broker.url()).await;
    assert!(conn.status().connected());
    assert!(
        TcpStream::connect(&env_listen).is_err(),
        "also listening on the env address"
    );
    conn.close(200, "bye".into()).await.unwrap();
    assert_eq!(
        tokio::task::spawn_blocking(move || broker.terminate())
            .await
            .unwrap(),
        Some(0)
    );
}
