"""Tutorial 4, "Routing": bind a fresh exclusive queue to `direct_logs` once per
severity given on the command line, and print what arrives.

Usage: tut4_routing_receive_logs_direct.py [info] [warning] [error]
Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).
"""

import sys

import pika

import common

severities = sys.argv[1:]
if not severities:
    sys.stderr.write(f"Usage: {sys.argv[0]} [info] [warning] [error]\n")
    sys.exit(1)

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.exchange_declare(exchange="direct_logs", exchange_type="direct")

result = channel.queue_declare(queue="", exclusive=True)
queue_name = result.method.queue

for severity in severities:
    channel.queue_bind(exchange="direct_logs", queue=queue_name, routing_key=severity)
countdown = common.Countdown(channel)


def callback(ch, method, properties, body):
    print(f" [x] Received '{method.routing_key}':'{body.decode()}'")
    countdown.tick()


channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

print(" [*] Waiting for messages. To exit press CTRL+C")
channel.start_consuming()
connection.close()
