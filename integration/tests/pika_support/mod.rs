//! pika in a venv under `$CARGO_TARGET_DIR/pyenv`, shared with `pika.rs` and
//! `tutorials.rs` (same path, lock and requirements stamp), installed on first use; and
//! running one of `clients/python`'s scripts with a deadline.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warren_integration::warren_binary;

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // target/<profile>/deps/<test> -> target
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
            .unwrap_or_else(|| {
                warren_binary()
                    .parent()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
                    .expect("target dir")
            }),
    }
}

/// `integration/clients/python`.
pub fn python_dir() -> PathBuf {
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
pub fn pika_python() -> Option<PathBuf> {
    if !found("python3") {
        return None;
    }
    let requirements =
        std::fs::read_to_string(python_dir().join("requirements.txt")).expect("requirements");
    let venv = target_dir().join("pyenv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("warren-requirements.txt");
    let lock_path = target_dir().join("pyenv.lock");
    std::fs::create_dir_all(target_dir()).expect("target dir");
    let lock = File::create(&lock_path).expect("lock file");
    lock.lock().expect("lock");
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
        std::fs::write(&stamp, &requirements).expect("stamp");
    }
    drop(lock);
    Some(python)
}

/// What a script printed and how it ended.
#[derive(Debug)]
pub struct ScriptOutput {
    /// Exit status, None when it was killed at the deadline.
    pub success: Option<bool>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl ScriptOutput {
    /// It exited 0 and printed `line` as a line of its own.
    pub fn ok_line(&self, line: &str) -> bool {
        self.success == Some(true) && self.stdout.lines().any(|l| l == line)
    }
}

impl std::fmt::Display for ScriptOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

/// Run `clients/python/<script>` with `env`, killed after 60 s.
pub fn run_script(python: &Path, script: &str, env: &[(&str, &str)]) -> ScriptOutput {
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(python_dir().join(script))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn python");
    let deadline = Instant::now() + Duration::from_secs(60);
    let success = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status.success());
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
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    ScriptOutput {
        success,
        stdout,
        stderr,
    }
}
