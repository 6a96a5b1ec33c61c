//! Virtual hosts: the registries of exchanges and queues, and every operation that
//! touches more than one of them (declare, bind, delete, route).
//!
//! Registries are `DashMap`s keyed by name; values are `Arc`s cloned out before use, so
//! no map guard is ever held while another lock is taken. Durable definitions are written
//! to the store (`meta`) as they change and read back by `Broker::open`.

use std::sync::{Arc, Weak};

use amq_protocol::types::FieldTable;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use warren_router::{Destination, ExchangeGraph, ExchangeKind};
use warren_store::{DefinitionChange, DefinitionKind, Store};

use crate::access::{Access, under_limit};
use crate::consumer::ConnectionId;
use crate::delayed::{self, Held, Hold};
use crate::error::BrokerError;
use crate::exchange::{Dest, Exchange, ExchangeSpec};
use crate::memory::MessageMemory;
use crate::message::Message;
use crate::policy::{ObjectKind, VhostPolicies};
use crate::queue::{Queue, QueueLimits, QueueSpec};
use crate::stats::{Churn, IoCounters, MessageCounters, Stats};

const SEP: char = '\u{1f}';

/// Stored definition of a durable queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueueDef {
    pub name: String,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    pub store_id: u64,
}

/// Stored definition of a binding between durable entities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BindingDef {
    pub source: String,
    pub destination: String,
    pub to_exchange: bool,
    pub routing_key: String,
    pub arguments: FieldTable,
}

/// What `queue.declare` returns.
#[derive(Debug, Clone)]
pub struct DeclaredQueue {
    /// The queue.
    pub queue: Arc<Queue>,
    /// Ready messages.
    pub message_count: u32,
    /// Consumers.
    pub consumer_count: u32,
    /// Whether this call created it.
    pub created: bool,
}

/// Arguments of `queue.declare`.
#[derive(Debug, Clone)]
pub struct QueueDeclare {
    /// Name (already generated if the client sent an empty one).
    pub name: String,
    /// Passive: only check existence.
    pub passive: bool,
    /// Durable.
    pub durable: bool,
    /// Exclusive to the declaring connection.
    pub exclusive: bool,
    /// Auto-delete.
    pub auto_delete: bool,
    /// Arguments.
    pub arguments: FieldTable,
}

/// The pseudo-queue of direct reply-to: consuming from it (no-ack) creates the
/// consumer's reply queue, and a publish whose `reply-to` names it gets the reply queue's
/// name instead (RabbitMQ's "fast reply-to").
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// The prefix of every direct reply-to queue name.
pub const REPLY_TO_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// One virtual host.
#[derive(Debug)]
pub struct VHost {
    /// Name.
    pub name: Arc<str>,
    exchanges: DashMap<Arc<str>, Arc<Exchange>>,
    queues: DashMap<Arc<str>, Arc<Queue>>,
    /// Direct reply-to queues by name (`amq.rabbitmq.reply-to.<random>`): one per reply
    /// consumer, reachable only through the default exchange, never listed or bound.
    reply_queues: DashMap<Arc<str>, Arc<Queue>>,
    store: Store,
    limits: QueueLimits,
    memory: Arc<MessageMemory>,
    /// The registry (this vhost's limits).
    access: Arc<Access>,
    /// Set when the vhost is deleted: its connections are being closed, and a declare or
    /// bind that races with the deletion must not write a definition that outlives it.
    deleted: std::sync::atomic::AtomicBool,
    /// This vhost, for tasks it spawns (queue expiry).
    me: Weak<VHost>,
    /// Message counters of the vhost's channels (added per batch, as the broker's totals).
    pub stats: MessageCounters,
    /// Socket counters of the vhost's connections that have closed (the open ones count
    /// in their own records): a vhost's `recv_oct` / `send_oct` are both summed.
    pub closed_io: IoCounters,
    /// The broker's statistics (queue churn).
    broker_stats: Arc<Stats>,
    /// The vhost's policies compiled, with the registry generation they were read at.
    policies: parking_lot::Mutex<Option<(u64, Arc<VhostPolicies>)>>,
    /// Held while every object is matched again, so the last pass to run reads the newest
    /// policies (two passes never interleave on one queue).
    policy_pass: parking_lot::Mutex<()>,
}

fn def_key(vhost: &str, name: &str) -> String {
    format!("{vhost}{SEP}{name}")
}

/// The store counter of durable delayed exchanges' hold ids.
const HOLD_COUNTER: &str = "delayed-hold";

/// The prefix of the `Internal` definitions recording durable delayed exchanges' hold ids.
pub(crate) const HOLD_PREFIX: &str = "delayed-hold/";

/// The `Internal` definition key of a durable delayed exchange's hold id.
fn hold_key(vhost: &str, name: &str) -> String {
    format!("{HOLD_PREFIX}{}", def_key(vhost, name))
}

impl VHost {
    /// An empty vhost with the predeclared exchanges.
    pub fn new(
        name: &str,
        store: Store,
        limits: QueueLimits,
        memory: Arc<MessageMemory>,
        access: Arc<Access>,
        broker_stats: Arc<Stats>,
    ) -> Arc<Self> {
        let vhost = Arc::new_cyclic(|me| Self {
            name: Arc::from(name),
            exchanges: DashMap::new(),
            queues: DashMap::new(),
            reply_queues: DashMap::new(),
            store,
            limits,
            memory,
            access,
            deleted: std::sync::atomic::AtomicBool::new(false),
            me: me.clone(),
            stats: MessageCounters::default(),
            closed_io: IoCounters::default(),
            broker_stats,
            policies: parking_lot::Mutex::new(None),
            policy_pass: parking_lot::Mutex::new(()),
        });
        // As RabbitMQ's, each vhost has `amq.rabbitmq.trace` (internal, topic): the
        // firehose tracer's exchange, which gets nothing while tracing is off (RabbitMQ's
        // default, and the only mode Warren has), but which clients may bind to.
        for (name, kind, internal) in [
            ("", ExchangeKind::Direct, false),
            ("amq.direct", ExchangeKind::Direct, false),
            ("amq.fanout", ExchangeKind::Fanout, false),
            ("amq.topic", ExchangeKind::Topic, false),
            ("amq.headers", ExchangeKind::Headers, false),
            ("amq.match", ExchangeKind::Headers, false),
            ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
        ] {
            let spec = ExchangeSpec {
                name: name.into(),
                kind: kind.as_str().into(),
                durable: true,
                auto_delete: false,
                internal,
                arguments: FieldTable::default(),
            };
            let exchange = Arc::new(Exchange::new(kind, spec));
            vhost.exchanges.insert(Arc::clone(&exchange.name), exchange);
        }
        vhost
    }

    /// Look up an exchange.
    pub fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| Arc::clone(e.value()))
    }

    /// Look up a queue, checking that `connection` may use it (exclusive queues: 405).
    pub fn queue(&self, name: &str, connection: ConnectionId) -> Result<Arc<Queue>, BrokerError> {
        let queue = self
            .lookup_queue(name)
            .ok_or_else(|| BrokerError::no_queue(&self.name, name))?;
        self.check_exclusive(&queue, connection)?;
        Ok(queue)
    }

    fn check_exclusive(&self, queue: &Queue, connection: ConnectionId) -> Result<(), BrokerError> {
        match queue.spec.exclusive_owner {
            Some(owner) if owner != connection => Err(self.locked(queue)),
            _ => Ok(()),
        }
    }

    fn locked(&self, queue: &Queue) -> BrokerError {
        BrokerError::ResourceLocked(format!(
            "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
            queue.spec.name, self.name
        ))
    }

    /// All exchanges, predeclared ones included (for export).
    pub fn exchanges(&self) -> Vec<Arc<Exchange>> {
        self.exchanges
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect()
    }

    /// All queues (for recovery, connection cleanup, management).
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| Arc::clone(q.value())).collect()
    }

    // ---------------------------------------------------------------- exchanges

    /// exchange.declare.
    pub fn declare_exchange(&self, spec: ExchangeSpec, passive: bool) -> Result<(), BrokerError> {
        self.check_alive()?;
        // RabbitMQ refuses even a passive declare of the default exchange.
        if spec.name.is_empty() {
            return Err(BrokerError::AccessRefused(
                "operation not permitted on the default exchange".into(),
            ));
        }
        if passive {
            return match self.exchange(&spec.name) {
                Some(_) => Ok(()),
                None => Err(BrokerError::no_exchange(&self.name, &spec.name)),
            };
        }
        if !delayed::is_known_type(&spec.kind) {
            return Err(BrokerError::CommandInvalid(format!(
                "unknown exchange type '{}'",
                spec.kind
            )));
        }
        if let Some(existing) = self.exchange(&spec.name) {
            return self.check_exchange_equivalent(&existing, &spec);
        }
        if spec.name.starts_with("amq.") {
            return Err(BrokerError::AccessRefused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                spec.name
            )));
        }
        // The type's own checks (RabbitMQ's `validate`, the delayed plugin's arguments).
        let (kind, delay) = delayed::exchange_kind(&spec.kind, &spec.arguments)?;
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let durable = spec.durable;
        let hold_id = match delay {
            Some(_) if durable => Some(self.store.next_id(HOLD_COUNTER)?),
            _ => None,
        };
        let mut exchange = Exchange::new(kind, spec);
        if let Some(form) = delay {
            exchange = exchange.with_hold(Hold::new(
                Arc::clone(&name),
                self.me.clone(),
                self.store.clone(),
                form,
                hold_id,
            ));
        }
        let exchange = Arc::new(exchange);
        match self.exchanges.entry(Arc::clone(&name)) {
            dashmap::Entry::Occupied(e) => {
                let existing = Arc::clone(e.get());
                drop(e);
                return self.check_exchange_equivalent(&existing, &exchange.spec);
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::clone(&exchange));
            }
        }
        self.apply_exchange_policy(&exchange);
        if durable {
            self.persist_exchange(&exchange.spec, hold_id)?;
        }
        Ok(())
    }

    /// Writes a durable exchange's definition and, for a delayed one, its hold id, in one
    /// synced batch.
    fn persist_exchange(
        &self,
        spec: &ExchangeSpec,
        hold_id: Option<u64>,
    ) -> Result<(), BrokerError> {
        let value = serde_json::to_vec(spec).map_err(|e| BrokerError::Internal(e.to_string()))?;
        let mut changes = vec![DefinitionChange {
            kind: DefinitionKind::Exchange,
            key: def_key(&self.name, &spec.name),
            value: Some(value),
        }];
        if let Some(id) = hold_id {
            changes.push(DefinitionChange {
                kind: DefinitionKind::Internal,
                key: hold_key(&self.name, &spec.name),
                value: Some(id.to_string().into_bytes()),
            });
        }
        self.store.write_definitions(&changes)?;
        Ok(())
    }

    fn check_exchange_equivalent(
        &self,
        existing: &Exchange,
        spec: &ExchangeSpec,
    ) -> Result<(), BrokerError> {
        let e = &existing.spec;
        let what = "exchange";
        if e.kind != spec.kind {
            return Err(BrokerError::inequivalent(
                what, "type", &spec.name, &self.name, &spec.kind, &e.kind,
            ));
        }
        if e.durable != spec.durable {
            return Err(BrokerError::inequivalent(
                what,
                "durable",
                &spec.name,
                &self.name,
                spec.durable,
                e.durable,
            ));
        }
        if e.auto_delete != spec.auto_delete {
            return Err(BrokerError::inequivalent(
                what,
                "auto_delete",
                &spec.name,
                &self.name,
                spec.auto_delete,
                e.auto_delete,
            ));
        }
        if e.internal != spec.internal {
            return Err(BrokerError::inequivalent(
                what,
                "internal",
                &spec.name,
                &self.name,
                spec.internal,
                e.internal,
            ));
        }
        crate::arguments::check_arg_equivalent(
            what,
            &spec.name,
            &self.name,
            "alternate-exchange",
            &e.arguments,
            &spec.arguments,
        )
    }

    /// exchange.delete.
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), BrokerError> {
        if name.is_empty() {
            return Err(BrokerError::AccessRefused(
                "operation not permitted on the default exchange".into(),
            ));
        }
        if name.starts_with("amq.") {
            return Err(BrokerError::AccessRefused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        let Some(exchange) = self.exchange(name) else {
            // RabbitMQ: deleting a missing exchange succeeds.
            return Ok(());
        };
        // As RabbitMQ, only bindings from the exchange count: one that is merely the
        // destination of exchange-to-exchange bindings is unused (and those bindings go).
        if if_unused {
            let used_as_source = !exchange.bindings.read().is_empty();
            if used_as_source {
                return Err(BrokerError::PreconditionFailed(format!(
                    "exchange '{name}' in vhost '{}' in use",
                    self.name
                )));
            }
        }
        self.remove_exchange(&exchange)
    }

    fn remove_exchange(&self, exchange: &Arc<Exchange>) -> Result<(), BrokerError> {
        self.exchanges.remove(&exchange.name);
        let durable = exchange.spec.durable;
        if let Some(hold) = exchange.hold() {
            // Its held messages go with it (the record first: a crash before the range
            // delete is written leaves an orphaned hold, which recovery drops).
            if durable {
                self.store.delete_definition(
                    DefinitionKind::Internal,
                    &hold_key(&self.name, &exchange.name),
                )?;
            }
            hold.drop_all();
        }
        // Bindings from it.
        let bindings: Vec<(Dest, String, FieldTable)> = exchange
            .bindings
            .read()
            .bindings()
            .map(|(d, k, a)| (d.clone(), k.to_owned(), a.clone()))
            .collect();
        if durable {
            for (dest, key, args) in &bindings {
                self.forget_binding(&exchange.name, dest, key, args)?;
            }
            self.store.delete_definition(
                DefinitionKind::Exchange,
                &def_key(&self.name, &exchange.name),
            )?;
        }
        // Bindings to it.
        self.remove_bindings_to(&Destination::Exchange(Arc::clone(&exchange.name)))?;
        Ok(())
    }

    /// Remove every binding to `dest` from every exchange (queue or exchange deleted);
    /// auto-delete exchanges left without bindings go too.
    fn remove_bindings_to(&self, dest: &Dest) -> Result<(), BrokerError> {
        let exchanges: Vec<Arc<Exchange>> = self
            .exchanges
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect();
        for exchange in exchanges {
            let removed: Vec<(String, FieldTable)> = {
                let table = exchange.bindings.read();
                if !table.has_destination(dest) {
                    continue;
                }
                table
                    .bindings_to(dest)
                    .map(|(k, a)| (k.to_owned(), a.clone()))
                    .collect()
            };
            exchange.bindings.write().remove_destination(dest);
            for (key, args) in &removed {
                self.forget_binding(&exchange.name, dest, key, args)?;
            }
            self.maybe_auto_delete(&exchange)?;
        }
        Ok(())
    }

    fn maybe_auto_delete(&self, exchange: &Arc<Exchange>) -> Result<(), BrokerError> {
        if exchange.spec.auto_delete && exchange.bindings.read().is_empty() {
            self.remove_exchange(exchange)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- bindings

    fn binding_key(
        &self,
        source: &str,
        dest: &Dest,
        routing_key: &str,
        args: &FieldTable,
    ) -> String {
        let (kind, name) = match dest {
            Destination::Queue(q) => ('q', q),
            Destination::Exchange(e) => ('e', e),
        };
        let args = serde_json::to_string(args).unwrap_or_default();
        format!(
            "{}{SEP}{source}{SEP}{kind}{SEP}{name}{SEP}{routing_key}{SEP}{args}",
            self.name
        )
    }

    fn is_durable_dest(&self, dest: &Dest) -> bool {
        match dest {
            Destination::Queue(q) => self
                .queues
                .get(q)
                .is_some_and(|q| q.spec.durable && q.spec.exclusive_owner.is_none()),
            Destination::Exchange(e) => self.exchanges.get(e).is_some_and(|e| e.spec.durable),
        }
    }

    fn forget_binding(
        &self,
        source: &str,
        dest: &Dest,
        key: &str,
        args: &FieldTable,
    ) -> Result<(), BrokerError> {
        self.store.delete_definition(
            DefinitionKind::Binding,
            &self.binding_key(source, dest, key, args),
        )?;
        Ok(())
    }

    /// queue.bind / exchange.bind. `connection` is checked against exclusive queues.
    pub fn bind(
        &self,
        source: &str,
        dest: Dest,
        routing_key: &str,
        arguments: &FieldTable,
        connection: ConnectionId,
    ) -> Result<(), BrokerError> {
        self.check_alive()?;
        let (exchange, dest) = self.check_binding(source, dest, Some(connection))?;
        exchange
            .kind
            .validate_binding(arguments)
            .map_err(|e| BrokerError::PreconditionFailed(e.to_string()))?;
        let added = exchange
            .bindings
            .write()
            .bind(dest.clone(), routing_key, arguments);
        if added && exchange.spec.durable && self.is_durable_dest(&dest) {
            let def = BindingDef {
                source: source.to_owned(),
                destination: match &dest {
                    Destination::Queue(q) | Destination::Exchange(q) => q.to_string(),
                },
                to_exchange: matches!(dest, Destination::Exchange(_)),
                routing_key: routing_key.to_owned(),
                arguments: arguments.clone(),
            };
            let value =
                serde_json::to_vec(&def).map_err(|e| BrokerError::Internal(e.to_string()))?;
            self.store.put_definition(
                DefinitionKind::Binding,
                &self.binding_key(source, &dest, routing_key, arguments),
                &value,
            )?;
        }
        Ok(())
    }

    /// queue.unbind / exchange.unbind. Unbinding what was never bound succeeds, as in
    /// RabbitMQ, even when the exchange or the destination does not exist, or the queue is
    /// another connection's exclusive queue; removing an existing binding of such a queue
    /// is refused with 405.
    pub fn unbind(
        &self,
        source: &str,
        dest: Dest,
        routing_key: &str,
        arguments: &FieldTable,
        connection: ConnectionId,
    ) -> Result<(), BrokerError> {
        let (exchange, dest) = match self.check_binding(source, dest, None) {
            Ok(found) => found,
            Err(BrokerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Destination::Queue(queue) = &dest {
            let bound = exchange
                .bindings
                .read()
                .bindings_to(&dest)
                .any(|(key, args)| key == routing_key && args == arguments);
            if bound {
                self.queue(queue, connection)?;
            }
        }
        let removed = exchange
            .bindings
            .write()
            .unbind(&dest, routing_key, arguments);
        if removed {
            if exchange.spec.durable {
                self.forget_binding(source, &dest, routing_key, arguments)?;
            }
            self.maybe_auto_delete(&exchange)?;
        }
        Ok(())
    }

    /// The source exchange and the destination of a binding (404 for a missing one, the
    /// source reported first as RabbitMQ does). With `connection`, a destination queue
    /// must not be another connection's exclusive queue (405).
    fn check_binding(
        &self,
        source: &str,
        dest: Dest,
        connection: Option<ConnectionId>,
    ) -> Result<(Arc<Exchange>, Dest), BrokerError> {
        let dest_is_default = matches!(&dest, Destination::Exchange(e) if e.is_empty());
        if source.is_empty() || dest_is_default {
            return Err(BrokerError::AccessRefused(
                "operation not permitted on the default exchange".into(),
            ));
        }
        let exchange = self
            .exchange(source)
            .ok_or_else(|| BrokerError::no_exchange(&self.name, source))?;
        let dest = match dest {
            Destination::Queue(q) => {
                let queue = match connection {
                    Some(connection) => self.queue(&q, connection)?,
                    None => self
                        .queues
                        .get(q.as_ref())
                        .map(|q| Arc::clone(q.value()))
                        .ok_or_else(|| BrokerError::no_queue(&self.name, &q))?,
                };
                Destination::Queue(Arc::clone(queue.name()))
            }
            Destination::Exchange(e) => {
                let exchange = self
                    .exchange(&e)
                    .ok_or_else(|| BrokerError::no_exchange(&self.name, &e))?;
                Destination::Exchange(Arc::clone(&exchange.name))
            }
        };
        Ok((exchange, dest))
    }

    // ---------------------------------------------------------------- queues

    /// queue.declare.
    pub fn declare_queue(
        &self,
        declare: QueueDeclare,
        connection: ConnectionId,
    ) -> Result<DeclaredQueue, BrokerError> {
        self.check_alive()?;
        if let Some(existing) = self
            .queues
            .get(declare.name.as_str())
            .map(|q| Arc::clone(q.value()))
        {
            self.check_exclusive(&existing, connection)?;
            if !declare.passive {
                self.check_queue_equivalent(&existing, &declare)?;
            }
            existing.touch();
            self.broker_stats.churn.bump(Churn::QueueDeclared);
            return Ok(DeclaredQueue {
                message_count: existing.message_count(),
                consumer_count: existing.consumer_count(),
                queue: existing,
                created: false,
            });
        }
        if declare.passive {
            return Err(BrokerError::no_queue(&self.name, &declare.name));
        }
        if declare.name.starts_with("amq.") && !declare.name.starts_with("amq.gen-") {
            return Err(BrokerError::AccessRefused(format!(
                "queue name '{}' contains reserved prefix 'amq.*'",
                declare.name
            )));
        }
        crate::arguments::validate(&declare.name, &self.name, &declare.arguments)?;
        self.check_queue_limit(&declare.name)?;
        crate::arguments::check_properties(
            &declare.name,
            &self.name,
            &declare.arguments,
            declare.durable && !declare.exclusive,
            declare.exclusive,
            declare.auto_delete,
        )?;
        // As RabbitMQ: an exclusive queue is never durable, whatever the declare says.
        let durable = declare.durable && !declare.exclusive;
        let persistent_def = durable;
        let store_id = if persistent_def {
            self.store.next_id("queue")?
        } else {
            0
        };
        let spec = QueueSpec {
            name: Arc::from(declare.name.as_str()),
            durable,
            exclusive_owner: declare.exclusive.then_some(connection),
            auto_delete: declare.auto_delete,
            arguments: declare.arguments.clone(),
        };
        let queue = Arc::new(Queue::new(
            spec,
            Arc::clone(&self.name),
            store_id,
            self.store.clone(),
            self.limits,
            Arc::clone(&self.memory),
            self.me.clone(),
        ));
        let generation = self.match_new_queue(&queue);
        self.watch_expiry(&queue);
        match self.queues.entry(Arc::clone(queue.name())) {
            dashmap::Entry::Occupied(e) => {
                // Lost a race with another declare of the same name: behave as a redeclare.
                let existing = Arc::clone(e.get());
                drop(e);
                self.check_exclusive(&existing, connection)?;
                self.check_queue_equivalent(&existing, &declare)?;
                self.broker_stats.churn.bump(Churn::QueueDeclared);
                return Ok(DeclaredQueue {
                    message_count: existing.message_count(),
                    consumer_count: existing.consumer_count(),
                    queue: existing,
                    created: false,
                });
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::clone(&queue));
            }
        }
        if self.access.generation() != generation {
            // The policies changed while the queue was being made, maybe before a pass
            // over the vhost could see it: match it again.
            self.apply_queue_policy(&queue);
        }
        if persistent_def {
            let def = QueueDef {
                name: declare.name.clone(),
                auto_delete: declare.auto_delete,
                arguments: declare.arguments.clone(),
                store_id,
            };
            let value =
                serde_json::to_vec(&def).map_err(|e| BrokerError::Internal(e.to_string()))?;
            self.store.put_definition(
                DefinitionKind::Queue,
                &def_key(&self.name, &declare.name),
                &value,
            )?;
        }
        self.broker_stats.churn.bump(Churn::QueueDeclared);
        self.broker_stats.churn.bump(Churn::QueueCreated);
        Ok(DeclaredQueue {
            queue,
            message_count: 0,
            consumer_count: 0,
            created: true,
        })
    }

    /// The vhost's `max-queues` limit, checked before a new queue `name` is made (406 once
    /// reached). `declare_queue` checks it; the server checks it earlier too, where
    /// RabbitMQ does (before the dead-letter exchange's permissions).
    pub fn check_queue_limit(&self, name: &str) -> Result<(), BrokerError> {
        let max_queues = self.access.read(|state| {
            state
                .vhosts
                .get(&*self.name)
                .and_then(|v| v.limits.max_queues)
        });
        under_limit(max_queues, self.queues.len()).map_err(|max| {
            BrokerError::PreconditionFailed(format!(
                "cannot declare queue '{name}': queue limit in vhost '{}' ({max}) is reached",
                self.name
            ))
        })
    }

    /// A queue by name without the exclusivity check (for observers such as the management
    /// API, which may look at another connection's exclusive queue).
    pub fn lookup_queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.get(name).map(|q| Arc::clone(q.value()))
    }

    /// Whether a queue of that name exists (whoever owns it).
    pub fn has_queue(&self, name: &str) -> bool {
        self.queues.contains_key(name)
    }

    fn check_queue_equivalent(
        &self,
        existing: &Queue,
        declare: &QueueDeclare,
    ) -> Result<(), BrokerError> {
        let s = &existing.spec;
        let what = "queue";
        // As RabbitMQ, a differing exclusive flag is checked first and is a 405.
        if s.exclusive_owner.is_some() != declare.exclusive {
            return Err(self.locked(existing));
        }
        let durable = declare.durable && !declare.exclusive;
        if s.durable != durable {
            return Err(BrokerError::inequivalent(
                what,
                "durable",
                &declare.name,
                &self.name,
                durable,
                s.durable,
            ));
        }
        if s.auto_delete != declare.auto_delete {
            return Err(BrokerError::inequivalent(
                what,
                "auto_delete",
                &declare.name,
                &self.name,
                declare.auto_delete,
                s.auto_delete,
            ));
        }
        crate::arguments::check_equivalent(
            &declare.name,
            &self.name,
            &s.arguments,
            &declare.arguments,
        )?;
        Ok(())
    }

    /// queue.delete; returns the ready messages dropped.
    pub fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        connection: ConnectionId,
    ) -> Result<u32, BrokerError> {
        let queue = match self.queue(name, connection) {
            Ok(q) => q,
            // RabbitMQ: deleting a missing queue succeeds with a count of 0.
            Err(BrokerError::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e),
        };
        queue.check_delete(if_unused, if_empty)?;
        self.remove_queue(&queue)
    }

    /// Refuse work on a deleted vhost (its connections are about to get 320).
    fn check_alive(&self) -> Result<(), BrokerError> {
        if self.deleted.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BrokerError::NotFound(format!(
                "vhost '{}' is deleted",
                self.name
            )));
        }
        Ok(())
    }

    /// The vhost is being deleted: delete every queue (with its stored messages and
    /// definition), every exchange and every binding. Consumers get basic.cancel where they
    /// asked for it, as for any deleted queue.
    pub(crate) fn destroy(&self) -> Result<(), BrokerError> {
        self.deleted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let reply: Vec<Arc<Queue>> = self
            .reply_queues
            .iter()
            .map(|q| Arc::clone(q.value()))
            .collect();
        for queue in reply.iter().chain(self.queues().iter()) {
            self.remove_queue(queue)?;
        }
        let exchanges: Vec<Arc<Exchange>> = self
            .exchanges
            .iter()
            .map(|x| Arc::clone(x.value()))
            .collect();
        for exchange in exchanges {
            self.remove_exchange(&exchange)?;
        }
        Ok(())
    }

    /// Remove a queue unconditionally (delete, exclusive owner gone, auto-delete).
    pub fn remove_queue(&self, queue: &Arc<Queue>) -> Result<u32, BrokerError> {
        if queue.name().starts_with(REPLY_TO_PREFIX) {
            self.reply_queues
                .remove_if(queue.name(), |_, q| Arc::ptr_eq(q, queue));
        }
        let removed = self
            .queues
            .remove_if(queue.name(), |_, q| Arc::ptr_eq(q, queue))
            .is_some();
        let result = queue.delete();
        if removed {
            self.broker_stats.churn.bump(Churn::QueueDeleted);
            self.remove_bindings_to(&Destination::Queue(Arc::clone(queue.name())))?;
            if queue.store_id != 0 {
                self.store
                    .delete_definition(DefinitionKind::Queue, &def_key(&self.name, queue.name()))?;
            }
        }
        Ok(result)
    }

    // ---------------------------------------------------------------- routing

    /// Route a publish: the queues it reaches, each once. `headers` are the message's
    /// (for headers exchanges); `extra_keys` are the routing keys of its `CC` / `BCC`
    /// headers (see `sender_selected`), routed like the routing key. Fails with 404 for a
    /// missing exchange and 403 for an internal one.
    ///
    /// A delayed exchange (`crate::delayed`) holds a message with a positive `x-delay`
    /// instead: `Some(Held)` comes back and `out` is left as it was. A plugin-form delayed
    /// exchange reached through an exchange-to-exchange binding holds it too
    /// (`delayed::PublishWalk`): then `Some(Held)` comes back with whatever queues the
    /// rest of the walk reached in `out`.
    pub fn route(
        &self,
        exchange: &str,
        message: &Message,
        headers: Option<&FieldTable>,
        extra_keys: &[String],
        out: &mut Vec<Arc<Queue>>,
    ) -> Result<Option<Held>, BrokerError> {
        let start = out.len();
        let mut held = None;
        if exchange.is_empty() {
            // The default exchange: one lookup, straight to the queue.
            for key in std::iter::once(message.routing_key.as_str())
                .chain(extra_keys.iter().map(String::as_str))
            {
                if let Some(q) = self.default_route(key) {
                    out.push(q);
                }
            }
        } else {
            let source = self.publish_target(exchange)?;
            if let Some(hold) = source.hold()
                && let Some(delay) = delayed::delay_of(headers, hold.form())
            {
                return Ok(Some(hold.hold(message, extra_keys, delay)));
            }
            let walk = delayed::PublishWalk::new(self, message, extra_keys);
            let mut names: Vec<Arc<str>> = Vec::new();
            for key in std::iter::once(message.routing_key.as_str())
                .chain(extra_keys.iter().map(String::as_str))
            {
                warren_router::route(&walk, &source.name, key, headers, &mut names);
            }
            out.extend(
                names
                    .iter()
                    .filter_map(|n| self.queues.get(n).map(|q| Arc::clone(q.value()))),
            );
            held = walk.into_held();
        }
        // Several routing keys can reach one queue: it gets the message once.
        if !extra_keys.is_empty() {
            let mut i = start;
            while i < out.len() {
                if out[start..i].iter().any(|q| Arc::ptr_eq(q, &out[i])) {
                    out.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        Ok(held)
    }

    /// Route a dead-lettered message from `exchange` with `keys` (internal exchanges are
    /// fine: no client publishes here). Fails with 404 when the exchange does not exist.
    ///
    /// `holds`: a dead letter's route, which plugin-form delayed exchanges on the way (the
    /// dead-letter exchange itself or one reached through exchange-to-exchange bindings)
    /// take when its `x-delay` asks (`delayed::PublishWalk::dead_letter`): they are pushed
    /// there, to be written with the move. `None`: a held message routed when due, which
    /// nothing delays again.
    pub(crate) fn route_dead_letter(
        &self,
        exchange: &str,
        keys: &[&str],
        headers: Option<&FieldTable>,
        out: &mut Vec<Arc<Queue>>,
        holds: Option<&mut Vec<delayed::DeferredHold>>,
    ) -> Result<(), BrokerError> {
        let mut names: Vec<Arc<str>> = Vec::new();
        if exchange.is_empty() {
            for key in keys {
                if let Some(q) = self.default_route(key)
                    && !out.iter().any(|o| Arc::ptr_eq(o, &q))
                {
                    out.push(q);
                }
            }
            return Ok(());
        }
        let source = self
            .exchange(exchange)
            .ok_or_else(|| BrokerError::no_exchange(&self.name, exchange))?;
        match holds {
            None => {
                for key in keys {
                    warren_router::route(self, &source.name, key, headers, &mut names);
                }
            }
            Some(holds) => {
                let walk = delayed::PublishWalk::dead_letter(self);
                for key in keys {
                    warren_router::route(&walk, &source.name, key, headers, &mut names);
                }
                holds.extend(walk.into_deferred());
            }
        }
        for name in names {
            if let Some(q) = self.queues.get(&name).map(|q| Arc::clone(q.value()))
                && !out.iter().any(|o| Arc::ptr_eq(o, &q))
            {
                out.push(q);
            }
        }
        Ok(())
    }

    /// The exchange a publish names, if a client may publish to it: 404 when it does not
    /// exist, 403 when it is internal. (Not for the default exchange `""`.)
    pub fn publish_target(&self, exchange: &str) -> Result<Arc<Exchange>, BrokerError> {
        let source = self
            .exchanges
            .get(exchange)
            .map(|e| Arc::clone(e.value()))
            .ok_or_else(|| BrokerError::no_exchange(&self.name, exchange))?;
        if source.spec.internal {
            return Err(BrokerError::AccessRefused(format!(
                "cannot publish to internal exchange '{exchange}' in vhost '{}'",
                self.name
            )));
        }
        Ok(source)
    }

    /// The queue the default exchange routes `key` to: the queue of that name, or a
    /// direct reply-to queue.
    fn default_route(&self, key: &str) -> Option<Arc<Queue>> {
        if let Some(q) = self.queues.get(key) {
            return Some(Arc::clone(q.value()));
        }
        if key.starts_with(REPLY_TO_PREFIX) {
            return self.reply_queues.get(key).map(|q| Arc::clone(q.value()));
        }
        None
    }

    // ------------------------------------------------------------ direct reply-to

    /// Direct reply-to: a new queue for a consumer of [`REPLY_TO`] on `connection`, named
    /// `amq.rabbitmq.reply-to.<random>`. It is exclusive to the connection and auto-delete
    /// (it goes with its consumer), is not in the queue registry (no declare, bind or get
    /// sees it), and the default exchange routes its name to it.
    pub fn create_reply_queue(&self, connection: ConnectionId) -> Arc<Queue> {
        let spec = QueueSpec {
            name: Arc::from(generate_name(REPLY_TO_PREFIX)),
            durable: false,
            exclusive_owner: Some(connection),
            auto_delete: true,
            arguments: FieldTable::default(),
        };
        let queue = Arc::new(Queue::new(
            spec,
            Arc::clone(&self.name),
            0,
            self.store.clone(),
            self.limits,
            Arc::clone(&self.memory),
            self.me.clone(),
        ));
        self.reply_queues
            .insert(Arc::clone(queue.name()), Arc::clone(&queue));
        queue
    }

    /// The direct reply-to queue of that name, if its consumer is still there.
    pub fn reply_queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.reply_queues.get(name).map(|q| Arc::clone(q.value()))
    }

    /// Restore a stored exchange; a delayed one with the hold id recorded for it
    /// (`hold_ids`, by exchange name), or a new one. Returns the hold of a delayed exchange
    /// (its held messages are recovered by the caller).
    pub(crate) fn restore_exchange(
        &self,
        spec: ExchangeSpec,
        hold_ids: &std::collections::HashMap<String, u64>,
    ) -> Result<Option<Arc<Hold>>, BrokerError> {
        let Ok((kind, delay)) = delayed::exchange_kind(&spec.kind, &spec.arguments) else {
            tracing::warn!(vhost = %self.name, exchange = %spec.name, kind = %spec.kind, "skipping a stored exchange of an unknown type");
            return Ok(None);
        };
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let mut exchange = Exchange::new(kind, spec);
        let mut restored = None;
        if let Some(form) = delay {
            let hold_id = match hold_ids.get(name.as_ref()) {
                Some(id) => *id,
                None => {
                    // Declared before Warren knew delayed exchanges (an `x-delayed-exchange`
                    // argument it ignored then): give it a hold now.
                    let id = self.store.next_id(HOLD_COUNTER)?;
                    self.persist_exchange(&exchange.spec, Some(id))?;
                    id
                }
            };
            let hold = Hold::new(
                Arc::clone(&name),
                self.me.clone(),
                self.store.clone(),
                form,
                Some(hold_id),
            );
            restored = Some(Arc::clone(&hold));
            exchange = exchange.with_hold(hold);
        }
        let exchange = Arc::new(exchange);
        self.apply_exchange_policy(&exchange);
        self.exchanges.insert(Arc::clone(&exchange.name), exchange);
        Ok(restored)
    }

    /// Restore a stored queue (its messages are recovered by the caller).
    pub(crate) fn restore_queue(&self, def: QueueDef) -> Arc<Queue> {
        let spec = QueueSpec {
            name: Arc::from(def.name.as_str()),
            durable: true,
            exclusive_owner: None,
            auto_delete: def.auto_delete,
            arguments: def.arguments,
        };
        let queue = Arc::new(Queue::new(
            spec,
            Arc::clone(&self.name),
            def.store_id,
            self.store.clone(),
            self.limits,
            Arc::clone(&self.memory),
            self.me.clone(),
        ));
        self.match_new_queue(&queue);
        self.queues
            .insert(Arc::clone(queue.name()), Arc::clone(&queue));
        self.watch_expiry(&queue);
        queue
    }

    // ---------------------------------------------------------------- policies

    /// The vhost's policies, compiled (again only after the registry changed).
    fn current_policies(&self) -> (u64, Arc<VhostPolicies>) {
        let generation = self.access.generation();
        let mut cache = self.policies.lock();
        if let Some((at, compiled)) = cache.as_ref()
            && *at == generation
        {
            return (generation, Arc::clone(compiled));
        }
        let compiled = Arc::new(
            self.access
                .read(|state| VhostPolicies::compile(state, &self.name)),
        );
        *cache = Some((generation, Arc::clone(&compiled)));
        (generation, compiled)
    }

    /// Match a queue being made against the current policies (its `expires` watcher is
    /// started by the caller); returns the registry generation used.
    fn match_new_queue(&self, queue: &Arc<Queue>) -> u64 {
        let (generation, policies) = self.current_policies();
        queue.apply_policy(policies.lookup(ObjectKind::Queue, queue.name()));
        generation
    }

    /// Match a live queue against the current policies and apply the result, starting a
    /// new `expires` watcher if its expiry changed.
    fn apply_queue_policy(&self, queue: &Arc<Queue>) {
        let (_, policies) = self.current_policies();
        if queue.apply_policy(policies.lookup(ObjectKind::Queue, queue.name())) {
            self.watch_expiry(queue);
        }
    }

    fn apply_exchange_policy(&self, exchange: &Exchange) {
        let (_, policies) = self.current_policies();
        exchange.apply_policy(policies.lookup(ObjectKind::Exchange, &exchange.name));
    }

    /// Match every exchange and queue against the vhost's policies again and apply the
    /// results (see `crate::policy`). Direct reply-to queues are not real queues in
    /// RabbitMQ either and are left alone.
    pub fn apply_policies(&self) {
        let _pass = self.policy_pass.lock();
        let (_, policies) = self.current_policies();
        for exchange in self.exchanges() {
            exchange.apply_policy(policies.lookup(ObjectKind::Exchange, &exchange.name));
        }
        for queue in self.queues() {
            if queue.apply_policy(policies.lookup(ObjectKind::Queue, queue.name())) {
                self.watch_expiry(&queue);
            }
        }
    }

    /// `x-expires`: a task that deletes the queue once it has gone unused (no consumers,
    /// no declare, no get) for its expiry time, as RabbitMQ does.
    fn watch_expiry(&self, queue: &Arc<Queue>) {
        let Some((expires, epoch)) = queue.expires() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(queue = %queue.name(), "no runtime to run x-expires; the queue will not expire");
            return;
        };
        let (vhost, weak) = (self.me.clone(), Arc::downgrade(queue));
        runtime.spawn(async move {
            let mut wait = expires;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(wait.max(1))).await;
                let (Some(vhost), Some(queue)) = (vhost.upgrade(), weak.upgrade()) else {
                    return;
                };
                match queue.expires_in(crate::message::now_ms(), epoch) {
                    None => return,
                    Some(0) => {
                        tracing::info!(queue = %queue.name(), vhost = %vhost.name, "queue expired (x-expires)");
                        if let Err(e) = vhost.remove_queue(&queue) {
                            tracing::error!(queue = %queue.name(), error = %e, "cannot delete expired queue");
                        }
                        return;
                    }
                    Some(left) => wait = left,
                }
            }
        });
    }

    /// Restore a stored binding.
    pub(crate) fn restore_binding(&self, def: BindingDef) {
        let Some(exchange) = self.exchange(&def.source) else {
            return;
        };
        let dest = if def.to_exchange {
            match self.exchange(&def.destination) {
                Some(e) => Destination::Exchange(Arc::clone(&e.name)),
                None => return,
            }
        } else {
            match self.queues.get(def.destination.as_str()) {
                Some(q) => Destination::Queue(Arc::clone(q.name())),
                None => return,
            }
        };
        exchange
            .bindings
            .write()
            .bind(dest, &def.routing_key, &def.arguments);
    }

    /// Generate a server-named queue name (`amq.gen-` + 22 url-safe characters).
    pub fn generate_queue_name() -> String {
        generate_name("amq.gen-")
    }
}

impl ExchangeGraph for VHost {
    type Queue = Arc<str>;
    type Exchange = Arc<str>;

    fn route_from(
        &self,
        exchange: &Arc<str>,
        routing_key: &str,
        headers: Option<&FieldTable>,
        queues: &mut Vec<Arc<str>>,
        exchanges: &mut Vec<Arc<str>>,
    ) -> bool {
        self.route_through(exchange, routing_key, headers, queues, exchanges, |_| false)
    }

    fn alternate(&self, exchange: &Arc<str>) -> Option<Arc<str>> {
        self.alternate_of(exchange)
    }
}

impl VHost {
    /// The body of [`ExchangeGraph::route_from`]: routes through the one exchange
    /// `exchange`. `intercept` sees the exchange first; when it returns `true` the exchange
    /// took the message itself (a delayed exchange holding it) and matches nothing.
    #[inline]
    pub(crate) fn route_through(
        &self,
        exchange: &Arc<str>,
        routing_key: &str,
        headers: Option<&FieldTable>,
        queues: &mut Vec<Arc<str>>,
        exchanges: &mut Vec<Arc<str>>,
        intercept: impl FnOnce(&Exchange) -> bool,
    ) -> bool {
        if exchange.is_empty() {
            if let Some(q) = self.queues.get(routing_key) {
                queues.push(Arc::clone(q.key()));
            }
            return true;
        }
        let Some(e) = self
            .exchanges
            .get(exchange.as_ref())
            .map(|e| Arc::clone(e.value()))
        else {
            return false;
        };
        if intercept(&e) {
            return true;
        }
        e.bindings
            .read()
            .route_split(routing_key, headers, queues, exchanges);
        true
    }

    /// The alternate exchange in effect for `exchange`, if it exists.
    pub(crate) fn alternate_of(&self, exchange: &str) -> Option<Arc<str>> {
        self.exchanges.get(exchange).and_then(|e| e.alternate())
    }
}

/// `prefix` followed by 22 random url-safe characters, as RabbitMQ names server-named
/// queues (`amq.gen-`) and consumer tags (`amq.ctag-`).
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let mut name = String::with_capacity(prefix.len() + 22);
    name.push_str(prefix);
    name.extend((0..22).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char));
    name
}
