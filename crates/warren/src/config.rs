//! Configuration: defaults, then an optional TOML file, then `WARREN_*` environment
//! variables, then command-line flags, each layer overriding the one before (figment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use warren_broker::{
    AlarmConfig, BrokerConfig, DiskFreeLimit, MemoryWatermark, QueueLimits,
    alarms::{DEFAULT_DISK_FREE_LIMIT, DEFAULT_MEMORY_HIGH_WATERMARK},
};
use warren_server::ServerConfig;

/// Warren, an AMQP 0-9-1 message broker.
#[derive(Debug, Parser)]
#[command(name = "warren", version, about)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// AMQP listen address [default: 127.0.0.1:5672; env: WARREN_LISTEN].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Data directory (RocksDB) [default: ./warren-data; env: WARREN_DATA_DIR].
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Every setting, with its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// AMQP listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Largest frame (bytes) offered in connection.tune.
    pub frame_max: u32,
    /// Most channels per connection.
    pub channel_max: u16,
    /// Heartbeat interval offered, in seconds (0 disables).
    pub heartbeat: u16,
    /// Seconds a client has to complete the handshake.
    pub handshake_timeout: u64,
    /// The user that exists on a fresh broker.
    pub default_user: String,
    /// Its password.
    pub default_pass: String,
    /// Users allowed to connect from loopback only.
    pub loopback_users: Vec<String>,
    /// Largest message body accepted, in bytes.
    pub max_message_size: u64,
    /// Bytes of persistent messages a queue keeps in memory before paging new ones out.
    pub queue_ram_bytes: usize,
    /// Messages a queue keeps in memory before paging new ones out.
    pub queue_ram_messages: usize,
    /// Bytes of messages all queues together keep in memory before paging to disk.
    pub message_memory: usize,
    /// The memory alarm: `relative` (fraction of total memory) or `absolute` (bytes).
    #[serde(default)]
    pub vm_memory_high_watermark: Threshold,
    /// The disk alarm: `absolute` (bytes) or `relative` (a multiple of total memory).
    #[serde(default)]
    pub disk_free_limit: Threshold,
}

/// A threshold given either relative to the total memory or in bytes, as RabbitMQ's
/// `vm_memory_high_watermark.relative` / `.absolute` and `disk_free_limit.relative` /
/// `.absolute`. At most one of the two may be set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Relative to the total memory (machine or cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
    /// Bytes: an integer, or a string with RabbitMQ's units ("50MB", "2GiB", "512k").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute: Option<ByteSize>,
}

/// A size in bytes, read from an integer or from a string with a unit as RabbitMQ's
/// configuration takes them: `k`/`kiB`/`KiB` (1024), `M`/`MiB`, `G`/`GiB`, `T`/`TiB`
/// (powers of 1024) and `kB`/`KB`, `MB`, `GB`, `TB` (powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parse "50MB", "2GiB", "1048576".
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| {
            format!("'{text}' is not a size (examples: 50000000, \"50MB\", \"2GiB\")")
        })?;
        let multiplier: u64 = match unit.trim() {
            "" => 1,
            "k" | "K" | "kiB" | "KiB" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            "T" | "TiB" => 1 << 40,
            "kB" | "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => {
                return Err(format!(
                    "unknown size unit '{other}' in '{text}' (use k/KiB, M/MiB, G/GiB, T/TiB, kB, MB, GB or TB)"
                ));
            }
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("'{text}' is too large"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size in bytes: an integer or a string such as \"50MB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative (got {v})")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Default for Config {
    fn default() -> Self {
        let server = ServerConfig::default();
        let broker = BrokerConfig::default();
        Self {
            listen: server.listen,
            data_dir: PathBuf::from("./warren-data"),
            max_connections: server.max_connections,
            frame_max: server.frame_max,
            channel_max: server.channel_max,
            heartbeat: server.heartbeat,
            handshake_timeout: server.handshake_timeout.as_secs(),
            default_user: broker.default_user,
            default_pass: broker.default_pass,
            loopback_users: broker.loopback_users,
            max_message_size: broker.max_message_size,
            queue_ram_bytes: broker.queue_limits.ram_bytes,
            queue_ram_messages: broker.queue_limits.ram_messages,
            message_memory: broker.message_memory,
            vm_memory_high_watermark: Threshold {
                relative: Some(DEFAULT_MEMORY_HIGH_WATERMARK),
                absolute: None,
            },
            disk_free_limit: Threshold {
                relative: None,
                absolute: Some(ByteSize(DEFAULT_DISK_FREE_LIMIT)),
            },
        }
    }
}

/// Flags that were given, as a layer over the others.
#[derive(Debug, Serialize)]
struct FlagLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
}

impl Config {
    /// Build the layered configuration.
    pub fn load(cli: &Cli) -> Result<Config, Box<figment::Error>> {
        // The alarm thresholds' defaults are filled in after extraction: a user's
        // `absolute` must not meet the default `relative` (or the reverse).
        let defaults = Config {
            vm_memory_high_watermark: Threshold::default(),
            disk_free_limit: Threshold::default(),
            ..Config::default()
        };
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Some(path) = &cli.config {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "configuration file {} does not exist",
                    path.display()
                ))));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(
                Env::prefixed("WARREN_")
                    .ignore(&["log", "http_listen"])
                    // WARREN_VM_MEMORY_HIGH_WATERMARK__ABSOLUTE=2GB
                    .split("__"),
            )
            .merge(Serialized::defaults(FlagLayer {
                listen: cli.listen,
                data_dir: cli.data_dir.clone(),
            }));
        let mut config: Config = figment.extract()?;
        config.validate()?;
        let defaults = Config::default();
        if config.vm_memory_high_watermark == Threshold::default() {
            config.vm_memory_high_watermark = defaults.vm_memory_high_watermark;
        }
        if config.disk_free_limit == Threshold::default() {
            config.disk_free_limit = defaults.disk_free_limit;
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), Box<figment::Error>> {
        if self.frame_max < 4096 {
            return Err(Box::new(
                format!("frame_max must be at least 4096 (got {})", self.frame_max).into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(Box::new(
                "max_connections must be at least 1".to_string().into(),
            ));
        }
        if self.queue_ram_messages == 0 {
            return Err(Box::new(
                "queue_ram_messages must be at least 1".to_string().into(),
            ));
        }
        for (name, threshold, max_relative) in [
            (
                "vm_memory_high_watermark",
                self.vm_memory_high_watermark,
                Some(1.0),
            ),
            ("disk_free_limit", self.disk_free_limit, None),
        ] {
            if threshold.relative.is_some() && threshold.absolute.is_some() {
                return Err(Box::new(
                    format!("set only one of {name}.relative and {name}.absolute").into(),
                ));
            }
            if let Some(relative) = threshold.relative {
                let in_range = relative.is_finite()
                    && relative >= 0.0
                    && max_relative.is_none_or(|max| relative <= max);
                if !in_range {
                    let range = match max_relative {
                        Some(max) => format!("between 0 and {max}"),
                        None => "0 or more".to_owned(),
                    };
                    return Err(Box::new(
                        format!("{name}.relative must be {range} (got {relative})").into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The listener's settings.
    pub fn server(&self) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            max_connections: self.max_connections,
            frame_max: self.frame_max,
            channel_max: self.channel_max,
            heartbeat: self.heartbeat,
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            ..ServerConfig::default()
        }
    }

    /// The broker's settings.
    pub fn broker(&self) -> BrokerConfig {
        BrokerConfig {
            default_user: self.default_user.clone(),
            default_pass: self.default_pass.clone(),
            loopback_users: self.loopback_users.clone(),
            max_message_size: self.max_message_size,
            queue_limits: QueueLimits {
                ram_bytes: self.queue_ram_bytes,
                ram_messages: self.queue_ram_messages,
                ..QueueLimits::default()
            },
            message_memory: self.message_memory,
            alarms: AlarmConfig {
                memory_high_watermark: match self.vm_memory_high_watermark {
                    Threshold {
                        absolute: Some(bytes),
                        ..
                    } => MemoryWatermark::Absolute(bytes.0),
                    Threshold {
                        relative: Some(fraction),
                        ..
                    } => MemoryWatermark::Relative(fraction),
                    _ => MemoryWatermark::Relative(DEFAULT_MEMORY_HIGH_WATERMARK),
                },
                disk_free_limit: match self.disk_free_limit {
                    Threshold {
                        relative: Some(factor),
                        ..
                    } => DiskFreeLimit::MemRelative(factor),
                    Threshold {
                        absolute: Some(bytes),
                        ..
                    } => DiskFreeLimit::Absolute(bytes.0),
                    _ => DiskFreeLimit::Absolute(DEFAULT_DISK_FREE_LIMIT),
                },
                ..AlarmConfig::default()
            },
            ..BrokerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_take_rabbitmq_units() {
        let parse = |s: &str| ByteSize::parse(s).map(|b| b.0);
        assert_eq!(parse("50000000"), Ok(50_000_000));
        assert_eq!(parse("50MB"), Ok(50_000_000));
        assert_eq!(parse("2GiB"), Ok(2 << 30));
        assert_eq!(parse("512k"), Ok(512 << 10));
        assert_eq!(parse("1kB"), Ok(1000));
        assert!(parse("12 parsecs").is_err());
        assert!(parse("MB").is_err());
        assert!(parse("99999999999TB").is_err());
    }
}
