"""Tutorial 7, "Publisher Confirms": publish MESSAGE_COUNT messages (default
50,000) with confirms on, three ways, and print how long each took:

1. individually: wait for each message's confirm before publishing the next;
2. in batches: wait for the confirms of every 100 messages;
3. asynchronously: keep publishing while confirms are handled as they arrive.

pika's BlockingConnection can only wait for each publish, so this uses its
asynchronous SelectConnection for all three. Each strategy uses its own
connection and an exclusive server-named queue.
"""

import sys
import time

import pika
from pika.spec import Basic

import common

BATCH_SIZE = 100
# How many messages the asynchronous strategy publishes before letting the
# I/O loop read the confirms that have arrived.
ASYNC_CHUNK = 1000


class ConfirmPublisher:
    def __init__(self, count, strategy):
        self.count = count
        self.strategy = strategy
        self.published = 0
        self.next_seq = 1
        self.outstanding = {}  # delivery tag -> body, in publish order
        self.nacked = 0
        self.error = None
        self.elapsed = None

    def run(self):
        self.connection = pika.SelectConnection(
            common.parameters(),
            on_open_callback=self.on_connection_open,
            on_open_error_callback=self.on_connection_error,
            on_close_callback=self.on_connection_closed,
        )
        self.connection.ioloop.start()
        if self.error is not None:
            raise SystemExit(f"{self.strategy}: {self.error}")
        if self.nacked:
            raise SystemExit(f"{self.strategy}: {self.nacked} messages were nack-ed")
        return self.elapsed

    def on_connection_open(self, connection):
        connection.channel(on_open_callback=self.on_channel_open)

    def on_connection_error(self, connection, error):
        self.error = error
        connection.ioloop.stop()

    def on_connection_closed(self, connection, reason):
        if self.elapsed is None and self.error is None:
            self.error = reason
        connection.ioloop.stop()

    def on_channel_open(self, channel):
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.queue_declare(queue="", exclusive=True, callback=self.on_queue_declared)

    def on_channel_closed(self, channel, reason):
        if self.elapsed is None:
            self.error = reason
            if self.connection.is_open:
                self.connection.close()

    def on_queue_declared(self, frame):
        self.queue = frame.method.queue
        self.channel.confirm_delivery(
            ack_nack_callback=self.on_confirm, callback=self.on_confirm_selected
        )

    def on_confirm_selected(self, frame):
        self.start = time.perf_counter()
        self.publish_more()

    def publish_more(self):
        if self.strategy == "individually":
            allowed = 1
        elif self.strategy == "batch":
            allowed = BATCH_SIZE
        else:
            allowed = ASYNC_CHUNK
        for _ in range(min(allowed, self.count - self.published)):
            body = str(self.published)
            self.outstanding[self.next_seq] = body
            self.next_seq += 1
            self.channel.basic_publish(exchange="", routing_key=self.queue, body=body)
            self.published += 1
        if self.strategy == "asynchronously" and self.published < self.count:
            self.connection.ioloop.call_later(0, self.publish_more)
        self.maybe_done()

    def on_confirm(self, frame):
        method = frame.method
        tag = method.delivery_tag
        if isinstance(method, Basic.Nack):
            self.nacked += 1
            body = self.outstanding.get(tag)
            print(
                f"Message with body {body} has been nack-ed. "
                f"Sequence number: {tag}, multiple: {method.multiple}",
                file=sys.stderr,
            )
        if method.multiple:
            while self.outstanding:
                first = next(iter(self.outstanding))
                if first > tag:
                    break
                del self.outstanding[first]
        else:
            self.outstanding.pop(tag, None)
        if not self.outstanding and self.strategy != "asynchronously":
            self.publish_more()
        else:
            self.maybe_done()

    def maybe_done(self):
        if self.elapsed is None and self.published == self.count and not self.outstanding:
            self.elapsed = time.perf_counter() - self.start
            self.connection.close()


def main():
    count = common.env_number("MESSAGE_COUNT", 50_000)
    ms = round(ConfirmPublisher(count, "individually").run() * 1000)
    print(f"Published {count:,} messages individually in {ms:,} ms")
    ms = round(ConfirmPublisher(count, "batch").run() * 1000)
    print(f"Published {count:,} messages in batch in {ms:,} ms")
    ms = round(ConfirmPublisher(count, "asynchronously").run() * 1000)
    print(f"Published {count:,} messages and handled confirms asynchronously in {ms:,} ms")


if __name__ == "__main__":
    main()
