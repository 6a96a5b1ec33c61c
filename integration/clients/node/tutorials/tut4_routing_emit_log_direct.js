// Tutorial 4, "Routing": publish a log message on the `direct_logs` exchange
// with its severity as the routing key.
//
// Usage: tut4_routing_emit_log_direct.js [severity] [message...]
// (defaults: info, "Hello World!").

const { connect, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const exchange = 'direct_logs';
  const args = process.argv.slice(2);
  const severity = args.length > 0 ? args[0] : 'info';
  const msg = args.slice(1).join(' ') || 'Hello World!';

  await channel.assertExchange(exchange, 'direct', { durable: false });
  channel.publish(exchange, severity, Buffer.from(msg));
  console.log(" [x] Sent '%s':'%s'", severity, msg);

  await channel.close();
  await connection.close();
});
