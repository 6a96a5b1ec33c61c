// Tutorial 3, "Publish/Subscribe": broadcast a log message on the `logs`
// fanout exchange. The message is the command-line arguments (default
// "info: Hello World!").

const { connect, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const exchange = 'logs';
  const msg = process.argv.slice(2).join(' ') || 'info: Hello World!';

  await channel.assertExchange(exchange, 'fanout', { durable: false });
  channel.publish(exchange, '', Buffer.from(msg));
  console.log(" [x] Sent '%s'", msg);

  await channel.close();
  await connection.close();
});
