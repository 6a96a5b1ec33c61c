//! The management HTTP API over real HTTP against an in-process broker: RabbitMQ's paths,
//! status codes, JSON fields and error bodies; auth and tag rules; bad input; objects made
//! over AMQP seen through the API and the reverse.

#![allow(clippy::unwrap_used)]

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use warren_integration::http::Api;
use warren_integration::{TestBroker, TestConfig};

fn start() -> (TestBroker, Api) {
    let broker = TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    });
    let api = Api::new(broker.http_url());
    (broker, api)
}

/// Poll `path` until `ok(body)` holds (10 s), for figures that settle asynchronously.
async fn eventually(api: &Api, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = api.get(path).await;
        if ok(&reply.body) {
            return reply.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never matched; last body: {}",
            reply.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn add_user(api: &Api, name: &str, tags: &str) {
    let r = api
        .put(
            &format!("/api/users/{name}"),
            json!({"password": "pw", "tags": tags}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[tokio::test]
async fn whoami_names_the_user_and_its_tags() {
    let (_b, api) = start();
    let r = api.get("/api/whoami").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"name": "guest", "tags": ["administrator"]}));
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_with_the_challenge() {
    let (_b, api) = start();
    let r = api.get_anonymous("/api/whoami").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenge.as_deref(),
        Some("Basic realm=\"RabbitMQ Management\"")
    );
    let r = api.as_user("guest", "nope").get("/api/whoami").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"error": "not_authorized", "reason": "Login failed"})
    );
}

#[tokio::test]
async fn tag_rules_follow_rabbitmq() {
    let (_b, api) = start();
    add_user(&api, "plain", "").await;
    add_user(&api, "mgmt", "management").await;
    add_user(&api, "mon", "monitoring").await;
    add_user(&api, "pm", "policymaker").await;
    let r = api.as_user("plain", "pw").get("/api/whoami").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"error": "not_authorised", "reason": "Not management user"})
    );
    let mgmt = api.as_user("mgmt", "pw");
    assert_eq!(mgmt.get("/api/whoami").await.status, 200);
    let r = mgmt.get("/api/users").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["reason"], "Not administrator user");
    // No permissions in "/": it may not see or touch the vhost's queues.
    let r = mgmt.get("/api/queues/%2F").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["reason"],
        "User not authorised to access virtual host"
    );
    assert_eq!(mgmt.get("/api/queues").await.body, json!([]));
    // Monitoring sees every vhost's queues in the full list (but, as in RabbitMQ, not a
    // vhost's own list without permissions there), and may not change users.
    api.put("/api/queues/%2F/seen", json!({})).await;
    let all = api.as_user("mon", "pw").get("/api/queues").await;
    assert_eq!(all.body[0]["name"], "seen", "{:?}", all.body);
    assert_eq!(
        api.as_user("mon", "pw").get("/api/queues/%2F").await.status,
        401
    );
    assert_eq!(
        api.as_user("mon", "pw")
            .put("/api/users/x", json!({"password": "p", "tags": ""}))
            .await
            .status,
        401
    );
    // A policymaker without access to the vhost may not set its policies.
    let r = api
        .as_user("pm", "pw")
        .put(
            "/api/policies/%2F/p",
            json!({"pattern": ".*", "definition": {"max-length": 1}}),
        )
        .await;
    assert_eq!(r.status, 401);
    api.put(
        "/api/permissions/%2F/pm",
        json!({"configure": "", "write": "", "read": ""}),
    )
    .await;
    let r = api
        .as_user("pm", "pw")
        .put(
            "/api/policies/%2F/p",
            json!({"pattern": ".*", "definition": {"max-length": 1}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[tokio::test]
async fn vhost_lifecycle_created_updated_listed_deleted() {
    let (_b, api) = start();
    let r = api
        .put(
            "/api/vhosts/v1",
            json!({"description": "first", "tags": "a,b"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(api.put("/api/vhosts/v1", json!({})).await.status, 204);
    // As RabbitMQ: the creator gets full permissions in the new vhost.
    assert_eq!(
        api.get("/api/permissions/v1/guest").await.body,
        json!({"user": "guest", "vhost": "v1", "configure": ".*", "write": ".*", "read": ".*"})
    );
    let r = api.get("/api/vhosts/v1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["description"], "first");
    assert_eq!(r.body["tags"], json!(["a", "b"]));
    assert_eq!(r.body["messages"], 0);
    let names: Vec<String> = api
        .get("/api/vhosts")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["/", "v1"]);
    assert_eq!(api.delete("/api/vhosts/v1").await.status, 204);
    assert_eq!(api.delete("/api/vhosts/v1").await.status, 404);
    assert_eq!(api.get("/api/vhosts/v1").await.status, 404);
}

#[tokio::test]
async fn queue_declared_over_amqp_is_listed_with_its_depth_and_can_be_read_and_purged() {
    let (b, api) = start();
    let conn = warren_integration::connect(&b.url()).await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "work q".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    for i in 0..3 {
        ch.basic_publish(
            "".into(),
            "work q".into(),
            BasicPublishOptions::default(),
            format!("m{i}").as_bytes(),
            BasicProperties::default().with_content_type("text/plain".into()),
        )
        .await
        .unwrap();
    }
    let q = eventually(&api, "/api/queues/%2F/work%20q", |q| q["messages"] == 3).await;
    assert_eq!(q["durable"], true);
    assert_eq!(q["type"], "classic");
    assert_eq!(q["vhost"], "/");
    assert_eq!(q["messages_ready"], 3);
    let got = api
        .post(
            "/api/queues/%2F/work%20q/get",
            json!({"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"}),
        )
        .await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body.as_array().unwrap().len(), 2);
    assert_eq!(got.body[0]["payload"], "m0");
    assert_eq!(got.body[0]["payload_encoding"], "string");
    assert_eq!(got.body[0]["properties"]["content_type"], "text/plain");
    assert_eq!(got.body[0]["message_count"], 2);
    // Requeued: still three, the first two now redelivered.
    let again = api
        .post(
            "/api/queues/%2F/work%20q/get",
            json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"}),
        )
        .await;
    assert_eq!(again.body[0]["redelivered"], true);
    assert_eq!(again.body[0]["payload_encoding"], "base64");
    assert_eq!(again.body[0]["payload"], "bTA=");
    eventually(&api, "/api/queues/%2F/work%20q", |q| q["messages"] == 2).await;
    assert_eq!(
        api.delete("/api/queues/%2F/work%20q/contents").await.status,
        204
    );
    eventually(&api, "/api/queues/%2F/work%20q", |q| q["messages"] == 0).await;
    assert_eq!(api.delete("/api/queues/%2F/work%20q").await.status, 204);
    assert_eq!(api.get("/api/queues/%2F/work%20q").await.status, 404);
}

#[tokio::test]
async fn queue_put_creates_then_checks_equivalence() {
    let (_b, api) = start();
    let r = api
        .put(
            "/api/queues/%2F/q1",
            json!({"durable": true, "arguments": {"x-max-length": 5}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        api.put(
            "/api/queues/%2F/q1",
            json!({"durable": true, "arguments": {"x-max-length": 5}})
        )
        .await
        .status,
        204
    );
    let r = api
        .put(
            "/api/queues/%2F/q1",
            json!({"durable": true, "arguments": {"x-max-length": 6}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "bad_request");
    assert_eq!(
        r.body["reason"],
        "inequivalent arg 'x-max-length' for queue 'q1' in vhost '/': received '6' but current is '5'"
    );
    assert_eq!(
        api.get("/api/queues/%2F/q1").await.body["arguments"],
        json!({"x-max-length": 5})
    );
}

#[tokio::test]
async fn bad_input_gets_400_or_404_never_500() {
    let (_b, api) = start();
    let r = api.put_raw("/api/queues/%2F/q", b"{bad").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "bad_request", "reason": "not_json"})
    );
    let r = api.put("/api/queues/%2F/q", json!({"durable": "x"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["reason"], json!(["not_boolean", "x"]));
    let r = api.put("/api/queues/nope/q", json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error": "not_found", "reason": "vhost_not_found"})
    );
    let r = api.get("/api/nothing/here").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error": "Object Not Found", "reason": "Not Found"})
    );
    let r = api
        .put("/api/exchanges/%2F/x", json!({"type": "no-such-type"}))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = api.put("/api/queues/%2F/amq.q", json!({})).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = api.get("/api/queues?page=0").await;
    assert_eq!(r.status, 400);
    let r = api
        .post(
            "/api/queues/%2F/missing/get",
            json!({"count": 1, "ackmode": "ack_requeue_true"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .post("/api/users/bulk-delete", json!({"users": "guest"}))
        .await;
    assert_eq!(r.status, 400);
    // Names AMQP cannot carry (over 255 bytes).
    let long = "a".repeat(300);
    let r = api.put(&format!("/api/queues/%2F/{long}"), json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["reason"],
        "queue should be less than 255 bytes, actually was 300\n"
    );
    let r = api
        .put(
            &format!("/api/exchanges/%2F/{long}"),
            json!({"type": "direct"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        api.put(&format!("/api/vhosts/{long}"), json!({}))
            .await
            .status,
        400
    );
    // A body over the limit is refused before it is read whole.
    let big = "x".repeat(21_000_000);
    let r = api
        .put("/api/vhosts/big", json!({"description": big}))
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn exchange_binding_and_publish_round_trip() {
    let (_b, api) = start();
    assert_eq!(
        api.put(
            "/api/exchanges/%2F/orders",
            json!({"type": "topic", "durable": true})
        )
        .await
        .status,
        201
    );
    api.put("/api/queues/%2F/eu", json!({})).await;
    let r = api
        .post(
            "/api/bindings/%2F/e/orders/q/eu",
            json!({"routing_key": "eu.*", "arguments": {}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.location.as_deref(), Some("eu/eu.%252A"));
    let listed = api.get("/api/bindings/%2F/e/orders/q/eu").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["properties_key"], "eu.%2A");
    let source = api.get("/api/exchanges/%2F/orders/bindings/source").await;
    assert_eq!(source.body[0]["destination"], "eu");
    let q_bindings = api.get("/api/queues/%2F/eu/bindings").await;
    assert_eq!(
        q_bindings.body.as_array().unwrap().len(),
        2,
        "default + orders: {}",
        q_bindings.body
    );
    let r = api
        .post("/api/exchanges/%2F/orders/publish", json!({"routing_key": "eu.fr", "payload": "hello", "payload_encoding": "string", "properties": {"delivery_mode": 2, "headers": {"k": "v"}}}))
        .await;
    assert_eq!(r.body, json!({"routed": true}));
    let r = api
        .post("/api/exchanges/%2F/orders/publish", json!({"routing_key": "us.ny", "payload": "x", "payload_encoding": "string", "properties": {}}))
        .await;
    assert_eq!(r.body, json!({"routed": false}));
    let got = api
        .post(
            "/api/queues/%2F/eu/get",
            json!({"count": 5, "ackmode": "ack_requeue_false", "encoding": "auto"}),
        )
        .await;
    assert_eq!(got.body.as_array().unwrap().len(), 1);
    assert_eq!(got.body[0]["payload"], "hello");
    assert_eq!(got.body[0]["routing_key"], "eu.fr");
    assert_eq!(got.body[0]["properties"]["headers"], json!({"k": "v"}));
    assert_eq!(got.body[0]["properties"]["delivery_mode"], 2);
    assert_eq!(
        api.delete("/api/bindings/%2F/e/orders/q/eu/eu.*")
            .await
            .status,
        204
    );
    assert_eq!(
        api.delete("/api/bindings/%2F/e/orders/q/eu/eu.*")
            .await
            .status,
        404
    );
    let r = api
        .post("/api/exchanges/%2F/orders/publish", json!({"routing_key": "eu.fr", "payload": "x", "payload_encoding": "string", "properties": {}}))
        .await;
    assert_eq!(r.body, json!({"routed": false}));
    // The default exchange is amq.default in paths.
    let r = api
        .post("/api/exchanges/%2F/amq.default/publish", json!({"routing_key": "eu", "payload": "d", "payload_encoding": "string", "properties": {}}))
        .await;
    assert_eq!(r.body, json!({"routed": true}));
    assert_eq!(api.delete("/api/exchanges/%2F/orders").await.status, 204);
    assert_eq!(api.get("/api/exchanges/%2F/orders").await.status, 404);
}

#[tokio::test]
async fn listing_paginates_sorts_filters_and_cuts_columns() {
    let (_b, api) = start();
    for i in 0..7 {
        api.put(&format!("/api/queues/%2F/q{i}"), json!({"durable": false}))
            .await;
    }
    let r = api.get("/api/queues?page=2&page_size=3&columns=name").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total_count"], 7);
    assert_eq!(r.body["page_count"], 3);
    assert_eq!(
        r.body["items"],
        json!([{"name": "q3"}, {"name": "q4"}, {"name": "q5"}])
    );
    let r = api.get("/api/queues?page=1&name=Q6&columns=name").await;
    assert_eq!(r.body["filtered_count"], 1);
    assert_eq!(r.body["items"], json!([{"name": "q6"}]));
    let r = api
        .get("/api/queues?sort=name&sort_reverse=true&columns=name,vhost")
        .await;
    assert_eq!(r.body[0], json!({"name": "q6", "vhost": "/"}));
    let r = api
        .get("/api/queues?page=1&name=%5Eq%5B12%5D%24&use_regex=true&columns=name")
        .await;
    assert_eq!(r.body["items"], json!([{"name": "q1"}, {"name": "q2"}]));
}

#[tokio::test]
async fn users_permissions_and_limits_through_the_api_apply_to_amqp() {
    let (b, api) = start();
    add_user(&api, "app", "").await;
    let r = api
        .put(
            "/api/permissions/%2F/app",
            json!({"configure": "^app-", "write": "^app-", "read": "^app-"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = api.get("/api/permissions/%2F/app").await;
    assert_eq!(
        r.body,
        json!({"user": "app", "vhost": "/", "configure": "^app-", "write": "^app-", "read": "^app-"})
    );
    let conn = warren_integration::connect(&b.url_as("app", "pw", "/")).await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "app-q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = ch
        .queue_declare(
            "other".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(err.is_err());
    let r = api
        .put("/api/permissions/%2F/app", json!({"configure": ".*"}))
        .await;
    assert_eq!(r.status, 400, "write and read are required: {:?}", r.body);
    let r = api
        .put("/api/user-limits/app/max-connections", json!({"value": 1}))
        .await;
    assert_eq!(r.status, 204);
    let r = api.get("/api/user-limits/app").await;
    assert_eq!(
        r.body,
        json!([{"user": "app", "value": {"max-connections": 1}}])
    );
    let second = lapin::Connection::connect(
        &b.url_as("app", "pw", "/"),
        lapin::ConnectionProperties::default(),
    )
    .await;
    assert!(
        second.is_err(),
        "the user's connection limit of 1 is reached"
    );
    assert_eq!(
        api.delete("/api/user-limits/app/max-connections")
            .await
            .status,
        204
    );
    let r = api
        .put("/api/vhost-limits/%2F/max-queues", json!({"value": 10}))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        api.get("/api/vhost-limits").await.body,
        json!([{"vhost": "/", "value": {"max-queues": 10}}])
    );
    let r = api
        .put("/api/vhost-limits/%2F/max-bananas", json!({"value": 10}))
        .await;
    assert_eq!(r.status, 400);
    // Deleting the user closes its connection.
    assert_eq!(api.delete("/api/users/app").await.status, 204);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while conn.status().connected() {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted user's connection stayed open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(api.get("/api/permissions/%2F/app").await.status, 404);
}

#[tokio::test]
async fn topic_permissions_and_bulk_user_delete() {
    let (_b, api) = start();
    add_user(&api, "a", "").await;
    add_user(&api, "b", "").await;
    let r = api
        .put(
            "/api/topic-permissions/%2F/a",
            json!({"exchange": "amq.topic", "write": "^a\\.", "read": ".*"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        api.get("/api/topic-permissions").await.body,
        json!([{"user": "a", "vhost": "/", "exchange": "amq.topic", "write": "^a\\.", "read": ".*"}])
    );
    assert_eq!(api.delete("/api/topic-permissions/%2F/a").await.status, 204);
    assert_eq!(api.get("/api/topic-permissions").await.body, json!([]));
    let names = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&api.get("/api/users/without-permissions").await.body),
        ["a", "b"]
    );
    assert_eq!(
        api.post(
            "/api/users/bulk-delete",
            json!({"users": ["a", "b", "ghost"]})
        )
        .await
        .status,
        204
    );
    assert_eq!(names(&api.get("/api/users").await.body), ["guest"]);
}

#[tokio::test]
async fn policies_and_parameters_are_stored_and_listed() {
    let (_b, api) = start();
    let r = api
        .put("/api/policies/%2F/limit", json!({"pattern": "^q", "definition": {"max-length": 10}, "priority": 1, "apply-to": "queues"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = api.get("/api/policies/%2F/limit").await;
    assert_eq!(
        r.body,
        json!({"vhost": "/", "name": "limit", "pattern": "^q", "apply-to": "queues", "definition": {"max-length": 10}, "priority": 1})
    );
    assert_eq!(
        api.get("/api/policies")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = api
        .put(
            "/api/operator-policies/%2F/cap",
            json!({"pattern": ".*", "definition": {"max-length": 100}, "apply-to": "queues"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        api.get("/api/operator-policies/%2F").await.body[0]["name"],
        "cap"
    );
    assert_eq!(api.delete("/api/policies/%2F/limit").await.status, 204);
    assert_eq!(api.delete("/api/policies/%2F/limit").await.status, 404);
    let r = api
        .put(
            "/api/parameters/federation-upstream/%2F/up",
            json!({"value": {"uri": "amqp://x"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["reason"],
        "Validation failed\n\ncomponent federation-upstream not found\n"
    );
    assert_eq!(
        api.put(
            "/api/global-parameters/cluster_name",
            json!({"value": "warren-test"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        api.get("/api/global-parameters/cluster_name").await.body,
        json!({"name": "cluster_name", "value": "warren-test"})
    );
}

#[tokio::test]
async fn definitions_export_import_round_trip_between_brokers() {
    let (_a, api_a) = start();
    api_a
        .put("/api/vhosts/shop", json!({"description": "the shop"}))
        .await;
    api_a
        .put(
            "/api/permissions/shop/guest",
            json!({"configure": ".*", "write": ".*", "read": ".*"}),
        )
        .await;
    api_a
        .put("/api/exchanges/shop/orders", json!({"type": "fanout"}))
        .await;
    api_a
        .put(
            "/api/queues/shop/billing",
            json!({"durable": true, "arguments": {"x-message-ttl": 60000}}),
        )
        .await;
    api_a
        .post(
            "/api/bindings/shop/e/orders/q/billing",
            json!({"routing_key": "", "arguments": {}}),
        )
        .await;
    add_user(&api_a, "clerk", "management").await;
    let exported = api_a.get("/api/definitions").await;
    assert_eq!(exported.status, 200);
    let (_b, api_b) = start();
    let r = api_b.post("/api/definitions", exported.body.clone()).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        api_b.get("/api/queues/shop/billing").await.body["arguments"],
        json!({"x-message-ttl": 60000})
    );
    assert_eq!(
        api_b
            .get("/api/bindings/shop/e/orders/q/billing")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api_b.get("/api/vhosts/shop").await.body["description"],
        "the shop"
    );
    assert_eq!(
        api_b.as_user("clerk", "pw").get("/api/whoami").await.status,
        200,
        "the password hash came along"
    );
    // One vhost's definitions: only its objects.
    let shop = api_a.get("/api/definitions/shop").await.body;
    assert!(
        shop.get("users").is_none() || shop["users"] == json!([]),
        "{shop}"
    );
    assert_eq!(shop["queues"][0]["name"], "billing");
    api_b.put("/api/vhosts/copy", json!({})).await;
    assert_eq!(api_b.post("/api/definitions/copy", shop).await.status, 204);
    assert_eq!(api_b.get("/api/queues/copy/billing").await.status, 200);
    // A file that does not parse changes nothing.
    let r = api_b
        .post("/api/definitions", json!({"queues": [{"name": 5}]}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn health_checks_pass_and_fail_with_rabbitmq_bodies() {
    let (b, api) = start();
    assert_eq!(
        api.get("/api/health/checks/alarms").await.body,
        json!({"status": "ok"})
    );
    assert_eq!(
        api.get("/api/health/checks/virtual-hosts").await.body,
        json!({"status": "ok"})
    );
    assert_eq!(
        api.get("/api/health/checks/ready-to-serve-clients")
            .await
            .status,
        200
    );
    let port = b.addr().port();
    let r = api
        .get(&format!("/api/health/checks/port-listener/{port}"))
        .await;
    assert_eq!(r.body, json!({"status": "ok", "port": port}));
    let r = api.get("/api/health/checks/port-listener/1").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["status"], "failed");
    assert_eq!(r.body["missing"], 1);
    assert_eq!(
        api.get("/api/health/checks/protocol-listener/amqp")
            .await
            .status,
        200
    );
    assert_eq!(
        api.get("/api/health/checks/protocol-listener/mqtt")
            .await
            .status,
        503
    );
    assert_eq!(
        api.get("/api/aliveness-test/%2F").await.body,
        json!({"status": "ok"})
    );
    assert_eq!(api.get("/api/extensions").await.body, json!([]));
}

#[tokio::test]
async fn a_policy_set_through_the_api_trims_a_live_queue_at_once() {
    let (b, api) = start();
    let conn = warren_integration::connect(&b.url()).await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "jobs.a".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for i in 0..5 {
        ch.basic_publish(
            "".into(),
            "jobs.a".into(),
            BasicPublishOptions::default(),
            format!("{i}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    eventually(&api, "/api/queues/%2F/jobs.a", |q| q["messages"] == 5).await;
    let r = api
        .put(
            "/api/policies/%2F/cap",
            json!({"pattern": "^jobs\\.", "definition": {"max-length": 2}, "apply-to": "queues"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let q = eventually(&api, "/api/queues/%2F/jobs.a", |q| q["messages"] == 2).await;
    assert_eq!(q["policy"], "cap");
    assert_eq!(q["effective_policy_definition"], json!({"max-length": 2}));
    // The oldest were dropped: what is left is the two newest.
    let got = api
        .post(
            "/api/queues/%2F/jobs.a/get",
            json!({"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"}),
        )
        .await;
    let payloads: Vec<&str> = got
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["3", "4"]);
    // A bad definition is refused with RabbitMQ's validation text and changes nothing.
    let r = api
        .put(
            "/api/policies/%2F/cap",
            json!({"pattern": "^jobs\\.", "definition": {"max-length": "two"}, "apply-to": "queues"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["reason"]
            .as_str()
            .unwrap()
            .starts_with("Validation failed"),
        "{:?}",
        r.body
    );
    assert_eq!(
        api.get("/api/policies/%2F/cap").await.body["definition"],
        json!({"max-length": 2})
    );
    // Cleared: the queue takes new messages past 2 again.
    assert_eq!(api.delete("/api/policies/%2F/cap").await.status, 204);
    eventually(&api, "/api/queues/%2F/jobs.a", |q| q["policy"].is_null()).await;
    for _ in 0..3 {
        ch.basic_publish(
            "".into(),
            "jobs.a".into(),
            BasicPublishOptions::default(),
            b"more",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    eventually(&api, "/api/queues/%2F/jobs.a", |q| q["messages"] == 5).await;
}

#[tokio::test]
async fn definitions_exported_by_rabbitmq_import_through_the_api_and_export_again() {
    let (_b, api) = start();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/management/definitions.json");
    let rabbit: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let r = api.post("/api/definitions", rabbit.clone()).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let ours = api.get("/api/definitions").await.body;
    let names = |v: &Value, key: &str, field: &str| -> std::collections::BTreeSet<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}|{}",
                    e["vhost"].as_str().unwrap_or(""),
                    e[field].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    for (key, field) in [
        ("users", "name"),
        ("vhosts", "name"),
        ("queues", "name"),
        ("exchanges", "name"),
        ("policies", "name"),
        ("permissions", "user"),
        ("topic_permissions", "user"),
    ] {
        let theirs = names(&rabbit, key, field);
        let mine = names(&ours, key, field);
        assert!(
            theirs.is_subset(&mine),
            "{key}: RabbitMQ's {theirs:?} not all in Warren's {mine:?}"
        );
    }
    assert_eq!(
        ours["bindings"].as_array().unwrap().len(),
        rabbit["bindings"].as_array().unwrap().len()
    );
    // The imported users log in with the passwords they had on RabbitMQ.
    assert_eq!(
        api.as_user("ctl-rec-admin", "ctl-rec-admin-pass")
            .get("/api/whoami")
            .await
            .status,
        200
    );
    // Importing Warren's own export again changes nothing.
    assert_eq!(api.post("/api/definitions", ours.clone()).await.status, 204);
    let again = api.get("/api/definitions").await.body;
    assert_eq!(again["queues"], ours["queues"]);
    assert_eq!(again["users"], ours["users"]);
}
