//! The broker model: virtual hosts, exchanges, queues, consumers and delivery.
//!
//! This crate knows AMQP's *semantics* but not its frames: the server calls it with
//! decoded arguments and gets back results or a [`BrokerError`] carrying the reply code.
//!
//! Data flow of a publish: the server assembles a [`Message`] and calls
//! [`VHost::route`], which walks the exchange graph (`warren-router`) and returns the
//! destination queues; the server calls [`Queue::publish`] on each, which persists
//! persistent messages of durable queues through the store's group-commit loop (returning
//! a ticket the server waits on before confirming) and dispatches to consumers. A
//! dispatched message travels as a [`ConsumerEvent`] to the consumer's connection.
//!
//! # Layout
//! - `broker.rs`: [`Broker`], vhosts, authentication, connection.open checks, recovery.
//! - `access/`: the access registry ([`Access`]): vhosts, users, permissions, topic
//!   permissions, limits, policies, parameters; one durable state changed only by
//!   [`AccessCommand`]s (its `mod.rs` doc has the map).
//! - `definitions.rs`: RabbitMQ definitions JSON ([`Definitions`]): parse, import
//!   ([`Broker::import_definitions`], at boot with `load_definitions`), export
//!   ([`Broker::export_definitions`]).
//! - `connections.rs`: [`Connections`]: open connections, connection and channel limits,
//!   closing a connection from the broker's side.
//! - `alarms.rs`: [`Alarms`], the memory and disk resource alarms and their monitor
//!   thread; connections read its flag on publish and block publishers while it is up.
//! - `vhost.rs`: [`VHost`], registries and the operations on them.
//! - `exchange.rs`: [`Exchange`] and its binding table.
//! - `delayed/`: delayed exchanges (RabbitMQ's `x-delayed-message`, LavinMQ's
//!   `x-delayed-exchange`): held messages in the store, one timer per exchange, routing
//!   when due (its `mod.rs` doc has the map).
//! - `policy/`: policies and operator policies: validation, matching, what they change
//!   ([`Broker::set_policy`], [`Queue::policy_view`]).
//! - `queue/`: [`Queue`]: entries, dispatch, settling, paging, expiry (one file each).
//! - `consumer.rs`: [`Consumer`], credit and the connection sink.
//! - `consumer_args.rs`: [`ConsumerArgs`], basic.consume arguments (`x-priority`).
//! - `message.rs`: [`Message`] and its stored form.
//! - `sender_selected.rs`: the `CC` / `BCC` headers (extra routing keys).
//! - `stats/`: [`Stats`]: message counters per queue, exchange, channel, vhost and
//!   broker, churn, socket counters, and the sampler that keeps their history for rates.
//! - `error.rs`: [`BrokerError`].

pub mod access;
pub mod alarms;
mod arguments;
mod broker;
mod connections;
mod consumer;
mod consumer_args;
pub mod definitions;
pub mod delayed;
mod error;
mod exchange;
mod memory;
mod message;
mod policy;
mod queue;
pub mod sender_selected;
pub mod stats;
mod vhost;

pub use access::{Access, AccessCommand, AccessError, ConnectionAccess};
pub use alarms::{AlarmConfig, AlarmSet, AlarmStatus, Alarms, DiskFreeLimit, MemoryWatermark};
pub use arguments::{
    DEFAULT_DELIVERY_LIMIT, DeadLetterStrategy, DeadLetterTarget, Overflow, QueueArgs, QueueType,
    check_server_named, exchange_argument, with_default_queue_type,
};
pub use broker::{AuthError, Broker, BrokerConfig, OpenError, OpenedConnection};
pub use connections::{
    ChannelInfo, ChannelSlot, CloseRequest, ConnectionDetails, ConnectionHandle, ConnectionInfo,
    Connections, TlsDetails,
};
pub use consumer::{
    ChannelCredit, ConnectionId, ConnectionSink, Consumer, ConsumerEvent, SINK_HIGH_WATER,
};
pub use consumer_args::ConsumerArgs;
pub use definitions::{Definitions, DefinitionsError, ImportSummary};
pub use error::BrokerError;
pub use exchange::{Dest, Exchange, ExchangeSpec};
pub use memory::{MESSAGE_OVERHEAD, MessageMemory};
pub use message::{Message, now_ms};
pub use policy::{PolicyError, PolicyView};
pub use queue::{DeathReason, Enqueued, Entry, Queue, QueueInfo, QueueLimits, QueueSpec, StoreKey};
pub use stats::Stats;
pub use vhost::{DeclaredQueue, QueueDeclare, REPLY_TO, REPLY_TO_PREFIX, VHost, generate_name};
pub use warren_router::{Destination, ExchangeKind};
pub use warren_store::{Durability, Store, StoreOptions, Ticket, TicketStatus};
