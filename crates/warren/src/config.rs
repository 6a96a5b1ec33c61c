//! Configuration: defaults, then an optional TOML file, then `WARREN_*` environment
//! variables, then command-line flags, each layer overriding the one before (figment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use warren_broker::{BrokerConfig, QueueLimits};
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
    /// RabbitMQ definitions file (JSON) imported at every start [env: WARREN_LOAD_DEFINITIONS].
    #[arg(long, value_name = "FILE")]
    pub load_definitions: Option<PathBuf>,
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
    /// A RabbitMQ definitions file (as `rabbitmqctl export_definitions` writes) imported at
    /// every start: users, vhosts, permissions, limits, policies, parameters, exchanges,
    /// queues, bindings. When set, the default user and vhost are not created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_definitions: Option<PathBuf>,
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
            load_definitions: None,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    load_definitions: Option<PathBuf>,
}

impl Config {
    /// Build the layered configuration.
    pub fn load(cli: &Cli) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
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
            .merge(Env::prefixed("WARREN_").ignore(&["log", "http_listen"]))
            .merge(Serialized::defaults(FlagLayer {
                listen: cli.listen,
                data_dir: cli.data_dir.clone(),
                load_definitions: cli.load_definitions.clone(),
            }));
        let config: Config = figment.extract()?;
        config.validate()?;
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
            load_definitions: self.load_definitions.clone(),
            ..BrokerConfig::default()
        }
    }
}
