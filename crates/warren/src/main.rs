//! The `warren` binary: configuration, logging, wiring, signals.
//!
//! Reads the layered configuration (`config.rs`), opens the broker on its data directory
//! (recovering durable state), binds the AMQP listener and serves until SIGTERM or
//! SIGINT. On a signal it stops accepting, closes every connection with 320
//! CONNECTION_FORCED, flushes and closes the store, and exits 0. Any start-up failure
//! (bad configuration, port in use, unusable data directory) is one line on stderr and
//! a non-zero exit.

mod config;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use warren_broker::Broker;
use warren_server::Server;

use crate::config::{Cli, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warren: invalid configuration: {e}");
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
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let broker_config = config.broker();
    let broker = tokio::task::spawn_blocking(move || Broker::open(&data_dir, broker_config))
        .await
        .context("start-up task failed")?
        .with_context(|| format!("cannot open data directory {}", config.data_dir.display()))?;
    let server = Server::bind(config.server(), std::sync::Arc::clone(&broker)).await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), version = env!("CARGO_PKG_VERSION"), "Warren started");
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down");
        let _ = stop_tx.send(true);
    });
    server.run(stop_rx).await;
    tokio::task::spawn_blocking(move || broker.close())
        .await
        .context("shutdown task failed")?
        .context("cannot flush the store")?;
    tracing::info!("Warren stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
