//! The management API's live objects and statistics over real HTTP (reqwest) against an
//! in-process broker driven by lapin: connections (with client properties, closing one
//! with 320 and the `X-Reason`), channels, consumers, the overview's counters and rates,
//! nodes, and which connections a non-admin management user sees.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ErrorKind, Event};
use serde_json::Value;
use warren_broker::access::{HashingAlgorithm, PasswordHash};
use warren_broker::{AccessCommand, Broker, BrokerConfig};
use warren_integration::http::Api;
use warren_integration::{TestBroker, TestConfig};

fn start() -> TestBroker {
    TestBroker::start_with(TestConfig {
        broker: BrokerConfig {
            stats_interval: Duration::from_millis(100),
            ..BrokerConfig::default()
        },
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    })
}

fn add_user(broker: &Broker, name: &str, tags: &[&str]) {
    broker
        .access()
        .apply_all(&[
            AccessCommand::PutUser {
                name: name.into(),
                password: PasswordHash::new(HashingAlgorithm::Sha256, "pw"),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            },
            AccessCommand::SetPermissions {
                user: name.into(),
                vhost: "/".into(),
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            },
        ])
        .unwrap();
}

/// A lapin connection whose client properties carry `connection_name`.
async fn connect_named(url: &str, name: &str) -> Connection {
    let props = ConnectionProperties::default()
        .with_connection_name(LongString::from(name.as_bytes().to_vec()));
    Connection::connect(url, props).await.unwrap()
}

/// GET `path` as guest until `f` holds (10 s deadline); the last body.
async fn until(api: &Api, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        if f(&reply.body) {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `path` as guest, expecting 200.
async fn get(api: &Api, path: &str) -> Value {
    let reply = api.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.body
}

fn enc(name: &str) -> String {
    warren_integration::percent(name)
}

fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|c| c["client_properties"]["connection_name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_listed_with_its_client_properties_until_it_closes() {
    let broker = start();
    let api = Api::new(broker.http_url());
    let conn = connect_named(&broker.url(), "listed").await;
    let _ch = conn.create_channel().await.unwrap();
    let list = until(&api, "/api/connections", "the connection", |l| {
        named(l, "listed").is_some()
    })
    .await;
    let c = named(&list, "listed").unwrap();
    assert_eq!(c["client_properties"]["product"], "lapin");
    assert_eq!(c["user_provided_name"], "listed");
    assert_eq!(c["user"], "guest");
    assert_eq!(c["vhost"], "/");
    assert_eq!(c["protocol"], "AMQP 0-9-1");
    assert_eq!(c["auth_mechanism"], "PLAIN");
    assert_eq!(c["ssl"], false);
    assert_eq!(c["state"], "running");
    assert_eq!(c["port"], broker.addr().port());
    let name = c["name"].as_str().unwrap().to_owned();
    assert_eq!(
        name,
        format!("127.0.0.1:{} -> {}", c["peer_port"], broker.addr())
    );
    assert!(c["recv_oct"].as_u64().unwrap() > 0);
    assert!(c["recv_oct_details"]["rate"].is_number());
    let one = get(&api, &format!("/api/connections/{}", enc(&name))).await;
    assert_eq!(one["name"], name.as_str());
    let in_vhost = get(&api, "/api/vhosts/%2F/connections").await;
    assert!(named(&in_vhost, "listed").is_some());
    let channels = until(
        &api,
        &format!("/api/connections/{}/channels", enc(&name)),
        "its channel",
        |l| l.as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    assert_eq!(channels[0]["name"], format!("{name} (1)"));
    assert_eq!(channels[0]["number"], 1);

    conn.close(200, "bye".into()).await.unwrap();
    until(&api, "/api/connections", "the connection to go", |l| {
        named(l, "listed").is_none()
    })
    .await;
    let gone = api.get(&format!("/api/connections/{}", enc(&name))).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_connection_closes_it_with_320_and_the_given_reason() {
    let broker = start();
    let api = Api::new(broker.http_url());
    for (reason, expected) in [
        (
            Some("maintenance window"),
            "CONNECTION_FORCED - maintenance window",
        ),
        (None, "CONNECTION_FORCED - Closed via management plugin"),
    ] {
        let conn = connect_named(&broker.url(), "doomed").await;
        let mut events = conn.events_listener();
        let list = until(&api, "/api/connections", "the connection", |l| {
            named(l, "doomed").is_some()
        })
        .await;
        let name = named(&list, "doomed").unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned();
        // The X-Reason header needs a request of our own.
        let mut req = reqwest::Client::new()
            .delete(format!(
                "{}/api/connections/{}",
                broker.http_url(),
                enc(&name)
            ))
            .basic_auth("guest", Some("guest"));
        if let Some(reason) = reason {
            req = req.header("X-Reason", reason);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 204);
        let error = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(event) = events.next().await {
                if let Event::Error(e) = event {
                    return e;
                }
            }
            panic!("lapin's event stream ended without an error");
        })
        .await
        .expect("lapin saw no connection error");
        match error.kind() {
            ErrorKind::ProtocolError(e) => {
                assert_eq!(e.get_id(), 320, "{error}");
                assert_eq!(e.get_message().as_str(), expected);
            }
            other => panic!("expected connection.close 320, got {other:?}"),
        }
        until(&api, "/api/connections", "the connection to go", |l| {
            named(l, "doomed").is_none()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_management_user_sees_only_its_own_connections_and_channels() {
    let broker = start();
    add_user(broker.broker(), "mona", &["management"]);
    add_user(broker.broker(), "watcher", &["monitoring"]);
    let api = Api::new(broker.http_url());
    let guest = connect_named(&broker.url(), "guest-conn").await;
    let _g = guest.create_channel().await.unwrap();
    let mona = connect_named(&broker.url_as("mona", "pw", "/"), "mona-conn").await;
    let _m = mona.create_channel().await.unwrap();
    let all = until(&api, "/api/connections", "both connections", |l| {
        named(l, "guest-conn").is_some() && named(l, "mona-conn").is_some()
    })
    .await;
    let guest_name = named(&all, "guest-conn").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();

    let as_mona = api.as_user("mona", "pw");
    let own = as_mona.get("/api/connections").await;
    assert_eq!(own.status, 200);
    let users: Vec<&str> = own
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["mona"]);
    let channels = until(&as_mona, "/api/channels", "mona's channel", |l| {
        l.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(
        channels
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["user"] == "mona")
    );
    let path = format!("/api/connections/{}", enc(&guest_name));
    let other = as_mona.get(&path).await;
    assert_eq!(other.status, 401, "{}", other.body);
    assert_eq!(other.body["reason"], "User not authorised to access object");
    assert_eq!(as_mona.delete(&path).await.status, 401);
    assert!(guest.status().connected());
    // Its own connection it may close.
    let mona_name = named(&all, "mona-conn").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        as_mona
            .delete(&format!("/api/connections/{}", enc(&mona_name)))
            .await
            .status,
        204
    );

    // A monitoring user sees everyone's, but may not close them.
    let as_watcher = api.as_user("watcher", "pw");
    let seen = as_watcher.get("/api/connections").await;
    assert_eq!(seen.status, 200);
    assert!(named(&seen.body, "guest-conn").is_some());
    assert_eq!(as_watcher.delete(&path).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_rates_move_with_publishes_deliveries_and_acks() {
    let broker = start();
    let api = Api::new(broker.http_url());
    let conn = connect_named(&broker.url(), "worker").await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let q = ch
        .queue_declare(
            "stats-q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "stats-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    // Publish, consume and ack in rounds until the sampled rates show the traffic.
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(15);
    let overview = loop {
        for _ in 0..20 {
            ch.basic_publish(
                "".into(),
                "stats-q".into(),
                BasicPublishOptions::default(),
                b"payload",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
            let d = consumer.next().await.unwrap().unwrap();
            d.ack(BasicAckOptions::default()).await.unwrap();
            sent += 1;
        }
        let o = get(&api, "/api/overview").await;
        let ms = &o["message_stats"];
        if ms["publish_details"]["rate"].as_f64().unwrap_or(0.0) > 0.0
            && ms["ack_details"]["rate"].as_f64().unwrap_or(0.0) > 0.0
            && ms["deliver_get_details"]["rate"].as_f64().unwrap_or(0.0) > 0.0
        {
            break o;
        }
        assert!(Instant::now() < deadline, "no rates after 15 s: {o}");
    };
    let ms = &overview["message_stats"];
    assert!(ms["publish"].as_u64().unwrap() >= sent - 20);
    assert_eq!(ms["confirm"], ms["publish"]);
    assert_eq!(overview["object_totals"]["consumers"], 1);
    assert!(overview["object_totals"]["queues"].as_u64().unwrap() >= 1);
    assert!(overview["churn_rates"]["queue_created"].as_u64().unwrap() >= 1);
    assert_eq!(overview["product_name"], "Warren");

    let channels = get(&api, "/api/channels").await;
    let c = &channels.as_array().unwrap()[0];
    assert_eq!(c["confirm"], true);
    assert_eq!(c["consumer_count"], 1);
    let cms = &c["message_stats"];
    assert_eq!(cms["publish"].as_u64().unwrap(), sent);
    assert_eq!(cms["ack"].as_u64().unwrap(), sent);
    assert_eq!(cms["deliver"].as_u64().unwrap(), sent);
    assert_eq!(cms["deliver_get"].as_u64().unwrap(), sent);

    let queue = get(&api, "/api/queues/%2F/stats-q").await;
    let qms = &queue["message_stats"];
    assert_eq!(qms["publish"].as_u64().unwrap(), sent);
    assert_eq!(qms["deliver"].as_u64().unwrap(), sent);
    assert_eq!(qms["ack"].as_u64().unwrap(), sent);
    assert!(qms["publish_details"]["rate"].is_number());
    assert!(queue["messages_details"]["rate"].is_number());
    assert_eq!(
        queue["consumer_details"][0]["consumer_tag"],
        "stats-consumer"
    );
    let default = get(&api, "/api/exchanges/%2F/amq.default").await;
    assert_eq!(
        default["message_stats"]["publish_in"].as_u64().unwrap(),
        sent
    );
    assert_eq!(
        default["message_stats"]["publish_out"].as_u64().unwrap(),
        sent
    );
    let vhost = get(&api, "/api/vhosts/%2F").await;
    assert_eq!(vhost["message_stats"]["publish"].as_u64().unwrap(), sent);
    assert!(vhost["recv_oct"].as_u64().unwrap() > 0);
    assert!(vhost["send_oct_details"]["rate"].is_number());

    let consumers = get(&api, "/api/consumers/%2F").await;
    let cons = &consumers.as_array().unwrap()[0];
    assert_eq!(cons["consumer_tag"], "stats-consumer");
    assert_eq!(cons["queue"]["name"], "stats-q");
    assert_eq!(cons["ack_required"], true);
    assert_eq!(cons["active"], true);
    assert_eq!(cons["activity_status"], "up");
    assert_eq!(cons["channel_details"]["number"], 1);

    // With a range, each detail carries samples `incr` apart over `age`.
    let ranged = get(
        &api,
        "/api/overview?lengths_age=60&lengths_incr=5&msg_rates_age=60&msg_rates_incr=5",
    )
    .await;
    let samples = ranged["queue_totals"]["messages_details"]["samples"]
        .as_array()
        .unwrap();
    assert_eq!(samples.len(), 13);
    let t0 = samples[0]["timestamp"].as_u64().unwrap();
    assert_eq!(t0 % 5000, 0);
    assert_eq!(samples[1]["timestamp"].as_u64().unwrap(), t0 - 5000);
    assert!(ranged["message_stats"]["publish_details"]["avg_rate"].is_number());
    assert_eq!(api.get("/api/overview?lengths_age=60").await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_report_this_node_with_its_readings() {
    let broker = start();
    let api = Api::new(broker.http_url());
    let nodes = get(&api, "/api/nodes").await;
    let node = &nodes.as_array().unwrap()[0];
    let name = node["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("warren@"));
    assert_eq!(node["running"], true);
    assert!(node["fd_used"].as_u64().unwrap() > 0);
    assert!(node["fd_total"].as_u64().unwrap() >= node["fd_used"].as_u64().unwrap());
    assert!(node["mem_used"].as_u64().unwrap() > 0);
    assert!(node["mem_limit"].as_u64().unwrap() > 0);
    assert_eq!(node["mem_alarm"], false);
    assert!(node["processors"].as_u64().unwrap() >= 1);
    let one = get(&api, &format!("/api/nodes/{}", enc(&name))).await;
    assert_eq!(one["name"], name.as_str());
    assert_eq!(api.get("/api/nodes/rabbit@nowhere").await.status, 404);
    add_user(broker.broker(), "mona", &["management"]);
    assert_eq!(
        api.as_user("mona", "pw").get("/api/nodes").await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_readings_carry_sampled_details() {
    let broker = start();
    let api = Api::new(broker.http_url());
    let nodes = until(
        &api,
        "/api/nodes?lengths_age=10&lengths_incr=1",
        "two node samples",
        |n| {
            n[0]["mem_used_details"]["samples"]
                .as_array()
                .is_some_and(|s| s.iter().filter(|x| x["sample"].as_u64() > Some(0)).count() >= 2)
        },
    )
    .await;
    let node = &nodes[0];
    for field in [
        "mem_used_details",
        "fd_used_details",
        "sockets_used_details",
        "disk_free_details",
        "proc_used_details",
    ] {
        assert!(node[field]["rate"].is_number(), "{field}: {node}");
    }
}
