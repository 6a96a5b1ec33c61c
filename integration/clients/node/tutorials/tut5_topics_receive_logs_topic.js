// Tutorial 5, "Topics": bind a fresh exclusive queue to `topic_logs` once per
// binding key (`*` one word, `#` zero or more) given on the command line, and
// print what arrives.
//
// Usage: tut5_topics_receive_logs_topic.js [binding_key]...
// Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).

const { closeAll, connect, countdown, run } = require('./common');

const keys = process.argv.slice(2);
if (keys.length === 0) {
  console.error('Usage: tut5_topics_receive_logs_topic.js [binding_key]...');
  process.exit(1);
}

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const exchange = 'topic_logs';
  await channel.assertExchange(exchange, 'topic', { durable: false });
  const q = await channel.assertQueue('', { exclusive: true });
  for (const key of keys) {
    await channel.bindQueue(q.queue, exchange, key);
  }

  // Ready: the queue (and its bindings) exist, so nothing sent from now on is lost.
  console.log(' [*] Waiting for messages. To exit press CTRL+C');
  const tick = countdown(() => closeAll(channel, connection));
  await channel.consume(q.queue, (msg) => {
    console.log(" [x] Received '%s':'%s'", msg.fields.routingKey, msg.content.toString());
    tick();
  }, { noAck: true });
});
