//! Command-line options (PerfTest-like names).

use anyhow::{Result, bail};
use clap::Parser;

/// Low-overhead AMQP 0-9-1 load generator.
///
/// Time mode (default): consumers and producers run together for --warmup + --time seconds;
/// rates are counted over the --time window only. Backlog mode (--backlog N): publish N
/// messages with nobody consuming, then start the consumers and drain them.
///
/// Producers put a monotonic nanosecond timestamp in the first 8 bytes of each body;
/// consumers (same process) turn it into end-to-end latency. Queues and exchanges are
/// named `<prefix>-q<i>` / `<prefix>-fanout` / `<prefix>-topic` (with --dead-letter also
/// `<prefix>-dlx` / `<prefix>-dlq`) and deleted at the end.
#[derive(Debug, Clone, Parser)]
#[command(name = "warren-perf", version)]
pub struct Config {
    /// Broker URI.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// Label for the result.
    #[arg(long, default_value = "run")]
    pub name: String,
    /// Number of producers (one channel each).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Number of consumers (one channel each).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Number of queues; producer i publishes to queue i % N, consumer j reads queue j % N.
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    /// Body size in bytes (>= 8 carries the send timestamp).
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Messages per second per producer (0 = unlimited).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Prefetch count per consumer channel (manual ack only; 0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub qos: u16,
    /// Acknowledge every N messages with multiple=true (N = 1: one ack per message).
    #[arg(long, default_value_t = 1)]
    pub multi_ack: u32,
    /// Consume with no-ack.
    #[arg(long)]
    pub auto_ack: bool,
    /// Consumers settle with basic.nack(requeue=false) instead of basic.ack (batched as
    /// --multi-ack says): every message is rejected, and dead-lettered when its queue has a
    /// dead-letter exchange (see --dead-letter).
    #[arg(long, conflicts_with = "auto_ack")]
    pub nack: bool,
    /// Give every queue the dead-letter exchange `<prefix>-dlx` (fanout), bound to the queue
    /// `<prefix>-dlq`, which one more consumer (auto-ack, own connection) drains; its rate
    /// is reported as `dl_rate` (time mode only).
    #[arg(long)]
    pub dead_letter: bool,
    /// Arguments for the run's queues, `KEY=VALUE` (repeat the flag or separate with
    /// commas); a value that parses as an integer is sent as a signed 64-bit integer, any
    /// other as a string. E.g. `--queue-args x-max-length=1000,x-overflow=drop-head`.
    #[arg(long, value_name = "KEY=VALUE", value_delimiter = ',', value_parser = parse_queue_arg)]
    pub queue_args: Vec<QueueArg>,
    /// Publish with delivery-mode 2.
    #[arg(long)]
    pub persistent: bool,
    /// Declare durable queues and exchanges.
    #[arg(long)]
    pub durable: bool,
    /// Publisher confirms with at most WINDOW unconfirmed messages per producer (0 = off).
    #[arg(long, value_name = "WINDOW", default_value_t = 0)]
    pub confirm: u64,
    /// Publish to a fanout exchange bound to every queue.
    #[arg(long, conflicts_with = "topic")]
    pub fanout: bool,
    /// Publish to a topic exchange; queue i is bound with `perf.q<i>.*`, producer i
    /// publishes with routing key `perf.q<i % queues>.m`.
    #[arg(long)]
    pub topic: bool,
    /// Measured seconds (time mode).
    #[arg(long, default_value_t = 10.0)]
    pub time: f64,
    /// Unmeasured warm-up seconds before the window.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Backlog mode: publish N messages in total, then drain them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub backlog: u64,
    /// Closed loop: a producer waits while its queue has more than N messages sent and
    /// not yet consumed by us (not with --fanout).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_lag: u64,
    /// Spread producer channels over N connections (0 = one connection per producer).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub producer_connections: usize,
    /// Spread consumer channels over N connections (0 = one connection per consumer).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub consumer_connections: usize,
    /// Sample this process's CPU time and RSS (/proc) and report broker CPU per message.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Print the result as one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Name prefix for queues and exchanges (default warren-perf-<pid>-<ms>).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only delete `<prefix>-q0..` (and the exchange), then exit.
    #[arg(long, requires = "prefix")]
    pub cleanup_only: bool,
    /// Keep the queues and exchange at the end.
    #[arg(long)]
    pub keep: bool,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Most messages a producer puts in one socket write (0 = up to ~128 KiB).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// No per-second progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        if self.queues == 0 {
            bail!("--queues must be at least 1");
        }
        if self.multi_ack == 0 {
            bail!("--multi-ack must be at least 1");
        }
        if !self.auto_ack && self.qos > 0 && self.multi_ack > u32::from(self.qos) {
            bail!("--multi-ack larger than --qos would stall the consumers");
        }
        if self.max_lag > 0 && (self.fanout || self.topic) {
            bail!("--max-lag works with queue-per-producer routing only (not --fanout/--topic)");
        }
        if self.backlog > 0 && self.producers == 0 {
            bail!("--backlog needs producers");
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            bail!("--rate must be a non-negative number");
        }
        if !(self.time > 0.0 && self.warmup >= 0.0) {
            bail!("--time must be positive and --warmup non-negative");
        }
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        if self.nack && self.auto_ack {
            bail!("--nack needs manual acknowledgements (not --auto-ack)");
        }
        if self.dead_letter && self.backlog > 0 {
            bail!("--dead-letter works in time mode only (not --backlog)");
        }
        if self.dead_letter
            && self
                .queue_args
                .iter()
                .any(|a| a.key == "x-dead-letter-exchange")
        {
            bail!("--dead-letter sets x-dead-letter-exchange itself; leave it out of --queue-args");
        }
        Ok(())
    }

    /// Whether the queue arguments let the broker drop messages (length limits, TTL): then
    /// a gap in a producer's sequence is the limit at work, not a lost message.
    pub fn queues_may_drop(&self) -> bool {
        self.queue_args.iter().any(|a| {
            matches!(
                a.key.as_str(),
                "x-max-length" | "x-max-length-bytes" | "x-message-ttl"
            )
        })
    }

    pub fn prefix(&self) -> String {
        self.prefix.clone().unwrap_or_else(|| {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            format!("warren-perf-{}-{ms}", std::process::id())
        })
    }
}

/// One `--queue-args` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueArg {
    pub key: String,
    pub value: QueueArgValue,
}

/// The value of a queue argument as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueArgValue {
    /// A signed 64-bit integer (field type `l`).
    Int(i64),
    /// A long string (field type `S`).
    Str(String),
}

fn parse_queue_arg(s: &str) -> Result<QueueArg, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if key.is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    let value = match value.parse::<i64>() {
        Ok(n) => QueueArgValue::Int(n),
        Err(_) => QueueArgValue::Str(value.to_string()),
    };
    Ok(QueueArg {
        key: key.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_args_parse_integers_and_strings_comma_separated_or_repeated() {
        let cfg = Config::parse_from([
            "warren-perf",
            "--queue-args",
            "x-max-length=1000,x-overflow=drop-head",
            "--queue-args",
            "x-max-priority=-1",
        ]);
        assert_eq!(
            cfg.queue_args,
            vec![
                QueueArg {
                    key: "x-max-length".into(),
                    value: QueueArgValue::Int(1000)
                },
                QueueArg {
                    key: "x-overflow".into(),
                    value: QueueArgValue::Str("drop-head".into())
                },
                QueueArg {
                    key: "x-max-priority".into(),
                    value: QueueArgValue::Int(-1)
                },
            ]
        );
        assert!(cfg.queues_may_drop());
        assert!(Config::try_parse_from(["warren-perf", "--queue-args", "novalue"]).is_err());
        assert!(Config::try_parse_from(["warren-perf", "--queue-args", "=1"]).is_err());
    }

    #[test]
    fn nack_needs_manual_acks_and_dead_letter_needs_time_mode() {
        assert!(Config::try_parse_from(["warren-perf", "--nack", "--auto-ack"]).is_err());
        let backlog = Config::parse_from(["warren-perf", "--dead-letter", "--backlog", "10"]);
        assert!(backlog.validate().is_err());
        let own_dlx = Config::parse_from([
            "warren-perf",
            "--dead-letter",
            "--queue-args",
            "x-dead-letter-exchange=x",
        ]);
        assert!(own_dlx.validate().is_err());
        let s8 = Config::parse_from([
            "warren-perf",
            "--qos",
            "1000",
            "--multi-ack",
            "100",
            "--nack",
            "--dead-letter",
        ]);
        assert!(s8.validate().is_ok() && !s8.queues_may_drop());
    }
}
