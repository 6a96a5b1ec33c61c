//! The Prometheus endpoint: scraped over HTTP and read with a text-format parser, it has
//! every series the RabbitMQ-Overview Grafana dashboard (rabbitmq_prometheus 3.10.8)
//! queries, with the right types, and values that follow the broker.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use tokio::sync::watch;
use warren_integration::TestBroker;

/// Every metric the RabbitMQ-Overview dashboard's queries name (its `expr`s), as of
/// RabbitMQ 3.10.8's deps/rabbitmq_prometheus/docker/grafana/dashboards.
const DASHBOARD_SERIES: &[&str] = &[
    "rabbitmq_build_info",
    "rabbitmq_channel_consumers",
    "rabbitmq_channels",
    "rabbitmq_channels_closed_total",
    "rabbitmq_channels_opened_total",
    "rabbitmq_connections",
    "rabbitmq_connections_closed_total",
    "rabbitmq_connections_opened_total",
    "rabbitmq_consumers",
    "rabbitmq_disk_space_available_bytes",
    "rabbitmq_global_messages_acknowledged_total",
    "rabbitmq_global_messages_confirmed_total",
    "rabbitmq_global_messages_delivered_consume_auto_ack_total",
    "rabbitmq_global_messages_delivered_consume_manual_ack_total",
    "rabbitmq_global_messages_delivered_get_auto_ack_total",
    "rabbitmq_global_messages_delivered_get_manual_ack_total",
    "rabbitmq_global_messages_get_empty_total",
    "rabbitmq_global_messages_received_confirm_total",
    "rabbitmq_global_messages_received_total",
    "rabbitmq_global_messages_redelivered_total",
    "rabbitmq_global_messages_routed_total",
    "rabbitmq_global_messages_unroutable_dropped_total",
    "rabbitmq_global_messages_unroutable_returned_total",
    "rabbitmq_identity_info",
    "rabbitmq_process_max_fds",
    "rabbitmq_process_max_tcp_sockets",
    "rabbitmq_process_open_fds",
    "rabbitmq_process_open_tcp_sockets",
    "rabbitmq_process_resident_memory_bytes",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queues",
    "rabbitmq_queues_created_total",
    "rabbitmq_queues_declared_total",
    "rabbitmq_queues_deleted_total",
    "rabbitmq_resident_memory_limit_bytes",
];

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    labels: HashMap<String, String>,
    value: f64,
}

/// A parsed scrape: samples by series name, and each family's `# TYPE`.
#[derive(Debug, Default)]
struct Scrape {
    samples: HashMap<String, Vec<Sample>>,
    types: HashMap<String, String>,
}

impl Scrape {
    /// The text format: `# TYPE name type`, `# HELP ...`, `# EOF`, and sample lines
    /// `name{label="value",...} value`. Panics on a line that is none of these.
    fn parse(text: &str) -> Scrape {
        let mut out = Scrape::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                out.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (series, HashMap::new()),
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line}"
            );
            out.samples
                .entry(name.to_owned())
                .or_default()
                .push(Sample { labels, value });
        }
        out
    }

    fn value(&self, name: &str) -> f64 {
        let s = self
            .samples
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(s.len(), 1, "{name} is aggregated: one series");
        s[0].value
    }
}

fn parse_labels(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_owned(), value);
        rest = after[end..].trim_start_matches(',');
    }
    out
}

async fn scrape(addr: std::net::SocketAddr, path: &str) -> Scrape {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    Scrape::parse(&r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_every_series_of_the_overview_dashboard_and_follow_the_broker() {
    let broker = TestBroker::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(warren_http::prometheus::serve(
        listener,
        Arc::clone(broker.broker()),
        "warren@test",
        stop_rx,
    ));

    let conn = warren_integration::connect(&broker.url()).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "metered".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for _ in 0..5 {
        ch.basic_publish(
            "".into(),
            "metered".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let got = ch
        .basic_get("metered".into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .unwrap();
    got.ack(BasicAckOptions::default()).await.unwrap();

    // The counters reach the scrape once the connection has flushed its batch.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = scrape(addr, "/metrics").await;
        if m.value("rabbitmq_global_messages_acknowledged_total") == 1.0 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "ack never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for name in DASHBOARD_SERIES {
        assert!(m.samples.contains_key(*name), "missing {name}");
    }
    for (name, kind) in &m.types {
        let counter = m.samples.contains_key(&format!("{name}_total"));
        assert_eq!(kind == "counter", counter, "{name} is a {kind}");
    }
    assert_eq!(m.value("rabbitmq_global_messages_received_total"), 5.0);
    assert_eq!(
        m.value("rabbitmq_global_messages_received_confirm_total"),
        5.0
    );
    assert_eq!(m.value("rabbitmq_global_messages_routed_total"), 5.0);
    assert_eq!(m.value("rabbitmq_global_messages_confirmed_total"), 5.0);
    assert_eq!(
        m.value("rabbitmq_global_messages_delivered_get_manual_ack_total"),
        1.0
    );
    assert_eq!(m.value("rabbitmq_queue_messages_ready"), 4.0);
    assert_eq!(m.value("rabbitmq_queues"), 1.0);
    assert_eq!(m.value("rabbitmq_connections"), 1.0);
    assert_eq!(m.value("rabbitmq_channels"), 1.0);
    assert_eq!(m.value("rabbitmq_queues_created_total"), 1.0);
    assert!(m.value("rabbitmq_process_open_fds") > 0.0);
    assert!(m.value("rabbitmq_process_resident_memory_bytes") > 0.0);
    let identity = &m.samples["rabbitmq_identity_info"][0];
    assert_eq!(identity.labels["rabbitmq_node"], "warren@test");
    assert!(identity.labels.contains_key("rabbitmq_cluster"));

    let per = scrape(addr, "/metrics/per-object").await;
    let ready = per.samples["rabbitmq_queue_messages_ready"]
        .iter()
        .find(|s| s.labels.get("queue").map(String::as_str) == Some("metered"))
        .expect("a series for the queue");
    assert_eq!(ready.labels["vhost"], "/");
    assert_eq!(ready.value, 4.0);
    let published = &per.samples["rabbitmq_channel_messages_published_total"];
    assert_eq!(published.len(), 1);
    assert!(published[0].labels["channel"].ends_with(" (1)"));
    assert_eq!(published[0].value, 5.0);

    stop_tx.send_replace(true);
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_metrics_on_its_prometheus_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = warren_integration::BinaryBroker::spawn(&tmp.path().join("data"));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", broker.prometheus_port)
        .parse()
        .unwrap();
    let conn = warren_integration::connect(&broker.url()).await;
    let m = scrape(addr, "/metrics").await;
    assert_eq!(m.value("rabbitmq_connections"), 1.0);
    let identity = &m.samples["rabbitmq_identity_info"][0];
    assert!(identity.labels["rabbitmq_node"].starts_with("warren@"));
    conn.close(200, "bye".into()).await.unwrap();
}
