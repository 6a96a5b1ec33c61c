// Tutorial 2, "Work Queues": take tasks from `task_queue` one at a time
// (prefetch 1), "work" one second per `.` in the task, then ack it.
//
// Exits after EXPECTED_MESSAGES tasks (default 1; 0 = forever).

const { closeAll, connect, countdown, run } = require('./common');

run(async () => {
  const connection = await connect();
  const channel = await connection.createChannel();

  const queue = 'task_queue';
  await channel.assertQueue(queue, { durable: true });
  await channel.prefetch(1);

  // Ready: the queue (and its bindings) exist, so nothing sent from now on is lost.
  console.log(' [*] Waiting for messages. To exit press CTRL+C');
  const tick = countdown(() => closeAll(channel, connection));
  await channel.consume(queue, (msg) => {
    const task = msg.content.toString();
    const secs = task.split('.').length - 1;
    console.log(" [x] Received '%s'", task);
    setTimeout(() => {
      console.log(' [x] Done');
      channel.ack(msg);
      tick();
    }, secs * 1000);
  }, { noAck: false });
});
