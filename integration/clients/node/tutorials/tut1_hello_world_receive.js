// Tutorial 1, "Hello World!": print messages from the `hello` queue.
//
// Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).

const { closeAll, connect, countdown, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const queue = 'hello';
  await channel.assertQueue(queue, { durable: false });

  // Ready: the queue (and its bindings) exist, so nothing sent from now on is lost.
  console.log(' [*] Waiting for messages. To exit press CTRL+C');
  const tick = countdown(() => closeAll(channel, connection));
  await channel.consume(queue, (msg) => {
    console.log(" [x] Received '%s'", msg.content.toString());
    tick();
  }, { noAck: true });
});
