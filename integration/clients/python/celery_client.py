"""Client-compatibility scenarios with Celery: a real worker process executing tasks with
acks_late=True, results over the rpc:// backend. AMQP_URL names the broker."""

import os
import signal
import subprocess
import sys
import tempfile
import time

from runner import check, eventually, run, unique

os.environ.setdefault("CELERY_QUEUE", unique("celery"))

from celery_tasks import QUEUE, add, app, boom, record, slow  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
state = {"workers": []}


def start_worker():
    name = unique("worker") + "@localhost"
    env = dict(os.environ, PYTHONPATH=HERE)
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool=solo",
         "-Q", QUEUE, "-n", name, "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log.name
    state["workers"].append(proc)
    return proc, name


def wait_ready(proc, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(proc.log) as f:
                raise AssertionError(f"worker exited: {f.read()[-2000:]}")
        replies = app.control.ping(destination=[name], timeout=0.5)
        if any(name in r for r in replies):
            return
    raise AssertionError("worker did not answer a control ping")


def stop_all():
    for proc in state["workers"]:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(proc.log)


def queue_prioritised_tasks():
    """Before any worker runs: tasks with priorities 1, 5, 9, 0, 5 and 12 (above the
    queue's x-max-priority of 10, so it counts as 10) wait in the task queue."""
    marker = state["priority_marker"] = tempfile.NamedTemporaryFile(
        prefix="celery-priority-", delete=False).name
    state["priority_results"] = [
        record.apply_async((marker, tag), priority=priority)
        for tag, priority in [("p1", 1), ("p5a", 5), ("p9", 9), ("p0", 0), ("p5b", 5),
                              ("p12", 12)]
    ]
    with app.connection_for_write() as conn:
        def ready():
            return conn.default_channel.queue_declare(QUEUE, passive=True)[1]
        check(eventually(lambda: ready() == 6), f"{ready()} tasks queued")


def priority_order():
    """The worker (prefetch 1) ran the queued tasks by priority, FIFO within one."""
    results = state["priority_results"]
    check([r.get(timeout=30) for r in results] == ["p1", "p5a", "p9", "p0", "p5b", "p12"],
          "results")
    with open(state["priority_marker"]) as f:
        order = f.read().split()
    os.unlink(state["priority_marker"])
    check(order == ["p12", "p9", "p5a", "p5b", "p1", "p0"], f"ran in order {order}")


def worker_ready():
    proc, name = start_worker()
    state["worker"] = (proc, name)
    wait_ready(proc, name)


def task_result_round_trip():
    result = add.delay(2, 3)
    check(result.get(timeout=20) == 5, "wrong result")
    check(result.successful(), f"state {result.state}")


def task_exception_round_trip():
    result = boom.delay("kaput")
    try:
        result.get(timeout=20)
        raise AssertionError("no exception")
    except ValueError as e:
        check(str(e) == "kaput", f"{e!r}")
    check(result.state == "FAILURE", f"state {result.state}")


def many_tasks():
    results = [add.delay(i, i) for i in range(20)]
    check([r.get(timeout=30) for r in results] == [2 * i for i in range(20)], "results")


def acks_late_redelivered_after_worker_killed():
    proc, name = state["worker"]
    with tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "marker")
        result = slow.delay(3, marker)
        deadline = time.monotonic() + 20
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(os.path.exists(marker), "task never started")
        # The worker dies mid-task: with acks_late the message was not acked, so the
        # broker must requeue it (redelivered) when the worker's connection drops.
        proc.kill()
        proc.wait()
        proc, name = start_worker()
        state["worker"] = (proc, name)
        value = result.get(timeout=30)
        check(value == {"redelivered": True}, f"result {value}")
        with open(marker) as f:
            check(f.read().count("started") == 2, "task did not run twice")


def queue_empty_after_acks():
    with app.connection_for_write() as conn:
        _, ready, consumers = conn.default_channel.queue_declare(QUEUE, passive=True)
    check(ready == 0, f"{ready} messages left in the task queue")
    check(consumers == 1, f"{consumers} consumers on the task queue")


def shutdown():
    proc, _ = state["worker"]
    proc.send_signal(signal.SIGTERM)  # warm shutdown
    check(proc.wait(timeout=30) == 0, f"worker exit code {proc.returncode}")
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(QUEUE)


if __name__ == "__main__":
    try:
        run([
            ("tasks_queued_with_priorities", queue_prioritised_tasks),
            ("worker_ready_control_ping", worker_ready),
            ("task_priority_order", priority_order),
            ("task_acks_late_result_round_trip", task_result_round_trip),
            ("task_exception_round_trip", task_exception_round_trip),
            ("many_tasks", many_tasks),
            ("acks_late_redelivered_after_worker_killed", acks_late_redelivered_after_worker_killed),
            ("queue_empty_after_acks", queue_empty_after_acks),
            ("worker_warm_shutdown", shutdown),
        ])
    finally:
        stop_all()
