"""Tutorial 6, "RPC": ask the RPC server for fib(n) for each n on the command
line (default 30), waiting for each answer on an exclusive callback queue and
matching it by correlation_id.
"""

import sys
import uuid

import pika

import common


class FibonacciRpcClient:
    def __init__(self):
        self.connection = pika.BlockingConnection(common.parameters())
        self.channel = self.connection.channel()

        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue

        self.channel.basic_consume(
            queue=self.callback_queue,
            on_message_callback=self.on_response,
            auto_ack=True,
        )

        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, n):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key="rpc_queue",
            properties=pika.BasicProperties(
                reply_to=self.callback_queue,
                correlation_id=self.corr_id,
            ),
            body=str(n),
        )
        while self.response is None:
            self.connection.process_data_events(time_limit=None)
        return self.response.decode()

    def close(self):
        self.connection.close()


fibonacci_rpc = FibonacciRpcClient()
for n in sys.argv[1:] or ["30"]:
    print(f" [x] Requesting fib({n})")
    response = fibonacci_rpc.call(n)
    print(f" [.] Got '{response}'")
fibonacci_rpc.close()
