//! The foundation issue's "done when": pika (in a venv under `$CARGO_TARGET_DIR/pyenv`)
//! connects to the real `warren` binary as guest, opens and closes a channel, declares,
//! publishes and gets one message, closes; then SIGTERM stops the binary with exit code 0.
//!
//! Needs `cargo build -p warren` first. The venv is shared with `tutorials.rs` (same
//! path, lock and requirements stamp) and installed on first use; without `python3` the
//! test prints one line saying so and passes. The second test logs in as a user imported
//! from a RabbitMQ 3.10 definitions export (`--load-definitions`).

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warren_integration::{BinaryBroker, warren_binary};

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // target/<profile>/warren -> target
        _ => warren_binary()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf(),
    }
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python")
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn install_step(cmd: &mut Command) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The venv's python with `requirements.txt` (pika) installed; None without python3.
fn pika_python() -> Option<PathBuf> {
    if !found("python3") {
        return None;
    }
    let requirements = std::fs::read_to_string(python_dir().join("requirements.txt")).unwrap();
    let venv = target_dir().join("pyenv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("warren-requirements.txt");
    // The same lock as tutorials.rs: one installer at a time across test processes.
    let lock_path = target_dir().join("pyenv.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let installed = std::fs::read_to_string(&stamp).ok();
    if !python.exists() || installed.as_deref() != Some(requirements.as_str()) {
        install_step(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
        );
        install_step(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "-r"])
                .arg(python_dir().join("requirements.txt")),
        );
        std::fs::write(&stamp, &requirements).unwrap();
    }
    drop(lock);
    Some(python)
}

#[test]
fn pika_connects_publishes_and_gets_then_sigterm_exits_0() {
    let Some(python) = pika_python() else {
        let _ = writeln!(
            std::io::stderr(),
            "pika: python3 not found, skipping the pika acceptance test"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broker = BinaryBroker::spawn(&tmp.path().join("data"));

    let mut child = Command::new(&python)
        .arg("-u")
        .arg(python_dir().join("pika_smoke.py"))
        .env("AMQP_URL", broker.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
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
    let status = status.unwrap_or_else(|| {
        panic!(
            "pika_smoke.py did not finish in 30 s\nstdout:\n{stdout}\nstderr:\n{stderr}\nbroker log:\n{}",
            broker.log_text()
        )
    });
    assert!(
        status.success() && stdout.lines().any(|l| l == "OK"),
        "pika_smoke.py failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}\nbroker log:\n{}",
        broker.log_text()
    );

    assert_eq!(broker.terminate(), Some(0), "exit code after SIGTERM");
}

#[test]
fn pika_logs_in_with_a_rabbitmq_password_from_imported_definitions() {
    let Some(python) = pika_python() else {
        let _ = writeln!(
            std::io::stderr(),
            "pika: python3 not found, skipping the definitions login test"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rabbitmq-3.10-export.json");
    let broker = BinaryBroker::spawn_with(
        &tmp.path().join("data"),
        &["--load-definitions", fixture.to_str().unwrap()],
        &[],
    );
    // defs-carol's hash is SHA-512, as RabbitMQ exported it.
    let url = format!(
        "amqp://defs-carol:defs-carol-pass@127.0.0.1:{}/defs-app",
        broker.port
    );
    let output = Command::new(&python)
        .arg("-u")
        .arg(python_dir().join("pika_smoke.py"))
        .env("AMQP_URL", &url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().any(|l| l == "OK"),
        "pika_smoke.py as defs-carol failed ({})\nstdout:\n{stdout}\nstderr:\n{}\nbroker log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        broker.log_text()
    );
    assert_eq!(broker.terminate(), Some(0), "exit code after SIGTERM");
}
