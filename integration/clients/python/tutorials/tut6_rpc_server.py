"""Tutorial 6, "RPC": answer fib(n) requests from `rpc_queue`, replying to each
request's reply_to queue with its correlation_id.

Exits after EXPECTED_MESSAGES requests (default 1; 0 = forever).
"""

import pika

import common

connection = pika.BlockingConnection(common.parameters())
channel = connection.channel()

channel.queue_declare(queue="rpc_queue")
channel.queue_purge(queue="rpc_queue")
countdown = common.Countdown(channel)


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def on_request(ch, method, props, body):
    response = ""
    try:
        n = int(body)
        print(f" [.] fib({n})")
        response = str(fib(n))
    except ValueError as e:
        print(f" [.] {e}")

    ch.basic_publish(
        exchange="",
        routing_key=props.reply_to,
        properties=pika.BasicProperties(correlation_id=props.correlation_id),
        body=response,
    )
    ch.basic_ack(delivery_tag=method.delivery_tag)
    countdown.tick()


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue="rpc_queue", on_message_callback=on_request)

print(" [x] Awaiting RPC requests")
channel.start_consuming()
connection.close()
