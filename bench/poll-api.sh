#!/usr/bin/env bash
# Poll Warren's management API once a second, as a dashboard or monitoring agent would,
# until killed: the overview, every queue, connection and channel, and the nodes.
# Used to measure the hot path with the API on and polled (BENCHMARKS.md):
#
#   bench/poll-api.sh [URL] & poller=$!; bench/run.sh --quick --warren-only ...; kill $poller
#
# URL defaults to http://127.0.0.1:15672, METRICS (Prometheus, scraped too) to
# http://127.0.0.1:15692/metrics; credentials guest/guest (AMQP_USER/AMQP_PASS).
set -u
URL=${1:-http://127.0.0.1:15672}
METRICS=${2:-http://127.0.0.1:15692/metrics}
AUTH="${AMQP_USER:-guest}:${AMQP_PASS:-guest}"
polls=0
trap 'echo "poll-api: $polls polls" >&2; exit 0' TERM INT
while :; do
    for path in /api/overview /api/queues /api/connections /api/channels /api/nodes /api/exchanges; do
        curl -s -o /dev/null -u "$AUTH" "$URL$path" || true
    done
    curl -s -o /dev/null "$METRICS" || true
    polls=$((polls + 1))
    sleep 1
done
