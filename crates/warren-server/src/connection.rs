//! One client connection: the handshake, then the read/dispatch loop.
//!
//! The code is generic over the socket's two halves: a plain connection uses the
//! `TcpStream`'s owned halves (no lock between them, as before TLS), an amqps one does
//! its TLS handshake first ([`serve_tls`]) and splits the `TlsStream` with
//! `tokio::io::split`. One deadline, `handshake_timeout` from accept, covers the TLS
//! handshake and the AMQP handshake together: a half-open handshake costs a task and a
//! file descriptor until then, and one log line.
//!
//! SASL, as RabbitMQ 3.10 does it: connection.start offers `auth_mechanisms` (PLAIN and
//! AMQPLAIN by default; EXTERNAL, when configured, on amqps connections only). EXTERNAL
//! takes the user from the verified client certificate (`tls.rs`) and ignores the
//! response. A refused login (wrong credentials, a loopback-only user from elsewhere,
//! EXTERNAL without a usable certificate) is logged at warn with the peer, user and
//! mechanism; the client gets connection.close 403 "ACCESS_REFUSED - Login was refused
//! using authentication mechanism X. For details see the broker logfile." (class and
//! method 0, as RabbitMQ sends it) only if it announced the `authentication_failure_close`
//! capability; otherwise nothing. Either way the socket closes when the client answers
//! with close-ok or closes, at the latest after `silent_close_delay` (RabbitMQ's 3 s). An
//! unknown or not-offered mechanism, or a response that does not parse, gets no frame
//! at all and the same delayed close (RabbitMQ's `command_invalid` / `syntax_error`
//! during the handshake).
//!
//! The connection task owns the socket's read half, every channel's state and the
//! receiving end of the connection's [`ConnectionSink`]; the writer task (`writer.rs`)
//! owns the write half. One loop iteration reads whatever the socket has, decodes every
//! whole frame in the buffer and runs each through its channel; or takes the deliveries
//! queues have dispatched to this connection's consumers; or releases publisher confirms
//! the store has made durable; or sends a heartbeat; or runs the consumer timeout sweep
//! (`channel/timeout.rs`: a channel whose oldest unacked delivery is older than
//! `consumer_timeout` is closed with 406). Everything an iteration produced goes to the
//! writer in one piece.
//!
//! Closing: a client's connection.close is answered with close-ok; the client then closes
//! the socket (as with RabbitMQ; the server closes it only after `close_timeout`).
//! An error closes the channel (soft; the crossings of channel.close and close-ok are the
//! channel's, see `channel/mod.rs`) or the connection (hard): the server sends
//! connection.close ([`Phase::Closing`]) and, as RabbitMQ does, discards every frame on
//! the other channels and every method on channel 0 but these two: a client
//! connection.close (the two closes crossed) is answered with close-ok, and the client's
//! close-ok ends the connection. Without close-ok the socket is closed after
//! `close_timeout`. On the way out every channel requeues its unacked messages and
//! cancels its consumers (a single-active-consumer queue hands over to its next consumer
//! once the requeue is done), and the connection's exclusive queues are deleted.
//!
//! Resource alarms: a connection that publishes while an alarm is raised is blocked
//! (`flow.rs`): the loop stops reading the socket, keeps delivering, confirming and
//! sending heartbeats, and does not time the client's heartbeats out until it is
//! unblocked.
//!
//! connection.update-secret (a client refreshing its credentials, e.g. an OAuth 2 token)
//! checks the new secret as the password of the connection's user with the mechanism it
//! logged in with (`Broker::authenticate`): update-secret-ok, or 530 NOT_ALLOWED as
//! RabbitMQ's refusal. RabbitMQ 3.10's internal backend accepts any secret; Warren
//! refuses a wrong one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, warn};
use warren_broker::stats::{IoCounters, Stats};
use warren_broker::{
    AuthError, Broker, ConnectionAccess, ConnectionDetails, ConnectionHandle, ConnectionSink,
    ConsumerEvent, Durability, OpenedConnection, TlsDetails, VHost,
};
use warren_protocol::{
    AMQPClass, AMQPValue, FieldTable, Frame, FrameDecoder, LongString, PROTOCOL_HEADER,
    ShortString, channel as chan, connection as conn, encode,
};

use crate::channel::{self, Channel};
use crate::config::{SaslMechanism, ServerConfig};
use crate::error::Exception;
use crate::flow::Throttle;
use crate::tls::{self, CertLoginError, Tls};
use crate::writer::{self, Outbox};

/// What the connection negotiated and shares with its channels.
pub(crate) struct ConnCtx {
    pub id: u64,
    /// The authenticated user (checked against the user-id property of publishes).
    pub user: String,
    pub vhost: Arc<VHost>,
    /// The user's permissions in the vhost (re-read when the registry changes).
    pub access: ConnectionAccess,
    pub frame_max: u32,
    pub channel_max: u16,
    pub sink: Arc<ConnectionSink>,
    pub out: Vec<u8>,
    pub cancel_notify: bool,
    pub max_message_size: u64,
    /// The clock (ms since the epoch) read once per batch of queue events: the delivery
    /// time of the batch's deliveries, for the consumer timeout.
    pub now_ms: u64,
    /// The broker's statistics (channels add their batch counts to its totals).
    pub broker_stats: Arc<Stats>,
}

impl ConnCtx {
    /// Append a method frame to the output.
    pub(crate) fn send(&mut self, channel: u16, method: AMQPClass) {
        if let Err(e) = encode::method(&mut self.out, channel, &method) {
            warn!(error = %e, "cannot encode outbound method");
        }
    }
}

/// How the client logged in: what connection.update-secret checks a new secret with.
struct Login {
    mechanism: String,
    peer: SocketAddr,
}

/// Where the connection is after the handshake.
enum Phase {
    /// Running: frames go to their channels.
    Open,
    /// The server sent connection.close and waits for close-ok until the deadline; only
    /// connection.close and close-ok on channel 0 still count.
    Closing(Instant),
}

/// Serve one accepted plain socket until it closes.
pub(crate) async fn serve_plain(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    config: Arc<ServerConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let id = broker.next_connection_id();
    let span = tracing::info_span!("connection", id, %peer);
    async move {
        let deadline = tokio::time::Instant::now() + config.handshake_timeout;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let (rd, wr) = stream.into_split();
        let ends = Ends { peer, local };
        serve(rd, wr, None, ends, deadline, id, broker, config, shutdown).await;
    }
    .instrument(span)
    .await
}

/// Serve one accepted amqps socket: the TLS handshake, then as a plain one.
pub(crate) async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Tls,
    broker: Arc<Broker>,
    config: Arc<ServerConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let id = broker.next_connection_id();
    let span = tracing::info_span!("connection", id, %peer, tls = true);
    async move {
        let deadline = tokio::time::Instant::now() + config.handshake_timeout;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let stream = match tokio::time::timeout_at(deadline, tls.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                warn!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                info!(
                    timeout_ms = config.handshake_timeout.as_millis() as u64,
                    "TLS handshake not finished in time; closing"
                );
                return;
            }
        };
        let session = stream.get_ref().1;
        let client_cert = match session.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => tls::cert_login_name(cert, tls.cert_login_from),
            None => Err(CertLoginError::NoCertificate),
        };
        debug!(
            version = ?session.protocol_version(),
            cipher = ?session.negotiated_cipher_suite().map(|c| c.suite()),
            client_cert = ?client_cert,
            "TLS established"
        );
        let details = tls_details(session);
        let (rd, wr) = tokio::io::split(stream);
        let secure = Secure {
            client_cert,
            details,
        };
        serve(
            rd,
            wr,
            Some(secure),
            Ends { peer, local },
            deadline,
            id,
            broker,
            config,
            shutdown,
        )
        .await;
    }
    .instrument(span)
    .await
}

/// What a TLS connection tells the SASL exchange.
struct Secure {
    /// The user name of the verified client certificate, or why there is none.
    client_cert: Result<String, CertLoginError>,
    /// The session, for the management API.
    details: TlsDetails,
}

/// The socket's two ends.
#[derive(Debug, Clone, Copy)]
struct Ends {
    peer: SocketAddr,
    local: SocketAddr,
}

/// The TLS session as RabbitMQ's management API names it (`tlsv1.3`, `aes_256_gcm`,
/// `sha384`, key exchange `any` for TLS 1.3), with the client certificate's subject.
fn tls_details(session: &rustls::ServerConnection) -> TlsDetails {
    let protocol = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "tlsv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "tlsv1.2".to_owned(),
        Some(other) => format!("{other:?}").to_lowercase(),
        None => String::new(),
    };
    let suite = session
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    let (key_exchange, cipher, hash) = split_suite(&suite);
    let cert = session.peer_certificates().and_then(|c| c.first());
    let subject =
        cert.and_then(|c| tls::cert_login_name(c, tls::CertLoginFrom::DistinguishedName).ok());
    TlsDetails {
        protocol,
        cipher,
        key_exchange,
        hash,
        peer_cert_subject: subject,
        peer_cert_issuer: None,
        peer_cert_validity: None,
    }
}

/// `TLS13_AES_256_GCM_SHA384` -> (`any`, `aes_256_gcm`, `sha384`);
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` -> (`ecdhe_rsa`, `aes_128_gcm`, `sha256`).
fn split_suite(suite: &str) -> (String, String, String) {
    let lower = suite.to_lowercase();
    let (kx, rest) = match lower.strip_prefix("tls13_") {
        Some(rest) => ("any".to_owned(), rest.to_owned()),
        None => {
            let body = lower.strip_prefix("tls_").unwrap_or(&lower);
            match body.split_once("_with_") {
                Some((kx, rest)) => (kx.to_owned(), rest.to_owned()),
                None => (String::new(), body.to_owned()),
            }
        }
    };
    match rest.rsplit_once('_') {
        Some((cipher, hash)) => (kx, cipher.to_owned(), hash.to_owned()),
        None => (kx, rest, String::new()),
    }
}

/// Serve a connection (either kind) from the AMQP header on.
#[allow(clippy::too_many_arguments)]
async fn serve<R, W>(
    rd: R,
    wr: W,
    secure: Option<Secure>,
    ends: Ends,
    deadline: tokio::time::Instant,
    id: u64,
    broker: Arc<Broker>,
    config: Arc<ServerConfig>,
    shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let outbox = Arc::new(Outbox::default());
    let io = Arc::new(IoCounters::default());
    let writer = tokio::spawn(writer::run(wr, Arc::clone(&outbox), Arc::clone(&io)));
    let mut reader = Reader {
        rd,
        buf: BytesMut::new(),
        read_size: MIN_READ,
        decoder: FrameDecoder::new(config.frame_max),
        last_read: Instant::now(),
        io,
    };
    let handshake = tokio::time::timeout_at(
        deadline,
        handshake(
            &mut reader,
            &outbox,
            &broker,
            &config,
            ends,
            id,
            secure.as_ref(),
        ),
    )
    .await;
    let io = Arc::clone(&reader.io);
    let mut vhost = None;
    match handshake {
        Ok(Ok(Some(hs))) => {
            info!(user = %hs.user, vhost = %hs.opened.vhost.name, mechanism = %hs.login.mechanism, "connection open");
            vhost = Some(Arc::clone(&hs.opened.vhost));
            run(reader, &outbox, broker.clone(), &config, shutdown, id, hs).await;
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => debug!(error = %e, "handshake failed"),
        Err(_) => info!(
            timeout_ms = config.handshake_timeout.as_millis() as u64,
            "handshake not finished in time; closing"
        ),
    }
    outbox.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    // The vhost keeps the socket counts of its connections once they are gone.
    if let Some(vhost) = vhost {
        vhost.closed_io.absorb(io.snapshot());
    }
    broker.connection_closed(id);
    debug!("connection closed");
}

/// Smallest and largest read the connection asks the socket for. Reads grow while they
/// come back full (a busy publisher) and shrink when they don't, so an idle connection
/// holds a few KiB and a busy one reads in large gulps.
const MIN_READ: usize = 4096;
const MAX_READ: usize = 256 * 1024;

struct Reader<R> {
    rd: R,
    buf: BytesMut,
    read_size: usize,
    decoder: FrameDecoder,
    last_read: Instant,
    /// Socket counters (one relaxed add per read).
    io: Arc<IoCounters>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Read more bytes; `Ok(false)` on end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        if self.buf.is_empty() && self.buf.capacity() > 2 * MAX_READ {
            self.buf = BytesMut::new();
        }
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
        let spare = self.buf.capacity() - self.buf.len();
        let n = self.rd.read_buf(&mut self.buf).await?;
        self.last_read = Instant::now();
        self.io.received(n);
        if n == spare {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(MIN_READ);
        }
        Ok(n > 0)
    }

    /// Next whole frame during the handshake (heartbeats skipped).
    async fn frame(&mut self) -> Result<Option<Frame>, HandshakeError> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Heartbeat)) => continue,
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(HandshakeError::Protocol(e.into())),
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{}", .0.text)]
    Protocol(Exception),
}

struct Handshake {
    user: String,
    login: Login,
    opened: OpenedConnection,
    frame_max: u32,
    channel_max: u16,
    heartbeat: u16,
    cancel_notify: bool,
    /// The client announced the `connection.blocked` capability.
    blocked_notify: bool,
}

fn server_properties() -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "per_consumer_qos",
        "consumer_priorities",
        "direct_reply_to",
        "authentication_failure_close",
        "connection.blocked",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let s = |v: &str| AMQPValue::LongString(LongString::from(v.as_bytes().to_vec()));
    props.insert("product".into(), s("Warren"));
    props.insert("version".into(), s(env!("CARGO_PKG_VERSION")));
    props.insert(
        "platform".into(),
        s(&format!(
            "Rust ({} {})",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
    );
    props.insert("copyright".into(), s("The Warren developers"));
    props.insert(
        "information".into(),
        s("Licensed under the Apache License 2.0"),
    );
    // RabbitMQ names its cluster after the node, "rabbit@<host>"; clients display it.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    props.insert("cluster_name".into(), s(&format!("warren@{host}")));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}

/// Runs the handshake. `Ok(None)`: the peer went away or was refused (already answered).
async fn handshake<R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    outbox: &Outbox,
    broker: &Broker,
    config: &ServerConfig,
    ends: Ends,
    id: u64,
    secure: Option<&Secure>,
) -> Result<Option<Handshake>, HandshakeError> {
    let peer = ends.peer;
    while reader.buf.len() < PROTOCOL_HEADER.len() {
        if !reader.fill().await? {
            return Ok(None);
        }
    }
    if &reader.buf[..8] != PROTOCOL_HEADER {
        debug!(header = ?&reader.buf[..8], "unsupported protocol header");
        let mut out = PROTOCOL_HEADER.to_vec();
        outbox.push(&mut out);
        return Ok(None);
    }
    let _ = reader.buf.split_to(8);
    let mut out = Vec::with_capacity(512);
    // EXTERNAL on TLS connections only, with a client certificate or without, as
    // RabbitMQ: a client without one is refused with a reason in the log rather than
    // failing to negotiate a mechanism.
    let offered: Vec<SaslMechanism> = config
        .auth_mechanisms
        .iter()
        .copied()
        .filter(|m| *m != SaslMechanism::External || secure.is_some())
        .collect();
    let mechanisms = offered
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(" ");
    let start = AMQPClass::Connection(conn::AMQPMethod::Start(conn::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: server_properties(),
        mechanisms: mechanisms.as_str().into(),
        locales: "en_US".into(),
    }));
    send(&mut out, outbox, 0, &start);

    // start-ok
    let Step::Got(start_ok) = expect(reader, outbox, config, "connection.start_ok", |m| match m {
        conn::AMQPMethod::StartOk(x) => Some(x),
        _ => None,
    })
    .await?
    else {
        return Ok(None);
    };
    let cancel_notify = client_capability(&start_ok.client_properties, "consumer_cancel_notify");
    let blocked_notify = client_capability(&start_ok.client_properties, "connection.blocked");
    let client_id = match start_ok.client_properties.inner().get("client_id") {
        Some(AMQPValue::LongString(s)) => Some(s.to_string()),
        Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    let failure_close =
        client_capability(&start_ok.client_properties, "authentication_failure_close");
    let client_properties = start_ok.client_properties.clone();
    let name = start_ok.mechanism.as_str();
    let Some(mechanism) = SaslMechanism::from_name(name).filter(|m| offered.contains(m)) else {
        warn!(%peer, mechanism = name, offered = %mechanisms, "login refused: authentication mechanism not offered");
        return refuse_login(reader, outbox, config, None).await;
    };
    let response = start_ok.response.as_bytes();
    let login = match mechanism {
        SaslMechanism::Plain | SaslMechanism::Amqplain => {
            let credentials = match mechanism {
                SaslMechanism::Plain => parse_plain(response),
                _ => parse_amqplain(response),
            };
            let Some((user, password)) = credentials else {
                warn!(%peer, mechanism = name, "login refused: the SASL response does not parse");
                return refuse_login(reader, outbox, config, None).await;
            };
            broker
                .authenticate(name, &user, &password, peer.ip())
                .map_err(|e| (Some(user), auth_reason(&e)))
        }
        // The response is ignored, as RabbitMQ ignores it.
        SaslMechanism::External => match secure.map(|s| &s.client_cert) {
            Some(Ok(user)) => broker
                .authenticate_external(user, peer.ip())
                .map_err(|e| (Some(user.clone()), auth_reason(&e))),
            Some(Err(reason)) => Err((None, reason.to_string())),
            None => Err((None, CertLoginError::NotTls.to_string())),
        },
    };
    let user = match login {
        Ok(user) => user,
        Err((user, reason)) => {
            warn!(%peer, user = user.as_deref().unwrap_or(""), mechanism = name, %reason, "login refused");
            let e = Exception::new(
                403,
                format!(
                    "ACCESS_REFUSED - Login was refused using authentication mechanism {name}. For details see the broker logfile."
                ),
            );
            let close = failure_close.then_some(e);
            return refuse_login(reader, outbox, config, close).await;
        }
    };
    let mechanism = name.to_owned();

    let tune = AMQPClass::Connection(conn::AMQPMethod::Tune(conn::Tune {
        channel_max: config.channel_max,
        frame_max: config.frame_max,
        heartbeat: config.heartbeat,
    }));
    send(&mut out, outbox, 0, &tune);
    let Step::Got(tune_ok) = expect(reader, outbox, config, "connection.tune_ok", |m| match m {
        conn::AMQPMethod::TuneOk(x) => Some(x),
        _ => None,
    })
    .await?
    else {
        return Ok(None);
    };
    let frame_max = if tune_ok.frame_max == 0 {
        config.frame_max
    } else {
        tune_ok.frame_max
    };
    if frame_max < warren_protocol::FRAME_MIN_SIZE {
        let e = Exception::not_allowed(format!(
            "frame_max={frame_max} < {} min size",
            warren_protocol::FRAME_MIN_SIZE
        ))
        .on(10, 31);
        return refuse(reader, outbox, config, e).await;
    }
    if frame_max > config.frame_max {
        let e = Exception::not_allowed(format!(
            "frame_max={frame_max} > {} max size",
            config.frame_max
        ))
        .on(10, 31);
        return refuse(reader, outbox, config, e).await;
    }
    let channel_max = match tune_ok.channel_max {
        0 => config.channel_max,
        n => n.min(config.channel_max),
    };
    reader.decoder.set_frame_max(frame_max);

    let Step::Got(open) = expect(reader, outbox, config, "connection.open", |m| match m {
        conn::AMQPMethod::Open(x) => Some(x),
        _ => None,
    })
    .await?
    else {
        return Ok(None);
    };
    let details = ConnectionDetails {
        name: format!("{} -> {}", ends.peer, ends.local),
        peer,
        local: ends.local,
        protocol: "AMQP 0-9-1".to_owned(),
        auth_mechanism: mechanism.clone(),
        client_properties: client_properties.clone(),
        tls: secure.map(|s| s.details.clone()),
        frame_max,
        channel_max,
        heartbeat: tune_ok.heartbeat,
        connected_at: warren_broker::now_ms(),
        io: Arc::clone(&reader.io),
    };
    let opened = match broker.open_connection(
        id,
        &user,
        open.virtual_host.as_str(),
        details,
        client_id,
    ) {
        Ok(opened) => opened,
        Err(e) => {
            warn!(user = %user, vhost = %open.virtual_host, reason = %e, "connection.open refused");
            return refuse(reader, outbox, config, Exception::from(e).on(10, 40)).await;
        }
    };
    send(
        &mut out,
        outbox,
        0,
        &AMQPClass::Connection(conn::AMQPMethod::OpenOk(conn::OpenOk {})),
    );
    Ok(Some(Handshake {
        user,
        login: Login { mechanism, peer },
        opened,
        frame_max,
        channel_max,
        heartbeat: tune_ok.heartbeat,
        cancel_notify,
        blocked_notify,
    }))
}

/// Where a handshake step ended.
enum Step<T> {
    /// The expected method arrived.
    Got(T),
    /// The peer went away, or sent something else and was refused (already answered).
    Done,
}

/// Read the next handshake frame and expect a connection method that `pick` accepts; any
/// other method is refused with 503, any other frame with 505.
async fn expect<T, R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    outbox: &Outbox,
    config: &ServerConfig,
    expected: &str,
    pick: impl FnOnce(conn::AMQPMethod) -> Option<T>,
) -> Result<Step<T>, HandshakeError> {
    let Some(frame) = reader.frame().await? else {
        return Ok(Step::Done);
    };
    let refusal = match frame {
        Frame::Method { channel: 0, method } => {
            let ids = (method.get_amqp_class_id(), method.get_amqp_method_id());
            let picked = match *method {
                AMQPClass::Connection(m) => pick(m),
                _ => None,
            };
            if let Some(value) = picked {
                return Ok(Step::Got(value));
            }
            Exception::command_invalid(format!("expected '{expected}'")).on(ids.0, ids.1)
        }
        _ => Exception::new(505, format!("UNEXPECTED_FRAME - expected '{expected}'")),
    };
    refuse(reader, outbox, config, refusal).await?;
    Ok(Step::Done)
}

fn send(out: &mut Vec<u8>, outbox: &Outbox, channel: u16, method: &AMQPClass) {
    if let Err(e) = encode::method(out, channel, method) {
        warn!(error = %e, "cannot encode outbound method");
    }
    outbox.push(out);
}

/// Close during the handshake: connection.close, then wait briefly for close-ok.
async fn refuse<R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    outbox: &Outbox,
    config: &ServerConfig,
    e: Exception,
) -> Result<Option<Handshake>, HandshakeError> {
    let mut out = Vec::new();
    send(&mut out, outbox, 0, &close_method(&e));
    let _ = tokio::time::timeout(config.close_timeout, async {
        while let Ok(Some(frame)) = reader.frame().await {
            if let Frame::Method { method, .. } = frame
                && matches!(*method, AMQPClass::Connection(conn::AMQPMethod::CloseOk(_)))
            {
                break;
            }
        }
    })
    .await;
    Ok(None)
}

/// A refused login, as RabbitMQ ends it: connection.close when the client announced
/// `authentication_failure_close` (`close`), nothing otherwise; then the socket closes
/// when the client answers with close-ok or closes it, at the latest after
/// `silent_close_delay`. Whatever else the client sends meanwhile is discarded.
async fn refuse_login<R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    outbox: &Outbox,
    config: &ServerConfig,
    close: Option<Exception>,
) -> Result<Option<Handshake>, HandshakeError> {
    let announced = close.is_some();
    if let Some(e) = close {
        let mut out = Vec::new();
        send(&mut out, outbox, 0, &close_method(&e));
    }
    let _ = tokio::time::timeout(config.silent_close_delay, async {
        while let Ok(Some(frame)) = reader.frame().await {
            if announced
                && let Frame::Method { method, .. } = frame
                && matches!(*method, AMQPClass::Connection(conn::AMQPMethod::CloseOk(_)))
            {
                break;
            }
        }
    })
    .await;
    Ok(None)
}

/// Why the broker refused a login, for the log (never the password).
fn auth_reason(e: &AuthError) -> String {
    match e {
        AuthError::BadCredentials { .. } => "invalid credentials".to_owned(),
        other => other.to_string(),
    }
}

fn close_method(e: &Exception) -> AMQPClass {
    AMQPClass::Connection(conn::AMQPMethod::Close(conn::Close {
        reply_code: e.code,
        reply_text: ShortString::from(truncate(&e.text)),
        class_id: e.class_id,
        method_id: e.method_id,
    }))
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 255 {
        return s.to_owned();
    }
    let mut end = 255;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn client_capability(props: &FieldTable, name: &str) -> bool {
    match props.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(caps)) => {
            matches!(caps.inner().get(name), Some(AMQPValue::Boolean(true)))
        }
        _ => false,
    }
}

fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let pass = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    if parts.next().is_some() {
        return None;
    }
    Some((user, pass))
}

fn parse_amqplain(response: &[u8]) -> Option<(String, String)> {
    // A field table without its length prefix.
    let mut framed = Vec::with_capacity(response.len() + 4);
    framed.extend_from_slice(&(response.len() as u32).to_be_bytes());
    framed.extend_from_slice(response);
    let (_, table) = amq_protocol::types::parsing::parse_field_table(&framed[..]).ok()?;
    let get = |k: &str| match table.inner().get(k) {
        Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    Some((get("LOGIN")?, get("PASSWORD")?))
}

/// The main loop after a successful handshake.
async fn run<R: AsyncRead + Unpin>(
    mut reader: Reader<R>,
    outbox: &Arc<Outbox>,
    broker: Arc<Broker>,
    config: &ServerConfig,
    mut shutdown: watch::Receiver<bool>,
    id: u64,
    hs: Handshake,
) {
    let (sink, mut events) = ConnectionSink::new();
    let mut durability = broker.store().durability();
    let OpenedConnection {
        vhost,
        access,
        handle,
    } = hs.opened;
    let mut forced_close = handle.closed.clone();
    let mut conn = Connection {
        ctx: ConnCtx {
            id,
            user: hs.user,
            vhost,
            access,
            frame_max: hs.frame_max,
            channel_max: hs.channel_max,
            sink,
            out: Vec::new(),
            cancel_notify: hs.cancel_notify,
            max_message_size: broker.config().max_message_size,
            now_ms: warren_broker::now_ms(),
            broker_stats: Arc::clone(broker.stats()),
        },
        broker: Arc::clone(&broker),
        login: hs.login,
        handle,
        channels: HashMap::new(),
        phase: Phase::Open,
        done: false,
        sent_close_ok: false,
    };
    let heartbeat = Duration::from_secs(u64::from(hs.heartbeat));
    let tick_every = if hs.heartbeat == 0 {
        Duration::from_secs(3600)
    } else {
        heartbeat / 2
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick_every, tick_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent_since_tick = false;
    // The consumer timeout sweep (see `channel/timeout.rs`); idle when the timeout is off.
    let sweep_every = config
        .consumer_timeout
        .map_or(Duration::from_secs(3600), channel::sweep_every);
    let mut sweep =
        tokio::time::interval_at(tokio::time::Instant::now() + sweep_every, sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut event_batch: Vec<ConsumerEvent> = Vec::new();
    let mut throttle = Throttle::new(Arc::clone(broker.alarms()), hs.blocked_notify);
    let mut was_blocked = false;

    while !conn.done {
        let outbox_full = outbox.is_full();
        // Blocked by a resource alarm: the socket is not read (a connection being closed
        // still reads, for the close-ok).
        let blocked = throttle.is_blocked() && matches!(conn.phase, Phase::Open);
        let waiting_confirms = conn.channels.values().any(Channel::awaits_durability);
        let closing_deadline = match conn.phase {
            Phase::Closing(deadline) => Some(deadline),
            Phase::Open => None,
        };
        tokio::select! {
            biased;
            _ = shutdown.changed(), if closing_deadline.is_none() => {
                let e = Exception::new(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'");
                conn.close_connection(e, config);
            }
            Ok(()) = forced_close.changed(), if closing_deadline.is_none() => {
                let request = forced_close.borrow_and_update().clone();
                if let Some(request) = request {
                    info!(code = request.code, text = %request.text, "the broker closes the connection");
                    conn.close_connection(Exception::new(request.code, request.text), config);
                }
            }
            read = reader.fill(), if !outbox_full && !blocked => {
                match read {
                    Ok(true) => {
                        conn.handle_frames(&mut reader, &mut throttle, config);
                        // Let the tasks this read woke run before the next read: a consumer
                        // woken by these publishes waits in this worker's LIFO slot, which
                        // no other worker may steal, so a publisher whose socket is never
                        // empty would otherwise starve it until its budget runs out.
                        tokio::task::yield_now().await;
                    }
                    Ok(false) => {
                        debug!("client closed the socket");
                        conn.done = true;
                    }
                    Err(e) => {
                        debug!(error = %e, "socket read failed");
                        conn.done = true;
                    }
                }
            }
            n = events.recv_many(&mut event_batch, 256), if !outbox_full => {
                if n == 0 {
                    conn.done = true;
                } else {
                    conn.handle_events(&mut event_batch);
                }
            }
            _ = durability.changed(), if waiting_confirms => {}
            _ = throttle.changed(), if blocked => {
                if throttle.alarms_changed(&mut conn.ctx) {
                    // Heartbeat monitoring resumes now; then the frames read before the
                    // connection was blocked.
                    reader.last_read = Instant::now();
                    conn.handle_frames(&mut reader, &mut throttle, config);
                }
            }
            _ = outbox.write_failed(), if blocked => {
                // The only sign that a blocked client went away: our writes fail.
                debug!("socket write failed while blocked; closing");
                conn.done = true;
            }
            _ = outbox.drained(), if outbox_full => {}
            _ = sweep.tick(), if config.consumer_timeout.is_some() => {
                if let Some(timeout) = config.consumer_timeout {
                    conn.sweep_consumer_timeouts(timeout);
                }
            }
            _ = ticker.tick() => {
                if let Phase::Closing(deadline) = conn.phase
                    && Instant::now() >= deadline
                {
                    debug!("no connection.close-ok in time; closing the socket");
                    conn.done = true;
                }
                if hs.heartbeat > 0 {
                    if !throttle.is_blocked() && reader.last_read.elapsed() > heartbeat * 2 {
                        warn!(timeout_s = hs.heartbeat, "missed heartbeats from client; closing the connection");
                        conn.done = true;
                    } else if !sent_since_tick {
                        // Pushed here so that our own heartbeat does not count as
                        // traffic: an idle connection gets one every heartbeat/2, as
                        // from RabbitMQ (clients that only echo the broker's heartbeats
                        // time out after one interval without data).
                        encode::heartbeat(&mut conn.ctx.out);
                        outbox.push(&mut conn.ctx.out);
                    }
                }
                sent_since_tick = false;
            }
        }
        let snapshot: Durability = *durability.borrow_and_update();
        for channel in conn.channels.values_mut() {
            channel.release_confirms(&snapshot, &mut conn.ctx);
            channel.flush_stats(&conn.ctx);
        }
        if throttle.is_blocked() != was_blocked {
            was_blocked = throttle.is_blocked();
            conn.handle
                .info()
                .blocked
                .store(was_blocked, std::sync::atomic::Ordering::Relaxed);
        }
        if !conn.ctx.out.is_empty() {
            sent_since_tick = true;
            outbox.push(&mut conn.ctx.out);
        }
        if let Phase::Closing(_) = conn.phase
            && closing_deadline.is_none()
        {
            // Make sure the deadline is checked even without heartbeats.
            ticker.reset_after(config.close_timeout);
        }
    }
    conn.teardown();
    outbox.push(&mut conn.ctx.out);
    if conn.sent_close_ok {
        // close-ok tells the client it may close the socket; closing it first makes some
        // clients (amqp091-go) see EOF before close-ok and report the clean close as an
        // error. Wait for the client's close, as RabbitMQ does, within the close timeout.
        let _ = tokio::time::timeout(config.close_timeout, async {
            while let Ok(true) = reader.fill().await {
                reader.buf.clear();
            }
        })
        .await;
    }
}

struct Connection {
    ctx: ConnCtx,
    broker: Arc<Broker>,
    login: Login,
    /// The broker's record of this connection (limits, forced close); dropped at the end.
    handle: ConnectionHandle,
    channels: HashMap<u16, Channel>,
    phase: Phase,
    done: bool,
    /// We answered the client's connection.close: the client closes the socket.
    sent_close_ok: bool,
}

impl Connection {
    /// Run every whole frame in the read buffer, until the buffer runs out, the
    /// connection ends, or a publish blocks it (the rest stays buffered).
    fn handle_frames<R>(
        &mut self,
        reader: &mut Reader<R>,
        throttle: &mut Throttle,
        config: &ServerConfig,
    ) {
        loop {
            match reader.decoder.decode(&mut reader.buf) {
                Ok(Some(frame)) => {
                    let content = matches!(frame, Frame::Header { .. } | Frame::Body { .. });
                    self.handle_frame(frame, config);
                    if content
                        && throttle.alarm_raised()
                        && matches!(self.phase, Phase::Open)
                        && throttle.publish_received(&mut self.ctx)
                    {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "protocol error");
                    self.close_connection(e.into(), config);
                    // Nothing after a framing error can be trusted.
                    reader.buf.clear();
                    break;
                }
            }
            if self.done {
                break;
            }
        }
    }

    fn close_connection(&mut self, e: Exception, config: &ServerConfig) {
        if let Phase::Closing(_) = self.phase {
            return;
        }
        if e.code != 320 {
            warn!(code = e.code, text = %e.text, "closing connection with an error");
        } else {
            info!(text = %e.text, "closing connection: forced by the broker");
        }
        self.release_channels();
        self.ctx.send(0, close_method(&e));
        self.phase = Phase::Closing(Instant::now() + config.close_timeout);
        self.handle
            .info()
            .closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Close (406) every open channel whose oldest unacked delivery is older than
    /// `timeout`; closing requeues its deliveries.
    fn sweep_consumer_timeouts(&mut self, timeout: Duration) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        let now = warren_broker::now_ms();
        for (id, channel) in &mut self.channels {
            if let Some(e) = channel.consumer_timed_out(now, timeout) {
                warn!(
                    channel = id,
                    timeout_ms = timeout.as_millis() as u64,
                    "consumer timed out waiting for delivery acknowledgement; closing the channel"
                );
                channel.close_with(&mut self.ctx, &e);
            }
        }
    }

    fn release_channels(&mut self) {
        for (_, mut channel) in self.channels.drain() {
            channel.release(&mut self.ctx);
        }
    }

    fn teardown(&mut self) {
        self.release_channels();
    }

    fn handle_frame(&mut self, frame: Frame, config: &ServerConfig) {
        if let Phase::Closing(_) = self.phase {
            self.frame_while_closing(frame);
            return;
        }
        let result = match frame {
            Frame::Heartbeat => Ok(()),
            Frame::Method { channel: 0, method } => self.connection_method(*method),
            Frame::Method { channel, method } => self.channel_method(channel, *method),
            Frame::Header { channel, header } => match self.channels.get_mut(&channel) {
                Some(ch) => ch.content_header(&mut self.ctx, header),
                None if channel == 0 => Err(Exception::new(
                    505,
                    "UNEXPECTED_FRAME - content header on channel 0",
                )),
                None => Err(Exception::channel_error("expected 'channel.open'")),
            },
            Frame::Body { channel, payload } => match self.channels.get_mut(&channel) {
                Some(ch) => ch.content_body(&mut self.ctx, payload),
                None if channel == 0 => Err(Exception::new(
                    505,
                    "UNEXPECTED_FRAME - content body on channel 0",
                )),
                None => Err(Exception::channel_error("expected 'channel.open'")),
            },
        };
        if let Err(e) = result {
            self.close_connection(e, config);
        }
    }

    /// A frame after the server's connection.close: only close and close-ok on channel 0
    /// count, everything else is discarded (as RabbitMQ does).
    fn frame_while_closing(&mut self, frame: Frame) {
        let Frame::Method { channel: 0, method } = frame else {
            return;
        };
        match *method {
            AMQPClass::Connection(conn::AMQPMethod::CloseOk(_)) => self.done = true,
            AMQPClass::Connection(conn::AMQPMethod::Close(close)) => {
                // The client closed while our connection.close was on its way: answer it,
                // and keep waiting for the close-ok it owes for ours.
                debug!(code = close.reply_code, text = %close.reply_text, "client's connection.close crossed ours");
                self.ctx.send(
                    0,
                    AMQPClass::Connection(conn::AMQPMethod::CloseOk(conn::CloseOk {})),
                );
            }
            _ => {}
        }
    }

    fn connection_method(&mut self, method: AMQPClass) -> Result<(), Exception> {
        match method {
            AMQPClass::Connection(conn::AMQPMethod::Close(close)) => {
                debug!(code = close.reply_code, text = %close.reply_text, "client closed the connection");
                self.release_channels();
                self.ctx.send(
                    0,
                    AMQPClass::Connection(conn::AMQPMethod::CloseOk(conn::CloseOk {})),
                );
                self.sent_close_ok = true;
                self.done = true;
                Ok(())
            }
            AMQPClass::Connection(conn::AMQPMethod::CloseOk(_)) => {
                self.done = true;
                Ok(())
            }
            AMQPClass::Connection(conn::AMQPMethod::UpdateSecret(update)) => {
                self.update_secret(&update)
            }
            // A channel's method on channel 0: 504, in RabbitMQ's words.
            other => {
                let (c, m) = (other.get_amqp_class_id(), other.get_amqp_method_id());
                Err(
                    Exception::channel_error("unexpected method in connection state running")
                        .on(c, m),
                )
            }
        }
    }

    /// connection.update-secret: the new secret must be the user's password (PLAIN and
    /// AMQPLAIN, the mechanisms Warren offers), checked as at login. Never log the secret.
    fn update_secret(&mut self, update: &conn::UpdateSecret) -> Result<(), Exception> {
        let accepted = std::str::from_utf8(update.new_secret.as_bytes())
            .ok()
            .is_some_and(|secret| {
                self.broker
                    .authenticate(
                        &self.login.mechanism,
                        &self.ctx.user,
                        secret,
                        self.login.peer.ip(),
                    )
                    .is_ok()
            });
        if !accepted {
            warn!(user = %self.ctx.user, peer = %self.login.peer, reason = %update.reason, "new secret refused");
            return Err(
                Exception::not_allowed("New secret was refused by one of the backends").on(10, 70),
            );
        }
        info!(user = %self.ctx.user, reason = %update.reason, "user updated secret");
        self.ctx.send(
            0,
            AMQPClass::Connection(conn::AMQPMethod::UpdateSecretOk(conn::UpdateSecretOk {})),
        );
        Ok(())
    }

    fn channel_method(&mut self, id: u16, method: AMQPClass) -> Result<(), Exception> {
        let (class_id, method_id) = (method.get_amqp_class_id(), method.get_amqp_method_id());
        if let AMQPClass::Connection(_) = method {
            return Err(
                Exception::command_invalid("connection method on a non-zero channel")
                    .on(class_id, method_id),
            );
        }
        if let Some(e) = self
            .channels
            .get(&id)
            .and_then(Channel::content_interrupted)
        {
            return Err(e);
        }
        if let AMQPClass::Channel(chan::AMQPMethod::Open(_)) = method {
            if id > self.ctx.channel_max {
                return Err(Exception::not_allowed(format!(
                    "channel number {id} exceeds the negotiated channel_max {}",
                    self.ctx.channel_max
                ))
                .on(class_id, method_id));
            }
            if self.channels.contains_key(&id) {
                return Err(
                    Exception::channel_error("second 'channel.open' seen").on(class_id, method_id)
                );
            }
            let slot = self
                .handle
                .open_channel(id, self.broker.user_limits(&self.ctx.user))
                .map_err(|e| Exception::from(e).on(class_id, method_id))?;
            self.channels.insert(id, Channel::new(id, &self.ctx, slot));
            self.ctx.send(
                id,
                AMQPClass::Channel(chan::AMQPMethod::OpenOk(chan::OpenOk {})),
            );
            return Ok(());
        }
        let Some(channel) = self.channels.get_mut(&id) else {
            return Err(Exception::channel_error("expected 'channel.open'").on(class_id, method_id));
        };
        match channel.method(&mut self.ctx, method) {
            Ok(()) => {}
            Err(e) if e.is_connection_error() => return Err(e.on(class_id, method_id)),
            Err(e) => {
                let e = e.on(class_id, method_id);
                info!(channel = id, code = e.code, text = %e.text, "closing channel with an error");
                channel.close_with(&mut self.ctx, &e);
            }
        }
        if channel.is_closed() {
            self.channels.remove(&id);
        }
        Ok(())
    }

    fn handle_events(&mut self, batch: &mut Vec<ConsumerEvent>) {
        let n = batch.len();
        self.ctx.now_ms = warren_broker::now_ms();
        for event in batch.drain(..) {
            match event {
                ConsumerEvent::Deliver {
                    consumer,
                    queue,
                    entry,
                } => match self.channels.get_mut(&consumer.channel) {
                    Some(channel) => channel.deliver(&mut self.ctx, consumer, queue, entry),
                    None => {
                        consumer.release(1);
                        queue.return_undelivered(entry, !consumer.no_ack);
                    }
                },
                ConsumerEvent::Cancelled { consumer } => {
                    if let Some(channel) = self.channels.get_mut(&consumer.channel) {
                        channel.consumer_cancelled(&mut self.ctx, &consumer);
                    }
                }
            }
        }
        if self.ctx.sink.processed(n) {
            for channel in self.channels.values() {
                channel.kick_queues();
            }
        }
    }
}
