// Tutorial 6, "RPC": ask the RPC server for fib(n) for each n on the command
// line (default 30), waiting for each answer on an exclusive callback queue and
// matching it by correlationId.

const crypto = require('node:crypto');
const { connect, run } = require('./common');

run(async () => {
  const requests = process.argv.slice(2);
  if (requests.length === 0) requests.push('30');

  const connection = await connect();
  const channel = await connection.createChannel();

  const q = await channel.assertQueue('', { exclusive: true });
  const pending = new Map(); // correlationId -> resolve
  await channel.consume(q.queue, (msg) => {
    const resolve = pending.get(msg.properties.correlationId);
    if (resolve) {
      pending.delete(msg.properties.correlationId);
      resolve(msg.content.toString());
    }
  }, { noAck: true });

  for (const n of requests) {
    const correlationId = crypto.randomUUID();
    console.log(' [x] Requesting fib(%s)', n);
    const reply = new Promise((resolve) => pending.set(correlationId, resolve));
    channel.sendToQueue('rpc_queue', Buffer.from(n), {
      correlationId,
      replyTo: q.queue,
    });
    console.log(" [.] Got '%s'", await reply);
  }

  await connection.close();
});
