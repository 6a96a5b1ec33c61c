#!/usr/bin/env bash
# Measure GET /api/queues with 10,000 queues on a release warren (a figure for BENCHMARKS.md,
# not a test): bench/api_list_10k.sh [WARREN_BIN]
set -eu
BIN=${1:-$HOME/.cache/warren-target/release/warren}
D=$(mktemp -d)
WARREN_LOG=warn "$BIN" --listen 127.0.0.1:5696 --http-listen 127.0.0.1:15696 --prometheus-listen 127.0.0.1:15697 --data-dir "$D/data" > "$D/log" 2>&1 &
PID=$!
trap 'kill $PID; rm -rf "$D"' EXIT
sleep 2
seq 1 10000 | xargs -P 4 -I{} curl -s -o /dev/null -u guest:guest -X PUT -H 'content-type: application/json' -d '{"durable":false}' http://127.0.0.1:15696/api/queues/%2F/q{}
echo "queues: $(curl -s -u guest:guest 'http://127.0.0.1:15696/api/overview' | python3 -c 'import json,sys; print(json.load(sys.stdin)["object_totals"]["queues"])')"
for i in 1 2 3; do
  curl -s -o /tmp/q10k.json -w "full list: %{time_total}s %{size_download} bytes\n" -u guest:guest http://127.0.0.1:15696/api/queues
done
for i in 1 2 3; do
  curl -s -o /dev/null -w "page 1 of 100 sorted by messages: %{time_total}s\n" -u guest:guest 'http://127.0.0.1:15696/api/queues?page=1&page_size=100&sort=messages&sort_reverse=true'
done
curl -s -o /dev/null -w "columns=name: %{time_total}s %{size_download} bytes\n" -u guest:guest 'http://127.0.0.1:15696/api/queues?columns=name'
echo "RSS after: $(ps -o rss= -p $PID) KiB"
