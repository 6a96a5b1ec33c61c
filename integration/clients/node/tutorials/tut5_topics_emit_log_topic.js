// Tutorial 5, "Topics": publish a log message on the `topic_logs` exchange
// with a `<facility>.<severity>` routing key.
//
// Usage: tut5_topics_emit_log_topic.js [routing_key] [message...]
// (defaults: anonymous.info, "Hello World!").

const { connect, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const exchange = 'topic_logs';
  const args = process.argv.slice(2);
  const key = args.length > 0 ? args[0] : 'anonymous.info';
  const msg = args.slice(1).join(' ') || 'Hello World!';

  await channel.assertExchange(exchange, 'topic', { durable: false });
  channel.publish(exchange, key, Buffer.from(msg));
  console.log(" [x] Sent '%s':'%s'", key, msg);

  await channel.close();
  await connection.close();
});
