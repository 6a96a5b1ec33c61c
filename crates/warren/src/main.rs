//! The `warren` binary: configuration, logging, wiring, signals.
//!
//! Reads the layered configuration (`config.rs`), opens the broker on its data directory
//! (recovering durable state, and starting the resource alarm monitor with the configured
//! `vm_memory_high_watermark` and `disk_free_limit`), binds the AMQP listeners (plain
//! and/or amqps) and the management HTTP API (`warren-http`), and serves until SIGTERM or
//! SIGINT. On a signal it stops accepting, closes every connection with 320
//! CONNECTION_FORCED, flushes and closes the store, and exits 0. Any start-up failure
//! (bad configuration, port in use, unusable data directory) is one line on stderr and
//! a non-zero exit; so is a `load_definitions` file that does not parse or apply (the line
//! names the file and the entry, and nothing of the file is imported).
//!
//! `warren ctl <command>` does not run the broker: it is the `warren-ctl` crate's
//! rabbitmqctl-like client of a running broker's management HTTP API.

mod config;

/// mimalloc: fewer cycles per allocation than glibc's malloc on the publish/deliver path,
/// and it returns freed memory to the OS, so RSS falls back after a backlog drains.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use warren_broker::{Broker, Definitions, OpenError};
use warren_http::{ApiState, HttpConfig};
use warren_server::{Listeners, Server, Tls};

use crate::config::{Cli, Command, Config};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `warren ctl` usage errors exit 64 as rabbitmqctl's; the broker's flags' exit 2.
        Err(e) if std::env::args_os().nth(1).is_some_and(|a| a == "ctl") => {
            return warren_ctl::usage_error(&e);
        }
        Err(e) => e.exit(),
    };
    if let Some(Command::Ctl(ctl)) = &cli.command {
        return warren_ctl::run(ctl);
    }
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "warren: invalid configuration: {}",
                one_line(&e.to_string())
            );
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        match toml::to_string_pretty(&config) {
            Ok(s) => {
                print!("{s}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("warren: cannot print configuration: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // The TLS files are read now: a missing or unusable one is a configuration error.
    let tls = match config.tls().map(|t| t.load()).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!(
                "warren: invalid configuration: {}",
                one_line(&e.to_string())
            );
            return ExitCode::from(2);
        }
    };
    // A definitions file that does not parse is a configuration error: one line, before
    // anything is logged or opened. (`Broker::open` reads it again and, after recovery,
    // checks it against the data directory.)
    if let Some(path) = &config.load_definitions
        && let Err(e) = Definitions::read(path)
    {
        eprintln!(
            "warren: cannot load definitions from {}: {e}",
            path.display()
        );
        return ExitCode::from(2);
    }
    let filter = EnvFilter::try_from_env("WARREN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raise the open-file limit to the hard limit (every connection is a file descriptor) and
/// return the connection limit it allows.
fn raise_fd_limit(max_connections: usize) -> usize {
    const RESERVED_FDS: u64 = 256; // RocksDB files, listener, logs
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let allowed = limit.saturating_sub(RESERVED_FDS).max(1) as usize;
            if allowed < max_connections {
                tracing::info!(
                    open_file_limit = limit,
                    max_connections = allowed,
                    "max_connections lowered to fit the open-file limit (raise `ulimit -n` for more)"
                );
                return allowed;
            }
            max_connections
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            max_connections
        }
    }
}

async fn serve(mut config: Config, tls: Option<Tls>) -> anyhow::Result<()> {
    // Handle SIGTERM/SIGINT from the start: a signal during start-up (store recovery)
    // stops cleanly as well, instead of killing the process.
    let signals = install_signal_handlers();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal(signals).await;
        tracing::info!("signal received; shutting down");
        let _ = stop_tx.send(true);
    });
    // Bind before opening the store: a busy or forbidden address fails before anything
    // is logged (its error is the only line on stderr), and clients connecting during
    // recovery wait in the backlog.
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
    };
    let mut listeners = Listeners::default();
    if config.plain_listener {
        listeners.plain = Some(bind(config.listen).await?);
    }
    if let (Some(settings), Some(tls)) = (config.tls(), tls) {
        listeners.amqps = Some((bind(settings.listen).await?, tls));
    }
    let http = if config.http_listener {
        Some(bind(config.http_listen).await?)
    } else {
        None
    };
    let prometheus = if config.prometheus_listener {
        Some(bind(config.prometheus_listen).await?)
    } else {
        None
    };
    config.max_connections = raise_fd_limit(config.max_connections);
    let data_dir = config.data_dir.clone();
    let broker_config = config.broker();
    let broker = match tokio::task::spawn_blocking(move || Broker::open(&data_dir, broker_config))
        .await
        .context("start-up task failed")?
    {
        Ok(broker) => broker,
        // Names the file and the entry; nothing of the file was imported.
        Err(e @ OpenError::Definitions { .. }) => return Err(e.into()),
        Err(OpenError::Broker(e)) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot open data directory {}",
                config.data_dir.display()
            )));
        }
    };
    let server = Server::from_listeners(listeners, config.server(), std::sync::Arc::clone(&broker));
    let addr = server.local_addr().ok().map(|a| a.to_string());
    let amqps = server.amqps_addr().map(|a| a.to_string());
    let mut http_config = HttpConfig {
        max_body_size: config.http_max_body_size,
        ..HttpConfig::default()
    };
    if let Ok(a) = server.local_addr() {
        http_config.listeners.push(("amqp".into(), a));
    }
    if let Some(a) = server.amqps_addr() {
        http_config.listeners.push(("amqp/ssl".into(), a));
    }
    let http_addr = http
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string());
    let prometheus_addr = prometheus
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string());
    let prometheus_task = prometheus.map(|listener| {
        let broker = std::sync::Arc::clone(&broker);
        let node = http_config.node_name.clone();
        let stop = stop_rx.clone();
        tokio::spawn(
            async move { warren_http::prometheus::serve(listener, broker, &node, stop).await },
        )
    });
    let http_task = http.map(|listener| {
        let state = ApiState::new(std::sync::Arc::clone(&broker), http_config);
        tokio::spawn(warren_http::serve(listener, state, stop_rx.clone()))
    });
    tracing::info!(addr = addr.as_deref().unwrap_or("off"), amqps = amqps.as_deref().unwrap_or("off"), http = http_addr.as_deref().unwrap_or("off"), prometheus = prometheus_addr.as_deref().unwrap_or("off"), data_dir = %config.data_dir.display(), version = env!("CARGO_PKG_VERSION"), "Warren started");
    server.run(stop_rx).await;
    if let Some(task) = http_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the management HTTP API stopped with an error")
            }
            Err(e) => tracing::warn!(error = %e, "the management HTTP API task failed"),
        }
    }
    if let Some(task) = prometheus_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the Prometheus listener stopped with an error")
            }
            Err(e) => tracing::warn!(error = %e, "the Prometheus listener task failed"),
        }
    }
    tokio::task::spawn_blocking(move || broker.close())
        .await
        .context("shutdown task failed")?
        .context("cannot flush the store")?;
    tracing::info!("Warren stopped");
    Ok(())
}

/// A multi-line error (TOML parse errors draw the offending line) as one line: the
/// source snippet and caret lines are dropped, the rest joined.
fn one_line(text: &str) -> String {
    // "  |", "1 | key = value", "  |   ^": the snippet TOML errors draw.
    let is_snippet = |l: &str| match l.split_once('|') {
        Some((gutter, _)) => gutter.trim().chars().all(|c| c.is_ascii_digit()),
        None => false,
    };
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_snippet(l))
        .collect();
    parts.join(": ").replace(": in ", " in ")
}

type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn install_signal_handlers() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    }
}

async fn wait_for_signal(signals: Signals) {
    let Some((mut term, mut int)) = signals else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
