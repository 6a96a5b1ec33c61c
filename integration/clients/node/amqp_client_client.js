// Client-compatibility scenarios with @cloudamqp/amqp-client. AMQP_URL names the broker.
"use strict";

const assert = require("node:assert");
const { AMQPClient } = require("@cloudamqp/amqp-client");
const { url, unique, sleep, check, eventually, run, NESTED_HEADERS, settle } = require("./runner");

const HEARTBEAT = 2;
const state = {};

async function connect() {
  const sep = url().includes("?") ? "&" : "?";
  const client = new AMQPClient(`${url()}${sep}heartbeat=${HEARTBEAT}`);
  const conn = await client.connect();
  conn.onerror = () => {};
  return conn;
}

async function channel() {
  const ch = await state.conn.channel();
  ch.onerror = () => {};
  return ch;
}

async function main() {
  if (!state.ch || state.ch.closed) state.ch = await channel();
  return state.ch;
}

async function queue(opts = {}) {
  const ok = await (await main()).queueDeclare(unique("cloudamqp"), { durable: false, ...opts });
  return ok.name;
}

async function count(name) {
  return (await (await main()).queueDeclare(name, { passive: true })).messageCount;
}

async function expectCode(promise, code) {
  try {
    await promise;
  } catch (e) {
    const m = /\((\d+)\)$/.exec(e.message);
    check(m && Number(m[1]) === code, `expected ${code}, got: ${e.message}`);
    return e;
  }
  throw new Error(`expected a ${code} error, the operation succeeded`);
}

async function connectHeartbeat() {
  state.conn = await connect();
  check(state.conn.heartbeat === HEARTBEAT, `negotiated heartbeat ${state.conn.heartbeat}`);
  await sleep(HEARTBEAT * 2500);
  check(!state.conn.closed, "connection closed while idle with heartbeats");
  const q = await queue({ exclusive: true });
  check((await count(q)) === 0, "round trip after idle period");
}

async function exchangeTypes() {
  const ch = await main();
  for (const kind of ["direct", "fanout", "topic", "headers"]) {
    const ex = unique(`cloudamqp-${kind}`);
    await ch.exchangeDeclare(ex, kind, { durable: false });
    const q = await queue();
    if (kind === "headers") await ch.queueBind(q, ex, "", { "x-match": "all", k: "v" });
    else await ch.queueBind(q, ex, "a.b");
    await ch.basicPublish(ex, "a.b", "m", { headers: { k: "v" } });
    const msg = await eventually(() => ch.basicGet(q, { noAck: true }));
    check(msg && msg.bodyToString() === "m", `${kind} exchange did not route`);
    await ch.exchangeDelete(ex);
    await ch.queueDelete(q);
  }
}

async function exchangeToExchange() {
  const ch = await main();
  const src = unique("cloudamqp-src");
  const dst = unique("cloudamqp-dst");
  await ch.exchangeDeclare(src, "topic", { durable: false });
  await ch.exchangeDeclare(dst, "fanout", { durable: false });
  await ch.exchangeBind(dst, src, "a.#");
  const q = await queue();
  await ch.queueBind(q, dst, "");
  await ch.basicPublish(src, "a.b.c", "e2e");
  await ch.basicPublish(src, "b.c", "nope");
  check(await eventually(async () => (await count(q)) === 1), "expected 1 message via e2e");
  await ch.exchangeUnbind(dst, src, "a.#");
  await ch.exchangeDelete(src);
  await ch.exchangeDelete(dst);
  await ch.queueDelete(q);
}

async function queueDurable() {
  const q = await queue({ durable: true });
  await (await main()).queueDeclare(q, { durable: true });
  await expectCode((await main()).queueDeclare(q, { durable: false }), 406);
  await (await main()).queueDelete(q);
}

async function queueExclusive() {
  const q = await queue({ exclusive: true });
  const other = await connect();
  try {
    const och = await other.channel();
    och.onerror = () => {};
    await expectCode(
      och.basicConsume(q, { noAck: true }, () => {}),
      405,
    );
  } finally {
    await other.close();
  }
  await (await main()).queueDelete(q);
}

async function queueAutoDelete() {
  const ch = await main();
  const q = await queue({ autoDelete: true });
  const consumer = await ch.basicConsume(q, { noAck: true }, () => {});
  await consumer.cancel();
  await expectCode(ch.queueDeclare(q, { passive: true }), 404);
}

async function queueServerNamed() {
  const ch = await main();
  const ok = await ch.queueDeclare("", { exclusive: true, durable: false });
  check(ok.name.startsWith("amq.gen-"), `server-named queue ${ok.name}`);
  await ch.queueDelete(ok.name);
}

async function passiveMissing404() {
  const ch = await main();
  const e = await expectCode(ch.queueDeclare(unique("cloudamqp-missing"), { passive: true }), 404);
  check(/NOT_FOUND/.test(e.message), e.message);
  check(!state.conn.closed, "connection closed on a channel error");
  await main();
}

async function publishConfirms() {
  const ch = await channel();
  await ch.confirmSelect();
  const q = unique("cloudamqp-confirm");
  await ch.queueDeclare(q, { durable: true });
  const confirms = [];
  for (let i = 0; i < 20; i++) confirms.push(ch.basicPublish("", q, `c${i}`, { deliveryMode: 2 }));
  const tags = await Promise.all(confirms);
  check(tags.length === 20, "confirms");
  check(await eventually(async () => (await count(q)) === 20), "count");
  await ch.queueDelete(q);
  await ch.close();
}

async function mandatoryReturn() {
  const ch = await channel();
  const returned = new Promise((resolve) => {
    ch.onReturn = resolve;
  });
  const key = unique("cloudamqp-unroutable");
  await ch.basicPublish("", key, "ret", {}, true);
  const msg = await returned;
  check(msg.replyCode === 312 && msg.replyText === "NO_ROUTE", `${msg.replyCode} ${msg.replyText}`);
  check(msg.routingKey === key && msg.bodyToString() === "ret", msg.routingKey);
  await ch.close();
}

async function consumeManualAck() {
  const ch = await main();
  const q = await queue();
  for (let i = 0; i < 3; i++) await ch.basicPublish("", q, `m${i}`);
  const got = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const consumer = await ch.basicConsume(q, { noAck: false }, async (msg) => {
    got.push(msg.bodyToString());
    await msg.ack();
    if (got.length === 3) done();
  });
  await all;
  await consumer.cancel();
  assert.deepStrictEqual(got, ["m0", "m1", "m2"]);
  check((await count(q)) === 0, "acked messages still in queue");
  await ch.queueDelete(q);
}

async function nackRequeue() {
  const ch = await main();
  const q = await queue();
  await ch.basicPublish("", q, "n");
  let msg = await eventually(() => ch.basicGet(q, { noAck: false }));
  check(msg && !msg.redelivered, "first get");
  await msg.nack(true);
  msg = await eventually(() => ch.basicGet(q, { noAck: false }));
  check(msg && msg.redelivered && msg.bodyToString() === "n", "not redelivered");
  await msg.ack();
  await ch.queueDelete(q);
}

async function rejectNoRequeue() {
  const ch = await main();
  const q = await queue();
  await ch.basicPublish("", q, "r");
  const msg = await eventually(() => ch.basicGet(q, { noAck: false }));
  await msg.reject(false);
  check((await count(q)) === 0, "rejected message still in queue");
  check((await ch.basicGet(q, { noAck: false })) === null, "rejected message delivered again");
  await ch.queueDelete(q);
}

async function basicGet() {
  const ch = await main();
  const q = await queue();
  check((await ch.basicGet(q)) === null, "get on an empty queue returned a message");
  await ch.basicPublish("", q, "g1");
  await ch.basicPublish("", q, "g2");
  await eventually(async () => (await count(q)) === 2);
  const msg = await ch.basicGet(q, { noAck: true });
  check(msg.bodyToString() === "g1" && msg.messageCount === 1, `${msg.messageCount}`);
  await ch.queueDelete(q);
}

async function prefetch() {
  const m = await main();
  const q = await queue();
  for (let i = 0; i < 5; i++) await m.basicPublish("", q, `p${i}`);
  const ch = await channel();
  await ch.basicQos(2);
  const got = [];
  await ch.basicConsume(q, { noAck: false }, (msg) => {
    got.push(msg);
  });
  await settle(got, 2);
  check(got.length === 2, `${got.length} unacked deliveries with prefetch 2`);
  await got[0].ack();
  await settle(got, 3);
  check(got.length === 3, `${got.length} deliveries after one ack`);
  await ch.close();
  await m.queueDelete(q);
}

async function cancelConsumer() {
  const ch = await main();
  const q = await queue();
  const got = [];
  const consumer = await ch.basicConsume(q, { noAck: true }, (msg) => {
    got.push(msg);
  });
  await ch.basicCancel(consumer.tag);
  await ch.basicPublish("", q, "after-cancel");
  await sleep(300);
  check(got.length === 0, "delivery after cancel");
  check(await eventually(async () => (await count(q)) === 1), "message not left in the queue");
  await ch.queueDelete(q);
}

async function transactions() {
  const q = await queue();
  const ch = await channel();
  await ch.txSelect();
  await ch.basicPublish("", q, "rolled-back");
  await ch.txRollback();
  check((await count(q)) === 0, "rolled-back publish delivered");
  await ch.basicPublish("", q, "committed");
  check((await count(q)) === 0, "uncommitted publish visible");
  await ch.txCommit();
  check(await eventually(async () => (await count(q)) === 1), "committed publish missing");
  await ch.close();
  await (await main()).queueDelete(q);
}

async function headersRoundtrip() {
  const ch = await main();
  const q = await queue();
  const ts = new Date(1700000000 * 1000);
  await ch.basicPublish("", q, "h", {
    headers: NESTED_HEADERS,
    contentType: "text/plain",
    priority: 3,
    correlationId: "cid",
    messageId: "mid",
    timestamp: ts,
    type: "t",
    appId: "cloudamqp",
    expiration: "60000",
    replyTo: "rq",
    deliveryMode: 2,
  });
  const msg = await eventually(() => ch.basicGet(q, { noAck: true }));
  assert.deepStrictEqual(msg.properties.headers, NESTED_HEADERS);
  const p = msg.properties;
  const want = {
    contentType: "text/plain",
    priority: 3,
    correlationId: "cid",
    messageId: "mid",
    type: "t",
    appId: "cloudamqp",
    expiration: "60000",
    replyTo: "rq",
    deliveryMode: 2,
  };
  for (const [k, v] of Object.entries(want)) check(p[k] === v, `${k}=${p[k]}`);
  check(p.timestamp && p.timestamp.getTime() === ts.getTime(), `timestamp=${p.timestamp}`);
  await ch.queueDelete(q);
}

async function largeMessage() {
  const ch = await main();
  const q = await queue();
  const body = Buffer.concat([Buffer.alloc(1 << 20, "abcdefgh"), Buffer.from("end")]); // many body frames
  await ch.basicPublish("", q, body);
  const msg = await eventually(() => ch.basicGet(q, { noAck: true }));
  check(msg && Buffer.from(msg.body).equals(body), `body differs`);
  await ch.queueDelete(q);
}

async function getOne(ch, q, opts = { noAck: false }) {
  const msg = await eventually(() => ch.basicGet(q, opts));
  check(msg, `no message in ${q}`);
  return msg;
}

async function declare(args) {
  const ok = await (await main()).queueDeclare(unique("cloudamqp"), { durable: false }, args);
  return ok.name;
}

async function deadLetterXDeath() {
  const ch = await main();
  const ex = unique("cloudamqp-dl-src");
  const dlx = unique("cloudamqp-dlx");
  await ch.exchangeDeclare(ex, "direct", { durable: false });
  await ch.exchangeDeclare(dlx, "fanout", { durable: false });
  const work = await declare({ "x-dead-letter-exchange": dlx });
  const dlq = await declare({});
  await ch.queueBind(work, ex, "k1");
  await ch.queueBind(work, ex, "k2");
  await ch.queueBind(dlq, dlx, "");
  await ch.basicPublish(ex, "k1", "dl", { expiration: "60000", headers: { CC: ["k2"], app: "x" } });
  await (await getOne(ch, work)).reject(false);
  const msg = await getOne(ch, dlq, { noAck: true });
  check(msg.bodyToString() === "dl", "body");
  check(msg.exchange === dlx && msg.routingKey === "k1", `${msg.exchange} ${msg.routingKey}`);
  check(msg.properties.expiration === undefined, `expiration ${msg.properties.expiration}`);
  const h = msg.properties.headers;
  assert.deepStrictEqual(Object.keys(h), [
    "CC",
    "app",
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
  ]);
  check(
    h["x-first-death-reason"] === "rejected" &&
      h["x-first-death-queue"] === work &&
      h["x-first-death-exchange"] === ex,
    JSON.stringify(h),
  );
  check(h["x-death"].length === 1, JSON.stringify(h["x-death"]));
  const d = h["x-death"][0];
  assert.deepStrictEqual(Object.keys(d), [
    "count",
    "reason",
    "queue",
    "time",
    "exchange",
    "routing-keys",
    "original-expiration",
  ]);
  check(d.count === 1, `count ${d.count}`);
  check(d.reason === "rejected" && d.queue === work && d.exchange === ex, JSON.stringify(d));
  assert.deepStrictEqual(d["routing-keys"], ["k1", "k2"]);
  check(d["original-expiration"] === "60000", `original-expiration ${d["original-expiration"]}`);
  // The client decodes a timestamp field as a Date.
  check(d.time instanceof Date && Math.abs(d.time.getTime() - Date.now()) < 300000, `time ${d.time}`);

  const dlx2 = unique("cloudamqp-dlx-direct");
  await ch.exchangeDeclare(dlx2, "direct", { durable: false });
  const work2 = await declare({ "x-dead-letter-exchange": dlx2, "x-dead-letter-routing-key": "dead" });
  const dlq2 = await declare({});
  await ch.queueBind(work2, ex, "k3");
  await ch.queueBind(dlq2, dlx2, "dead");
  await ch.basicPublish(ex, "k3", "dl2", { headers: { CC: ["k4"] } });
  await (await getOne(ch, work2)).nack(false);
  const msg2 = await getOne(ch, dlq2, { noAck: true });
  check(msg2.routingKey === "dead", msg2.routingKey);
  check(!("CC" in msg2.properties.headers), JSON.stringify(msg2.properties.headers));
  const d2 = msg2.properties.headers["x-death"][0];
  assert.deepStrictEqual(d2["routing-keys"], ["k3", "k4"]);
  check(!("original-expiration" in d2), JSON.stringify(d2));
  for (const q of [work, dlq, work2, dlq2]) await ch.queueDelete(q);
  for (const x of [ex, dlx, dlx2]) await ch.exchangeDelete(x);
}

async function deadLetterTtlRetryLoop() {
  const ch = await main();
  const work = unique("cloudamqp-work");
  const retry = unique("cloudamqp-retry");
  await ch.queueDeclare(
    work,
    { durable: false },
    { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry },
  );
  await ch.queueDeclare(
    retry,
    { durable: false },
    { "x-message-ttl": 50, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": work },
  );
  await ch.basicPublish("", work, "retry");
  for (let n = 1; n <= 3; n++) {
    const msg = await eventually(() => ch.basicGet(work, { noAck: false }), 10000);
    check(msg, `round ${n}: message did not come back`);
    const deaths = (msg.properties.headers || {})["x-death"] || [];
    const want = n === 1 ? [] : [[retry, "expired", n - 1], [work, "rejected", n - 1]];
    assert.deepStrictEqual(
      deaths.map((d) => [d.queue, d.reason, d.count]),
      want,
    );
    await msg.reject(false);
  }
  await ch.queueDelete(work);
  await ch.queueDelete(retry);
}

async function maxLengthRejectPublish() {
  const ch = await channel();
  await ch.confirmSelect();
  const q = unique("cloudamqp-maxlen");
  await ch.queueDeclare(q, { durable: false }, { "x-max-length": 2, "x-overflow": "reject-publish" });
  const outcomes = [];
  for (const body of ["m1", "m2", "m3"]) {
    outcomes.push(
      await ch.basicPublish("", q, body).then(
        () => "ack",
        () => "nack",
      ),
    );
  }
  assert.deepStrictEqual(outcomes, ["ack", "ack", "nack"]);
  check((await count(q)) === 2, "count");
  await ch.queueDelete(q);
  await ch.close();
  const main_ = await main();
  const q2 = await declare({ "x-max-length": 2, "x-overflow": "drop-head" });
  for (const body of ["d1", "d2", "d3"]) await main_.basicPublish("", q2, body);
  check(await eventually(async () => (await count(q2)) === 2), "count after drop-head");
  const bodies = [];
  for (let i = 0; i < 2; i++) bodies.push((await main_.basicGet(q2, { noAck: true })).bodyToString());
  assert.deepStrictEqual(bodies, ["d2", "d3"]);
  await main_.queueDelete(q2);
}

async function priorityOrder() {
  const ch = await main();
  const q = await declare({ "x-max-priority": 10 });
  const sent = [["p1", 1], ["p5a", 5], ["p9", 9], ["p0", 0], ["p5b", 5], ["p200", 200], ["none", undefined]];
  for (const [body, priority] of sent) {
    await ch.basicPublish("", q, body, priority === undefined ? {} : { priority });
  }
  check(await eventually(async () => (await count(q)) === sent.length), "count");
  const got = [];
  const consumer = await ch.basicConsume(q, { noAck: false }, async (msg) => {
    got.push([msg.bodyToString(), msg.properties.priority]);
    await msg.ack();
  });
  await settle(got, sent.length);
  await consumer.cancel();
  // Above x-max-priority counts as the max; no priority counts as 0; FIFO within one.
  // (The client leaves a priority of 0 out of the properties.)
  assert.deepStrictEqual(got, [
    ["p200", 200],
    ["p9", 9],
    ["p5a", 5],
    ["p5b", 5],
    ["p1", 1],
    ["p0", undefined],
    ["none", undefined],
  ]);
  await ch.queueDelete(q);
}

async function closeCleanly() {
  await (await main()).close();
  await state.conn.close();
  check(state.conn.closed, "connection not closed");
}

run([
  ["connect_heartbeat", connectHeartbeat],
  ["exchange_types", exchangeTypes],
  ["exchange_to_exchange_binding", exchangeToExchange],
  ["queue_durable", queueDurable],
  ["queue_exclusive", queueExclusive],
  ["queue_auto_delete", queueAutoDelete],
  ["queue_server_named", queueServerNamed],
  ["passive_declare_missing_404", passiveMissing404],
  ["publish_confirms", publishConfirms],
  ["mandatory_unroutable_return", mandatoryReturn],
  ["consume_manual_ack", consumeManualAck],
  ["nack_requeue_redelivered", nackRequeue],
  ["reject_without_requeue", rejectNoRequeue],
  ["basic_get_empty_and_nonempty", basicGet],
  ["prefetch_honoured", prefetch],
  ["cancel_consumer", cancelConsumer],
  ["tx_commit_rollback", transactions],
  ["headers_nested_roundtrip", headersRoundtrip],
  ["large_message_roundtrip", largeMessage],
  ["dead_letter_x_death", deadLetterXDeath],
  ["dead_letter_ttl_retry_loop", deadLetterTtlRetryLoop],
  ["max_length_reject_publish", maxLengthRejectPublish],
  ["priority_order", priorityOrder],
  ["close_cleanly", closeCleanly],
]);
