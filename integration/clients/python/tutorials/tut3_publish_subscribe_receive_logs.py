"""Tutorial 3, "Publish/Subscribe": bind a fresh exclusive, server-named queue
to the `logs` fanout exchange and print what arrives.

Exits after EXPECTED_MESSAGES messages (default 1; 0 = forever).
"""

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.exchange_declare(exchange="logs", exchange_type="fanout")

result = channel.queue_declare(queue="", exclusive=True)
queue_name = result.method.queue

channel.queue_bind(exchange="logs", queue=queue_name)
countdown = common.Countdown(channel)


def callback(ch, method, properties, body):
    print(f" [x] Received '{body.decode()}'")
    countdown.tick()


channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

print(" [*] Waiting for messages. To exit press CTRL+C")
channel.start_consuming()
connection.close()
