"""Tutorial 5, "Topics": bind a fresh exclusive queue to `topic_logs` once per
binding key (`*` one word, `#` zero or more) given on the command line, and
print what arrives.

Usage: tut5_topics_receive_logs_topic.py [binding_key]...
Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).
"""

import sys

import pika

import common

binding_keys = sys.argv[1:]
if not binding_keys:
    sys.stderr.write(f"Usage: {sys.argv[0]} [binding_key]...\n")
    sys.exit(1)

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.exchange_declare(exchange="topic_logs", exchange_type="topic")

result = channel.queue_declare(queue="", exclusive=True)
queue_name = result.method.queue

for binding_key in binding_keys:
    channel.queue_bind(exchange="topic_logs", queue=queue_name, routing_key=binding_key)
countdown = common.Countdown(channel)


def callback(ch, method, properties, body):
    print(f" [x] Received '{method.routing_key}':'{body.decode()}'")
    countdown.tick()


channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

print(" [*] Waiting for messages. To exit press CTRL+C")
channel.start_consuming()
connection.close()
