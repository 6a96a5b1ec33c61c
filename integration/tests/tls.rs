//! TLS (amqps) and the SASL side of the handshake: lapin over amqps with and without
//! client certificates, `verify_peer` / `fail_if_no_peer_cert` as RabbitMQ means them,
//! EXTERNAL by the certificate's CN, the login failure modes as RabbitMQ 3.10 shows them
//! (checked against it: close 403 only for clients announcing
//! `authentication_failure_close`, otherwise a closed socket; no frame for an unknown
//! mechanism), and the bad-input test (10,000 failed logins, 1,000 half-open TLS
//! handshakes). Certificates are generated at run time (`warren_integration::certs`).

#![allow(clippy::unwrap_used)]

mod pika_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ErrorKind};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_integration::certs::{Identity, TestPki};
use warren_integration::{TestBroker, TestConfig};
use warren_server::{CertLoginFrom, SaslMechanism, ServerConfig, TlsConfig};

const REFUSED_PLAIN: &str = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.";

/// Broker settings with an amqps listener on the test PKI.
fn tls_config(pki: &TestPki, verify_peer: bool, fail_if_no_peer_cert: bool) -> TestConfig {
    TestConfig {
        server: ServerConfig {
            tls: Some(TlsConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                cert_file: pki.server.cert_file.clone(),
                key_file: pki.server.key_file.clone(),
                ca_file: Some(pki.ca_file.clone()),
                verify_peer,
                fail_if_no_peer_cert,
                cert_login_from: CertLoginFrom::CommonName,
            }),
            auth_mechanisms: vec![
                SaslMechanism::Plain,
                SaslMechanism::Amqplain,
                SaslMechanism::External,
            ],
            ..ServerConfig::default()
        },
        ..TestConfig::default()
    }
}

fn lapin_tls(pki: &TestPki, client: Option<&Identity>) -> OwnedTLSConfig {
    OwnedTLSConfig {
        identity: client.map(|c| OwnedIdentity::PKCS8 {
            pem: c.cert_pem.clone().into_bytes(),
            key: c.key_pem.clone().into_bytes(),
        }),
        cert_chain: Some(pki.ca_pem.clone()),
    }
}

async fn connect_tls(
    url: &str,
    pki: &TestPki,
    client: Option<&Identity>,
) -> lapin::Result<lapin::Connection> {
    lapin::DefaultConnectionBuilder::new()?
        .with_uri_str(url.to_owned())
        .with_tls_config(lapin_tls(pki, client))
        .connect()
        .await
}

fn amqp_error_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

/// Publish one message to a fresh queue, consume it and ack it.
async fn round_trip(conn: &lapin::Connection) {
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.basic_publish(
        "".into(),
        q.name().clone(),
        BasicPublishOptions::default(),
        b"over tls",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("no delivery within 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(delivery.data, b"over tls");
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    ch.close(200, "done".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_over_amqps_without_a_client_certificate_publishes_and_consumes() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, false, false));
    let conn = connect_tls(&broker.amqps_url(), &pki, None).await.unwrap();
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
    // The plain listener serves alongside.
    let plain = warren_integration::connect(&broker.url()).await;
    round_trip(&plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_accepts_a_client_certificate_signed_by_the_ca() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, true));
    let client = pki.client("app");
    let conn = connect_tls(&broker.amqps_url(), &pki, Some(&client))
        .await
        .unwrap();
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_without_fail_if_no_peer_cert_lets_a_client_without_certificate_in() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, false));
    let conn = connect_tls(&broker.amqps_url(), &pki, None).await.unwrap();
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_without_fail_if_no_peer_cert_still_refuses_an_untrusted_certificate() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, false));
    let stranger = pki.untrusted_client("app");
    let result = connect_tls(&broker.amqps_url(), &pki, Some(&stranger)).await;
    assert!(
        result.is_err(),
        "a certificate from an unknown CA was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_if_no_peer_cert_refuses_a_client_without_a_certificate() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, true));
    let result = connect_tls(&broker.amqps_url(), &pki, None).await;
    assert!(result.is_err(), "a client without a certificate got in");
    // The broker still serves clients with one.
    let client = pki.client("app");
    let conn = connect_tls(&broker.amqps_url(), &pki, Some(&client))
        .await
        .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_signed_by_an_unknown_ca_is_refused() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, true));
    let stranger = pki.untrusted_client("guest");
    let result = connect_tls(&broker.amqps_url(), &pki, Some(&stranger)).await;
    assert!(
        result.is_err(),
        "a certificate from an unknown CA was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_login_takes_the_user_from_the_certificate_cn() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, true));
    let client = pki.client("guest");
    // No user or password in the URL: the certificate names the user.
    let url = format!(
        "amqps://{}/%2f?auth_mechanism=external",
        broker.amqps_addr()
    );
    let conn = connect_tls(&url, &pki, Some(&client)).await.unwrap();
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_login_with_an_unknown_cn_is_refused_with_403() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, true));
    let client = pki.client("mallory");
    let url = format!(
        "amqps://{}/%2f?auth_mechanism=external",
        broker.amqps_addr()
    );
    let err = connect_tls(&url, &pki, Some(&client))
        .await
        .expect_err("EXTERNAL login of an unknown CN succeeded");
    assert_eq!(amqp_error_code(&err), Some(403), "{err}");
    assert!(
        err.to_string().contains(
            "Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile."
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_login_without_a_client_certificate_is_refused_with_403() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, false));
    let url = format!(
        "amqps://{}/%2f?auth_mechanism=external",
        broker.amqps_addr()
    );
    let err = connect_tls(&url, &pki, None)
        .await
        .expect_err("EXTERNAL login without a certificate succeeded");
    assert_eq!(amqp_error_code(&err), Some(403), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_login_by_distinguished_name_uses_rabbitmq_formatting() {
    let pki = TestPki::generate();
    let mut config = tls_config(&pki, true, true);
    if let Some(tls) = &mut config.server.tls {
        tls.cert_login_from = CertLoginFrom::DistinguishedName;
    }
    // The broker's one user is named like RabbitMQ writes the certificate's subject.
    config.broker.default_user = "CN=app,O=Warren tests,C=GB".into();
    let broker = TestBroker::start_with(config);
    let client = pki.client("app");
    let url = format!(
        "amqps://{}/%2f?auth_mechanism=external",
        broker.amqps_addr()
    );
    let conn = connect_tls(&url, &pki, Some(&client)).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_listener_can_be_switched_off() {
    let pki = TestPki::generate();
    let mut config = tls_config(&pki, false, false);
    config.server.plain_listener = false;
    let broker = TestBroker::start_with(config);
    assert!(!broker.has_plain_listener());
    let conn = connect_tls(&broker.amqps_url(), &pki, None).await.unwrap();
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
}

// ---- raw AMQP over plain and TLS sockets ----

fn short(s: &str) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

fn frame(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
    let mut payload = class.to_be_bytes().to_vec();
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(args);
    let mut f = vec![1];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&payload);
    f.push(0xCE);
    f
}

/// connection.start-ok; with `failure_close` the client properties announce the
/// `authentication_failure_close` capability (as pika, lapin and the Java client do).
fn start_ok(mechanism: &str, response: &[u8], failure_close: bool) -> Vec<u8> {
    let mut props = Vec::new();
    if failure_close {
        let mut caps = short("authentication_failure_close");
        caps.extend_from_slice(b"t\x01");
        props.extend(short("capabilities"));
        props.push(b'F');
        props.extend_from_slice(&(caps.len() as u32).to_be_bytes());
        props.extend(caps);
    }
    let mut args = (props.len() as u32).to_be_bytes().to_vec();
    args.extend(props);
    args.extend(short(mechanism));
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response);
    args.extend(short("en_US"));
    frame(0, 10, 11, &args)
}

/// A method frame's (class, method, arguments).
type Method = (u16, u16, Vec<u8>);

/// The next frame's method, or None at EOF / reset.
async fn read_method<S: AsyncRead + Unpin>(s: &mut S) -> Option<Method> {
    let mut head = [0u8; 7];
    s.read_exact(&mut head).await.ok()?;
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
    let mut payload = vec![0u8; size + 1];
    s.read_exact(&mut payload).await.ok()?;
    payload.pop();
    let class = u16::from_be_bytes([payload[0], payload[1]]);
    let method = u16::from_be_bytes([payload[2], payload[3]]);
    Some((class, method, payload[4..].to_vec()))
}

/// The mechanisms string of a connection.start's arguments.
fn start_mechanisms(args: &[u8]) -> String {
    let props_len = u32::from_be_bytes([args[2], args[3], args[4], args[5]]) as usize;
    let at = 6 + props_len;
    let len = u32::from_be_bytes([args[at], args[at + 1], args[at + 2], args[at + 3]]) as usize;
    String::from_utf8(args[at + 4..at + 4 + len].to_vec()).unwrap()
}

/// (code, text, class, method) of a connection.close's arguments.
fn close_args(args: &[u8]) -> (u16, String, u16, u16) {
    let code = u16::from_be_bytes([args[0], args[1]]);
    let len = args[2] as usize;
    let text = String::from_utf8(args[3..3 + len].to_vec()).unwrap();
    let at = 3 + len;
    (
        code,
        text,
        u16::from_be_bytes([args[at], args[at + 1]]),
        u16::from_be_bytes([args[at + 2], args[at + 3]]),
    )
}

/// Send the header, read connection.start (returning its mechanisms), send start-ok.
async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    mechanism: &str,
    response: &[u8],
    failure_close: bool,
) -> String {
    s.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let (class, method, args) = read_method(s).await.expect("connection.start");
    assert_eq!((class, method), (10, 10));
    s.write_all(&start_ok(mechanism, response, failure_close))
        .await
        .unwrap();
    start_mechanisms(&args)
}

/// Read until EOF or reset; the methods seen on the way.
async fn methods_until_eof<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> Vec<Method> {
    let mut seen = Vec::new();
    tokio::time::timeout(within, async {
        while let Some(m) = read_method(s).await {
            seen.push(m);
        }
    })
    .await
    .expect("the broker did not close the socket in time");
    seen
}

/// A raw TLS client over the test PKI.
async fn tls_socket(
    addr: SocketAddr,
    pki: &TestPki,
    client: Option<&Identity>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_without_failure_close_capability_closes_the_socket_without_a_frame() {
    let broker = TestBroker::start();
    let mut s = TcpStream::connect(broker.addr()).await.unwrap();
    login(&mut s, "PLAIN", b"\0guest\0wrong", false).await;
    // RabbitMQ 3.10 sends nothing and closes the socket (after 3 s).
    let seen = methods_until_eof(&mut s, Duration::from_secs(30)).await;
    assert!(seen.is_empty(), "frames after a refused login: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_with_failure_close_capability_gets_close_403_with_rabbitmq_text() {
    let broker = TestBroker::start();
    let mut s = TcpStream::connect(broker.addr()).await.unwrap();
    login(&mut s, "PLAIN", b"\0guest\0wrong", true).await;
    let (class, method, args) = read_method(&mut s).await.expect("connection.close");
    assert_eq!((class, method), (10, 50));
    // Class and method 0, as RabbitMQ 3.10 sends them.
    assert_eq!(close_args(&args), (403, REFUSED_PLAIN.to_owned(), 0, 0));
    // close-ok ends it at once (well within the 3 s silent-close delay).
    let started = Instant::now();
    s.write_all(&frame(0, 10, 51, &[])).await.unwrap();
    let seen = methods_until_eof(&mut s, Duration::from_secs(30)).await;
    assert!(seen.is_empty(), "{seen:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_with_failure_close_capability_gets_the_same_403() {
    let broker = TestBroker::start();
    let mut s = TcpStream::connect(broker.addr()).await.unwrap();
    login(&mut s, "PLAIN", b"\0nobody\0guest", true).await;
    let (_, _, args) = read_method(&mut s).await.expect("connection.close");
    assert_eq!(close_args(&args), (403, REFUSED_PLAIN.to_owned(), 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_amqplain_login_succeeds_and_a_wrong_amqplain_password_is_refused_with_403() {
    let broker = TestBroker::start();
    let url = format!(
        "amqp://guest:guest@{}/%2f?auth_mechanism=amqplain",
        broker.addr()
    );
    let conn = warren_integration::connect(&url).await;
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();

    let url = format!(
        "amqp://guest:wrong@{}/%2f?auth_mechanism=amqplain",
        broker.addr()
    );
    let err = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect_err("AMQPLAIN login with a wrong password succeeded");
    assert_eq!(amqp_error_code(&err), Some(403), "{err}");
    assert!(
        err.to_string().contains(
            "Login was refused using authentication mechanism AMQPLAIN. For details see the broker logfile."
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_plain_login_succeeds_and_a_wrong_plain_password_is_refused_with_403() {
    let broker = TestBroker::start();
    let conn = warren_integration::connect(&broker.url()).await;
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
    let url = format!("amqp://guest:wrong@{}/%2f", broker.addr());
    let err = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect_err("PLAIN login with a wrong password succeeded");
    assert_eq!(amqp_error_code(&err), Some(403), "{err}");
    assert!(err.to_string().contains(REFUSED_PLAIN), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_mechanism_closes_the_socket_without_a_frame() {
    let broker = TestBroker::start();
    let mut s = TcpStream::connect(broker.addr()).await.unwrap();
    let offered = login(&mut s, "CRAM-MD5", b"", true).await;
    assert_eq!(offered, "PLAIN AMQPLAIN");
    let seen = methods_until_eof(&mut s, Duration::from_secs(30)).await;
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_is_neither_offered_nor_accepted_on_a_plain_connection() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, false));
    let mut s = TcpStream::connect(broker.addr()).await.unwrap();
    let offered = login(&mut s, "EXTERNAL", b"", true).await;
    assert_eq!(offered, "PLAIN AMQPLAIN");
    let seen = methods_until_eof(&mut s, Duration::from_secs(30)).await;
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_is_offered_on_amqps_connections_when_configured() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, false));
    let client = pki.client("guest");
    let mut s = tls_socket(broker.amqps_addr(), &pki, Some(&client))
        .await
        .unwrap();
    let offered = login(&mut s, "EXTERNAL", b"", true).await;
    assert_eq!(offered, "PLAIN AMQPLAIN EXTERNAL");
    let (class, method, _) = read_method(&mut s).await.expect("connection.tune");
    assert_eq!((class, method), (10, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_is_not_offered_unless_configured() {
    let pki = TestPki::generate();
    let mut config = tls_config(&pki, true, false);
    config.server.auth_mechanisms = ServerConfig::default().auth_mechanisms;
    let broker = TestBroker::start_with(config);
    let client = pki.client("guest");
    let mut s = tls_socket(broker.amqps_addr(), &pki, Some(&client))
        .await
        .unwrap();
    let offered = login(&mut s, "EXTERNAL", b"", true).await;
    assert_eq!(offered, "PLAIN AMQPLAIN");
    let seen = methods_until_eof(&mut s, Duration::from_secs(30)).await;
    assert!(seen.is_empty(), "{seen:?}");
}

/// A TLS 1.1 ClientHello (no supported_versions extension): one cipher suite and the
/// signature_algorithms extension (without it rustls refuses for that reason first).
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    // signature_algorithms: rsa_pkcs1_sha256, ecdsa_secp256r1_sha256.
    let sigalgs = [0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x01, 0x04, 0x03];
    hello.extend_from_slice(&(sigalgs.len() as u16).to_be_bytes());
    hello.extend_from_slice(&sigalgs);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_client_is_refused_with_a_protocol_version_alert() {
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, false, false));
    let mut s = TcpStream::connect(broker.amqps_addr()).await.unwrap();
    s.write_all(&tls11_client_hello()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut reply))
        .await
        .expect("the broker kept a TLS 1.1 client open")
        .ok();
    // An alert record (21), protocol_version (70); never a ServerHello (22).
    assert!(reply.len() >= 7, "no alert: {reply:?}");
    assert_eq!(reply[0], 21, "not an alert record: {reply:?}");
    assert_eq!(reply[6], 70, "not protocol_version: {reply:?}");
}

// ---- bad input ----

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Wait (generously: the machine may be loaded) until `check` holds.
async fn settles(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !check() {
        assert!(
            Instant::now() < until,
            "{what} did not settle in {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One failed login on its own socket, to the end: with the capability the client
/// reads the 403 and answers close-ok; without, it waits for the broker to close.
async fn failed_login(addr: SocketAddr, failure_close: bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    login(&mut s, "PLAIN", b"\0guest\0not-the-password", failure_close).await;
    if failure_close {
        let (class, method, _) = read_method(&mut s).await.expect("connection.close");
        assert_eq!((class, method), (10, 50));
        s.write_all(&frame(0, 10, 51, &[])).await.unwrap();
    }
    let seen = methods_until_eof(&mut s, Duration::from_secs(60)).await;
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_failed_logins_and_a_thousand_half_open_tls_handshakes_leave_fds_memory_and_other_clients_as_they_were()
 {
    // 1,000 held sockets are 2,000 descriptors in this process (both ends).
    let _ = rlimit::increase_nofile_limit(8192);
    let pki = TestPki::generate();
    let mut config = tls_config(&pki, false, false);
    config.server.handshake_timeout = Duration::from_secs(2);
    config.server.silent_close_delay = Duration::from_millis(100);
    let broker = TestBroker::start_with(config);
    let addr = broker.addr();
    let amqps = broker.amqps_addr();

    // A client that stays connected throughout.
    let bystander = warren_integration::connect(&broker.url()).await;
    round_trip(&bystander).await;
    // Warm up once (first-use allocations: TLS session, tracing) before measuring.
    let warm = connect_tls(&broker.amqps_url(), &pki, None).await.unwrap();
    warm.close(200, "bye".into()).await.unwrap();
    drop(warm);
    failed_login(addr, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = open_fds();
    let rss_before = rss_kib();

    // 10,000 failed logins, 50 at a time, half announcing authentication_failure_close.
    let mut remaining = 10_000usize;
    while remaining > 0 {
        let batch = remaining.min(50);
        let logins: Vec<_> = (0..batch)
            .map(|i| tokio::spawn(failed_login(addr, i % 2 == 0)))
            .collect();
        for l in logins {
            l.await.unwrap();
        }
        remaining -= batch;
    }
    round_trip(&bystander).await;

    // 1,000 half-open TLS handshakes held at once: half send a partial ClientHello,
    // half nothing. The broker drops each at its handshake timeout.
    let hello = tls11_client_hello();
    let mut held = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut s = TcpStream::connect(amqps).await.unwrap();
        if i % 2 == 0 {
            s.write_all(&hello[..20]).await.unwrap();
        }
        held.push(s);
    }
    // Meanwhile a normal client works.
    round_trip(&bystander).await;
    let amqps_client = connect_tls(&broker.amqps_url(), &pki, None).await.unwrap();
    round_trip(&amqps_client).await;
    amqps_client.close(200, "bye".into()).await.unwrap();
    drop(amqps_client);
    // Every held socket is closed by the broker (EOF), not by us.
    let reads: Vec<_> = held
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let closed = tokio::time::timeout(Duration::from_secs(120), async {
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                closed.is_ok()
            })
        })
        .collect();
    for r in reads {
        assert!(r.await.unwrap(), "a half-open handshake was never closed");
    }

    // Descriptors and memory come back (slack: the runtime's own descriptors, allocator
    // caches; the 10,000 connections alone would be far above either).
    settles("open file descriptors", Duration::from_secs(60), || {
        open_fds() <= fds_before + 16
    })
    .await;
    settles("resident memory", Duration::from_secs(60), || {
        rss_kib() <= rss_before + 64 * 1024
    })
    .await;
    // The bystander never noticed.
    round_trip(&bystander).await;
    bystander.close(200, "bye".into()).await.unwrap();
}

// ---- pika over TLS ----

#[test]
fn pika_over_amqps_with_plain_and_with_external_by_client_certificate() {
    let Some(python) = pika_support::pika_python() else {
        eprintln!("pika: python3 not found, skipping the pika TLS test");
        return;
    };
    let pki = TestPki::generate();
    let broker = TestBroker::start_with(tls_config(&pki, true, false));
    let client = pki.client("guest");
    let stranger = pki.client("mallory");
    let port = broker.amqps_addr().port().to_string();
    let ca = pki.ca_file.display().to_string();
    let cert = client.cert_file.display().to_string();
    let key = client.key_file.display().to_string();
    let bad_cert = stranger.cert_file.display().to_string();
    let bad_key = stranger.key_file.display().to_string();
    let base = [("AMQPS_PORT", port.as_str()), ("CA_FILE", ca.as_str())];

    // PLAIN over TLS, no client certificate.
    let out = pika_support::run_script(
        &python,
        "pika_tls.py",
        &[&base[..], &[("MECHANISM", "PLAIN")][..]].concat(),
    );
    assert!(out.ok_line("OK PLAIN"), "{out}");
    // EXTERNAL with a certificate for CN=guest.
    let out = pika_support::run_script(
        &python,
        "pika_tls.py",
        &[
            &base[..],
            &[
                ("MECHANISM", "EXTERNAL"),
                ("CLIENT_CERT", cert.as_str()),
                ("CLIENT_KEY", key.as_str()),
            ][..],
        ]
        .concat(),
    );
    assert!(out.ok_line("OK EXTERNAL"), "{out}");
    // EXTERNAL with a certificate for an unknown user: pika reports the 403.
    let out = pika_support::run_script(
        &python,
        "pika_tls.py",
        &[
            &base[..],
            &[
                ("MECHANISM", "EXTERNAL"),
                ("CLIENT_CERT", bad_cert.as_str()),
                ("CLIENT_KEY", bad_key.as_str()),
                ("EXPECT_REFUSED", "1"),
            ][..],
        ]
        .concat(),
    );
    assert!(out.ok_line("REFUSED 403 EXTERNAL"), "{out}");
}

// ---- the binary ----

/// Run `warren` with `args` to its exit (killed after 20 s); (exit code, stderr lines).
fn run_binary(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut cmd = std::process::Command::new(warren_integration::warren_binary());
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("WARREN_") {
            cmd.env_remove(k);
        }
    }
    // Never the default management port 15672: tests run side by side.
    cmd.env("WARREN_HTTP_LISTEN", "127.0.0.1:0");
    cmd.env("WARREN_PROMETHEUS_LISTEN", "127.0.0.1:0");
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn binary_with_an_unusable_tls_file_exits_2_with_one_line_naming_the_file() {
    let pki = TestPki::generate();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let not_pem = tmp.path().join("not-a-key.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = tmp.path().join("missing-cert.pem");
    let cert = pki.server.cert_file.to_str().unwrap().to_owned();
    let key = pki.server.key_file.to_str().unwrap().to_owned();
    for (name, toml, expect) in [
        (
            "missing-cert",
            format!(
                "tls_cert_file = {:?}\ntls_key_file = {key:?}\n",
                missing.to_str().unwrap()
            ),
            missing.to_str().unwrap().to_owned(),
        ),
        (
            "no-key",
            format!(
                "tls_cert_file = {cert:?}\ntls_key_file = {:?}\n",
                not_pem.to_str().unwrap()
            ),
            not_pem.to_str().unwrap().to_owned(),
        ),
        (
            "key-without-cert",
            format!("tls_key_file = {key:?}\n"),
            "tls_key_file".to_owned(),
        ),
        (
            "verify-peer-without-ca",
            format!("tls_cert_file = {cert:?}\ntls_key_file = {key:?}\ntls_verify_peer = true\n"),
            "tls_ca_file".to_owned(),
        ),
        (
            "no-listener",
            "plain_listener = false\n".to_owned(),
            "plain_listener".to_owned(),
        ),
    ] {
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        let (code, lines) = run_binary(&[
            "--config",
            path.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(2), "{name}: {lines:#?}");
        assert_eq!(lines.len(), 1, "{name}: {lines:#?}");
        assert!(
            lines[0].contains("configuration") && lines[0].contains(&expect),
            "{name}: {lines:#?}"
        );
    }
    assert!(!data.exists(), "data dir created by a failed start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_amqps_on_tls_listen_and_prints_the_tls_settings() {
    let pki = TestPki::generate();
    let tmp = tempfile::tempdir().unwrap();
    let port = warren_integration::free_port();
    let config = tmp.path().join("warren.toml");
    std::fs::write(
        &config,
        format!(
            "plain_listener = false\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert_file = {:?}\ntls_key_file = {:?}\n",
            pki.server.cert_file.to_str().unwrap(),
            pki.server.key_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, _) = run_binary(&["--config", config.to_str().unwrap(), "--print-config"]);
    assert_eq!(code, Some(0));

    let mut child = std::process::Command::new(warren_integration::warren_binary())
        .args(["--config", config.to_str().unwrap(), "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("WARREN_HTTP_LISTEN", "127.0.0.1:0")
        .env("WARREN_PROMETHEUS_LISTEN", "127.0.0.1:0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("amqps://guest:guest@127.0.0.1:{port}/%2f");
    let deadline = Instant::now() + Duration::from_secs(60);
    let conn = loop {
        match connect_tls(&url, &pki, None).await {
            Ok(conn) => break conn,
            Err(e) if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("no amqps connection to the binary: {e}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    round_trip(&conn).await;
    conn.close(200, "bye".into()).await.unwrap();
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
