//! RabbitMQ's tutorials 1-7, run as separate client programs against a real broker, in
//! three clients: lapin (`examples/src/bin/tut*.rs`), pika
//! (`integration/clients/python/tutorials/`) and amqplib
//! (`integration/clients/node/tutorials/`). Each test starts a broker, runs the programs of
//! one tutorial (receivers first, waiting until they say they are ready), and checks what
//! each program prints.
//!
//! Needs the example binaries next to this test: `cargo build --workspace --bins` first.
//! The pika programs run in a venv under `$CARGO_TARGET_DIR/pyenv`, the amqplib ones with
//! `node_modules` under `$CARGO_TARGET_DIR/node` (from `clients/python/requirements.txt` and
//! `clients/node/tutorials/package.json`); both are installed on first use. Without
//! `python3` (or `node`/`npm`) that client's tests print one line saying so and pass.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use warren_integration::TestBroker;

/// How long any one program may take.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Client {
    Lapin,
    Pika,
    Amqplib,
}

/// How to start one client's tutorial programs.
struct Toolchain {
    /// Interpreter, or `None` for the lapin binaries.
    interpreter: Option<PathBuf>,
    interpreter_args: Vec<OsString>,
    /// Where the programs are.
    dir: PathBuf,
    /// Program file extension (with the dot), empty for binaries.
    ext: &'static str,
    env: Vec<(&'static str, OsString)>,
}

impl Toolchain {
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let file = self.dir.join(format!("{program}{}", self.ext));
        let mut cmd = match &self.interpreter {
            Some(interpreter) => {
                let mut cmd = Command::new(interpreter);
                cmd.args(&self.interpreter_args).arg(&file);
                cmd
            }
            None => {
                assert!(
                    file.exists(),
                    "{} not found: build the examples first (`cargo build --workspace --bins`; \
                     the README's test command does)",
                    file.display()
                );
                Command::new(&file)
            }
        };
        cmd.args(args);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }
}

/// The toolchain for `client`, or `None` (after one printed line) when it is not installed.
fn toolchain(client: Client) -> Option<&'static Toolchain> {
    static LAPIN: OnceLock<Toolchain> = OnceLock::new();
    static PIKA: OnceLock<Option<Toolchain>> = OnceLock::new();
    static AMQPLIB: OnceLock<Option<Toolchain>> = OnceLock::new();
    match client {
        Client::Lapin => Some(LAPIN.get_or_init(|| Toolchain {
            interpreter: None,
            interpreter_args: Vec::new(),
            dir: profile_dir(),
            ext: "",
            env: Vec::new(),
        })),
        Client::Pika => PIKA.get_or_init(pika_toolchain).as_ref(),
        Client::Amqplib => AMQPLIB.get_or_init(amqplib_toolchain).as_ref(),
    }
}

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

/// Printed once per client, past the test harness's output capture.
fn say_skipped(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run an install step; panic with its output if it fails.
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

/// Holds an exclusive lock on `path` (created if needed) while alive, so that two test
/// processes sharing the target directory do not install at once.
fn install_lock(path: &Path) -> File {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = File::create(path).unwrap();
    file.lock().unwrap();
    file
}

/// The venv under `$CARGO_TARGET_DIR/pyenv` with `clients/python/requirements.txt` (pika)
/// installed, on first use and again when that file changes. `pika.rs` shares the venv, its
/// lock and its stamp; this side only ever adds to the venv, never clears it.
fn pika_toolchain() -> Option<Toolchain> {
    if !found("python3") {
        say_skipped("tutorials: python3 not found, skipping the pika tutorials");
        return None;
    }
    let python_dir = clients_dir().join("python");
    let requirements_file = python_dir.join("requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_file).unwrap();
    let venv = target_dir().join("pyenv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("warren-requirements.txt");

    let _lock = install_lock(&target_dir().join("pyenv.lock"));
    if !python.exists() {
        install_step(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(requirements.as_str()) {
        install_step(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "-r"])
                .arg(&requirements_file),
        );
        std::fs::write(&stamp, &requirements).unwrap();
    }
    Some(Toolchain {
        interpreter: Some(python),
        interpreter_args: vec!["-u".into()],
        dir: python_dir.join("tutorials"),
        ext: ".py",
        env: vec![("PYTHONUNBUFFERED", "1".into())],
    })
}

/// `node_modules` under `$CARGO_TARGET_DIR/node` from `clients/node/tutorials/package.json`,
/// installed on first use and again when the package.json changes.
fn amqplib_toolchain() -> Option<Toolchain> {
    for tool in ["node", "npm"] {
        if !found(tool) {
            say_skipped(&format!(
                "tutorials: {tool} not found, skipping the amqplib tutorials"
            ));
            return None;
        }
    }
    let tutorials = clients_dir().join("node").join("tutorials");
    let package = std::fs::read_to_string(tutorials.join("package.json")).unwrap();
    let cache = target_dir().join("node");
    let modules = cache.join("node_modules");

    let _lock = install_lock(&target_dir().join("node.lock"));
    let installed = std::fs::read_to_string(cache.join("package.json")).ok();
    if !modules.join("amqplib").exists() || installed.as_deref() != Some(package.as_str()) {
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(cache.join("package.json"), &package).unwrap();
        install_step(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&cache),
        );
    }
    Some(Toolchain {
        interpreter: Some("node".into()),
        interpreter_args: Vec::new(),
        dir: tutorials,
        ext: ".js",
        env: vec![("NODE_PATH", modules.into_os_string())],
    })
}

/// A running tutorial program whose output lines are read as they come.
struct Program {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Program {
    fn spawn(mut cmd: Command, name: &str) -> Program {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Program {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Read output until a line starting with `prefix` (the program says it is ready, or
    /// has got something).
    fn wait_for(&mut self, prefix: &str) {
        let deadline = Instant::now() + PROGRAM_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.starts_with(prefix);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                    "no line starting {prefix:?} within {PROGRAM_TIMEOUT:?}"
                )),
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("exited before printing {prefix:?}"))
                }
            }
        }
    }

    /// SIGKILL it, as a crash would.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the program is still running.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The lines read so far.
    fn seen_now(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Wait for the program to exit by itself, successfully; its whole output.
    fn finish(mut self) -> Vec<String> {
        let deadline = Instant::now() + PROGRAM_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => self.fail(&format!("did not exit within {PROGRAM_TIMEOUT:?}")),
            }
        };
        // The reader ends at end of output, which comes with the exit.
        while let Ok(line) = self.lines.recv_timeout(PROGRAM_TIMEOUT) {
            self.seen.push(line);
        }
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
        std::mem::take(&mut self.seen)
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stdout: Vec<String> = self.seen_now().to_vec();
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new))
            .join()
            .unwrap_or_default();
        panic!(
            "{}: {what}\n--- stdout:\n{}\n--- stderr:\n{stderr}",
            self.name,
            stdout.join("\n")
        );
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tutorial run: a broker and one client's programs.
struct Run {
    tools: &'static Toolchain,
    client: Client,
    url: String,
}

/// A fresh broker and a [`Run`] against it; `None` when the client is not installed here.
fn start(client: Client) -> Option<(TestBroker, Run)> {
    let tools = toolchain(client)?;
    let broker = TestBroker::start();
    let run = Run::new(tools, client, &broker);
    Some((broker, run))
}

impl Run {
    fn new(tools: &'static Toolchain, client: Client, broker: &TestBroker) -> Run {
        Run {
            tools,
            client,
            url: broker.url(),
        }
    }

    fn command(&self, program: &str, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut cmd = self.tools.command(program, args);
        cmd.env("AMQP_URL", &self.url);
        cmd.env_remove("EXPECTED_MESSAGES");
        cmd.env_remove("MESSAGE_COUNT");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Start a receiving program that exits after `expected` messages, and wait until it
    /// prints the line starting with `ready`.
    fn receiver(&self, program: &str, args: &[&str], expected: u32, ready: &str) -> Program {
        let cmd = self.command(
            program,
            args,
            &[("EXPECTED_MESSAGES", expected.to_string())],
        );
        let mut receiver = Program::spawn(cmd, &format!("{:?} {program} {args:?}", self.client));
        receiver.wait_for(ready);
        receiver
    }

    /// Run a program to its end; its output.
    fn run(&self, program: &str, args: &[&str], env: &[(&str, String)]) -> Vec<String> {
        let cmd = self.command(program, args, env);
        Program::spawn(cmd, &format!("{:?} {program} {args:?}", self.client)).finish()
    }
}

const WAITING: &str = " [*] Waiting for messages. To exit press CTRL+C";

/// One test per client for a tutorial function `fn(Client)`.
macro_rules! for_each_client {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn lapin() {
                super::$name(super::Client::Lapin)
            }
            #[test]
            fn pika() {
                super::$name(super::Client::Pika)
            }
            #[test]
            fn amqplib() {
                super::$name(super::Client::Amqplib)
            }
        }
    )*};
}

for_each_client!(
    tut1_hello_world_receiver_prints_the_sent_message,
    tut2_work_queues_fair_dispatch_skips_the_busy_worker,
    tut2_work_queues_task_of_a_killed_worker_goes_to_another,
    tut2_work_queues_persistent_task_survives_a_broker_restart,
    tut3_publish_subscribe_every_receiver_gets_the_log,
    tut4_routing_receivers_get_only_their_severities,
    tut5_topics_receivers_get_the_keys_their_patterns_match,
    tut6_rpc_client_gets_each_fibonacci_reply,
    tut7_publisher_confirms_all_three_strategies_confirm_every_message,
);

fn tut1_hello_world_receiver_prints_the_sent_message(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let receive = run.receiver("tut1_hello_world_receive", &[], 1, WAITING);

    let sent = run.run("tut1_hello_world_send", &[], &[]);

    assert_eq!(sent, [" [x] Sent 'Hello World!'"]);
    assert_eq!(receive.finish(), [WAITING, " [x] Received 'Hello World!'"]);
}

/// Worker A takes a 3-second task; worker B then gets the three quick tasks published while
/// A is busy, and finishes them before A is done: with prefetch 1 nothing queues up behind
/// A's task (plain round-robin would hand A every other task).
fn tut2_work_queues_fair_dispatch_skips_the_busy_worker(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let mut worker_a = run.receiver("tut2_work_queues_worker", &[], 1, WAITING);
    let sent = run.run("tut2_work_queues_new_task", &["First", "message..."], &[]);
    assert_eq!(sent, [" [x] Sent 'First message...'"]);
    worker_a.wait_for(" [x] Received");

    let worker_b = run.receiver("tut2_work_queues_worker", &[], 3, WAITING);
    for task in ["Second", "Third", "Fourth"] {
        let sent = run.run("tut2_work_queues_new_task", &[task, "message"], &[]);
        assert_eq!(sent, [format!(" [x] Sent '{task} message'")]);
    }
    let b_lines = worker_b.finish();
    assert!(
        worker_a.running() && !worker_a.seen_now().iter().any(|l| l == " [x] Done"),
        "worker B finished only after worker A's long task: {:?}",
        worker_a.seen_now()
    );

    assert_eq!(
        b_lines,
        [
            WAITING,
            " [x] Received 'Second message'",
            " [x] Done",
            " [x] Received 'Third message'",
            " [x] Done",
            " [x] Received 'Fourth message'",
            " [x] Done",
        ]
    );
    assert_eq!(
        worker_a.finish(),
        [WAITING, " [x] Received 'First message...'", " [x] Done"]
    );
}

/// Manual acks: a worker that dies mid-task never acked it, so the broker hands the task to
/// another worker.
fn tut2_work_queues_task_of_a_killed_worker_goes_to_another(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let mut doomed = run.receiver("tut2_work_queues_worker", &[], 1, WAITING);
    let sent = run.run("tut2_work_queues_new_task", &["Slow", "task.."], &[]);
    assert_eq!(sent, [" [x] Sent 'Slow task..'"]);
    doomed.wait_for(" [x] Received 'Slow task..'");
    let survivor = run.receiver("tut2_work_queues_worker", &[], 1, WAITING);

    doomed.kill();

    assert_eq!(
        survivor.finish(),
        [WAITING, " [x] Received 'Slow task..'", " [x] Done"]
    );
}

/// The tutorial's point of `durable` + `delivery_mode 2`: a task sent before a broker
/// restart is still there for a worker after it.
fn tut2_work_queues_persistent_task_survives_a_broker_restart(client: Client) {
    let Some((broker, run)) = start(client) else {
        return;
    };
    let sent = run.run("tut2_work_queues_new_task", &["Durable", "task"], &[]);
    assert_eq!(sent, [" [x] Sent 'Durable task'"]);

    let broker = broker.restart();
    let run = Run::new(run.tools, client, &broker);
    let worker = run.receiver("tut2_work_queues_worker", &[], 1, WAITING);
    assert_eq!(
        worker.finish(),
        [WAITING, " [x] Received 'Durable task'", " [x] Done"]
    );
}

fn tut3_publish_subscribe_every_receiver_gets_the_log(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let receivers = [
        run.receiver("tut3_publish_subscribe_receive_logs", &[], 1, WAITING),
        run.receiver("tut3_publish_subscribe_receive_logs", &[], 1, WAITING),
    ];

    let sent = run.run("tut3_publish_subscribe_emit_log", &[], &[]);

    assert_eq!(sent, [" [x] Sent 'info: Hello World!'"]);
    for receiver in receivers {
        assert_eq!(
            receiver.finish(),
            [WAITING, " [x] Received 'info: Hello World!'"]
        );
    }
}

fn tut4_routing_receivers_get_only_their_severities(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let program = "tut4_routing_receive_logs_direct";
    let errors_only = run.receiver(program, &["error"], 1, WAITING);
    let everything = run.receiver(program, &["info", "warning", "error"], 3, WAITING);

    let emit = "tut4_routing_emit_log_direct";
    assert_eq!(run.run(emit, &[], &[]), [" [x] Sent 'info':'Hello World!'"]);
    assert_eq!(
        run.run(emit, &["warning", "Disk", "almost", "full"], &[]),
        [" [x] Sent 'warning':'Disk almost full'"]
    );
    assert_eq!(
        run.run(
            emit,
            &["error", "Run.", "Run.", "Or", "it", "will", "explode."],
            &[]
        ),
        [" [x] Sent 'error':'Run. Run. Or it will explode.'"]
    );

    assert_eq!(
        errors_only.finish(),
        [
            WAITING,
            " [x] Received 'error':'Run. Run. Or it will explode.'"
        ]
    );
    assert_eq!(
        everything.finish(),
        [
            WAITING,
            " [x] Received 'info':'Hello World!'",
            " [x] Received 'warning':'Disk almost full'",
            " [x] Received 'error':'Run. Run. Or it will explode.'",
        ]
    );
}

/// Each receiver exits after the messages it should get, so one it should not get (sent
/// first) or a duplicate (a queue bound twice, both bindings matching) shows up in its output.
fn tut5_topics_receivers_get_the_keys_their_patterns_match(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let program = "tut5_topics_receive_logs_topic";
    let all = run.receiver(program, &["#"], 3, WAITING);
    let kern = run.receiver(program, &["kern.*"], 1, WAITING);
    let critical = run.receiver(program, &["*.critical"], 2, WAITING);
    let both = run.receiver(program, &["kern.*", "*.critical"], 2, WAITING);

    let emit = "tut5_topics_emit_log_topic";
    assert_eq!(
        run.run(emit, &[], &[]),
        [" [x] Sent 'anonymous.info':'Hello World!'"]
    );
    assert_eq!(
        run.run(
            emit,
            &["kern.critical", "A", "critical", "kernel", "error"],
            &[]
        ),
        [" [x] Sent 'kern.critical':'A critical kernel error'"]
    );
    assert_eq!(
        run.run(
            emit,
            &["cron.critical", "A", "critical", "cron", "error"],
            &[]
        ),
        [" [x] Sent 'cron.critical':'A critical cron error'"]
    );

    let info = " [x] Received 'anonymous.info':'Hello World!'";
    let kernel = " [x] Received 'kern.critical':'A critical kernel error'";
    let cron = " [x] Received 'cron.critical':'A critical cron error'";
    assert_eq!(all.finish(), [WAITING, info, kernel, cron]);
    assert_eq!(kern.finish(), [WAITING, kernel]);
    assert_eq!(critical.finish(), [WAITING, kernel, cron]);
    assert_eq!(both.finish(), [WAITING, kernel, cron]);
}

fn tut6_rpc_client_gets_each_fibonacci_reply(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };
    let server = run.receiver("tut6_rpc_server", &[], 2, " [x] Awaiting RPC requests");

    let replies = run.run("tut6_rpc_client", &["10", "30"], &[]);

    assert_eq!(
        replies,
        [
            " [x] Requesting fib(10)",
            " [.] Got '55'",
            " [x] Requesting fib(30)",
            " [.] Got '832040'",
        ]
    );
    assert_eq!(
        server.finish(),
        [" [x] Awaiting RPC requests", " [.] fib(10)", " [.] fib(30)"]
    );
}

fn tut7_publisher_confirms_all_three_strategies_confirm_every_message(client: Client) {
    let Some((_broker, run)) = start(client) else {
        return;
    };

    let lines = run.run(
        "tut7_publisher_confirms",
        &[],
        &[("MESSAGE_COUNT", "1000".to_string())],
    );

    let strategies = [
        "Published 1,000 messages individually in ",
        "Published 1,000 messages in batch in ",
        "Published 1,000 messages and handled confirms asynchronously in ",
    ];
    assert_eq!(lines.len(), strategies.len(), "{lines:#?}");
    for (line, start) in lines.iter().zip(strategies) {
        let millis = line
            .strip_prefix(start)
            .and_then(|rest| rest.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("{line:?} is not {start:?}<n> ms"));
        assert!(
            !millis.is_empty() && millis.chars().all(|c| c.is_ascii_digit() || c == ','),
            "{line:?}"
        );
    }
}

/// Today's RabbitMQ tutorials declare their queues with an `x-queue-type` argument. RabbitMQ
/// compares queue types on redeclaration, an absent `x-queue-type` meaning the default,
/// classic; so `x-queue-type: classic` and no argument are the same queue, and only a
/// different type is inequivalent (406, the channel closes).
#[test]
fn redeclaring_with_x_queue_type_classic_matches_a_queue_declared_without_a_type() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};

    fn queue_type(kind: &str) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
        args
    }
    let broker = TestBroker::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let conn = warren_integration::connect(&broker.url()).await;
        let declare = |name: &'static str, args: FieldTable| {
            let conn = &conn;
            async move {
                let channel = conn.create_channel().await.unwrap();
                channel
                    .queue_declare(name.into(), QueueDeclareOptions::default(), args)
                    .await
                    .map(|_| ())
            }
        };

        declare("untyped", FieldTable::default()).await.unwrap();
        declare("untyped", queue_type("classic")).await.unwrap();
        declare("classic", queue_type("classic")).await.unwrap();
        declare("classic", FieldTable::default()).await.unwrap();

        let error = declare("classic", queue_type("quorum"))
            .await
            .expect_err("a different queue type is inequivalent");
        let text = error.to_string();
        assert!(
            text.contains(
                "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'classic' \
                 in vhost '/': received 'quorum' but current is 'classic'"
            ),
            "{text}"
        );
    });
}
