"""Shared by the pika tutorial programs: broker URL and exit condition.

Every program reads the broker URL from AMQP_URL (default
amqp://guest:guest@127.0.0.1:5672/%2f). Unlike RabbitMQ's tutorials, the
receiving side exits by itself after EXPECTED_MESSAGES messages (default 1;
0 means run until interrupted), so the programs can be tested.
"""

import os
import sys

import pika

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


def parameters():
    return pika.URLParameters(os.environ.get("AMQP_URL", DEFAULT_URL))


def env_number(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"{name} must be a whole number, got {value!r}")


def expected_messages():
    """How many messages to handle before exiting; None means forever."""
    n = env_number("EXPECTED_MESSAGES", 1)
    return n if n > 0 else None


class Countdown:
    """Stops a BlockingChannel's consuming after the expected number of messages."""

    def __init__(self, channel):
        self.channel = channel
        self.left = expected_messages()

    def tick(self):
        if self.left is not None:
            self.left -= 1
            if self.left == 0:
                self.channel.stop_consuming()
