"""Tutorial 5, "Topics": publish a log message on the `topic_logs` exchange
with a `<facility>.<severity>` routing key.

Usage: tut5_topics_emit_log_topic.py [routing_key] [message...]
(defaults: anonymous.info, "Hello World!").
"""

import sys

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.exchange_declare(exchange="topic_logs", exchange_type="topic")

routing_key = sys.argv[1] if len(sys.argv) > 1 else "anonymous.info"
message = " ".join(sys.argv[2:]) or "Hello World!"
channel.basic_publish(exchange="topic_logs", routing_key=routing_key, body=message)
print(f" [x] Sent '{routing_key}':'{message}'")

connection.close()
