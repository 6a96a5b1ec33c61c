//! Client compatibility: one program per AMQP client library (`integration/clients/`)
//! runs the same scenario list against the real `warren` binary, one test per client,
//! connecting as a non-default user to a non-default vhost (both created by a definitions
//! file given to the binary with `--load-definitions`, so no guest and no `/` exist).
//! Each program prints one line per scenario (`PASS name`, `FAIL name: reason`,
//! `SKIP name: why (API lacks it)`) and exits non-zero on any FAIL; the test fails on any
//! FAIL, on a non-zero exit, on no PASS at all, and after [`CLIENT_TIMEOUT`].
//!
//! Set-up, on first use (each step under a lock file in the target directory, so that
//! parallel tests and test processes never install at once):
//! - Python (pika, aio-pika, kombu, Celery): a venv in `$CARGO_TARGET_DIR/pyenv-clients`
//!   from `clients/python/requirements-clients.txt`;
//! - Node (amqplib, @cloudamqp/amqp-client): `$CARGO_TARGET_DIR/node-clients` from
//!   `clients/node/package.json`;
//! - Java (RabbitMQ Java client), Go (amqp091-go), C (rabbitmq-c's amqp-tools), PHP
//!   (php-amqplib): Debian's packages, installed with `apt-get` when running as root; the
//!   Java program is compiled with javac and the Go one built offline (GOPATH mode against
//!   /usr/share/gocode) into the target directory.
//!
//! A client whose runtime cannot be installed (not root, no apt-get, no package) is skipped
//! with one printed line. Needs the binary: `cargo build -p warren` first (the README's
//! test command does).

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use warren_integration::BinaryBroker;

/// How long one client program may take (the slowest, Celery, needs about 10 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(240);

/// `target/<profile>`: the test executable is `target/<profile>/deps/<test>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// `$CARGO_TARGET_DIR`, else the target directory holding this test.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => profile_dir().parent().unwrap().to_path_buf(),
    }
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// One line past the test harness's output capture.
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

/// Whether `program args` runs and exits 0.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `program` can be started at all (whatever its exit code).
fn exists(program: &str) -> bool {
    Command::new(program)
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Run an install or build step; `Err` with its output if it fails.
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

/// Make `probe` true, installing Debian `packages` with apt-get if needed and possible.
/// `Err` says why the runtime is not there.
fn ensure_debian(packages: &[&str], probe: impl Fn() -> bool) -> Result<(), String> {
    if probe() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root || !exists("apt-get") {
        return Err(format!(
            "not installed, and installing needs root and apt-get: apt-get install {}",
            packages.join(" ")
        ));
    }
    let _apt = lock("apt-clients");
    if probe() {
        return Ok(()); // another test installed it meanwhile
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
        // A fresh machine may have no package lists yet.
        step(
            Command::new("apt-get")
                .args(["update", "-q", "-o", "DPkg::Lock::Timeout=600"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        install()?;
    }
    if probe() {
        Ok(())
    } else {
        Err(format!(
            "still missing after apt-get install {}",
            packages.join(" ")
        ))
    }
}

/// `Ok` unchanged when `stamp` holds `content` (and `ready`), else runs `build` and
/// writes the stamp. Used to rebuild only when an input changed.
fn stamped(
    stamp: &Path,
    content: &str,
    ready: bool,
    build: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    if ready && std::fs::read_to_string(stamp).ok().as_deref() == Some(content) {
        return Ok(());
    }
    build()?;
    std::fs::write(stamp, content).map_err(|e| e.to_string())
}

/// The venv's python with the pinned Python clients.
fn python() -> &'static Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON.get_or_init(|| {
        ensure_debian(&["python3", "python3-venv"], || {
            runs("python3", &["-c", "import venv, ensurepip"])
        })?;
        let requirements_file = clients_dir()
            .join("python")
            .join("requirements-clients.txt");
        let requirements = std::fs::read_to_string(&requirements_file).unwrap();
        let venv = target_dir().join("pyenv-clients");
        let python = venv.join("bin").join("python");
        let _lock = lock("pyenv-clients");
        stamped(
            &venv.join("warren-requirements-clients.txt"),
            &requirements,
            python.exists(),
            || {
                step(
                    Command::new("python3")
                        .args(["-m", "venv", "--clear"])
                        .arg(&venv),
                )?;
                step(
                    Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "-r"])
                        .arg(&requirements_file),
                )
            },
        )?;
        Ok(python)
    })
}

/// `node_modules` with the pinned Node clients.
fn node_modules() -> &'static Result<PathBuf, String> {
    static MODULES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    MODULES.get_or_init(|| {
        ensure_debian(&["nodejs", "npm"], || {
            runs("node", &["--version"]) && runs("npm", &["--version"])
        })?;
        let package =
            std::fs::read_to_string(clients_dir().join("node").join("package.json")).unwrap();
        let dir = target_dir().join("node-clients");
        let modules = dir.join("node_modules");
        let _lock = lock("node-clients");
        let ready = modules.join("amqplib").exists()
            && modules.join("@cloudamqp").join("amqp-client").exists();
        stamped(&dir.join("package.json"), &package, ready, || {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("package.json"), &package).map_err(|e| e.to_string())?;
            step(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir),
            )
        })?;
        Ok(modules)
    })
}

const JAVA_JARS: [&str; 3] = [
    "/usr/share/java/amqp-client.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-nop.jar",
];

/// (classes dir, classpath) of the compiled Java program.
fn java() -> &'static Result<String, String> {
    static JAVA: OnceLock<Result<String, String>> = OnceLock::new();
    JAVA.get_or_init(|| {
        ensure_debian(
            &[
                "default-jdk-headless",
                "librabbitmq-client-java",
                "libslf4j-java",
            ],
            || runs("javac", &["-version"]) && JAVA_JARS.iter().all(|j| Path::new(j).exists()),
        )?;
        let source = clients_dir().join("java").join("WarrenJavaClient.java");
        let text = std::fs::read_to_string(&source).unwrap();
        let out = target_dir().join("java-clients");
        let jars = JAVA_JARS.join(":");
        let _lock = lock("java-clients");
        let ready = out.join("WarrenJavaClient.class").exists();
        stamped(&out.join("source.stamp"), &text, ready, || {
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            step(
                Command::new("javac")
                    .arg("-d")
                    .arg(&out)
                    .args(["-cp", &jars])
                    .arg(&source),
            )
        })?;
        Ok(format!("{}:{jars}", out.display()))
    })
}

const GO_AMQP091: &str = "/usr/share/gocode/src/github.com/rabbitmq/amqp091-go";

/// The Go program, built offline in GOPATH mode against Debian's amqp091-go.
fn go_program() -> &'static Result<PathBuf, String> {
    static GO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    GO.get_or_init(|| {
        ensure_debian(
            &["golang-go", "golang-github-rabbitmq-amqp091-go-dev"],
            || runs("go", &["version"]) && Path::new(GO_AMQP091).exists(),
        )?;
        let dir = clients_dir().join("go");
        let text = std::fs::read_to_string(dir.join("main.go")).unwrap();
        let out = target_dir().join("go-clients");
        let binary = out.join("amqp091-client");
        let _lock = lock("go-clients");
        stamped(&out.join("source.stamp"), &text, binary.exists(), || {
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            step(
                Command::new("go")
                    .args(["build", "-o"])
                    .arg(&binary)
                    .arg("main.go")
                    .current_dir(&dir)
                    .env("GO111MODULE", "off")
                    .env("GOPATH", "/usr/share/gocode")
                    .env("GOFLAGS", "")
                    .env("GOPROXY", "off")
                    .env("GOTOOLCHAIN", "local")
                    .env("GOCACHE", out.join("cache")),
            )
        })?;
        Ok(binary)
    })
}

fn amqp_tools() -> &'static Result<(), String> {
    static TOOLS: OnceLock<Result<(), String>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        ensure_debian(&["amqp-tools"], || {
            [
                "amqp-declare-queue",
                "amqp-publish",
                "amqp-consume",
                "amqp-get",
                "amqp-delete-queue",
            ]
            .iter()
            .all(|t| exists(t))
        })
    })
}

fn php() -> &'static Result<(), String> {
    static PHP: OnceLock<Result<(), String>> = OnceLock::new();
    PHP.get_or_init(|| {
        ensure_debian(&["php-cli", "php-amqplib"], || {
            runs(
                "php",
                &[
                    "-r",
                    "require '/usr/share/php/PhpAmqpLib/autoload.php'; \
                     exit(class_exists('PhpAmqpLib\\Connection\\AMQPStreamConnection') ? 0 : 1);",
                ],
            )
        })
    })
}

/// The command for `client`, or `None` after one printed line when its runtime is missing.
fn command<T>(
    client: &str,
    runtime: &Result<T, String>,
    build: impl FnOnce(&T) -> Command,
) -> Option<Command> {
    match runtime {
        Ok(t) => Some(build(t)),
        Err(why) => {
            say(&format!(
                "clients: skipping {client}: its runtime cannot be installed ({why})"
            ));
            None
        }
    }
}

fn python_program(client: &str, script: &str) -> Option<Command> {
    command(client, python(), |python| {
        let mut cmd = Command::new(python);
        cmd.arg("-u")
            .arg(clients_dir().join("python").join(script))
            .env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    })
}

fn node_program(client: &str, script: &str) -> Option<Command> {
    command(client, node_modules(), |modules| {
        let mut cmd = Command::new("node");
        cmd.arg(clients_dir().join("node").join(script))
            .env("NODE_PATH", modules);
        cmd
    })
}

/// The user and vhost the client programs connect as: not the default ones, so that every
/// client shows it sends its credentials and vhost right (created from a definitions file,
/// as an operator would).
const CLIENT_USER: &str = "warren-client";
const CLIENT_PASSWORD: &str = "client s3cret";
const CLIENT_VHOST: &str = "client-vhost";

/// Run `cmd` against a fresh `warren` binary and fail on any failed scenario.
fn run_scenarios(client: &str, cmd: Option<Command>) {
    let Some(mut cmd) = cmd else { return };
    let dir = tempfile::tempdir().unwrap();
    let definitions = dir.path().join("definitions.json");
    std::fs::write(
        &definitions,
        format!(
            r#"{{
  "users": [{{"name": "{CLIENT_USER}", "password": "{CLIENT_PASSWORD}", "tags": []}}],
  "vhosts": [{{"name": "{CLIENT_VHOST}"}}],
  "permissions": [{{"user": "{CLIENT_USER}", "vhost": "{CLIENT_VHOST}",
                    "configure": ".*", "write": ".*", "read": ".*"}}]
}}"#
        ),
    )
    .unwrap();
    let broker = BinaryBroker::spawn_with(
        &dir.path().join("data"),
        &["--load-definitions", definitions.to_str().unwrap()],
        &[],
    );
    let url = format!(
        "amqp://{}:{}@127.0.0.1:{}/{}",
        warren_integration::percent(CLIENT_USER),
        warren_integration::percent(CLIENT_PASSWORD),
        broker.port,
        warren_integration::percent(CLIENT_VHOST)
    );
    cmd.env("AMQP_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{client}: cannot start {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > CLIENT_TIMEOUT {
            timed_out = true;
            // The whole process group: Celery's worker processes too.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    for line in &lines {
        println!("{client}: {line}");
    }
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    let (passed, failed, skipped) = (count("PASS "), count("FAIL "), count("SKIP "));
    println!(
        "{client}: PASS {passed}, FAIL {failed}, SKIP {skipped} ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    let log = broker.log_text();
    assert!(
        !timed_out && status.success() && failed == 0 && passed > 0,
        "{client}: {}PASS {passed}, FAIL {failed}, SKIP {skipped}, exit {status}\n\
         --- stdout\n{stdout}--- stderr\n{stderr}--- broker log (last 4000 bytes)\n{}",
        if timed_out { "timed out; " } else { "" },
        &log[log.len().saturating_sub(4000)..]
    );
}

#[test]
fn pika_scenarios_pass() {
    run_scenarios("pika", python_program("pika", "pika_client.py"));
}

#[test]
fn aio_pika_scenarios_pass() {
    run_scenarios("aio-pika", python_program("aio-pika", "aio_pika_client.py"));
}

#[test]
fn kombu_scenarios_pass() {
    run_scenarios("kombu", python_program("kombu", "kombu_client.py"));
}

#[test]
fn celery_worker_acks_late_and_rpc_results_pass() {
    run_scenarios("celery", python_program("celery", "celery_client.py"));
}

#[test]
fn amqplib_scenarios_pass() {
    run_scenarios("amqplib", node_program("amqplib", "amqplib_client.js"));
}

#[test]
fn cloudamqp_amqp_client_scenarios_pass() {
    run_scenarios(
        "@cloudamqp/amqp-client",
        node_program("@cloudamqp/amqp-client", "amqp_client_client.js"),
    );
}

#[test]
fn rabbitmq_java_client_scenarios_pass() {
    let client = "RabbitMQ Java client";
    run_scenarios(
        client,
        command(client, java(), |classpath| {
            let mut cmd = Command::new("java");
            cmd.args(["-cp", classpath, "WarrenJavaClient"]);
            cmd
        }),
    );
}

#[test]
fn amqp091_go_scenarios_pass() {
    let client = "amqp091-go";
    run_scenarios(
        client,
        command(client, go_program(), |binary| Command::new(binary)),
    );
}

#[test]
fn rabbitmq_c_amqp_tools_scenarios_pass() {
    let client = "rabbitmq-c amqp-tools";
    run_scenarios(
        client,
        command(client, amqp_tools(), |_| {
            let mut cmd = Command::new("bash");
            cmd.arg(clients_dir().join("c").join("amqp_tools.sh"));
            cmd
        }),
    );
}

#[test]
fn php_amqplib_scenarios_pass() {
    let client = "php-amqplib";
    run_scenarios(
        client,
        command(client, php(), |_| {
            let mut cmd = Command::new("php");
            cmd.arg(clients_dir().join("php").join("php_amqplib_client.php"));
            cmd
        }),
    );
}
