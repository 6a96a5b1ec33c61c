"""Tutorial 2, "Work Queues": send a persistent task to the durable `task_queue`.

The task is the command-line arguments (default "Hello World!"); each `.` in it
is one second of work for the worker.
"""

import sys

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.queue_declare(queue="task_queue", durable=True)

message = " ".join(sys.argv[1:]) or "Hello World!"
channel.basic_publish(
    exchange="",
    routing_key="task_queue",
    body=message,
    properties=pika.BasicProperties(
        content_type="text/plain",
        delivery_mode=pika.DeliveryMode.Persistent,
    ),
)
print(f" [x] Sent '{message}'")

connection.close()
