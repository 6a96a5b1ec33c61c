// Tutorial 2, "Work Queues": send a persistent task to the durable `task_queue`.
//
// The task is the command-line arguments (default "Hello World!"); each `.` in
// it is one second of work for the worker.

const { connect, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const queue = 'task_queue';
  const msg = process.argv.slice(2).join(' ') || 'Hello World!';

  await channel.assertQueue(queue, { durable: true });
  channel.sendToQueue(queue, Buffer.from(msg), { persistent: true, contentType: 'text/plain' });
  console.log(" [x] Sent '%s'", msg);

  await channel.close();
  await connection.close();
});
