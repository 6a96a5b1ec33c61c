"""The foundation issue's acceptance check with pika: connect as guest, open and close a
channel, declare a queue, publish one message and get it back, close.

Reads the broker URL from AMQP_URL. Prints `OK` and exits 0 on success; any failure
raises (non-zero exit with a traceback).
"""

import os
import uuid

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
connection = pika.BlockingConnection(pika.URLParameters(url))
assert connection.is_open

channel = connection.channel()
assert channel.is_open
channel.close()
assert channel.is_closed

channel = connection.channel()
queue = f"pika-smoke-{uuid.uuid4().hex[:8]}"
declared = channel.queue_declare(queue=queue)
assert declared.method.queue == queue, declared
channel.basic_publish(exchange="", routing_key=queue, body=b"hello from pika")
method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
assert method is not None, "basic.get found no message"
assert body == b"hello from pika", body
channel.queue_delete(queue=queue)
channel.close()
connection.close()
assert connection.is_closed
print("OK", flush=True)
