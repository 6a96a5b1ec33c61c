// Tutorial 7, "Publisher Confirms": publish MESSAGE_COUNT messages (default
// 50,000) with confirms on, three ways, and print how long each took:
//
// 1. individually: wait for each message's confirm before publishing the next;
// 2. in batches: wait for the confirms of every 100 messages;
// 3. asynchronously: keep publishing while confirms are handled as they arrive.
//
// Each strategy uses its own connection and an exclusive server-named queue.

const { connect, envNumber, run } = require('./common');

const BATCH_SIZE = 100;

function fmt(n) {
  return n.toLocaleString('en-US');
}

async function confirmChannel() {
  const connection = await connect();
  const channel = await connection.createConfirmChannel();
  const q = await channel.assertQueue('', { exclusive: true });
  return { connection, channel, queue: q.queue };
}

// Publish, waiting for the channel's buffer to drain when it is full.
async function publish(channel, queue, body, callback) {
  if (!channel.sendToQueue(queue, Buffer.from(body), {}, callback)) {
    await new Promise((resolve) => channel.once('drain', resolve));
  }
}

async function publishMessagesIndividually(count) {
  const { connection, channel, queue } = await confirmChannel();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => {
      publish(channel, queue, String(i), (err) => (err ? reject(err) : resolve())).catch(reject);
    });
  }
  const ms = Number((process.hrtime.bigint() - start) / 1000000n);
  console.log(`Published ${fmt(count)} messages individually in ${fmt(ms)} ms`);
  await connection.close();
}

async function publishMessagesInBatch(count) {
  const { connection, channel, queue } = await confirmChannel();
  const start = process.hrtime.bigint();
  let outstanding = 0;
  for (let i = 0; i < count; i++) {
    await publish(channel, queue, String(i));
    outstanding++;
    if (outstanding === BATCH_SIZE) {
      await channel.waitForConfirms(); // rejects if any was nack-ed
      outstanding = 0;
    }
  }
  if (outstanding > 0) await channel.waitForConfirms();
  const ms = Number((process.hrtime.bigint() - start) / 1000000n);
  console.log(`Published ${fmt(count)} messages in batch in ${fmt(ms)} ms`);
  await connection.close();
}

async function handlePublishConfirmsAsynchronously(count) {
  const { connection, channel, queue } = await confirmChannel();
  const outstanding = new Map(); // index -> body
  let nacked = 0;
  let allConfirmed;
  const done = new Promise((resolve) => { allConfirmed = resolve; });
  let published = false;

  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const body = String(i);
    outstanding.set(i, body);
    await publish(channel, queue, body, (err) => {
      if (err) {
        nacked++;
        console.error(`Message with body ${body} has been nack-ed`);
      }
      outstanding.delete(i);
      if (published && outstanding.size === 0) allConfirmed();
    });
  }
  published = true;
  if (outstanding.size === 0) allConfirmed();

  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error('All messages could not be confirmed in 60 seconds')),
      60000,
    );
  });
  await Promise.race([done, timeout]);
  clearTimeout(timer);
  if (nacked > 0) throw new Error(`${nacked} messages were nack-ed`);
  const ms = Number((process.hrtime.bigint() - start) / 1000000n);
  console.log(`Published ${fmt(count)} messages and handled confirms asynchronously in ${fmt(ms)} ms`);
  await connection.close();
}

run(async () => {
  const count = envNumber('MESSAGE_COUNT', 50000);
  await publishMessagesIndividually(count);
  await publishMessagesInBatch(count);
  await handlePublishConfirmsAsynchronously(count);
});
