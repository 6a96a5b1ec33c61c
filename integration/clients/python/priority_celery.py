"""Celery's priority settings (issue 11): `task_queue_max_priority` makes Celery declare its
queue with `x-max-priority`, `task_default_priority` is the priority of a task sent without
one, `apply_async(priority=...)` sets it. A backlog of tasks sent before the worker starts
must run highest priority first, FIFO within a priority, on a worker with one process and
prefetch 1 (acks_late, so the next task is delivered only after the previous one's ack).
AMQP_URL names the broker; CELERY_PRIORITY_LOGLEVEL=info (or debug) prints the worker's log.
Prints `PASS celery-priority` or exits 1. Run by
integration/tests/priority.rs; the worker imports this module for the app and the task.
"""

import os
import subprocess
import sys
import tempfile
import time

from celery import Celery

from runner import unique, url

QUEUE = os.environ.setdefault("CELERY_PRIORITY_QUEUE", unique("celery-prio"))
LOG = os.environ.setdefault(
    "CELERY_PRIORITY_LOG", os.path.join(tempfile.gettempdir(), unique("celery-prio") + ".log")
)
MAX = 10
DEFAULT = 5

app = Celery("warren_priority", broker="pyamqp" + url()[len("amqp"):])
app.conf.update(
    task_default_queue=QUEUE,
    task_queue_max_priority=MAX,
    task_default_priority=DEFAULT,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="priority_celery.record")
def record(name):
    with open(LOG, "a") as f:
        f.write(name + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    # None: task_default_priority (5) applies.
    priorities = [None, 1, 9, 5, 0, 9, None, 3, 7, 1, 10, 2]
    tasks = [(f"t{i}", priorities[i % len(priorities)]) for i in range(len(priorities))]
    for name, priority in tasks:
        if priority is None:
            record.apply_async(args=[name])
        else:
            record.apply_async(args=[name], priority=priority)
    effective = [(name, DEFAULT if p is None else min(p, MAX)) for name, p in tasks]
    expected = [name for name, _ in sorted(effective, key=lambda t: -t[1])]

    log = tempfile.NamedTemporaryFile(prefix="celery-prio-worker-", suffix=".log", delete=False)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "priority_celery", "worker", "--pool=solo",
         "--concurrency=1", "--prefetch-multiplier=1", "-Q", QUEUE,
         "-n", unique("prio-worker") + "@localhost", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", os.environ.get("CELERY_PRIORITY_LOGLEVEL", "warning")],
        cwd=here, env=dict(os.environ, PYTHONPATH=here, PYTHONDONTWRITEBYTECODE="1"),
        stdout=log, stderr=subprocess.STDOUT)
    got = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(got) < len(tasks):
            if worker.poll() is not None:
                break
            time.sleep(0.2)
            if os.path.exists(LOG):
                with open(LOG) as f:
                    got = f.read().split()
    finally:
        worker.kill()
        worker.wait()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(QUEUE)
            conn.default_channel.exchange_delete(QUEUE)
    with open(log.name) as f:
        worker_log = f.read()
    os.unlink(log.name)
    if os.path.exists(LOG):
        os.unlink(LOG)
    if got != expected:
        print(f"FAIL celery-priority: ran {got}, expected {expected}\nworker log:\n{worker_log[-3000:]}")
        sys.exit(1)
    if os.environ.get("CELERY_PRIORITY_LOGLEVEL"):
        print(worker_log)
    print("PASS celery-priority")


if __name__ == "__main__":
    main()
