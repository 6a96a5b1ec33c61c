"""Tutorial 3, "Publish/Subscribe": broadcast a log message on the `logs`
fanout exchange. The message is the command-line arguments (default
"info: Hello World!").
"""

import sys

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.exchange_declare(exchange="logs", exchange_type="fanout")

message = " ".join(sys.argv[1:]) or "info: Hello World!"
channel.basic_publish(exchange="logs", routing_key="", body=message)
print(f" [x] Sent '{message}'")

connection.close()
