//! The metric set: RabbitMQ's `rabbitmq_prometheus` names, types and labels, read from
//! the broker at scrape time into a fresh `prometheus-client` registry and encoded.
//!
//! `/metrics` aggregates (no per-object labels): object counts, queue depths summed,
//! channel and connection counters summed over live objects, the `rabbitmq_global_*`
//! message counters, churn, process and node readings, and `rabbitmq_build_info` /
//! `rabbitmq_identity_info`. `/metrics/per-object` has the same families with one series
//! per queue (`vhost`, `queue`), channel (`channel`, its API name) and connection
//! (`channel`, the connection's name, as RabbitMQ labels connection series).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use warren_broker::stats::{Churn, Counter as Msg, MessageCounts};
use warren_broker::{Broker, ChannelInfo, ConnectionInfo};

use crate::process;
use crate::routes::channel_name;

type Labels = Vec<(String, String)>;

/// Builds one scrape's registry.
struct Scrape {
    registry: Registry,
}

impl Scrape {
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let g = Gauge::<f64, AtomicU64>::default();
        g.set(value);
        self.registry.register(name, help, g);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        // prometheus-client appends `_total` to counters.
        self.registry
            .register(name.trim_end_matches("_total"), help, c);
    }

    fn gauges(&mut self, name: &str, help: &str, series: Vec<(Labels, f64)>) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, value) in series {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    fn counters(&mut self, name: &str, help: &str, series: Vec<(Labels, u64)>) {
        let family = Family::<Labels, Counter<u64>>::default();
        for (labels, value) in series {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry
            .register(name.trim_end_matches("_total"), help, family);
    }
}

/// Counters of channels, as `rabbitmq_channel_*_total`.
const CHANNEL_COUNTERS: [(&str, &str, Msg); 11] = [
    (
        "rabbitmq_channel_messages_published_total",
        "Total number of messages published into an exchange on a channel",
        Msg::Publish,
    ),
    (
        "rabbitmq_channel_messages_confirmed_total",
        "Total number of messages published into an exchange and confirmed on the channel",
        Msg::Confirm,
    ),
    (
        "rabbitmq_channel_messages_unroutable_returned_total",
        "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
        Msg::ReturnUnroutable,
    ),
    (
        "rabbitmq_channel_messages_unroutable_dropped_total",
        "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        Msg::DropUnroutable,
    ),
    (
        "rabbitmq_channel_get_ack_total",
        "Total number of messages fetched with basic.get in manual acknowledgement mode",
        Msg::Get,
    ),
    (
        "rabbitmq_channel_get_total",
        "Total number of messages fetched with basic.get in automatic acknowledgement mode",
        Msg::GetNoAck,
    ),
    (
        "rabbitmq_channel_messages_delivered_ack_total",
        "Total number of messages delivered to consumers in manual acknowledgement mode",
        Msg::Deliver,
    ),
    (
        "rabbitmq_channel_messages_delivered_total",
        "Total number of messages delivered to consumers in automatic acknowledgement mode",
        Msg::DeliverNoAck,
    ),
    (
        "rabbitmq_channel_messages_redelivered_total",
        "Total number of messages redelivered to consumers",
        Msg::Redeliver,
    ),
    (
        "rabbitmq_channel_messages_acked_total",
        "Total number of messages acknowledged by consumers",
        Msg::Ack,
    ),
    (
        "rabbitmq_channel_get_empty_total",
        "Total number of times basic.get operations fetched no message",
        Msg::GetEmpty,
    ),
];

/// The broker-wide `rabbitmq_global_messages_*_total` counters, from the totals.
fn global_counters(t: &MessageCounts) -> [(&'static str, &'static str, u64); 14] {
    [
        (
            "rabbitmq_global_messages_received_total",
            "Total number of messages received from publishers",
            t.get(Msg::Publish),
        ),
        (
            "rabbitmq_global_messages_received_confirm_total",
            "Total number of messages received from publishers expecting confirmations",
            t.get(Msg::PublishConfirmMode),
        ),
        (
            "rabbitmq_global_messages_routed_total",
            "Total number of messages routed to queues",
            t.get(Msg::PublishOut),
        ),
        (
            "rabbitmq_global_messages_unroutable_dropped_total",
            "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
            t.get(Msg::DropUnroutable),
        ),
        (
            "rabbitmq_global_messages_unroutable_returned_total",
            "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
            t.get(Msg::ReturnUnroutable),
        ),
        (
            "rabbitmq_global_messages_confirmed_total",
            "Total number of messages confirmed to publishers",
            t.get(Msg::Confirm),
        ),
        (
            "rabbitmq_global_messages_delivered_total",
            "Total number of messages delivered to consumers",
            t.deliver_get(),
        ),
        (
            "rabbitmq_global_messages_delivered_consume_manual_ack_total",
            "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
            t.get(Msg::Deliver),
        ),
        (
            "rabbitmq_global_messages_delivered_consume_auto_ack_total",
            "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
            t.get(Msg::DeliverNoAck),
        ),
        (
            "rabbitmq_global_messages_delivered_get_manual_ack_total",
            "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
            t.get(Msg::Get),
        ),
        (
            "rabbitmq_global_messages_delivered_get_auto_ack_total",
            "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
            t.get(Msg::GetNoAck),
        ),
        (
            "rabbitmq_global_messages_get_empty_total",
            "Total number of times basic.get operations fetched no message",
            t.get(Msg::GetEmpty),
        ),
        (
            "rabbitmq_global_messages_acknowledged_total",
            "Total number of messages acknowledged by consumers",
            t.get(Msg::Ack),
        ),
        (
            "rabbitmq_global_messages_redelivered_total",
            "Total number of messages redelivered to consumers",
            t.get(Msg::Redeliver),
        ),
    ]
}

/// One label pair.
fn label(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

/// Encode the metrics (`per_object`: one series per queue, channel and connection).
pub fn render(broker: &Broker, node: &str, per_object: bool) -> String {
    let mut s = Scrape {
        registry: Registry::default(),
    };
    let readings = process::read(broker);
    let stats = broker.stats();
    let connections = broker.connections().list();
    let channels: Vec<(std::sync::Arc<ConnectionInfo>, std::sync::Arc<ChannelInfo>)> = connections
        .iter()
        .flat_map(|c| {
            c.channel_list()
                .into_iter()
                .map(move |ch| (std::sync::Arc::clone(c), ch))
        })
        .collect();
    let queues: Vec<_> = broker
        .all_vhosts()
        .into_iter()
        .flat_map(|v| v.queues())
        .collect();

    s.gauges(
        "rabbitmq_build_info",
        "Warren version info (RabbitMQ's build info series)",
        vec![(
            vec![
                label("rabbitmq_version", env!("CARGO_PKG_VERSION")),
                label("prometheus_plugin_version", env!("CARGO_PKG_VERSION")),
            ],
            1.0,
        )],
    );
    s.gauges(
        "rabbitmq_identity_info",
        "RabbitMQ node & cluster identity info",
        vec![(
            vec![
                label("rabbitmq_node", node),
                label("rabbitmq_cluster", node),
                label("rabbitmq_cluster_permanent_id", node),
            ],
            1.0,
        )],
    );

    // Object counts.
    s.gauge(
        "rabbitmq_connections",
        "Connections currently open",
        connections.len() as f64,
    );
    s.gauge(
        "rabbitmq_channels",
        "Channels currently open",
        channels.len() as f64,
    );
    s.gauge("rabbitmq_queues", "Queues available", queues.len() as f64);
    let consumers: u64 = queues.iter().map(|q| u64::from(q.consumer_count())).sum();
    s.gauge(
        "rabbitmq_consumers",
        "Consumers currently connected",
        consumers as f64,
    );
    s.gauge(
        "rabbitmq_global_consumers",
        "Current number of consumers",
        consumers as f64,
    );

    // Churn.
    for (name, help, c) in [
        (
            "rabbitmq_connections_opened_total",
            "Total number of connections opened",
            Churn::ConnectionCreated,
        ),
        (
            "rabbitmq_connections_closed_total",
            "Total number of connections closed or terminated",
            Churn::ConnectionClosed,
        ),
        (
            "rabbitmq_channels_opened_total",
            "Total number of channels opened",
            Churn::ChannelCreated,
        ),
        (
            "rabbitmq_channels_closed_total",
            "Total number of channels closed",
            Churn::ChannelClosed,
        ),
        (
            "rabbitmq_queues_declared_total",
            "Total number of queues declared",
            Churn::QueueDeclared,
        ),
        (
            "rabbitmq_queues_created_total",
            "Total number of queues created",
            Churn::QueueCreated,
        ),
        (
            "rabbitmq_queues_deleted_total",
            "Total number of queues deleted",
            Churn::QueueDeleted,
        ),
    ] {
        s.counter(name, help, stats.churn.get(c));
    }

    // Broker-wide message counters.
    let totals = stats.totals.snapshot();
    for (name, help, value) in global_counters(&totals) {
        s.counter(name, help, value);
    }

    // Queues.
    let queue_series = |f: &dyn Fn(&warren_broker::Queue) -> f64| -> Vec<(Labels, f64)> {
        if per_object {
            queues
                .iter()
                .map(|q| {
                    (
                        vec![label("vhost", &q.vhost), label("queue", q.name())],
                        f(q),
                    )
                })
                .collect()
        } else {
            vec![(Vec::new(), queues.iter().map(|q| f(q)).sum())]
        }
    };
    s.gauges(
        "rabbitmq_queue_messages_ready",
        "Messages ready to be delivered to consumers",
        queue_series(&|q| q.lengths().0 as f64),
    );
    s.gauges(
        "rabbitmq_queue_messages_unacked",
        "Messages delivered to consumers but not yet acknowledged",
        queue_series(&|q| q.lengths().1 as f64),
    );
    s.gauges(
        "rabbitmq_queue_messages",
        "Sum of ready and unacknowledged messages - total queue depth",
        // A quorum queue's pending at-least-once dead letters count, as in RabbitMQ 3.10.
        queue_series(&|q| {
            let (r, u, d) = q.depth();
            (r + u + d) as f64
        }),
    );
    s.gauges(
        "rabbitmq_queue_messages_ready_bytes",
        "Size in bytes of ready messages",
        queue_series(&|q| q.ready_bytes() as f64),
    );
    s.gauges(
        "rabbitmq_queue_consumers",
        "Consumers on a queue",
        queue_series(&|q| f64::from(q.consumer_count())),
    );

    // Channels.
    let channel_gauge = |f: &dyn Fn(&ChannelInfo) -> f64| -> Vec<(Labels, f64)> {
        if per_object {
            channels
                .iter()
                .map(|(c, ch)| (vec![label("channel", &channel_name(c, ch))], f(ch)))
                .collect()
        } else {
            vec![(Vec::new(), channels.iter().map(|(_, ch)| f(ch)).sum())]
        }
    };
    let load = |a: &std::sync::atomic::AtomicU32| f64::from(a.load(Ordering::Relaxed));
    s.gauges(
        "rabbitmq_channel_consumers",
        "Consumers on a channel",
        channel_gauge(&|ch| load(&ch.consumers)),
    );
    s.gauges(
        "rabbitmq_channel_messages_unacked",
        "Delivered but not yet acknowledged messages",
        channel_gauge(&|ch| load(&ch.unacked)),
    );
    s.gauges(
        "rabbitmq_channel_messages_unconfirmed",
        "Published but not yet confirmed messages",
        channel_gauge(&|ch| load(&ch.unconfirmed)),
    );
    s.gauges(
        "rabbitmq_channel_messages_uncommitted",
        "Messages received in a transaction but not yet committed",
        channel_gauge(&|ch| load(&ch.uncommitted)),
    );
    s.gauges(
        "rabbitmq_channel_acks_uncommitted",
        "Message acknowledgements in a transaction not yet committed",
        channel_gauge(&|ch| load(&ch.acks_uncommitted)),
    );
    s.gauges(
        "rabbitmq_channel_prefetch",
        "Total limit of unacknowledged messages for all consumers on a channel",
        channel_gauge(&|ch| f64::from(ch.credit.global_prefetch.load(Ordering::Relaxed))),
    );
    s.gauges(
        "rabbitmq_consumer_prefetch",
        "Limit of unacknowledged messages for each consumer",
        channel_gauge(&|ch| load(&ch.prefetch)),
    );
    for (name, help, c) in CHANNEL_COUNTERS {
        let series = if per_object {
            channels
                .iter()
                .map(|(conn, ch)| {
                    (
                        vec![label("channel", &channel_name(conn, ch))],
                        ch.counters.get(c),
                    )
                })
                .collect()
        } else {
            vec![(
                Vec::new(),
                channels.iter().map(|(_, ch)| ch.counters.get(c)).sum(),
            )]
        };
        s.counters(name, help, series);
    }

    // Connections.
    let connection_series = |f: &dyn Fn(&ConnectionInfo) -> u64| -> Vec<(Labels, u64)> {
        if per_object {
            connections
                .iter()
                .map(|c| (vec![label("channel", &c.details.name)], f(c)))
                .collect()
        } else {
            vec![(Vec::new(), connections.iter().map(|c| f(c)).sum())]
        }
    };
    s.counters(
        "rabbitmq_connection_incoming_bytes_total",
        "Total number of bytes received on a connection",
        connection_series(&|c| c.io.snapshot()[0]),
    );
    s.counters(
        "rabbitmq_connection_outgoing_bytes_total",
        "Total number of bytes sent on a connection",
        connection_series(&|c| c.io.snapshot()[1]),
    );
    s.counters(
        "rabbitmq_connection_incoming_packets_total",
        "Total number of packets received on a connection",
        connection_series(&|c| c.io.snapshot()[2]),
    );
    s.counters(
        "rabbitmq_connection_outgoing_packets_total",
        "Total number of packets sent on a connection",
        connection_series(&|c| c.io.snapshot()[3]),
    );
    let connection_channels = connection_series(&|c| c.channels.load(Ordering::Relaxed) as u64)
        .into_iter()
        .map(|(l, v)| (l, v as f64))
        .collect();
    s.gauges(
        "rabbitmq_connection_channels",
        "Channels on a connection",
        connection_channels,
    );

    // Process and node.
    s.gauge(
        "rabbitmq_process_open_fds",
        "Open file descriptors",
        readings.fd_used as f64,
    );
    s.gauge(
        "rabbitmq_process_max_fds",
        "Open file descriptors limit",
        readings.fd_total as f64,
    );
    s.gauge(
        "rabbitmq_process_open_tcp_sockets",
        "Open TCP sockets",
        readings.sockets_used as f64,
    );
    s.gauge(
        "rabbitmq_process_max_tcp_sockets",
        "Open TCP sockets limit",
        readings.sockets_total as f64,
    );
    s.gauge(
        "rabbitmq_process_resident_memory_bytes",
        "Memory used in bytes",
        readings.mem_used as f64,
    );
    s.gauge(
        "rabbitmq_resident_memory_limit_bytes",
        "Memory high watermark in bytes",
        readings.mem_limit as f64,
    );
    s.gauge(
        "rabbitmq_disk_space_available_bytes",
        "Disk space available in bytes",
        readings.disk_free as f64,
    );
    s.gauge(
        "rabbitmq_disk_space_available_limit_bytes",
        "Free disk space low watermark in bytes",
        readings.disk_free_limit as f64,
    );
    s.gauge(
        "rabbitmq_alarms_memory_used_watermark",
        "is 1 if VM memory watermark alarm is in effect",
        f64::from(u8::from(readings.mem_alarm)),
    );
    s.gauge(
        "rabbitmq_alarms_free_disk_space_watermark",
        "is 1 if free disk space watermark alarm is in effect",
        f64::from(u8::from(readings.disk_free_alarm)),
    );
    s.gauge(
        "rabbitmq_erlang_uptime_seconds",
        "Node uptime",
        broker.uptime().as_secs_f64(),
    );

    let mut out = String::new();
    if let Err(error) = encode(&mut out, &s.registry) {
        tracing::error!(%error, "cannot encode the metrics");
    }
    out
}
