// Client-compatibility scenarios with amqplib (promise API). AMQP_URL names the broker.
"use strict";

const assert = require("node:assert");
const amqp = require("amqplib");
const { Skip, url, unique, sleep, check, eventually, run, NESTED_HEADERS, settle } = require("./runner");

const HEARTBEAT = 2;
const state = {};

async function connect() {
  const sep = url().includes("?") ? "&" : "?";
  const conn = await amqp.connect(`${url()}${sep}heartbeat=${HEARTBEAT}`);
  conn.on("error", () => {});
  return conn;
}

async function channel(confirm = false) {
  const ch = confirm ? await state.conn.createConfirmChannel() : await state.conn.createChannel();
  ch.on("error", () => {}); // channel errors are asserted through the rejected promises
  return ch;
}

async function main() {
  if (!state.ch || state.chClosed) {
    state.ch = await channel();
    state.chClosed = false;
    state.ch.on("close", () => {
      state.chClosed = true;
    });
  }
  return state.ch;
}

async function queue(opts = {}) {
  const ch = await main();
  const ok = await ch.assertQueue(unique("amqplib"), opts);
  return ok.queue;
}

async function count(name) {
  const ch = await main();
  return (await ch.checkQueue(name)).messageCount;
}

async function expectCode(promise, code) {
  try {
    await promise;
  } catch (e) {
    check(e.code === code, `error code ${e.code}, expected ${code}: ${e.message}`);
    return e;
  }
  throw new Error(`expected a ${code} error, the operation succeeded`);
}

async function connectHeartbeat() {
  state.conn = await connect();
  const negotiated = state.conn.connection.heartbeat;
  check(negotiated === HEARTBEAT, `negotiated heartbeat ${negotiated}`);
  let closed = false;
  state.conn.on("close", () => {
    closed = true;
  });
  await sleep(HEARTBEAT * 2500);
  check(!closed, "connection closed while idle with heartbeats");
  const q = await queue({ exclusive: true });
  check((await count(q)) === 0, "round trip after idle period");
}

async function exchangeTypes() {
  const ch = await main();
  for (const kind of ["direct", "fanout", "topic", "headers"]) {
    const ex = unique(`amqplib-${kind}`);
    await ch.assertExchange(ex, kind, { durable: false });
    const q = await queue();
    if (kind === "headers") await ch.bindQueue(q, ex, "", { "x-match": "all", k: "v" });
    else await ch.bindQueue(q, ex, "a.b");
    ch.publish(ex, "a.b", Buffer.from("m"), { headers: { k: "v" } });
    const msg = await eventually(() => ch.get(q, { noAck: true }));
    check(msg && msg.content.toString() === "m", `${kind} exchange did not route`);
    await ch.deleteExchange(ex);
    await ch.deleteQueue(q);
  }
}

async function exchangeToExchange() {
  const ch = await main();
  const src = unique("amqplib-src");
  const dst = unique("amqplib-dst");
  await ch.assertExchange(src, "topic", { durable: false });
  await ch.assertExchange(dst, "fanout", { durable: false });
  await ch.bindExchange(dst, src, "a.#");
  const q = await queue();
  await ch.bindQueue(q, dst, "");
  ch.publish(src, "a.b.c", Buffer.from("e2e"));
  ch.publish(src, "b.c", Buffer.from("nope"));
  check(await eventually(async () => (await count(q)) === 1), "expected 1 message via e2e");
  await ch.unbindExchange(dst, src, "a.#");
  await ch.deleteExchange(src);
  await ch.deleteExchange(dst);
  await ch.deleteQueue(q);
}

async function queueDurable() {
  const q = await queue({ durable: true });
  await (await main()).assertQueue(q, { durable: true });
  await expectCode((await main()).assertQueue(q, { durable: false }), 406);
  await (await main()).deleteQueue(q);
}

async function queueExclusive() {
  const q = await queue({ exclusive: true });
  const other = await connect();
  try {
    const och = await other.createChannel();
    och.on("error", () => {});
    await expectCode(
      och.consume(q, () => {}),
      405,
    );
  } finally {
    await other.close();
  }
  await (await main()).deleteQueue(q);
}

async function queueAutoDelete() {
  const ch = await main();
  const q = await queue({ autoDelete: true });
  const { consumerTag } = await ch.consume(q, () => {});
  await ch.cancel(consumerTag);
  await expectCode(ch.checkQueue(q), 404);
}

async function queueServerNamed() {
  const ch = await main();
  const ok = await ch.assertQueue("", { exclusive: true });
  check(ok.queue.startsWith("amq.gen-"), `server-named queue ${ok.queue}`);
  await ch.deleteQueue(ok.queue);
}

async function passiveMissing404() {
  const ch = await main();
  const e = await expectCode(ch.checkQueue(unique("amqplib-missing")), 404);
  check(/NOT_FOUND/.test(e.message), e.message);
  await main(); // the connection is still usable
}

async function publishConfirms() {
  const ch = await channel(true);
  const q = unique("amqplib-confirm");
  await ch.assertQueue(q, { durable: true });
  const acks = [];
  for (let i = 0; i < 20; i++) {
    acks.push(
      new Promise((resolve, reject) =>
        ch.sendToQueue(q, Buffer.from(`c${i}`), { persistent: true }, (err) =>
          err ? reject(err) : resolve(),
        ),
      ),
    );
  }
  await Promise.all(acks);
  await ch.waitForConfirms();
  check(await eventually(async () => (await count(q)) === 20), "count");
  await ch.deleteQueue(q);
  await ch.close();
}

async function mandatoryReturn() {
  const ch = await channel(true);
  const returned = new Promise((resolve) => ch.on("return", resolve));
  const key = unique("amqplib-unroutable");
  ch.publish("", key, Buffer.from("ret"), { mandatory: true });
  await ch.waitForConfirms();
  const msg = await returned;
  check(msg.fields.replyCode === 312 && msg.fields.replyText === "NO_ROUTE", JSON.stringify(msg.fields));
  check(msg.fields.routingKey === key && msg.content.toString() === "ret", JSON.stringify(msg.fields));
  await ch.close();
}

async function consumeManualAck() {
  const ch = await main();
  const q = await queue();
  for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
  const got = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const { consumerTag } = await ch.consume(
    q,
    (msg) => {
      got.push(msg.content.toString());
      ch.ack(msg);
      if (got.length === 3) done();
    },
    { noAck: false },
  );
  await all;
  await ch.cancel(consumerTag);
  assert.deepStrictEqual(got, ["m0", "m1", "m2"]);
  check((await count(q)) === 0, "acked messages still in queue");
  await ch.deleteQueue(q);
}

async function nackRequeue() {
  const ch = await main();
  const q = await queue();
  ch.sendToQueue(q, Buffer.from("n"));
  let msg = await eventually(() => ch.get(q));
  check(msg && !msg.fields.redelivered, "first get");
  ch.nack(msg, false, true);
  msg = await eventually(() => ch.get(q));
  check(msg && msg.fields.redelivered && msg.content.toString() === "n", "not redelivered");
  ch.ack(msg);
  await ch.deleteQueue(q);
}

async function rejectNoRequeue() {
  const ch = await main();
  const q = await queue();
  ch.sendToQueue(q, Buffer.from("r"));
  const msg = await eventually(() => ch.get(q));
  ch.reject(msg, false);
  check((await count(q)) === 0, "rejected message still in queue");
  check((await ch.get(q)) === false, "rejected message delivered again");
  await ch.deleteQueue(q);
}

async function basicGet() {
  const ch = await main();
  const q = await queue();
  check((await ch.get(q)) === false, "get on an empty queue returned a message");
  ch.sendToQueue(q, Buffer.from("g1"));
  ch.sendToQueue(q, Buffer.from("g2"));
  await eventually(async () => (await count(q)) === 2);
  const msg = await ch.get(q, { noAck: true });
  check(msg.content.toString() === "g1" && msg.fields.messageCount === 1, JSON.stringify(msg.fields));
  await ch.deleteQueue(q);
}

async function prefetch() {
  const q = await queue();
  const main_ = await main();
  for (let i = 0; i < 5; i++) main_.sendToQueue(q, Buffer.from(`p${i}`));
  const ch = await channel();
  await ch.prefetch(2);
  const got = [];
  await ch.consume(q, (msg) => got.push(msg), { noAck: false });
  await settle(got, 2);
  check(got.length === 2, `${got.length} unacked deliveries with prefetch 2`);
  ch.ack(got[0]);
  await settle(got, 3);
  check(got.length === 3, `${got.length} deliveries after one ack`);
  await ch.close();
  await main_.deleteQueue(q);
}

async function cancelConsumer() {
  const ch = await main();
  const q = await queue();
  const got = [];
  const { consumerTag } = await ch.consume(q, (msg) => got.push(msg), { noAck: true });
  await ch.cancel(consumerTag);
  ch.sendToQueue(q, Buffer.from("after-cancel"));
  await sleep(300);
  check(got.length === 0, "delivery after cancel");
  check(await eventually(async () => (await count(q)) === 1), "message not left in the queue");
  await ch.deleteQueue(q);
}

async function transactions() {
  throw new Skip("amqplib has no tx.select/commit/rollback");
}

async function headersRoundtrip() {
  const ch = await main();
  const q = await queue();
  ch.sendToQueue(q, Buffer.from("h"), {
    headers: NESTED_HEADERS,
    contentType: "text/plain",
    priority: 3,
    correlationId: "cid",
    messageId: "mid",
    timestamp: 1700000000,
    type: "t",
    appId: "amqplib",
    expiration: "60000",
    replyTo: "rq",
    persistent: true,
  });
  const msg = await eventually(() => ch.get(q, { noAck: true }));
  assert.deepStrictEqual(msg.properties.headers, NESTED_HEADERS);
  const p = msg.properties;
  const want = {
    contentType: "text/plain",
    priority: 3,
    correlationId: "cid",
    messageId: "mid",
    timestamp: 1700000000,
    type: "t",
    appId: "amqplib",
    expiration: "60000",
    replyTo: "rq",
    deliveryMode: 2,
  };
  for (const [k, v] of Object.entries(want)) check(p[k] === v, `${k}=${p[k]}`);
  await ch.deleteQueue(q);
}

async function largeMessage() {
  const ch = await main();
  const q = await queue();
  const body = Buffer.concat([Buffer.alloc(1 << 20, "abcdefgh"), Buffer.from("end")]); // many body frames
  ch.sendToQueue(q, body);
  const msg = await eventually(() => ch.get(q, { noAck: true }));
  check(msg && msg.content.equals(body), `body differs`);
  await ch.deleteQueue(q);
}

async function getOne(ch, q, opts = {}) {
  const msg = await eventually(() => ch.get(q, opts));
  check(msg, `no message in ${q}`);
  return msg;
}

const HEADER_KEYS = [
  "CC",
  "app",
  "x-death",
  "x-first-death-exchange",
  "x-first-death-queue",
  "x-first-death-reason",
];
const DEATH_KEYS = ["count", "reason", "queue", "time", "exchange", "routing-keys", "original-expiration"];

async function deadLetterXDeath() {
  const ch = await main();
  const ex = unique("amqplib-dl-src");
  const dlx = unique("amqplib-dlx");
  await ch.assertExchange(ex, "direct");
  await ch.assertExchange(dlx, "fanout");
  const work = await queue({ deadLetterExchange: dlx });
  const dlq = await queue();
  await ch.bindQueue(work, ex, "k1");
  await ch.bindQueue(work, ex, "k2");
  await ch.bindQueue(dlq, dlx, "");
  ch.publish(ex, "k1", Buffer.from("dl"), { expiration: 60000, CC: ["k2"], headers: { app: "x" } });
  ch.reject(await getOne(ch, work), false);
  const msg = await getOne(ch, dlq, { noAck: true });
  check(msg.content.toString() === "dl", "body");
  check(msg.fields.exchange === dlx && msg.fields.routingKey === "k1", JSON.stringify(msg.fields));
  check(msg.properties.expiration === undefined, `expiration ${msg.properties.expiration}`);
  const h = msg.properties.headers;
  assert.deepStrictEqual(Object.keys(h), HEADER_KEYS);
  assert.deepStrictEqual(h.CC, ["k2"]);
  check(
    h["x-first-death-reason"] === "rejected" &&
      h["x-first-death-queue"] === work &&
      h["x-first-death-exchange"] === ex,
    JSON.stringify(h),
  );
  check(h["x-death"].length === 1, JSON.stringify(h["x-death"]));
  const d = h["x-death"][0];
  assert.deepStrictEqual(Object.keys(d), DEATH_KEYS);
  // amqplib decodes the long count as a number and tags a timestamp with its type.
  check(d.count === 1, `count ${d.count}`);
  check(d.reason === "rejected" && d.queue === work && d.exchange === ex, JSON.stringify(d));
  assert.deepStrictEqual(d["routing-keys"], ["k1", "k2"]);
  check(d["original-expiration"] === "60000", `original-expiration ${d["original-expiration"]}`);
  check(
    d.time["!"] === "timestamp" && Math.abs(d.time.value - Date.now() / 1000) < 300,
    `time ${JSON.stringify(d.time)}`,
  );

  const dlx2 = unique("amqplib-dlx-direct");
  await ch.assertExchange(dlx2, "direct");
  const work2 = await queue({ deadLetterExchange: dlx2, deadLetterRoutingKey: "dead" });
  const dlq2 = await queue();
  await ch.bindQueue(work2, ex, "k3");
  await ch.bindQueue(dlq2, dlx2, "dead");
  ch.publish(ex, "k3", Buffer.from("dl2"), { CC: ["k4"] });
  ch.nack(await getOne(ch, work2), false, false);
  const msg2 = await getOne(ch, dlq2, { noAck: true });
  check(msg2.fields.routingKey === "dead", JSON.stringify(msg2.fields));
  check(!("CC" in msg2.properties.headers), JSON.stringify(msg2.properties.headers));
  const d2 = msg2.properties.headers["x-death"][0];
  assert.deepStrictEqual(d2["routing-keys"], ["k3", "k4"]);
  check(!("original-expiration" in d2), JSON.stringify(d2));
  for (const q of [work, dlq, work2, dlq2]) await ch.deleteQueue(q);
  for (const x of [ex, dlx, dlx2]) await ch.deleteExchange(x);
}

async function deadLetterTtlRetryLoop() {
  const ch = await main();
  const work = unique("amqplib-work");
  const retry = unique("amqplib-retry");
  await ch.assertQueue(work, { deadLetterExchange: "", deadLetterRoutingKey: retry });
  await ch.assertQueue(retry, { messageTtl: 50, deadLetterExchange: "", deadLetterRoutingKey: work });
  ch.sendToQueue(work, Buffer.from("retry"));
  for (let n = 1; n <= 3; n++) {
    const msg = await eventually(() => ch.get(work), 10000);
    check(msg, `round ${n}: message did not come back`);
    const deaths = (msg.properties.headers || {})["x-death"] || [];
    const want = n === 1 ? [] : [[retry, "expired", n - 1], [work, "rejected", n - 1]];
    assert.deepStrictEqual(
      deaths.map((d) => [d.queue, d.reason, d.count]),
      want,
    );
    ch.reject(msg, false);
  }
  await ch.deleteQueue(work);
  await ch.deleteQueue(retry);
}

async function maxLengthRejectPublish() {
  const ch = await channel(true);
  const q = unique("amqplib-maxlen");
  await ch.assertQueue(q, { maxLength: 2, arguments: { "x-overflow": "reject-publish" } });
  const outcomes = await Promise.all(
    ["m1", "m2", "m3"].map(
      (body) =>
        new Promise((resolve) =>
          ch.sendToQueue(q, Buffer.from(body), {}, (err) => resolve(err ? "nack" : "ack")),
        ),
    ),
  );
  assert.deepStrictEqual(outcomes, ["ack", "ack", "nack"]);
  check((await count(q)) === 2, "count");
  await ch.deleteQueue(q);
  await ch.close();
  const main_ = await main();
  const q2 = await queue({ maxLength: 2, arguments: { "x-overflow": "drop-head" } });
  for (const body of ["d1", "d2", "d3"]) main_.sendToQueue(q2, Buffer.from(body));
  check(await eventually(async () => (await count(q2)) === 2), "count after drop-head");
  const bodies = [];
  for (let i = 0; i < 2; i++) bodies.push((await main_.get(q2, { noAck: true })).content.toString());
  assert.deepStrictEqual(bodies, ["d2", "d3"]);
  await main_.deleteQueue(q2);
}

async function priorityOrder() {
  const ch = await main();
  const q = await queue({ maxPriority: 10 });
  const sent = [["p1", 1], ["p5a", 5], ["p9", 9], ["p0", 0], ["p5b", 5], ["p200", 200], ["none", undefined]];
  for (const [body, priority] of sent) ch.sendToQueue(q, Buffer.from(body), { priority });
  check(await eventually(async () => (await count(q)) === sent.length), "count");
  const got = [];
  const { consumerTag } = await ch.consume(q, (msg) => {
    got.push([msg.content.toString(), msg.properties.priority]);
    ch.ack(msg);
  });
  await settle(got, sent.length);
  await ch.cancel(consumerTag);
  // Above x-max-priority counts as the max; no priority counts as 0; FIFO within one.
  assert.deepStrictEqual(got, [
    ["p200", 200],
    ["p9", 9],
    ["p5a", 5],
    ["p5b", 5],
    ["p1", 1],
    ["p0", 0],
    ["none", undefined],
  ]);
  await ch.deleteQueue(q);
}

// rabbitmq-delayed-message-exchange's interface (Warren only: the reference RabbitMQ has no
// such plugin). The x-delay 300 message is held and routed after the x-delay 0 one, not
// before 300 ms, with x-delay set to -300 (as the plugin does).
async function delayedMessageExchange() {
  const ch = await channel(true);
  const x = unique("amqplib-delayed");
  await ch.assertExchange(x, "x-delayed-message", { arguments: { "x-delayed-type": "direct" } });
  const q = (await ch.assertQueue(unique("amqplib-delayed-q"), { exclusive: true })).queue;
  await ch.bindQueue(q, x, "k");
  const start = Date.now();
  const publish = (body, delay) =>
    new Promise((resolve, reject) =>
      ch.publish(x, "k", Buffer.from(body), { headers: { "x-delay": delay } }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  await publish("later", 300);
  await publish("now", 0);
  const got = [];
  const { consumerTag } = await ch.consume(q, (msg) => {
    got.push([msg.content.toString(), Date.now() - start, msg.properties.headers["x-delay"]]);
    ch.ack(msg);
  });
  await settle(got, 2);
  await ch.cancel(consumerTag);
  check(got.length === 2 && got[0][0] === "now" && got[1][0] === "later", `order ${JSON.stringify(got)}`);
  check(got[1][1] >= 300, `the delayed message arrived after ${got[1][1]} ms`);
  check(got[1][2] === -300, `x-delay ${got[1][2]}`);
  await ch.deleteExchange(x);
}

// A quorum queue with x-delivery-limit 2 and a DLX: publish with confirms, consume, nack
// with requeue until the message passes the limit and is dead-lettered.
async function quorumDeliveryLimit() {
  const ch = await channel(true);
  const dlx = unique("amqplib-qq-dlx");
  await ch.assertExchange(dlx, "fanout", { durable: false });
  const dlq = (await ch.assertQueue(unique("amqplib-qq-dlq"), { durable: true })).queue;
  await ch.bindQueue(dlq, dlx, "");
  const qq = (
    await ch.assertQueue(unique("amqplib-qq"), {
      durable: true,
      deadLetterExchange: dlx,
      arguments: { "x-queue-type": "quorum", "x-delivery-limit": 2 },
    })
  ).queue;
  ch.sendToQueue(qq, Buffer.from("poison"), { headers: { app: "x" } });
  await ch.waitForConfirms();
  const seen = [];
  const { consumerTag } = await ch.consume(qq, (msg) => {
    seen.push([msg.fields.redelivered, (msg.properties.headers || {})["x-delivery-count"]]);
    ch.nack(msg, false, true);
  });
  check(await eventually(async () => (await count(dlq)) === 1), "nothing dead-lettered");
  await ch.cancel(consumerTag);
  assert.deepStrictEqual(seen, [
    [false, undefined],
    [true, 1],
    [true, 2],
  ]);
  check((await count(qq)) === 0, "the quorum queue still holds the message");
  const got = await ch.get(dlq, { noAck: true });
  check(got && got.content.toString() === "poison", "dead letter body");
  const headers = got.properties.headers;
  check(headers["x-first-death-reason"] === "delivery_limit", `headers ${JSON.stringify(headers)}`);
  check(headers["x-death"][0].reason === "delivery_limit", "x-death reason");
  check(!("x-delivery-count" in headers), "the dead letter carries x-delivery-count");
  await ch.deleteQueue(qq);
  await ch.deleteQueue(dlq);
  await ch.deleteExchange(dlx);
  await ch.close();
}

async function closeCleanly() {
  await (await main()).close();
  let closedWith = "none";
  state.conn.on("close", (err) => {
    closedWith = err ? String(err) : "clean";
  });
  await state.conn.close();
  check(closedWith === "clean", `close event: ${closedWith}`);
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
  ["delayed_message_exchange", delayedMessageExchange],
  ["quorum_delivery_limit", quorumDeliveryLimit],
  ["close_cleanly", closeCleanly],
]);
