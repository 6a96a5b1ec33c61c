//! warren-perf against a real in-process Warren over TCP: each mode runs end to end,
//! counts every message once and reports no error.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use serde_json::Value;
use warren_integration::TestBroker;
use warren_perf::Config;

fn config(url: &str, args: &[&str]) -> Config {
    let mut argv = vec!["warren-perf", "--uri", url, "--quiet"];
    argv.extend_from_slice(args);
    Config::parse_from(argv)
}

fn run(cfg: Config) -> Value {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(warren_perf::run(cfg)).unwrap()
}

fn assert_clean(report: &Value) {
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "report: {report:#}"
    );
}

#[test]
fn time_mode_with_confirms_and_multi_ack_consumes_and_measures_latency() {
    let broker = TestBroker::start();
    let report = run(config(
        &broker.url(),
        &[
            "--time",
            "1",
            "--warmup",
            "0.5",
            "--confirm",
            "100",
            "--qos",
            "200",
            "--multi-ack",
            "10",
            "--persistent",
            "--durable",
            "--size",
            "64",
        ],
    ));
    assert_clean(&report);
    assert!(report["consumed"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["confirmed"].as_u64().unwrap() > 0, "{report:#}");
    assert!(
        report["latency"]["count"].as_u64().unwrap() > 0,
        "{report:#}"
    );
}

#[test]
fn backlog_mode_publishes_confirms_and_drains_exactly_n_messages() {
    let broker = TestBroker::start();
    let report = run(config(
        &broker.url(),
        &[
            "--backlog",
            "3000",
            "--producers",
            "2",
            "--durable",
            "--persistent",
            "--confirm",
            "500",
            "--qos",
            "500",
            "--multi-ack",
            "50",
            "--size",
            "1024",
        ],
    ));
    assert_clean(&report);
    assert_eq!(report["confirmed"], 3000, "{report:#}");
    assert_eq!(report["depth_after_publish"], 3000, "{report:#}");
    assert_eq!(report["consumed"], 3000, "{report:#}");
}

#[test]
fn fanout_delivers_every_publish_to_every_queue() {
    let broker = TestBroker::start();
    let report = run(config(
        &broker.url(),
        &[
            "--backlog",
            "500",
            "--fanout",
            "--queues",
            "4",
            "--consumers",
            "4",
            "--confirm",
            "100",
            "--auto-ack",
        ],
    ));
    assert_clean(&report);
    assert_eq!(report["depth_after_publish"], 2000, "{report:#}");
    assert_eq!(report["consumed"], 2000, "{report:#}");
}

#[test]
fn topic_routing_and_spread_connections_with_max_lag_run_clean() {
    let broker = TestBroker::start();
    let report = run(config(
        &broker.url(),
        &[
            "--time",
            "1",
            "--warmup",
            "0.3",
            "--topic",
            "--queues",
            "4",
            "--producers",
            "4",
            "--consumers",
            "4",
            "--producer-connections",
            "2",
            "--consumer-connections",
            "2",
            "--auto-ack",
            "--rate",
            "500",
        ],
    ));
    assert_clean(&report);
    assert!(report["consumed"].as_u64().unwrap() > 0, "{report:#}");
    let report = run(config(
        &broker.url(),
        &[
            "--time",
            "1",
            "--warmup",
            "0.3",
            "--queues",
            "6",
            "--producers",
            "6",
            "--consumers",
            "6",
            "--producer-connections",
            "2",
            "--consumer-connections",
            "3",
            "--auto-ack",
            "--max-lag",
            "100",
        ],
    ));
    assert_clean(&report);
    assert!(report["consumed"].as_u64().unwrap() > 0, "{report:#}");
}

#[test]
fn nacked_messages_are_dead_lettered_and_drained_by_the_dead_letter_consumer() {
    let broker = TestBroker::start();
    let report = run(config(
        &broker.url(),
        &[
            "--time",
            "1",
            "--warmup",
            "0.3",
            "--qos",
            "200",
            "--multi-ack",
            "10",
            "--nack",
            "--dead-letter",
            "--rate",
            "2000",
        ],
    ));
    assert_clean(&report);
    assert!(report["consumed"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["dead_lettered"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["dl_rate"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["config"]["nack"], true, "{report:#}");
}

#[test]
fn queue_args_length_limit_drops_the_head_and_the_drain_takes_what_is_left() {
    let broker = TestBroker::start();
    let report = run(config(
        &broker.url(),
        &[
            "--backlog",
            "100",
            "--confirm",
            "50",
            "--auto-ack",
            "--queue-args",
            "x-max-length=10,x-overflow=drop-head",
        ],
    ));
    assert_clean(&report);
    assert_eq!(report["depth_after_publish"], 10, "{report:#}");
    assert_eq!(report["consumed"], 10, "{report:#}");
    // The survivors are the last 10 of the sequence: 90 dropped, none lost.
    assert_eq!(report["dropped_estimate"], 90, "{report:#}");
    assert_eq!(report["lost_estimate"], 0, "{report:#}");
    assert_eq!(
        report["config"]["queue_args"],
        serde_json::json!({"x-max-length": 10, "x-overflow": "drop-head"}),
        "{report:#}"
    );
}

#[test]
fn unknown_vhost_fails_the_run_with_the_brokers_close_reason() {
    let broker = TestBroker::start();
    let url = broker.url().replace("/%2f", "/no-such-vhost");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(warren_perf::run(config(
            &url,
            &["--time", "1", "--warmup", "0"],
        )))
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("connection.close") || text.contains("closed"),
        "{text}"
    );
}
