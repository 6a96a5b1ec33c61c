"""Tutorial 2, "Work Queues": take tasks from `task_queue` one at a time
(prefetch 1), "work" one second per `.` in the task, then ack it.

Exits after EXPECTED_MESSAGES tasks (default 1; 0 = forever).
"""

import time

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.queue_declare(queue="task_queue", durable=True)
countdown = common.Countdown(channel)


def callback(ch, method, properties, body):
    print(f" [x] Received '{body.decode()}'")
    time.sleep(body.count(b"."))
    print(" [x] Done")
    ch.basic_ack(delivery_tag=method.delivery_tag)
    countdown.tick()


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue="task_queue", on_message_callback=callback)

print(" [*] Waiting for messages. To exit press CTRL+C")
channel.start_consuming()
connection.close()
