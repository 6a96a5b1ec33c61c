// Tutorial 4, "Routing": bind a fresh exclusive queue to `direct_logs` once per
// severity given on the command line, and print what arrives.
//
// Usage: tut4_routing_receive_logs_direct.js [info] [warning] [error]
// Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).

const { closeAll, connect, countdown, run } = require('./common');

const severities = process.argv.slice(2);
if (severities.length === 0) {
  console.error('Usage: tut4_routing_receive_logs_direct.js [info] [warning] [error]');
  process.exit(1);
}

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const exchange = 'direct_logs';
  await channel.assertExchange(exchange, 'direct', { durable: false });
  const q = await channel.assertQueue('', { exclusive: true });
  for (const severity of severities) {
    await channel.bindQueue(q.queue, exchange, severity);
  }

  // Ready: the queue (and its bindings) exist, so nothing sent from now on is lost.
  console.log(' [*] Waiting for messages. To exit press CTRL+C');
  const tick = countdown(() => closeAll(channel, connection));
  await channel.consume(q.queue, (msg) => {
    console.log(" [x] Received '%s':'%s'", msg.fields.routingKey, msg.content.toString());
    tick();
  }, { noAck: true });
});
