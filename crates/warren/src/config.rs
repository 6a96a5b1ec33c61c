//! Configuration: defaults, then an optional TOML file, then `WARREN_*` environment
//! variables, then command-line flags, each layer overriding the one before (figment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use warren_broker::access::PermissionRecord;
use warren_broker::{
    AlarmConfig, BrokerConfig, DiskFreeLimit, MemoryWatermark, QueueLimits,
    alarms::{DEFAULT_DISK_FREE_LIMIT, DEFAULT_MEMORY_HIGH_WATERMARK},
};
use warren_server::{CertLoginFrom, SaslMechanism, ServerConfig, TlsConfig};

/// RabbitMQ's default amqps port, used when TLS is configured without `tls_listen`.
pub const DEFAULT_AMQPS_PORT: u16 = 5671;

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
    /// Management HTTP API listen address [default: 127.0.0.1:15672; env: WARREN_HTTP_LISTEN].
    #[arg(long, value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,
    /// Prometheus metrics listen address [default: 127.0.0.1:15692; env: WARREN_PROMETHEUS_LISTEN].
    #[arg(long, value_name = "ADDR:PORT")]
    pub prometheus_listen: Option<SocketAddr>,
    /// Data directory (RocksDB) [default: ./warren-data; env: WARREN_DATA_DIR].
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// RabbitMQ definitions file (JSON) imported at every start [env: WARREN_LOAD_DEFINITIONS].
    #[arg(long, value_name = "FILE")]
    pub load_definitions: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// A command instead of running the broker.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `warren <command>`: what the binary does instead of running the broker.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Manage a running broker through its management HTTP API, with rabbitmqctl's
    /// commands (`warren ctl list_queues name messages`; `warren ctl --help`).
    Ctl(warren_ctl::CtlCli),
}

/// Every setting, with its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// AMQP listen address (plain, non-TLS).
    pub listen: SocketAddr,
    /// Serve plain AMQP on `listen` (false: amqps only; needs the TLS settings).
    pub plain_listener: bool,
    /// amqps listen address [default when `tls_cert_file` is set: `listen`'s IP, port 5671].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// The server's certificate chain (PEM); setting it turns the amqps listener on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// The server's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// CAs that client certificates must chain to (PEM); needed by `tls_verify_peer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// Ask amqps clients for a certificate and verify it (RabbitMQ's `verify_peer`).
    pub tls_verify_peer: bool,
    /// Refuse amqps clients without a certificate (RabbitMQ's `fail_if_no_peer_cert`).
    pub tls_fail_if_no_peer_cert: bool,
    /// Where SASL EXTERNAL takes the user name from: `common_name` or
    /// `distinguished_name` (RabbitMQ's `ssl_cert_login_from`).
    pub ssl_cert_login_from: CertLoginSource,
    /// SASL mechanisms offered, in order: `PLAIN`, `AMQPLAIN`, `EXTERNAL` (amqps only).
    pub auth_mechanisms: Vec<Mechanism>,
    /// Management HTTP API listen address (RabbitMQ's management API).
    pub http_listen: SocketAddr,
    /// Serve the management HTTP API (false: no HTTP listener at all).
    pub http_listener: bool,
    /// Largest management API request body, in bytes (RabbitMQ's
    /// `management.http.max_body_size`).
    pub http_max_body_size: usize,
    /// Prometheus metrics listen address (`/metrics`, `/metrics/per-object`; RabbitMQ's
    /// `prometheus.tcp.port`, 15692).
    pub prometheus_listen: SocketAddr,
    /// Serve the Prometheus metrics (false: no metrics listener).
    pub prometheus_listener: bool,
    /// Milliseconds between statistics samples, from which the management API computes
    /// rates (RabbitMQ's `collect_statistics_interval`).
    pub collect_statistics_interval: u64,
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
    /// Milliseconds a delivery may stay unacknowledged before its channel is closed with
    /// 406 (RabbitMQ's `consumer_timeout`, 30 minutes by default); 0 disables the check.
    pub consumer_timeout: u64,
    /// The vhost created on a fresh data directory.
    pub default_vhost: String,
    /// The user created on a fresh data directory (with full permissions on the default
    /// vhost). Later changes to these settings do not touch an existing data directory.
    pub default_user: String,
    /// Its password (stored hashed, as RabbitMQ's default SHA-256 scheme).
    pub default_pass: String,
    /// Its tags.
    pub default_user_tags: Vec<String>,
    /// Its configure pattern on the default vhost (RabbitMQ's
    /// `default_permissions.configure`).
    pub default_permissions_configure: String,
    /// Its write pattern on the default vhost.
    pub default_permissions_write: String,
    /// Its read pattern on the default vhost.
    pub default_permissions_read: String,
    /// Users allowed to connect from loopback only.
    pub loopback_users: Vec<String>,
    /// Largest message body accepted, in bytes.
    pub max_message_size: u64,
    /// Bytes of persistent messages a queue keeps in memory before paging new ones out.
    pub queue_ram_bytes: usize,
    /// Messages a queue keeps in memory before paging new ones out.
    pub queue_ram_messages: usize,
    /// Milliseconds between a quorum queue's retries of at-least-once dead letters that no
    /// queue took (RabbitMQ's `dead_letter_worker_publisher_confirm_timeout`, 180000).
    pub dead_letter_worker_publisher_confirm_timeout: u64,
    /// Bytes of messages all queues together keep in memory before paging to disk.
    pub message_memory: usize,
    /// A RabbitMQ definitions file (as `rabbitmqctl export_definitions` writes) imported at
    /// every start: users, vhosts, permissions, limits, policies, parameters, exchanges,
    /// queues, bindings. When set, the default user and vhost are not created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_definitions: Option<PathBuf>,
    /// The memory alarm: `relative` (fraction of total memory) or `absolute` (bytes).
    #[serde(default)]
    pub vm_memory_high_watermark: Threshold,
    /// The disk alarm: `absolute` (bytes) or `relative` (a multiple of total memory).
    #[serde(default)]
    pub disk_free_limit: Threshold,
}

/// `ssl_cert_login_from` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertLoginSource {
    /// The subject's CN.
    CommonName,
    /// The whole subject DN, as RabbitMQ formats it.
    DistinguishedName,
}

/// `auth_mechanisms` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mechanism {
    /// SASL PLAIN.
    Plain,
    /// AMQPLAIN.
    Amqplain,
    /// SASL EXTERNAL (TLS client certificate).
    External,
}

impl From<Mechanism> for SaslMechanism {
    fn from(m: Mechanism) -> Self {
        match m {
            Mechanism::Plain => SaslMechanism::Plain,
            Mechanism::Amqplain => SaslMechanism::Amqplain,
            Mechanism::External => SaslMechanism::External,
        }
    }
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
            plain_listener: server.plain_listener,
            tls_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            tls_verify_peer: false,
            tls_fail_if_no_peer_cert: false,
            ssl_cert_login_from: CertLoginSource::CommonName,
            auth_mechanisms: vec![Mechanism::Plain, Mechanism::Amqplain],
            http_listen: SocketAddr::from(([127, 0, 0, 1], 15672)),
            http_listener: true,
            http_max_body_size: 20_000_000,
            prometheus_listen: SocketAddr::from(([127, 0, 0, 1], 15692)),
            prometheus_listener: true,
            collect_statistics_interval: broker.stats_interval.as_millis() as u64,
            data_dir: PathBuf::from("./warren-data"),
            max_connections: server.max_connections,
            frame_max: server.frame_max,
            channel_max: server.channel_max,
            heartbeat: server.heartbeat,
            handshake_timeout: server.handshake_timeout.as_secs(),
            consumer_timeout: server.consumer_timeout.map_or(0, |t| t.as_millis() as u64),
            default_vhost: broker.default_vhost,
            default_user: broker.default_user,
            default_pass: broker.default_pass,
            default_user_tags: broker.default_user_tags,
            default_permissions_configure: broker.default_permissions.configure,
            default_permissions_write: broker.default_permissions.write,
            default_permissions_read: broker.default_permissions.read,
            loopback_users: broker.loopback_users,
            max_message_size: broker.max_message_size,
            queue_ram_bytes: broker.queue_limits.ram_bytes,
            queue_ram_messages: broker.queue_limits.ram_messages,
            dead_letter_worker_publisher_confirm_timeout: broker
                .queue_limits
                .dead_letter_retry
                .as_millis() as u64,
            message_memory: broker.message_memory,
            load_definitions: None,
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
    http_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prometheus_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_definitions: Option<PathBuf>,
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
                    // WARREN_CTL_* are `warren ctl`'s settings, not the broker's.
                    .ignore(&[
                        "log",
                        "ctl_url",
                        "ctl_username",
                        "ctl_password",
                        "ctl_debug",
                    ])
                    // WARREN_VM_MEMORY_HIGH_WATERMARK__ABSOLUTE=2GB
                    .split("__"),
            )
            .merge(Serialized::defaults(FlagLayer {
                listen: cli.listen,
                http_listen: cli.http_listen,
                prometheus_listen: cli.prometheus_listen,
                data_dir: cli.data_dir.clone(),
                load_definitions: cli.load_definitions.clone(),
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
        if self.collect_statistics_interval < 10 {
            return Err(Box::new(
                format!(
                    "collect_statistics_interval must be at least 10 ms (got {})",
                    self.collect_statistics_interval
                )
                .into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(Box::new(
                "max_connections must be at least 1".to_string().into(),
            ));
        }
        if self.auth_mechanisms.is_empty() {
            return Err(Box::new(
                "auth_mechanisms must name at least one mechanism"
                    .to_string()
                    .into(),
            ));
        }
        let tls_keys = [
            ("tls_listen", self.tls_listen.is_some()),
            ("tls_key_file", self.tls_key_file.is_some()),
            ("tls_ca_file", self.tls_ca_file.is_some()),
            ("tls_verify_peer", self.tls_verify_peer),
            ("tls_fail_if_no_peer_cert", self.tls_fail_if_no_peer_cert),
        ];
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                return Err(Box::new(
                    "tls_cert_file needs tls_key_file".to_string().into(),
                ));
            }
            (None, _) => {
                if let Some((key, _)) = tls_keys.iter().find(|(_, set)| *set) {
                    return Err(Box::new(
                        format!("{key} needs tls_cert_file (the amqps listener is off without it)")
                            .into(),
                    ));
                }
                if !self.plain_listener {
                    return Err(Box::new(
                        "plain_listener = false needs the amqps listener (tls_cert_file, tls_key_file)"
                            .to_string()
                            .into(),
                    ));
                }
            }
            (Some(_), Some(_)) => {}
        }
        if self.queue_ram_messages == 0 {
            return Err(Box::new(
                "queue_ram_messages must be at least 1".to_string().into(),
            ));
        }
        if self.dead_letter_worker_publisher_confirm_timeout == 0 {
            return Err(Box::new(
                "dead_letter_worker_publisher_confirm_timeout must be at least 1 (milliseconds)"
                    .to_string()
                    .into(),
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
            plain_listener: self.plain_listener,
            tls: self.tls(),
            auth_mechanisms: self.auth_mechanisms.iter().map(|&m| m.into()).collect(),
            max_connections: self.max_connections,
            frame_max: self.frame_max,
            channel_max: self.channel_max,
            heartbeat: self.heartbeat,
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            consumer_timeout: (self.consumer_timeout > 0)
                .then(|| Duration::from_millis(self.consumer_timeout)),
            ..ServerConfig::default()
        }
    }

    /// The amqps listener's settings, when `tls_cert_file` and `tls_key_file` are set.
    pub fn tls(&self) -> Option<TlsConfig> {
        let (cert_file, key_file) = (self.tls_cert_file.clone()?, self.tls_key_file.clone()?);
        Some(TlsConfig {
            listen: self
                .tls_listen
                .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), DEFAULT_AMQPS_PORT)),
            cert_file,
            key_file,
            ca_file: self.tls_ca_file.clone(),
            verify_peer: self.tls_verify_peer,
            fail_if_no_peer_cert: self.tls_fail_if_no_peer_cert,
            cert_login_from: match self.ssl_cert_login_from {
                CertLoginSource::CommonName => CertLoginFrom::CommonName,
                CertLoginSource::DistinguishedName => CertLoginFrom::DistinguishedName,
            },
        })
    }

    /// The broker's settings.
    pub fn broker(&self) -> BrokerConfig {
        BrokerConfig {
            default_vhost: self.default_vhost.clone(),
            default_user: self.default_user.clone(),
            default_pass: self.default_pass.clone(),
            default_user_tags: self.default_user_tags.clone(),
            default_permissions: PermissionRecord {
                configure: self.default_permissions_configure.clone(),
                write: self.default_permissions_write.clone(),
                read: self.default_permissions_read.clone(),
            },
            loopback_users: self.loopback_users.clone(),
            max_message_size: self.max_message_size,
            queue_limits: QueueLimits {
                ram_bytes: self.queue_ram_bytes,
                ram_messages: self.queue_ram_messages,
                dead_letter_retry: Duration::from_millis(
                    self.dead_letter_worker_publisher_confirm_timeout,
                ),
                ..QueueLimits::default()
            },
            message_memory: self.message_memory,
            load_definitions: self.load_definitions.clone(),
            stats_interval: std::time::Duration::from_millis(self.collect_statistics_interval),
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
