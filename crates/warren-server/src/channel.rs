//! One AMQP channel: its state machine and every method a client may send on it.
//!
//! A channel lives inside its connection task (it is not a task of its own). It owns the
//! content assembler for publishes, the consumers it registered, the unacked deliveries
//! (in delivery-tag order), the confirm and transaction modes, and the publisher confirms
//! still waiting for the store. Errors come back as [`Exception`]s: soft ones close just
//! this channel, hard ones the connection (the connection decides, in one place).
//!
//! Lifecycle ([`State`]), as RabbitMQ's `rabbit_channel`:
//! - `Open` from channel.open-ok. A client channel.close is answered with close-ok and
//!   the channel is `Closed` at once (the number may be reused).
//! - `ClosingByServer` once the server has sent channel.close for a soft error (the
//!   channel released its consumers, unacked messages and partial content then). Until
//!   the client's close-ok: a client channel.close (the two closes crossed on the wire)
//!   is answered with close-ok and the channel keeps waiting, since the client still owes
//!   close-ok for ours; every other method and every content frame is discarded, without
//!   an error. (channel.open on that number is refused by the connection with 504, as
//!   RabbitMQ does: the number is still in use.)
//! - `Closed` on the client's close-ok; the connection forgets the channel.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tracing::debug;
use warren_broker::{
    ChannelCredit, Consumer, ConsumerArgs, Destination, Durability, Entry, ExchangeSpec, Message,
    Queue, QueueDeclare, REPLY_TO, REPLY_TO_PREFIX, Ticket, TicketStatus, VHost, sender_selected,
};
use warren_protocol::{
    AMQPClass, Content, ContentAssembler, ContentEvent, ContentHeader, ProtocolError, ShortString,
    access, basic, channel as chan, confirm, encode, exchange, queue, tx,
};

use crate::connection::{ConnCtx, truncate};
use crate::error::Exception;

/// Where a channel is in its life; see the module docs.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Opened by the client; methods and content run.
    Open,
    /// The server sent channel.close and waits for close-ok; everything else is discarded.
    ClosingByServer,
    /// Closed by a close/close-ok exchange; the connection drops it.
    Closed,
}

struct Unacked {
    tag: u64,
    queue: Arc<Queue>,
    entry: Entry,
    consumer: Option<Arc<Consumer>>,
}

/// Something released in order once the store has synced its ticket.
enum Pending {
    Confirm { seq: u64, ticket: Option<Ticket> },
    CommitOk { ticket: Option<Ticket> },
}

impl Pending {
    fn ticket(&self) -> Option<Ticket> {
        match self {
            Pending::Confirm { ticket, .. } | Pending::CommitOk { ticket } => *ticket,
        }
    }
}

/// An operation held by a transaction until commit.
enum TxOp {
    Publish(Box<Content<basic::Publish>>),
    /// The deliveries an ack, nack or reject named. As in RabbitMQ they leave the unacked
    /// list at once (an unknown tag fails then, not at commit); commit settles them,
    /// rollback and channel close put them back.
    Settle {
        items: Vec<Unacked>,
        requeue: bool,
    },
}

pub(crate) struct Channel {
    id: u16,
    state: State,
    assembler: ContentAssembler<basic::Publish>,
    credit: Arc<ChannelCredit>,
    prefetch: u32,
    consumers: HashMap<ShortString, (Arc<Consumer>, Arc<Queue>)>,
    next_tag: u64,
    unacked: VecDeque<Unacked>,
    confirm: bool,
    next_publish_seq: u64,
    pending: VecDeque<Pending>,
    tx: Option<Vec<TxOp>>,
    last_queue: Option<String>,
    routed: Vec<Arc<Queue>>,
}

impl Channel {
    pub(crate) fn new(id: u16, ctx: &ConnCtx) -> Self {
        Self {
            id,
            state: State::Open,
            assembler: ContentAssembler::new(ctx.max_message_size),
            credit: Arc::new(ChannelCredit::default()),
            prefetch: 0,
            consumers: HashMap::new(),
            next_tag: 1,
            unacked: VecDeque::new(),
            confirm: false,
            next_publish_seq: 1,
            pending: VecDeque::new(),
            tx: None,
            last_queue: None,
            routed: Vec::new(),
        }
    }

    /// The error for a method frame arriving while this channel expects content frames.
    pub(crate) fn content_interrupted(&self) -> Option<Exception> {
        if self.state != State::Open {
            return None;
        }
        self.assembler.method_interrupts().map(Exception::from)
    }

    /// True once the close handshake is over: the connection drops the channel and the
    /// number may be opened again.
    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub(crate) fn awaits_durability(&self) -> bool {
        self.pending.front().is_some_and(|p| p.ticket().is_some())
    }

    /// Send channel.close for a soft error and release everything the channel holds.
    pub(crate) fn close_with(&mut self, ctx: &mut ConnCtx, e: &Exception) {
        self.release(ctx);
        ctx.send(
            self.id,
            AMQPClass::Channel(chan::AMQPMethod::Close(chan::Close {
                reply_code: e.code,
                reply_text: ShortString::from(truncate(&e.text)),
                class_id: e.class_id,
                method_id: e.method_id,
            })),
        );
        self.state = State::ClosingByServer;
    }

    /// Cancel consumers, requeue unacked messages, drop partial content and pending confirms.
    pub(crate) fn release(&mut self, ctx: &mut ConnCtx) {
        self.assembler.reset();
        for (_, (consumer, queue)) in self.consumers.drain() {
            if queue.cancel(&consumer) {
                let _ = ctx.vhost.remove_queue(&queue);
            }
        }
        if let Some(ops) = self.tx.take() {
            self.restore_unacked(ops);
        }
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        settle(all, true);
        self.pending.clear();
    }

    /// Put the deliveries held by discarded transaction operations back on the unacked
    /// list, in tag order.
    fn restore_unacked(&mut self, ops: Vec<TxOp>) {
        let mut restored = false;
        for op in ops {
            if let TxOp::Settle { items, .. } = op {
                restored |= !items.is_empty();
                self.unacked.extend(items);
            }
        }
        if restored {
            self.unacked.make_contiguous().sort_by_key(|u| u.tag);
        }
    }

    /// Settle now, or hold until commit on a transactional channel.
    fn settle_or_hold(&mut self, items: Vec<Unacked>, requeue: bool) {
        match self.tx.as_mut() {
            Some(ops) => ops.push(TxOp::Settle { items, requeue }),
            None => settle(items, requeue),
        }
    }

    pub(crate) fn kick_queues(&self) {
        for (_, queue) in self.consumers.values() {
            queue.kick();
        }
    }

    // ------------------------------------------------------------------ content

    pub(crate) fn content_header(
        &mut self,
        ctx: &mut ConnCtx,
        header: ContentHeader,
    ) -> Result<(), Exception> {
        if self.state != State::Open {
            return Ok(());
        }
        match self.assembler.header(header) {
            Ok(ContentEvent::Pending) => Ok(()),
            Ok(ContentEvent::Complete(content)) => self.published(ctx, content),
            Err(e) => self.content_error(ctx, e),
        }
    }

    pub(crate) fn content_body(
        &mut self,
        ctx: &mut ConnCtx,
        payload: Bytes,
    ) -> Result<(), Exception> {
        if self.state != State::Open {
            return Ok(());
        }
        match self.assembler.body(payload) {
            Ok(ContentEvent::Pending) => Ok(()),
            Ok(ContentEvent::Complete(content)) => self.published(ctx, content),
            Err(e) => self.content_error(ctx, e),
        }
    }

    fn content_error(&mut self, ctx: &mut ConnCtx, e: ProtocolError) -> Result<(), Exception> {
        match e {
            ProtocolError::MessageTooLarge { size, max } => {
                let e = Exception::precondition(format!(
                    "message size {size} is larger than configured max size {max}"
                ))
                .on(60, 40);
                self.close_with(ctx, &e);
                Ok(())
            }
            e => Err(e.into()),
        }
    }

    fn published(
        &mut self,
        ctx: &mut ConnCtx,
        content: Content<basic::Publish>,
    ) -> Result<(), Exception> {
        if let Some(user_id) = content.header.properties.user_id()
            && user_id.as_str() != ctx.user
        {
            let e = Exception::precondition(format!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                ctx.user
            ))
            .on(60, 40);
            return self.soft(ctx, e);
        }
        if let Some(ops) = self.tx.as_mut() {
            // Check the exchange now, as RabbitMQ does, so the error comes at publish time.
            let name = content.method.exchange.as_str();
            if ctx.vhost.exchange(name).is_none() {
                return self.soft(
                    ctx,
                    Exception::from(warren_broker::BrokerError::NotFound(format!(
                        "no exchange '{name}' in vhost '{}'",
                        ctx.vhost.name
                    )))
                    .on(60, 40),
                );
            }
            ops.push(TxOp::Publish(Box::new(content)));
            return Ok(());
        }
        match self.route_and_enqueue(ctx, content) {
            Ok(ticket) => {
                if self.confirm {
                    let seq = self.next_publish_seq;
                    self.next_publish_seq += 1;
                    self.pending.push_back(Pending::Confirm { seq, ticket });
                }
                Ok(())
            }
            Err(e) => self.soft(ctx, e.on(60, 40)),
        }
    }

    /// Close the channel for a soft error, or pass a hard one up.
    fn soft(&mut self, ctx: &mut ConnCtx, e: Exception) -> Result<(), Exception> {
        if e.is_connection_error() {
            return Err(e);
        }
        self.close_with(ctx, &e);
        Ok(())
    }

    fn route_and_enqueue(
        &mut self,
        ctx: &mut ConnCtx,
        content: Content<basic::Publish>,
    ) -> Result<Option<Ticket>, Exception> {
        let Content {
            method: publish,
            header,
            body,
        } = content;
        // CC / BCC: extra routing keys; BCC is removed before anyone sees the message.
        let extra_keys = sender_selected::extra_routing_keys(&header.properties)?;
        let (mut properties, mut raw_properties) = (header.properties, header.raw_properties);
        let mut rewritten = false;
        if let Some(without) = sender_selected::without_bcc(&properties) {
            properties = without;
            rewritten = true;
        }
        // Direct reply-to: `amq.rabbitmq.reply-to` becomes this channel's reply queue.
        if properties
            .reply_to()
            .as_ref()
            .is_some_and(|r| r.as_str() == REPLY_TO)
        {
            let Some(reply_queue) = self.reply_queue() else {
                return Err(Exception::precondition(
                    "fast reply consumer does not exist",
                ));
            };
            properties = properties.with_reply_to(reply_queue.as_ref().into());
            rewritten = true;
        }
        if rewritten {
            raw_properties = encode::properties(&properties).map_err(|e| {
                Exception::new(
                    541,
                    format!("INTERNAL_ERROR - cannot encode properties: {e}"),
                )
            })?;
        }
        let message = Arc::new(Message::new(
            publish.exchange,
            publish.routing_key,
            &properties,
            raw_properties,
            body,
            warren_broker::now_ms(),
        )?);
        self.routed.clear();
        ctx.vhost.route(
            message.exchange.as_str(),
            &message,
            properties.headers().as_ref(),
            &extra_keys,
            &mut self.routed,
        )?;
        if self.routed.is_empty() {
            if publish.mandatory {
                ctx.send(
                    self.id,
                    AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                        reply_code: 312,
                        reply_text: "NO_ROUTE".into(),
                        exchange: message.exchange.clone(),
                        routing_key: message.routing_key.clone(),
                    })),
                );
                encode::content(
                    &mut ctx.out,
                    self.id,
                    &message.raw_properties,
                    &message.body,
                    ctx.frame_max,
                );
            }
            return Ok(None);
        }
        let mut encoded = None;
        let mut ticket: Option<Ticket> = None;
        for queue in self.routed.drain(..) {
            if let Some(t) = queue.publish(&message, &mut encoded).ticket {
                ticket = Some(ticket.map_or(t, |old| old.max(t)));
            }
        }
        Ok(ticket)
    }

    // ------------------------------------------------------------------ confirms

    /// Send the confirms (and tx.commit-ok) whose writes the store has synced, coalescing
    /// runs of acks into one `basic.ack multiple=true`.
    pub(crate) fn release_confirms(&mut self, durability: &Durability, ctx: &mut ConnCtx) {
        let mut run: Option<(u64, u64)> = None; // (first, last) seq of acks not yet sent
        while let Some(front) = self.pending.front() {
            let status = match front.ticket() {
                Some(t) => durability.status(t),
                None => TicketStatus::Synced,
            };
            if status == TicketStatus::Pending {
                break;
            }
            let Some(item) = self.pending.pop_front() else {
                break;
            };
            match item {
                Pending::Confirm { seq, .. } if status == TicketStatus::Synced => {
                    run = Some(run.map_or((seq, seq), |(first, _)| (first, seq)));
                }
                Pending::Confirm { seq, .. } => {
                    self.flush_acks(ctx, run.take());
                    ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                            delivery_tag: seq,
                            multiple: false,
                            requeue: false,
                        })),
                    );
                }
                Pending::CommitOk { .. } => {
                    self.flush_acks(ctx, run.take());
                    if status == TicketStatus::Synced {
                        ctx.send(
                            self.id,
                            AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
                        );
                    } else {
                        let e = Exception::new(541, "INTERNAL_ERROR - the message store failed; the transaction was not committed").on(90, 20);
                        self.close_with(ctx, &e);
                        return;
                    }
                }
            }
        }
        self.flush_acks(ctx, run);
    }

    fn flush_acks(&self, ctx: &mut ConnCtx, run: Option<(u64, u64)>) {
        if let Some((first, last)) = run {
            ctx.send(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                    delivery_tag: last,
                    multiple: last > first,
                })),
            );
        }
    }

    // ------------------------------------------------------------------ deliveries

    pub(crate) fn deliver(
        &mut self,
        ctx: &mut ConnCtx,
        consumer: Arc<Consumer>,
        queue: Arc<Queue>,
        entry: Entry,
    ) {
        // Every path that removes a consumer marks it cancelled (Queue::cancel/delete).
        let registered = self.state == State::Open && !consumer.is_cancelled();
        let Some(message) = entry.message.as_ref().filter(|_| registered) else {
            consumer.release(1);
            queue.return_undelivered(entry, !consumer.no_ack);
            return;
        };
        let tag = self.next_tag;
        self.next_tag += 1;
        encode::deliver(
            &mut ctx.out,
            self.id,
            consumer.tag.as_str().as_bytes(),
            tag,
            entry.redelivered,
            message.exchange.as_str().as_bytes(),
            message.routing_key.as_str().as_bytes(),
            &message.raw_properties,
            &message.body,
            ctx.frame_max,
        );
        if consumer.no_ack {
            queue.auto_acked(&entry);
        } else {
            self.unacked.push_back(Unacked {
                tag,
                queue,
                entry,
                consumer: Some(consumer),
            });
        }
    }

    pub(crate) fn consumer_cancelled(&mut self, ctx: &mut ConnCtx, consumer: &Arc<Consumer>) {
        let ours = self
            .consumers
            .get(&consumer.tag)
            .is_some_and(|(c, _)| Arc::ptr_eq(c, consumer));
        if !ours {
            return;
        }
        self.consumers.remove(&consumer.tag);
        if ctx.cancel_notify && self.state == State::Open {
            ctx.send(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                    consumer_tag: consumer.tag.clone(),
                    nowait: true,
                })),
            );
        }
    }

    // ------------------------------------------------------------------ methods

    pub(crate) fn method(&mut self, ctx: &mut ConnCtx, method: AMQPClass) -> Result<(), Exception> {
        if self.state == State::ClosingByServer {
            self.method_while_closing(ctx, method);
            return Ok(());
        }
        let vhost = Arc::clone(&ctx.vhost);
        match method {
            AMQPClass::Channel(m) => self.channel_method(ctx, m),
            AMQPClass::Exchange(m) => self.exchange_method(ctx, &vhost, m),
            AMQPClass::Queue(m) => self.queue_method(ctx, &vhost, m),
            AMQPClass::Basic(m) => self.basic_method(ctx, &vhost, m),
            AMQPClass::Confirm(confirm::AMQPMethod::Select(select)) => {
                if self.tx.is_some() {
                    return Err(Exception::precondition(
                        "cannot switch from tx to confirm mode",
                    ));
                }
                self.confirm = true;
                if !select.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
                    );
                }
                Ok(())
            }
            AMQPClass::Tx(m) => self.tx_method(ctx, m),
            AMQPClass::Access(_) => {
                ctx.send(
                    self.id,
                    AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})),
                );
                Ok(())
            }
            other => Err(not_from_client(other)),
        }
    }

    /// A method on a channel the server is closing (RabbitMQ's `closing` state).
    fn method_while_closing(&mut self, ctx: &mut ConnCtx, method: AMQPClass) {
        match method {
            AMQPClass::Channel(chan::AMQPMethod::CloseOk(_)) => self.state = State::Closed,
            AMQPClass::Channel(chan::AMQPMethod::Close(close)) => {
                // The client closed while our channel.close was on its way: answer its
                // close, and keep waiting for the close-ok it owes for ours.
                debug!(channel = self.id, code = close.reply_code, text = %close.reply_text, "client's channel.close crossed ours");
                ctx.send(
                    self.id,
                    AMQPClass::Channel(chan::AMQPMethod::CloseOk(chan::CloseOk {})),
                );
            }
            _ => {}
        }
    }

    fn channel_method(&mut self, ctx: &mut ConnCtx, m: chan::AMQPMethod) -> Result<(), Exception> {
        match m {
            chan::AMQPMethod::Close(close) => {
                debug!(channel = self.id, code = close.reply_code, text = %close.reply_text, "client closed the channel");
                self.release(ctx);
                ctx.send(
                    self.id,
                    AMQPClass::Channel(chan::AMQPMethod::CloseOk(chan::CloseOk {})),
                );
                self.state = State::Closed;
                Ok(())
            }
            chan::AMQPMethod::CloseOk(_) => Ok(()),
            chan::AMQPMethod::Flow(flow) => {
                self.credit
                    .flow_active
                    .store(flow.active, Ordering::Relaxed);
                ctx.send(
                    self.id,
                    AMQPClass::Channel(chan::AMQPMethod::FlowOk(chan::FlowOk {
                        active: flow.active,
                    })),
                );
                if flow.active {
                    self.kick_queues();
                }
                Ok(())
            }
            chan::AMQPMethod::FlowOk(_) => Ok(()),
            chan::AMQPMethod::Open(_) | chan::AMQPMethod::OpenOk(_) => {
                Err(Exception::channel_error("second 'channel.open' seen"))
            }
        }
    }

    fn exchange_method(
        &mut self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        m: exchange::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            exchange::AMQPMethod::Declare(d) => {
                let spec = ExchangeSpec {
                    name: d.exchange.as_str().to_owned(),
                    kind: d.kind.as_str().to_owned(),
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: d.arguments,
                };
                vhost.declare_exchange(spec, d.passive)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(
                            exchange::DeclareOk {},
                        )),
                    );
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                vhost.delete_exchange(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Bind(b) => {
                let dest = Destination::Exchange(Arc::from(b.destination.as_str()));
                vhost.bind(
                    b.source.as_str(),
                    dest,
                    b.routing_key.as_str(),
                    &b.arguments,
                    ctx.id,
                )?;
                if !b.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})),
                    );
                }
            }
            exchange::AMQPMethod::Unbind(b) => {
                let dest = Destination::Exchange(Arc::from(b.destination.as_str()));
                vhost.unbind(
                    b.source.as_str(),
                    dest,
                    b.routing_key.as_str(),
                    &b.arguments,
                    ctx.id,
                )?;
                if !b.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})),
                    );
                }
            }
            other => return Err(not_from_client(AMQPClass::Exchange(other))),
        }
        Ok(())
    }

    /// The name of this channel's direct reply-to queue, if it has a reply consumer.
    fn reply_queue(&self) -> Option<Arc<str>> {
        self.consumers
            .values()
            .map(|(_, queue)| queue.name())
            .find(|name| name.starts_with(REPLY_TO_PREFIX))
            .cloned()
    }

    /// The queue a method names, or the channel's last declared queue for "".
    fn queue_name(&self, name: &ShortString) -> Result<String, Exception> {
        if !name.as_str().is_empty() {
            return Ok(name.as_str().to_owned());
        }
        self.last_queue.clone().ok_or_else(|| {
            Exception::from(warren_broker::BrokerError::NotFound(
                "no previously declared queue".into(),
            ))
        })
    }

    fn queue_method(
        &mut self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        m: queue::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            queue::AMQPMethod::Declare(d) => {
                // Direct reply-to: the pseudo-queue always answers (RabbitMQ reports one
                // consumer), and a reply queue answers a passive declare while its consumer
                // lives (an RPC server's "is the caller still there?").
                let reply = d.queue.as_str() == REPLY_TO
                    || (d.passive
                        && d.queue.as_str().starts_with(REPLY_TO_PREFIX)
                        && vhost.reply_queue(d.queue.as_str()).is_some());
                if reply {
                    if !d.nowait {
                        ctx.send(
                            self.id,
                            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                                queue: d.queue,
                                message_count: 0,
                                consumer_count: 1,
                            })),
                        );
                    }
                    return Ok(());
                }
                // "" names a new server-named queue; a passive declare of "" looks for a
                // queue named "" (there is none: 404), as RabbitMQ, rather than the last
                // declared queue.
                let name = if d.queue.as_str().is_empty() && !d.passive {
                    VHost::generate_queue_name()
                } else {
                    d.queue.as_str().to_owned()
                };
                // amq.* names are the server's (amq.gen-*): as RabbitMQ, a client may not
                // declare one actively, even an existing server-named queue by its name.
                if !d.passive && d.queue.as_str().starts_with("amq.") {
                    return Err(warren_broker::BrokerError::AccessRefused(format!(
                        "queue name '{}' contains reserved prefix 'amq.*'",
                        d.queue
                    ))
                    .into());
                }
                let declared = vhost.declare_queue(
                    QueueDeclare {
                        name: name.clone(),
                        passive: d.passive,
                        durable: d.durable,
                        exclusive: d.exclusive,
                        auto_delete: d.auto_delete,
                        arguments: d.arguments,
                    },
                    ctx.id,
                )?;
                self.last_queue = Some(name.clone());
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                            queue: name.into(),
                            message_count: declared.message_count,
                            consumer_count: declared.consumer_count,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Bind(b) => {
                let name = self.queue_name(&b.queue)?;
                let key = if b.queue.as_str().is_empty() && b.routing_key.as_str().is_empty() {
                    name.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                vhost.bind(
                    b.exchange.as_str(),
                    Destination::Queue(Arc::from(name.as_str())),
                    &key,
                    &b.arguments,
                    ctx.id,
                )?;
                if !b.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})),
                    );
                }
            }
            queue::AMQPMethod::Unbind(b) => {
                let name = self.queue_name(&b.queue)?;
                // The same shortcut as queue.bind: no queue and no key mean the last
                // declared queue, bound with its name.
                let key = if b.queue.as_str().is_empty() && b.routing_key.as_str().is_empty() {
                    name.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                vhost.unbind(
                    b.exchange.as_str(),
                    Destination::Queue(Arc::from(name.as_str())),
                    &key,
                    &b.arguments,
                    ctx.id,
                )?;
                ctx.send(
                    self.id,
                    AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})),
                );
            }
            queue::AMQPMethod::Purge(p) => {
                let name = self.queue_name(&p.queue)?;
                let count = vhost.queue(&name, ctx.id)?.purge();
                if !p.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk {
                            message_count: count,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let name = self.queue_name(&d.queue)?;
                let count = vhost.delete_queue(&name, d.if_unused, d.if_empty, ctx.id)?;
                if !d.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
                            message_count: count,
                        })),
                    );
                }
            }
            other => return Err(not_from_client(AMQPClass::Queue(other))),
        }
        Ok(())
    }

    fn basic_method(
        &mut self,
        ctx: &mut ConnCtx,
        vhost: &VHost,
        m: basic::AMQPMethod,
    ) -> Result<(), Exception> {
        match m {
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return Err(Exception::new(540, "NOT_IMPLEMENTED - immediate=true"));
                }
                self.assembler.start(p, 60, 40);
            }
            basic::AMQPMethod::Qos(q) => {
                // A non-zero prefetch-size never gets here: the frame decoder refuses it
                // with 540, as RabbitMQ (amq-protocol drops the field when parsing).
                if q.global {
                    self.credit
                        .global_prefetch
                        .store(u32::from(q.prefetch_count), Ordering::Relaxed);
                    self.kick_queues();
                } else {
                    self.prefetch = u32::from(q.prefetch_count);
                }
                ctx.send(
                    self.id,
                    AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
                );
            }
            basic::AMQPMethod::Consume(c) => {
                let name = self.queue_name(&c.queue)?;
                let reply = name == REPLY_TO;
                let queue = if reply {
                    // Direct reply-to: checked here, the queue is made once the consumer is
                    // known to be valid.
                    if !c.no_ack {
                        return Err(Exception::precondition("reply consumer cannot acknowledge"));
                    }
                    if self.reply_queue().is_some() {
                        return Err(Exception::precondition("reply consumer already set"));
                    }
                    None
                } else {
                    Some(vhost.queue(&name, ctx.id)?)
                };
                let tag: ShortString = if c.consumer_tag.as_str().is_empty() {
                    generate_consumer_tag().into()
                } else {
                    c.consumer_tag.clone()
                };
                if self.consumers.contains_key(&tag) {
                    return Err(Exception::not_allowed(format!(
                        "attempt to reuse consumer tag '{tag}'"
                    )));
                }
                let args = ConsumerArgs::parse(&name, &vhost.name, &c.arguments)?;
                let consumer = Arc::new(Consumer::new(
                    tag.clone(),
                    self.id,
                    ctx.id,
                    c.no_ack,
                    c.exclusive,
                    self.prefetch,
                    args.priority,
                    Arc::clone(&self.credit),
                    Arc::clone(&ctx.sink),
                ));
                let queue = match queue {
                    Some(queue) => queue,
                    None => vhost.create_reply_queue(ctx.id),
                };
                // Registering may dispatch at once, but deliveries reach this connection as
                // events handled after this method, so consume-ok still goes out first.
                queue.consume(Arc::clone(&consumer))?;
                self.consumers.insert(tag.clone(), (consumer, queue));
                if !c.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                            consumer_tag: tag,
                        })),
                    );
                }
            }
            basic::AMQPMethod::Cancel(c) => {
                if let Some((consumer, queue)) = self.consumers.remove(&c.consumer_tag)
                    && queue.cancel(&consumer)
                {
                    vhost.remove_queue(&queue)?;
                }
                if !c.nowait {
                    ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                            consumer_tag: c.consumer_tag,
                        })),
                    );
                }
            }
            basic::AMQPMethod::Get(g) => {
                let name = self.queue_name(&g.queue)?;
                let queue = vhost.queue(&name, ctx.id)?;
                match queue.get(g.no_ack) {
                    Some((entry, remaining)) => {
                        let Some(message) = entry.message.clone() else {
                            ctx.send(
                                self.id,
                                AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
                            );
                            return Ok(());
                        };
                        let tag = self.next_tag;
                        self.next_tag += 1;
                        ctx.send(
                            self.id,
                            AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
                                delivery_tag: tag,
                                redelivered: entry.redelivered,
                                exchange: message.exchange.clone(),
                                routing_key: message.routing_key.clone(),
                                message_count: remaining,
                            })),
                        );
                        encode::content(
                            &mut ctx.out,
                            self.id,
                            &message.raw_properties,
                            &message.body,
                            ctx.frame_max,
                        );
                        if !g.no_ack {
                            self.unacked.push_back(Unacked {
                                tag,
                                queue,
                                entry,
                                consumer: None,
                            });
                        }
                    }
                    None => ctx.send(
                        self.id,
                        AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
                    ),
                }
            }
            basic::AMQPMethod::Ack(a) => {
                let taken = self.take_unacked(a.delivery_tag, a.multiple)?;
                self.settle_or_hold(taken, false);
            }
            basic::AMQPMethod::Nack(n) => {
                let taken = self.take_unacked(n.delivery_tag, n.multiple)?;
                self.settle_or_hold(taken, n.requeue);
            }
            basic::AMQPMethod::Reject(r) => {
                let taken = self.take_unacked(r.delivery_tag, false)?;
                self.settle_or_hold(taken, r.requeue);
            }
            basic::AMQPMethod::Recover(r) => {
                self.recover(r.requeue)?;
                ctx.send(
                    self.id,
                    AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
                );
            }
            basic::AMQPMethod::RecoverAsync(r) => self.recover(r.requeue)?,
            other => return Err(not_from_client(AMQPClass::Basic(other))),
        }
        Ok(())
    }

    fn recover(&mut self, requeue: bool) -> Result<(), Exception> {
        if !requeue {
            return Err(Exception::new(540, "NOT_IMPLEMENTED - requeue=false"));
        }
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        settle(all, true);
        Ok(())
    }

    /// Remove the deliveries an ack/nack/reject names. Unknown tags are a 406.
    fn take_unacked(&mut self, tag: u64, multiple: bool) -> Result<Vec<Unacked>, Exception> {
        let unknown = || Exception::precondition(format!("unknown delivery tag {tag}"));
        if multiple {
            if tag == 0 {
                return Ok(self.unacked.drain(..).collect());
            }
            // As RabbitMQ: the tag named must itself be outstanding, not just tags below it.
            let end = self.unacked.partition_point(|u| u.tag <= tag);
            if end == 0 || self.unacked[end - 1].tag != tag {
                return Err(unknown());
            }
            return Ok(self.unacked.drain(..end).collect());
        }
        let at = self
            .unacked
            .binary_search_by_key(&tag, |u| u.tag)
            .map_err(|_| unknown())?;
        Ok(self.unacked.remove(at).into_iter().collect())
    }

    fn tx_method(&mut self, ctx: &mut ConnCtx, m: tx::AMQPMethod) -> Result<(), Exception> {
        match m {
            tx::AMQPMethod::Select(_) => {
                if self.confirm {
                    return Err(Exception::precondition(
                        "cannot switch from confirm to tx mode",
                    ));
                }
                if self.tx.is_none() {
                    self.tx = Some(Vec::new());
                }
                ctx.send(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
                );
            }
            tx::AMQPMethod::Commit(_) => {
                let Some(ops) = self.tx.replace(Vec::new()) else {
                    return Err(Exception::precondition("channel is not transactional"));
                };
                let mut ticket: Option<Ticket> = None;
                for op in ops {
                    match op {
                        TxOp::Publish(content) => {
                            if let Some(t) = self.route_and_enqueue(ctx, *content)? {
                                ticket = Some(ticket.map_or(t, |old| old.max(t)));
                            }
                        }
                        TxOp::Settle { items, requeue } => settle(items, requeue),
                    }
                }
                self.pending.push_back(Pending::CommitOk { ticket });
            }
            tx::AMQPMethod::Rollback(_) => {
                let Some(ops) = self.tx.replace(Vec::new()) else {
                    return Err(Exception::precondition("channel is not transactional"));
                };
                self.restore_unacked(ops);
                ctx.send(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
                );
            }
            other => return Err(not_from_client(AMQPClass::Tx(other))),
        }
        Ok(())
    }
}

/// Give delivered messages back to their queues: settled for good, or requeued.
fn settle(items: Vec<Unacked>, requeue: bool) {
    let mut items = items.into_iter().peekable();
    while let Some(first) = items.next() {
        let queue = Arc::clone(&first.queue);
        let mut run = vec![first];
        while items.peek().is_some_and(|u| Arc::ptr_eq(&u.queue, &queue)) {
            if let Some(u) = items.next() {
                run.push(u);
            }
        }
        for u in &run {
            if let Some(c) = &u.consumer {
                c.release(1);
            }
        }
        if requeue {
            queue.requeue(run.into_iter().map(|u| u.entry));
        } else {
            queue.settle(run.iter().map(|u| &u.entry));
        }
    }
}

fn not_from_client(m: AMQPClass) -> Exception {
    Exception::command_invalid(format!(
        "method {}/{} is not valid from a client",
        m.get_amqp_class_id(),
        m.get_amqp_method_id()
    ))
}

fn generate_consumer_tag() -> String {
    warren_broker::generate_name("amq.ctag-")
}
