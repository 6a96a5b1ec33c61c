//! Runnable client programs for Warren.
//!
//! `src/bin/tut*.rs` are RabbitMQ's tutorials 1-7 written with lapin, one program per side
//! of each tutorial, printing what the tutorials print:
//!
//! | tutorial | programs |
//! | --- | --- |
//! | 1 hello world | `tut1_hello_world_send`, `tut1_hello_world_receive` |
//! | 2 work queues | `tut2_work_queues_new_task [message]`, `tut2_work_queues_worker` |
//! | 3 publish/subscribe | `tut3_publish_subscribe_emit_log [message]`, `tut3_publish_subscribe_receive_logs` |
//! | 4 routing | `tut4_routing_emit_log_direct [severity] [message]`, `tut4_routing_receive_logs_direct severity...` |
//! | 5 topics | `tut5_topics_emit_log_topic [key] [message]`, `tut5_topics_receive_logs_topic binding_key...` |
//! | 6 RPC | `tut6_rpc_server`, `tut6_rpc_client [n...]` |
//! | 7 publisher confirms | `tut7_publisher_confirms` |
//!
//! Every program reads the broker URL from `AMQP_URL` (default [`DEFAULT_URL`]). Unlike the
//! tutorials, the receiving side exits by itself after `EXPECTED_MESSAGES` messages
//! (default 1; `0` means run until killed), so the programs can be tested.
//! `tut7_publisher_confirms` publishes `MESSAGE_COUNT` messages per strategy (default 50,000).
//! The same programs exist for pika and amqplib under `integration/clients/`.
//!
//! ```text
//! cargo run -p warren-examples --bin tut1_hello_world_receive &
//! cargo run -p warren-examples --bin tut1_hello_world_send
//! ```

use lapin::{Connection, ConnectionProperties};

/// The broker URL when `AMQP_URL` is not set.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// `AMQP_URL`, or [`DEFAULT_URL`].
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// Connect to [`amqp_url`] (call inside a tokio runtime).
pub async fn connect() -> lapin::Result<Connection> {
    Connection::connect(&amqp_url(), ConnectionProperties::default()).await
}

/// How many messages a receiving program handles before it exits: `EXPECTED_MESSAGES`,
/// default 1. `None` (from `0`) means forever, as in the tutorials.
pub fn expected_messages() -> Option<u64> {
    env_number("EXPECTED_MESSAGES", 1).filter(|n| *n > 0)
}

/// A numeric environment variable, or `default` when unset. Exits with a message when the
/// value is not a number.
pub fn env_number(name: &str, default: u64) -> Option<u64> {
    match std::env::var(name) {
        Err(_) => Some(default),
        Ok(value) => match value.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                eprintln!("{name} must be a whole number, got {value:?}");
                std::process::exit(2);
            }
        },
    }
}

/// `n` with a comma every three digits, as Java's `%,d` prints it: `50,000`.
pub fn with_thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Command-line arguments joined by spaces, or `default` when there are none
/// (the tutorials' `String.join(" ", argv)`).
pub fn joined_args(args: &[String], default: &str) -> String {
    if args.is_empty() {
        default.to_string()
    } else {
        args.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_thousands_groups_digits_like_java() {
        assert_eq!(with_thousands(0), "0");
        assert_eq!(with_thousands(999), "999");
        assert_eq!(with_thousands(1000), "1,000");
        assert_eq!(with_thousands(50_000), "50,000");
        assert_eq!(with_thousands(1_234_567), "1,234,567");
    }
}
