// Tutorial 3, "Publish/Subscribe": bind a fresh exclusive, server-named queue
// to the `logs` fanout exchange and print what arrives.
//
// Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).

const { closeAll, connect, countdown, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const exchange = 'logs';
  await channel.assertExchange(exchange, 'fanout', { durable: false });
  const q = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(q.queue, exchange, '');

  // Ready: the queue (and its bindings) exist, so nothing sent from now on is lost.
  console.log(' [*] Waiting for messages. To exit press CTRL+C');
  const tick = countdown(() => closeAll(channel, connection));
  await channel.consume(q.queue, (msg) => {
    console.log(" [x] Received '%s'", msg.content.toString());
    tick();
  }, { noAck: true });
});
