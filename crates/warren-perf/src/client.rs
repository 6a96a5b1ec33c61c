//! Connection set-up: TCP connect, the AMQP handshake and synchronous methods (declares,
//! binds, qos, consume, confirm.select, deletes), before a connection is handed to the
//! hot-path loops in `run.rs`.
//!
//! Methods are encoded with `warren_protocol::encode::method` and parsed with
//! `amq-protocol`. Content frames and deliveries that arrive while a later channel is
//! still being set up are kept, raw and in order, in [`SetupConn::carry`]; the consumer
//! loop processes them before it reads from the socket again.

use std::time::Duration;

use amq_protocol::protocol::{
    AMQPClass, basic, channel, confirm, connection, exchange, parse_class, queue,
};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use amq_protocol::uri::AMQPUri;
use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_protocol::{PROTOCOL_HEADER, encode};

use crate::wire::{self, FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD};

/// Where to connect, parsed from the `amqp://` URI.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub vhost: String,
    pub frame_max: u32,
}

impl Target {
    pub fn parse(uri: &str) -> Result<Self> {
        let parsed: AMQPUri = uri.parse().map_err(|e| anyhow!("bad --uri {uri:?}: {e}"))?;
        if parsed.scheme != amq_protocol::uri::AMQPScheme::AMQP {
            bail!("only amqp:// URIs are supported (no TLS)");
        }
        Ok(Self {
            host: parsed.authority.host,
            port: parsed.authority.port,
            user: parsed.authority.userinfo.username,
            password: parsed.authority.userinfo.password,
            vhost: parsed.vhost,
            frame_max: parsed.query.frame_max.unwrap_or(131_072),
        })
    }
}

/// An error the broker reported with a close method.
#[derive(Debug)]
pub struct BrokerClose(pub String);

impl std::fmt::Display for BrokerClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BrokerClose {}

/// A connection during set-up (request/reply style).
pub struct SetupConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    pub frame_max: u32,
    /// Raw content frames (deliveries) seen during set-up, in arrival order.
    pub carry: Vec<u8>,
    next_channel: u16,
    /// "product version" from the broker's connection.start server properties.
    pub server: String,
}

const RPC_TIMEOUT: Duration = Duration::from_secs(30);

impl SetupConn {
    /// TCP connect and handshake (PLAIN auth, heartbeats off).
    pub async fn open(target: &Target, name: &str) -> Result<Self> {
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| anyhow!("timeout connecting to {}:{}", target.host, target.port))?
        .with_context(|| format!("cannot connect to {}:{}", target.host, target.port))?;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            buf: vec![0; 1 << 16],
            start: 0,
            end: 0,
            frame_max: 131_072,
            carry: Vec::new(),
            next_channel: 1,
            server: String::new(),
        };
        tokio::time::timeout(RPC_TIMEOUT, conn.handshake(target, name))
            .await
            .map_err(|_| anyhow!("timeout during the AMQP handshake"))??;
        Ok(conn)
    }

    async fn handshake(&mut self, target: &Target, name: &str) -> Result<()> {
        self.stream.write_all(PROTOCOL_HEADER).await?;
        match self.read_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(start)) => {
                let text = |key: &str| match start.server_properties.inner().get(key) {
                    Some(AMQPValue::LongString(s)) => s.to_string(),
                    Some(AMQPValue::ShortString(s)) => s.to_string(),
                    _ => String::new(),
                };
                self.server = format!("{} {}", text("product"), text("version"))
                    .trim()
                    .to_string();
            }
            other => bail!("expected connection.start, got {other:?}"),
        }
        let mut props = FieldTable::default();
        props.insert(
            "product".into(),
            AMQPValue::LongString(LongString::from("warren-perf")),
        );
        props.insert(
            "connection_name".into(),
            AMQPValue::LongString(LongString::from(name)),
        );
        let mut caps = FieldTable::default();
        for cap in [
            "publisher_confirms",
            "consumer_cancel_notify",
            "basic.nack",
            "connection.blocked",
        ] {
            caps.insert(cap.into(), AMQPValue::Boolean(true));
        }
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        let response = format!("\0{}\0{}", target.user, target.password);
        self.send(
            0,
            &AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: props,
                mechanism: "PLAIN".into(),
                response: response.into(),
                locale: "en_US".into(),
            })),
        )
        .await?;
        let tune = match self.read_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
            other => bail!("expected connection.tune, got {other:?}"),
        };
        let frame_max = match tune.frame_max {
            0 => target.frame_max,
            n => n.min(target.frame_max),
        };
        self.frame_max = frame_max;
        self.send(
            0,
            &AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max,
                heartbeat: 0,
            })),
        )
        .await?;
        self.send(
            0,
            &AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: target.vhost.as_str().into(),
            })),
        )
        .await?;
        match self.read_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)) => Ok(()),
            other => bail!("expected connection.open-ok, got {other:?}"),
        }
    }

    /// Encode and write one method.
    pub async fn send(&mut self, channel: u16, method: &AMQPClass) -> Result<()> {
        let mut out = Vec::with_capacity(128);
        encode::method(&mut out, channel, method)?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Send a method and wait for its reply on the same channel.
    pub async fn call(&mut self, channel: u16, method: AMQPClass) -> Result<AMQPClass> {
        self.send(channel, &method).await?;
        tokio::time::timeout(RPC_TIMEOUT, self.read_method(channel))
            .await
            .map_err(|_| anyhow!("timeout waiting for the reply to {method:?}"))?
    }

    /// Read until a method frame arrives on `channel`; content frames and deliveries are
    /// kept in `carry`, closes become errors (after answering them).
    async fn read_method(&mut self, channel: u16) -> Result<AMQPClass> {
        loop {
            let max = self.frame_max.max(warren_protocol::FRAME_MIN_SIZE) as usize;
            let found = wire::next_frame(&self.buf[self.start..self.end], max)?
                .map(|(f, n)| (f.kind, f.channel, f.method_id(), f.payload.to_vec(), n));
            let Some((kind, ch, id, payload, n)) = found else {
                self.fill().await?;
                continue;
            };
            let raw = self.buf[self.start..self.start + n].to_vec();
            self.start += n;
            match (kind, id) {
                (FRAME_HEARTBEAT, _) => continue,
                (FRAME_HEADER | FRAME_BODY, _) => self.carry.extend_from_slice(&raw),
                (FRAME_METHOD, Some(wire::BASIC_DELIVER | wire::BASIC_ACK | wire::BASIC_NACK)) => {
                    self.carry.extend_from_slice(&raw)
                }
                (FRAME_METHOD, Some(wire::CONNECTION_CLOSE)) => {
                    let what = wire::describe_method(&payload);
                    let _ = self
                        .send(
                            0,
                            &AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                                connection::CloseOk {},
                            )),
                        )
                        .await;
                    return Err(BrokerClose(what).into());
                }
                (FRAME_METHOD, Some(wire::CHANNEL_CLOSE)) => {
                    let what = wire::describe_method(&payload);
                    let _ = self
                        .send(
                            ch,
                            &AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                        )
                        .await;
                    return Err(BrokerClose(what).into());
                }
                (FRAME_METHOD, Some(wire::CONNECTION_BLOCKED | wire::CONNECTION_UNBLOCKED)) => {
                    continue;
                }
                (FRAME_METHOD, _) if ch == channel => {
                    return match parse_class(&payload[..]) {
                        Ok((_, m)) => Ok(m),
                        Err(_) => bail!("unparsable method from the broker"),
                    };
                }
                (FRAME_METHOD, _) => continue,
                (k, _) => bail!("unknown frame type {k}"),
            }
        }
    }

    async fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            bail!("connection closed by the broker");
        }
        self.end += n;
        Ok(())
    }

    /// Open a new channel; returns its number.
    pub async fn open_channel(&mut self) -> Result<u16> {
        let ch = self.next_channel;
        self.next_channel += 1;
        match self
            .call(
                ch,
                AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
            )
            .await?
        {
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)) => Ok(ch),
            other => bail!("expected channel.open-ok, got {other:?}"),
        }
    }

    /// queue.declare with `arguments`; returns the message count.
    pub async fn queue_declare(
        &mut self,
        ch: u16,
        name: &str,
        durable: bool,
        passive: bool,
        arguments: FieldTable,
    ) -> Result<u32> {
        match self
            .call(
                ch,
                AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                    queue: name.into(),
                    passive,
                    durable,
                    exclusive: false,
                    auto_delete: false,
                    nowait: false,
                    arguments,
                })),
            )
            .await?
        {
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)) => Ok(ok.message_count),
            other => bail!("expected queue.declare-ok, got {other:?}"),
        }
    }

    /// Sum of the message counts of `queues` (passive declares, all sent in one write and
    /// then answered in order, so that a loaded broker costs one wait, not one per queue).
    pub async fn queue_depths(&mut self, ch: u16, queues: &[String]) -> Result<u64> {
        let mut out = Vec::with_capacity(queues.len() * 64);
        for q in queues {
            let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: q.as_str().into(),
                passive: true,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            }));
            encode::method(&mut out, ch, &declare)?;
        }
        self.stream.write_all(&out).await?;
        let mut sum = 0u64;
        for _ in queues {
            match tokio::time::timeout(RPC_TIMEOUT, self.read_method(ch))
                .await
                .map_err(|_| anyhow!("timeout waiting for queue.declare-ok"))??
            {
                AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)) => {
                    sum += u64::from(ok.message_count)
                }
                other => bail!("expected queue.declare-ok, got {other:?}"),
            }
        }
        Ok(sum)
    }

    pub async fn exchange_declare(
        &mut self,
        ch: u16,
        name: &str,
        kind: &str,
        durable: bool,
    ) -> Result<()> {
        match self
            .call(
                ch,
                AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                    exchange: name.into(),
                    kind: kind.into(),
                    passive: false,
                    durable,
                    auto_delete: false,
                    internal: false,
                    nowait: false,
                    arguments: FieldTable::default(),
                })),
            )
            .await?
        {
            AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_)) => Ok(()),
            other => bail!("expected exchange.declare-ok, got {other:?}"),
        }
    }

    pub async fn queue_bind(
        &mut self,
        ch: u16,
        queue_name: &str,
        exchange_name: &str,
        key: &str,
    ) -> Result<()> {
        match self
            .call(
                ch,
                AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                    queue: queue_name.into(),
                    exchange: exchange_name.into(),
                    routing_key: key.into(),
                    nowait: false,
                    arguments: FieldTable::default(),
                })),
            )
            .await?
        {
            AMQPClass::Queue(queue::AMQPMethod::BindOk(_)) => Ok(()),
            other => bail!("expected queue.bind-ok, got {other:?}"),
        }
    }

    pub async fn queue_delete(&mut self, ch: u16, name: &str) -> Result<u32> {
        match self
            .call(
                ch,
                AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
                    queue: name.into(),
                    if_unused: false,
                    if_empty: false,
                    nowait: false,
                })),
            )
            .await?
        {
            AMQPClass::Queue(queue::AMQPMethod::DeleteOk(ok)) => Ok(ok.message_count),
            other => bail!("expected queue.delete-ok, got {other:?}"),
        }
    }

    pub async fn exchange_delete(&mut self, ch: u16, name: &str) -> Result<()> {
        match self
            .call(
                ch,
                AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
                    exchange: name.into(),
                    if_unused: false,
                    nowait: false,
                })),
            )
            .await?
        {
            AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(_)) => Ok(()),
            other => bail!("expected exchange.delete-ok, got {other:?}"),
        }
    }

    pub async fn basic_qos(&mut self, ch: u16, prefetch: u16) -> Result<()> {
        match self
            .call(
                ch,
                AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                    prefetch_count: prefetch,
                    global: false,
                })),
            )
            .await?
        {
            AMQPClass::Basic(basic::AMQPMethod::QosOk(_)) => Ok(()),
            other => bail!("expected basic.qos-ok, got {other:?}"),
        }
    }

    pub async fn basic_consume(
        &mut self,
        ch: u16,
        queue_name: &str,
        tag: &str,
        no_ack: bool,
    ) -> Result<()> {
        match self
            .call(
                ch,
                AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                    queue: queue_name.into(),
                    consumer_tag: ShortString::from(tag),
                    no_local: false,
                    no_ack,
                    exclusive: false,
                    nowait: false,
                    arguments: FieldTable::default(),
                })),
            )
            .await?
        {
            AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_)) => Ok(()),
            other => bail!("expected basic.consume-ok, got {other:?}"),
        }
    }

    pub async fn confirm_select(&mut self, ch: u16) -> Result<()> {
        match self
            .call(
                ch,
                AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
                    nowait: false,
                })),
            )
            .await?
        {
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) => Ok(()),
            other => bail!("expected confirm.select-ok, got {other:?}"),
        }
    }

    /// connection.close and wait (bounded) for close-ok.
    pub async fn close(mut self) {
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        }));
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            self.send(0, &close).await?;
            self.read_method(0).await
        })
        .await;
    }

    /// Hand the socket and any unread bytes (carry first) to a hot-path loop.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>, u32) {
        let mut pending = self.carry;
        pending.extend_from_slice(&self.buf[self.start..self.end]);
        (self.stream, pending, self.frame_max)
    }
}

/// The connection.close frame bytes (used by the hot-path loops at shutdown).
pub fn connection_close_frame() -> Vec<u8> {
    let mut out = Vec::new();
    let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }));
    if encode::method(&mut out, 0, &close).is_err() {
        out.clear();
    }
    out
}

/// The connection.close-ok frame bytes.
pub fn connection_close_ok_frame() -> Vec<u8> {
    let mut out = Vec::new();
    let ok = AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}));
    if encode::method(&mut out, 0, &ok).is_err() {
        out.clear();
    }
    out
}
