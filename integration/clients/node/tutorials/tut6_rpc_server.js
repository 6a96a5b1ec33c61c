// Tutorial 6, "RPC": answer fib(n) requests from `rpc_queue`, replying to each
// request's replyTo queue with its correlationId.
//
// Exits after EXPECTED_MESSAGES requests (default 1; 0 = forever).

const { closeAll, connect, countdown, run } = require('./common');

function fibonacci(n) {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) {
    [a, b] = [b, a + b];
  }
  return a;
}

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const queue = 'rpc_queue';
  await channel.assertQueue(queue, { durable: false });
  await channel.purgeQueue(queue);
  await channel.prefetch(1);

  // Ready: the queue (and its bindings) exist, so nothing sent from now on is lost.
  console.log(' [x] Awaiting RPC requests');
  const tick = countdown(() => closeAll(channel, connection));
  await channel.consume(queue, (msg) => {
    const text = msg.content.toString();
    const n = Number.parseInt(text, 10);
    let response = '';
    if (Number.isNaN(n)) {
      console.log(' [.] not a number: %s', text);
    } else {
      console.log(' [.] fib(%d)', n);
      response = fibonacci(n).toString();
    }
    channel.sendToQueue(msg.properties.replyTo, Buffer.from(response), {
      correlationId: msg.properties.correlationId,
    });
    channel.ack(msg);
    tick();
  });
});
