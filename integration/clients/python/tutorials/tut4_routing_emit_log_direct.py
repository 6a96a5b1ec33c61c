"""Tutorial 4, "Routing": publish a log message on the `direct_logs` exchange
with its severity as the routing key.

Usage: tut4_routing_emit_log_direct.py [severity] [message...]
(defaults: info, "Hello World!").
"""

import sys

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.exchange_declare(exchange="direct_logs", exchange_type="direct")

severity = sys.argv[1] if len(sys.argv) > 1 else "info"
message = " ".join(sys.argv[2:]) or "Hello World!"
channel.basic_publish(exchange="direct_logs", routing_key=severity, body=message)
print(f" [x] Sent '{severity}':'{message}'")

connection.close()
