//! Test harness: a real Warren broker on a real TCP port with a real RocksDB in a temp dir.
//!
//! - [`TestBroker`] runs the broker in-process (its own runtime on its own thread), bound
//!   to `127.0.0.1:0`, and hands back its URL. Dropping it shuts the broker down
//!   gracefully; [`TestBroker::restart`] stops it and starts a new one on the same data
//!   directory (recovery tests).
//! - [`BinaryBroker`] runs the `warren` binary as a child process, for tests where a
//!   process must die (SIGKILL) or must exit by itself (SIGTERM, exit codes).
//! - [`raw`] has helpers for raw-socket protocol tests; [`http`] is a management API client.
//! - [`json_shape`] compares a management API answer's JSON structure with RabbitMQ 3.10's,
//!   recorded in `tests/fixtures/management/` (see its `record.sh`).
//! - [`certs`] generates a CA, server and client certificates for TLS tests; a
//!   [`TestConfig`] whose `server.tls` is set gets an amqps listener on its own port 0
//!   ([`TestBroker::amqps_addr`]).
//!
//! Logs: set `WARREN_LOG=debug` to see the broker's logs in a failing test's output.

pub mod certs;
pub mod http;
pub mod json_shape;
pub mod raw;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::watch;
use warren_broker::{Broker, BrokerConfig};
use warren_server::{Server, ServerConfig};

static TRACING: Once = Once::new();

/// Install a test log subscriber once (filtered by `WARREN_LOG`, default `warn`).
pub fn init_tracing() {
    TRACING.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Settings a test may change before start.
#[derive(Debug, Clone, Default)]
pub struct TestConfig {
    /// Listener settings (`listen` and `tls.listen` are ignored: always 127.0.0.1:0).
    pub server: ServerConfig,
    /// Broker settings.
    pub broker: BrokerConfig,
    /// Where the temp data dir is created (None: the system's temp dir). The disk alarm
    /// test puts it on a tmpfs, whose free space other processes do not move.
    pub data_dir_parent: Option<PathBuf>,
    /// Serve the management HTTP API on its own 127.0.0.1:0 with these settings
    /// ([`TestBroker::http_url`]).
    pub http: Option<warren_http::HttpConfig>,
}

/// An in-process broker; see the crate docs.
pub struct TestBroker {
    addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    amqps_addr: Option<SocketAddr>,
    /// Dropped at shutdown, before a restart opens the store again.
    broker: Option<Arc<Broker>>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    dir: Option<TempDir>,
    data_dir: PathBuf,
    config: TestConfig,
}

impl TestBroker {
    /// Start with default settings and a fresh temp data dir.
    pub fn start() -> TestBroker {
        Self::start_with(TestConfig::default())
    }

    /// Start with the given settings and a fresh temp data dir.
    pub fn start_with(config: TestConfig) -> TestBroker {
        let dir = match &config.data_dir_parent {
            Some(parent) => tempfile::tempdir_in(parent),
            None => tempfile::tempdir(),
        }
        .expect("create temp data dir");
        let data_dir = dir.path().to_path_buf();
        Self::start_in(Some(dir), data_dir, config)
    }

    fn start_in(dir: Option<TempDir>, data_dir: PathBuf, config: TestConfig) -> TestBroker {
        init_tracing();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let path = data_dir.clone();
        let cfg = config.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                let broker = Broker::open(&path, cfg.broker).expect("open broker");
                let mut server_config = cfg.server;
                server_config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
                if let Some(tls) = &mut server_config.tls {
                    tls.listen = SocketAddr::from(([127, 0, 0, 1], 0));
                }
                let server = Server::bind(server_config, Arc::clone(&broker))
                    .await
                    .expect("bind");
                let mut http_addr = None;
                let mut http_task = None;
                if let Some(mut http) = cfg.http {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind http");
                    http_addr = listener.local_addr().ok();
                    if let Ok(a) = server.local_addr() {
                        http.listeners.push(("amqp".into(), a));
                    }
                    if let Some(a) = server.amqps_addr() {
                        http.listeners.push(("amqp/ssl".into(), a));
                    }
                    let state = warren_http::ApiState::new(Arc::clone(&broker), http);
                    http_task = Some(tokio::spawn(warren_http::serve(
                        listener,
                        state,
                        stop_rx.clone(),
                    )));
                }
                addr_tx
                    .send((
                        server.local_addr().ok(),
                        server.amqps_addr(),
                        http_addr,
                        Arc::clone(&broker),
                    ))
                    .expect("report addr");
                server.run(stop_rx).await;
                if let Some(task) = http_task {
                    let _ = task.await;
                }
                broker.close().expect("close store");
            });
        });
        let (addr, amqps_addr, http_addr, broker) = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker did not start");
        TestBroker {
            addr,
            http_addr,
            amqps_addr,
            broker: Some(broker),
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
            data_dir,
            config,
        }
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr())
    }

    /// `amqp://user:pass@127.0.0.1:PORT/<vhost>`, the vhost percent-encoded.
    pub fn url_as(&self, user: &str, pass: &str, vhost: &str) -> String {
        format!(
            "amqp://{}:{}@{}/{}",
            percent(user),
            percent(pass),
            self.addr(),
            percent(vhost)
        )
    }

    /// `http://127.0.0.1:PORT` of the management API (panics unless `TestConfig::http`).
    pub fn http_url(&self) -> String {
        format!(
            "http://{}",
            self.http_addr
                .expect("the HTTP API is off (set TestConfig::http)")
        )
    }

    /// The in-process broker (its access registry, vhosts, connections).
    pub fn broker(&self) -> &Arc<Broker> {
        self.broker.as_ref().expect("the broker is running")
    }

    /// The plain listener's address (panics when it is off).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the plain listener is off")
    }

    /// Whether the plain listener runs.
    pub fn has_plain_listener(&self) -> bool {
        self.addr.is_some()
    }

    /// The amqps listener's address (panics when TLS is not configured).
    pub fn amqps_addr(&self) -> SocketAddr {
        self.amqps_addr.expect("no amqps listener configured")
    }

    /// `amqps://guest:guest@127.0.0.1:PORT/%2f`
    pub fn amqps_url(&self) -> String {
        format!("amqps://guest:guest@{}/%2f", self.amqps_addr())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stop gracefully (as SIGTERM would) and start again on the same data directory.
    pub fn restart(mut self) -> TestBroker {
        self.shutdown();
        let dir = self.dir.take();
        let data_dir = self.data_dir.clone();
        let config = self.config.clone();
        Self::start_in(dir, data_dir, config)
    }

    fn shutdown(&mut self) {
        self.broker = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.broker.take();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Percent-encode everything but unreserved characters (for URLs' user, password, vhost).
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `warren` binary built next to the test executable.
pub fn warren_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/warren
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("warren");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build -p warren`; the README's test command does)",
        bin.display()
    );
    bin
}

/// A free TCP port on loopback (bound then released; fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The `warren` binary as a child process.
pub struct BinaryBroker {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// Its management HTTP API's port (a free one unless the test passed `--http-listen`).
    pub http_port: u16,
    /// Its Prometheus metrics port (a free one unless the test passed
    /// `--prometheus-listen`).
    pub prometheus_port: u16,
    data_dir: PathBuf,
    _dir: Option<Arc<TempDir>>,
    log: PathBuf,
}

impl BinaryBroker {
    /// Start the binary on a free port with `data_dir`, and wait until it accepts.
    pub fn spawn(data_dir: &Path) -> BinaryBroker {
        Self::spawn_with(data_dir, &[], &[])
    }

    /// Same, with extra arguments and environment.
    pub fn spawn_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> BinaryBroker {
        let port = free_port();
        let log = data_dir.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(warren_binary());
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir);
        // Never the default 15672: tests run side by side.
        let http_port = match args.iter().position(|a| *a == "--http-listen") {
            Some(i) => args
                .get(i + 1)
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .map_or(0, |a| a.port()),
            None => {
                let p = free_port();
                cmd.arg("--http-listen").arg(format!("127.0.0.1:{p}"));
                p
            }
        };
        // Nor the default 15692.
        let prometheus_port = match args.iter().position(|a| *a == "--prometheus-listen") {
            Some(i) => args
                .get(i + 1)
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .map_or(0, |a| a.port()),
            None => {
                let p = free_port();
                cmd.arg("--prometheus-listen").arg(format!("127.0.0.1:{p}"));
                p
            }
        };
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn warren");
        let broker = BinaryBroker {
            child: Some(child),
            port,
            http_port,
            prometheus_port,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
            log,
        };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("warren did not start; log:\n{}", self.log_text());
    }

    /// The broker's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        self.signal("KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for exit; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        self.signal("TERM");
        let mut child = self.child.take()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BinaryBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Connect lapin to `url` (inside a tokio runtime).
pub async fn connect(url: &str) -> lapin::Connection {
    lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .expect("connect")
}
