"""Tutorial 1, "Hello World!": send one message to the `hello` queue."""

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.queue_declare(queue="hello")

channel.basic_publish(exchange="", routing_key="hello", body="Hello World!")
print(" [x] Sent 'Hello World!'")

connection.close()
