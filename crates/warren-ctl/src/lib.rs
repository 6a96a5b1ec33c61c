//! warrenctl: a rabbitmqctl-like command line client of Warren's management HTTP API.
//!
//! Used as `warren ctl <command>` (a subcommand of the broker binary) and as the standalone
//! `warrenctl` binary. It speaks only the HTTP API (RabbitMQ's paths and JSON), so it works
//! against RabbitMQ's management plugin as well.
//!
//! Data flow: [`CtlCli`] (clap) -> [`commands::execute`] -> [`client::ApiClient`] (one
//! blocking HTTP request at a time) -> the API's JSON -> [`columns`] (rabbitmqctl's column
//! names to JSON fields) -> [`format`] (tab-separated table or JSON) -> stdout. A failure is
//! one [`CtlError`], printed as `Error: ...` on stderr, whose [`CtlError::exit_code`] is
//! rabbitmqctl's (69 when the broker is unreachable, 65 for a bad argument, 67 for a missing
//! user, 64 for a usage error).
//!
//! Layout:
//! - `cli.rs`: the command line (global options, one subcommand per rabbitmqctl command);
//! - `commands.rs`: which requests each command sends and what it prints;
//! - `client.rs`: the HTTP client, path encoding, error answers;
//! - `columns.rs`: the list commands' columns;
//! - `format.rs`: table and JSON output;
//! - `error.rs`: [`CtlError`] and the exit codes.
//!
//! HTTP client: ureq 3 (`default-features = false`, `json`), not reqwest's blocking client.
//! A CLI sends a handful of sequential requests; ureq does that with plain blocking I/O and a
//! small dependency tree, while reqwest's blocking API runs a tokio runtime on a background
//! thread and pulls in hyper, tower and their features, which costs build time on every
//! workspace build for nothing this tool uses. TLS is off: the API listens on loopback by
//! default (ureq's `rustls` feature can be switched on when the API gets an https listener).

pub mod cli;
pub mod client;
pub mod columns;
pub mod commands;
pub mod error;
pub mod format;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use cli::CtlCli;
pub use error::CtlError;

/// Run a parsed command line: output on stdout, `Error: ...` on stderr, rabbitmqctl's exit
/// code.
pub fn run(cli: &CtlCli) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match commands::execute(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Parse `args` (the first is the program name) and run; a usage error exits 64 as
/// rabbitmqctl's, `--help` and `--version` 0.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match CtlCli::try_parse_from(args) {
        Ok(cli) => run(&cli),
        Err(e) => usage_error(&e),
    }
}

/// Print a clap error (or help) and return its exit code: 0 for `--help`/`--version`, 64
/// (rabbitmqctl's usage error) otherwise.
pub fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(error::exit::USAGE)
    } else {
        ExitCode::SUCCESS
    }
}
