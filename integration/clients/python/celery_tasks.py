"""The Celery app and tasks used by celery_client.py (imported by the worker too).

AMQP_URL names the broker; CELERY_QUEUE the queue this run's tasks go to, so that runs
sharing a broker do not take each other's tasks.
"""

import os
import time

from celery import Celery

from runner import url

QUEUE = os.environ.get("CELERY_QUEUE", "warren-celery")

app = Celery("warren_clients", broker="pyamqp" + url()[len("amqp"):], backend="rpc://")
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    broker_heartbeat=10,
    result_expires=300,
    # The task queue is a priority queue (x-max-priority); apply_async(priority=...) sets
    # the message priority.
    task_queue_max_priority=10,
    task_default_priority=0,
)


@app.task(acks_late=True)
def add(x, y):
    return x + y


@app.task(acks_late=True)
def boom(text):
    raise ValueError(text)


@app.task(acks_late=True, bind=True)
def slow(self, seconds, marker):
    """Sleep, then report how often this message has been delivered (marker file)."""
    with open(marker, "a") as f:
        f.write("started\n")
    time.sleep(seconds)
    return {"redelivered": bool(self.request.delivery_info.get("redelivered"))}


@app.task(acks_late=True)
def record(marker, tag):
    """Append `tag` to the marker file: the order tasks ran in."""
    with open(marker, "a") as f:
        f.write(f"{tag}\n")
    return tag
