//! warren-perf: a low-overhead AMQP 0-9-1 load generator, PerfTest-like.
//!
//! It speaks AMQP over tokio sockets directly instead of through a client library, so
//! that the client costs far less CPU per message than the broker it measures: each
//! producer encodes its publish frames once and copies them (patching an 8-byte send
//! timestamp) into large socket writes; consumers read with a 1 MiB buffer and look only
//! at the frame headers, the delivery tag and the timestamp; confirms are counted from
//! the raw `basic.ack` frames.
//!
//! # Layout
//!
//! - `config`: the command-line options ([`Config`]).
//! - `client`: TCP connect, handshake and the synchronous set-up methods.
//! - `wire`: pre-encoded publishes, the frame scanner, ack and nack frames, confirm tracking.
//! - `run`: topology, the producer/consumer loops, the measured window, the JSON report.
//! - `procfs`: CPU time and RSS of the broker (and of ourselves) from `/proc`.

pub mod client;
pub mod config;
pub mod procfs;
pub mod run;
pub mod wire;

pub use config::Config;
pub use run::run;
