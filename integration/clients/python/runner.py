"""Scenario runner shared by the Python client programs.

Each scenario prints one line: `PASS name`, `FAIL name: reason` or
`SKIP name: why (API lacks it)`. The process exits 1 if any scenario failed.
A scenario skips itself by raising `Skip("why")`.
"""

import asyncio
import os
import signal
import sys
import time
import traceback
import uuid


class Skip(Exception):
    pass


def url():
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eventually(fn, timeout=5.0, step=0.05):
    """Poll `fn` until it returns a truthy value or `timeout` passes; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


NESTED_HEADERS = {
    "str": "hello",
    "int": 42,
    "neg": -7,
    "bool": True,
    "table": {"inner": "x", "num": 1, "deeper": {"leaf": "y"}},
    "array": [1, "two", {"k": "v"}],
}


SCENARIO_TIMEOUT = 30


class ScenarioTimeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise ScenarioTimeout(f"no result within {SCENARIO_TIMEOUT} s")


def run(scenarios):
    """Run `scenarios`, a list of (name, fn); print one line each; exit non-zero on FAIL.

    `fn` may be a plain function or a coroutine function (run on one shared event loop).
    """
    failed = 0
    loop = asyncio.new_event_loop()
    signal.signal(signal.SIGALRM, _alarm)
    for name, fn in scenarios:
        try:
            if asyncio.iscoroutinefunction(fn):
                loop.run_until_complete(asyncio.wait_for(fn(), SCENARIO_TIMEOUT))
            else:
                signal.alarm(SCENARIO_TIMEOUT)
                try:
                    fn()
                finally:
                    signal.alarm(0)
            print(f"PASS {name}", flush=True)
        except Skip as s:
            print(f"SKIP {name}: {s} (API lacks it)", flush=True)
        except BaseException as e:  # noqa: BLE001 - report every failure as a line
            failed += 1
            reason = f"{type(e).__name__}: {e}".replace("\n", " ")
            print(f"FAIL {name}: {reason}", flush=True)
            if os.environ.get("CLIENT_DEBUG"):
                traceback.print_exc()
    sys.exit(1 if failed else 0)
