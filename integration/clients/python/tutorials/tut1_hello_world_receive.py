"""Tutorial 1, "Hello World!": print messages from the `hello` queue.

Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).
"""

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.queue_declare(queue="hello")
countdown = common.Countdown(channel)


def callback(ch, method, properties, body):
    print(f" [x] Received '{body.decode()}'")
    countdown.tick()


channel.basic_consume(queue="hello", on_message_callback=callback, auto_ack=True)

print(" [*] Waiting for messages. To exit press CTRL+C")
channel.start_consuming()
connection.close()
