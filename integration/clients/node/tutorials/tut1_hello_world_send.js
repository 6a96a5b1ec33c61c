// Tutorial 1, "Hello World!": send one message to the `hello` queue.

const { connect, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const queue = 'hello';
  const msg = 'Hello World!';

  await channel.assertQueue(queue, { durable: false });
  channel.sendToQueue(queue, Buffer.from(msg));
  console.log(" [x] Sent '%s'", msg);

  // Closing the channel flushes the publish before the connection goes.
  await channel.close();
  await connection.close();
});
