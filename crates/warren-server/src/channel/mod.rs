//! One AMQP channel: its state machine, and the dispatch of every method a client may send
//! on it to the file of that method's class.
//!
//! A channel lives inside its connection task (it is not a task of its own). It owns the
//! content assembler for publishes, the consumers it registered, the unacked deliveries
//! (in delivery-tag order), the confirm and transaction modes, and the publisher confirms
//! still waiting for the store. Errors come back as [`Exception`]s: soft ones close just
//! this channel, hard ones the connection (the connection decides, in one place).
//!
//! # How a method flows through
//! The connection decodes a frame and calls [`Channel::method`] (or, for content frames,
//! `content_header` / `content_body` in `publish.rs`). [`Channel::method`] discards it while
//! the server is closing the channel, and otherwise hands it to the handler of its class,
//! an `impl Channel` block in that class's file. A handler returns `Err` for an error; the
//! connection closes this channel ([`Channel::close_with`]) for a soft one, the connection
//! for a hard one. Deliveries, consumer cancellations and synced store tickets come in from
//! the connection loop the other way (`delivery.rs`, `confirm.rs`).
//!
//! # Layout
//! - `mod.rs`: [`Channel`] and its state, the lifecycle below, the dispatch by class, the
//!   channel class itself (close, close-ok, flow, a second open) and access.request, and
//!   releasing everything the channel holds when it closes.
//! - `exchange.rs`: exchange.declare/delete/bind/unbind.
//! - `queue.rs`: queue.declare/bind/unbind/purge/delete, and the "" = last declared queue
//!   rule.
//! - `basic.rs`: the basic class from the client: publish (start), qos, consume, cancel,
//!   get, ack, nack, reject, recover; direct reply-to consumers.
//! - `publish.rs`: content frames into a whole message (the assembler), then checks,
//!   CC/BCC and direct reply-to rewriting, routing, enqueueing and `basic.return`.
//! - `delivery.rs`: deliveries from queues to this channel's consumers, the unacked list,
//!   and settling (ack) or requeueing what it held.
//! - `confirm.rs`: confirm.select and the in-order release of confirms (and
//!   tx.commit-ok) once the store has synced their writes.
//! - `tx.rs`: tx.select/commit/rollback and the operations a transaction holds.
//! - `timeout.rs`: the consumer timeout: the check the connection's periodic sweep runs
//!   on the oldest unacked delivery.
//! - `stats.rs`: the channel's message counters, counted locally and added to the shared
//!   sets (channel, exchanges, vhost, broker) once per batch; its live state for the API.
//! - `permissions.rs`: how a permission check is made (the publish grant cache, the
//!   binding checks); *where* each method checks is in that method's file.
//!
//! # Permissions
//! Every method checks the user's configure / write / read patterns (and topic
//! permissions) at the point of its logic where RabbitMQ 3.10's `rabbit_channel` does, so
//! that when several errors apply the client sees the one RabbitMQ would send; each file's
//! docs list its checks. In short: declares need configure (a passive declare nothing),
//! deletes configure, publish write on the exchange (`""` as `amq.default`), consume, get
//! and purge read on the queue, bind/unbind write on the destination and read on the
//! source; a new queue's dead-letter exchange and a new exchange's alternate exchange need
//! read on the new entity and write on the one named. A refusal is a 403 channel error.
//! The connection's [`warren_broker::ConnectionAccess`] re-reads the permissions when the
//! access registry changes, so a revoked permission applies to open channels at their
//! next check.
//!
//! # Lifecycle
//! [`State`], as RabbitMQ's `rabbit_channel`:
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

mod basic;
mod confirm;
mod delivery;
mod exchange;
mod permissions;
mod publish;
mod queue;
mod stats;
mod timeout;
mod tx;

pub(crate) use timeout::sweep_every;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::debug;
use warren_broker::{ChannelCredit, ChannelInfo, ChannelSlot, Consumer, Queue};
use warren_protocol::{AMQPClass, ContentAssembler, ShortString, access, channel as chan};

use self::confirm::Pending;
use self::delivery::{Settle, Unacked, settle};
use self::permissions::PublishGrant;
use self::stats::ChannelStats;
use self::tx::TxOp;
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

pub(crate) struct Channel {
    id: u16,
    /// The user's channel-limit slot, given back when the channel goes.
    _slot: ChannelSlot,
    state: State,
    assembler: ContentAssembler<warren_protocol::basic::Publish>,
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
    /// The last exchange a publish on this channel was granted write permission on.
    publish_grant: Option<PublishGrant>,
    /// The broker's record of this channel (management API).
    info: Arc<ChannelInfo>,
    /// Counts of the current batch, flushed by the connection (`stats.rs`).
    stats: ChannelStats,
}

impl Channel {
    pub(crate) fn new(id: u16, ctx: &ConnCtx, slot: ChannelSlot) -> Self {
        let info = Arc::clone(slot.info());
        Self {
            id,
            _slot: slot,
            state: State::Open,
            assembler: ContentAssembler::new(ctx.max_message_size),
            credit: Arc::clone(&info.credit),
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
            publish_grant: None,
            info,
            stats: ChannelStats::default(),
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

    /// Send channel.close for a soft error and release everything the channel holds.
    pub(crate) fn close_with(&mut self, ctx: &mut ConnCtx, e: &Exception) {
        self.release(ctx);
        self.info.closing.store(true, Ordering::Relaxed);
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
    /// Single-active-consumer queues hand over to their next consumer after the requeue,
    /// so that it gets the requeued messages first, in queue order.
    pub(crate) fn release(&mut self, ctx: &mut ConnCtx) {
        self.assembler.reset();
        let mut hand_over = Vec::new();
        for (_, (consumer, queue)) in self.consumers.drain() {
            if queue.cancel(&consumer) {
                let _ = ctx.vhost.remove_queue(&queue);
            } else if queue.is_single_active() {
                hand_over.push(queue);
            }
        }
        if let Some(ops) = self.tx.take() {
            self.stats.tx_cleared();
            self.restore_unacked(ops);
        }
        let all: Vec<Unacked> = self.unacked.drain(..).collect();
        settle(all, Settle::Lost);
        for queue in hand_over {
            queue.kick();
        }
        self.pending.clear();
        self.flush_stats(ctx);
    }

    /// Close the channel for a soft error, or pass a hard one up.
    fn soft(&mut self, ctx: &mut ConnCtx, e: Exception) -> Result<(), Exception> {
        if e.is_connection_error() {
            return Err(e);
        }
        self.close_with(ctx, &e);
        Ok(())
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
            AMQPClass::Confirm(warren_protocol::confirm::AMQPMethod::Select(select)) => {
                self.confirm_select(ctx, select)
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
}

fn not_from_client(m: AMQPClass) -> Exception {
    Exception::command_invalid(format!(
        "method {}/{} is not valid from a client",
        m.get_amqp_class_id(),
        m.get_amqp_method_id()
    ))
}
