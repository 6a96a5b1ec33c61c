#!/usr/bin/env python3
"""Poll Warren's management API and Prometheus endpoint once a second, as a dashboard or a
monitoring agent does (one keep-alive connection each), until killed: the overview, every
queue, connection, channel and exchange, the nodes, and /metrics.

Used to measure the hot path with the API on and polled (BENCHMARKS.md):

    bench/poll-api.py & poller=$!; bench/run.sh --quick --warren-only ...; kill $poller

A poller that starts a process per request (curl in a shell loop) costs a 2-core machine
several percent of its CPU by itself, which shows up as broker slowdown in S6; agents
keep their connections open, so this one does.
Environment: API (http://127.0.0.1:15672), METRICS (http://127.0.0.1:15692),
AMQP_USER / AMQP_PASS (guest / guest).
"""
import base64
import http.client
import os
import signal
import sys
import time
from urllib.parse import urlparse

PATHS = ["/api/overview", "/api/queues", "/api/connections", "/api/channels",
         "/api/nodes", "/api/exchanges"]


def connect(url):
    u = urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def main():
    api_url = os.environ.get("API", "http://127.0.0.1:15672")
    metrics_url = os.environ.get("METRICS", "http://127.0.0.1:15692")
    user = os.environ.get("AMQP_USER", "guest")
    password = os.environ.get("AMQP_PASS", "guest")
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    api, metrics = connect(api_url), connect(metrics_url)
    polls, failures = 0, 0

    def stop(*_):
        print(f"poll-api: {polls} polls, {failures} failed requests", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        for path in PATHS:
            try:
                api.request("GET", path, headers={"Authorization": auth})
                r = api.getresponse()
                r.read()
                failures += r.status != 200
            except (OSError, http.client.HTTPException):
                failures += 1
                api = connect(api_url)
        try:
            metrics.request("GET", "/metrics")
            metrics.getresponse().read()
        except (OSError, http.client.HTTPException):
            failures += 1
            metrics = connect(metrics_url)
        polls += 1
        time.sleep(1)


if __name__ == "__main__":
    main()
