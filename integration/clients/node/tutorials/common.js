// Shared by the amqplib tutorial programs: broker URL and exit condition.
//
// Every program reads the broker URL from AMQP_URL (default
// amqp://guest:guest@127.0.0.1:5672/%2f). Unlike RabbitMQ's tutorials, the
// receiving side exits by itself after EXPECTED_MESSAGES messages (default 1;
// 0 means run until interrupted), so the programs can be tested.

const amqp = require('amqplib');

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672/%2f';

function connect() {
  return amqp.connect(process.env.AMQP_URL || DEFAULT_URL);
}

function envNumber(name, fallback) {
  const value = process.env[name];
  if (value === undefined) return fallback;
  const n = Number.parseInt(value, 10);
  if (Number.isNaN(n)) {
    console.error(`${name} must be a whole number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}

// How many messages to handle before exiting; null means forever.
function expectedMessages() {
  const n = envNumber('EXPECTED_MESSAGES', 1);
  return n > 0 ? n : null;
}

// Calls `done` once after the expected number of ticks.
function countdown(done) {
  let left = expectedMessages();
  return () => {
    if (left === null) return;
    left -= 1;
    if (left === 0) done();
  };
}

// Close the channel first (it flushes what the channel still has to send, such
// as a reply or an ack), then the connection.
function closeAll(channel, connection) {
  channel
    .close()
    .then(() => connection.close())
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}

// Run an async main; print the error and exit non-zero if it fails.
function run(main) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { closeAll, connect, envNumber, expectedMessages, countdown, run };
