#!/usr/bin/env bash
# Client-compatibility scenarios with rabbitmq-c, through its command-line tools
# (amqp-declare-queue, amqp-publish, amqp-consume, amqp-get, amqp-delete-queue).
# AMQP_URL names the broker. One line per scenario; exit 1 on any FAIL.
# The tools cover a subset of AMQP; what they cannot express is a SKIP.
set -u

URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
TMP="$(mktemp -d)"
FAILED=0
BG_PIDS=()
cleanup() {
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

unique() { echo "$1-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"; }

# run TOOL ARGS...: stdout to $TMP/out, stderr to $TMP/err, 20 s limit; returns the exit code.
run() {
  local tool="$1"
  shift
  timeout 20 "$tool" --url="$URL" "$@" >"$TMP/out" 2>"$TMP/err"
}

# A scenario function returns 0 (pass), 77 (skip, reason in $WHY) or other (fail, $WHY).
scenario() {
  local name="$1" fn="$2"
  WHY=""
  "$fn"
  local rc=$?
  if [ $rc -eq 0 ]; then
    echo "PASS $name"
  elif [ $rc -eq 77 ]; then
    echo "SKIP $name: $WHY (API lacks it)"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $name: ${WHY:-exit $rc} $(tr '\n' ' ' <"$TMP/err" 2>/dev/null)"
  fi
}

fail() { WHY="$1"; return 1; }
skip() { WHY="$1"; return 77; }
# Succeeded with nothing on stderr (a failed close or any protocol error prints there).
clean() { [ ! -s "$TMP/err" ] || fail "stderr: $(cat "$TMP/err")"; }

declare_q() { run amqp-declare-queue -q "$1" "${@:2}" && clean; }
delete_q() { run amqp-delete-queue -q "$1"; }
publish() { run amqp-publish -r "$1" -b "$2" "${@:3}" && clean; }

connect_heartbeat() {
  local q
  q=$(unique ctools-hb)
  declare_q "$q" || return 1
  # A consumer with a 2 s heartbeat waits idle for 5 s: both sides' heartbeats must flow.
  timeout 20 amqp-consume --url="$URL" --heartbeat=2 -q "$q" -c 1 cat >"$TMP/hb.out" 2>"$TMP/hb.err" &
  local pid=$!
  BG_PIDS+=("$pid")
  sleep 5
  kill -0 "$pid" 2>/dev/null || { cp "$TMP/hb.err" "$TMP/err"; fail "consumer died while idle"; return; }
  publish "$q" after-idle || return 1
  wait "$pid" || { cp "$TMP/hb.err" "$TMP/err"; fail "consumer exited with an error"; return; }
  [ "$(cat "$TMP/hb.out")" = "after-idle" ] || fail "consumer got '$(cat "$TMP/hb.out")'"
  [ ! -s "$TMP/hb.err" ] || { cp "$TMP/hb.err" "$TMP/err"; fail "consumer stderr"; return; }
  delete_q "$q"
}

exchange_types() { skip "amqp-tools cannot declare exchanges; see builtin_exchange_routing"; }

builtin_exchange_routing() {
  # amqp-consume binds its queue to the pre-declared amq.* exchanges.
  local ex key pub q
  for spec in "amq.direct:rk:rk" "amq.fanout:ignored:any" "amq.topic:a.*:a.b"; do
    IFS=: read -r ex key pub <<<"$spec"
    q=$(unique ctools-bind)
    timeout 20 amqp-consume --url="$URL" -q "$q" -d -e "$ex" -r "$key" -c 1 cat >"$TMP/c.out" 2>"$TMP/c.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    # Publish until the consumer's binding exists (it declares and binds on start).
    local i
    for i in $(seq 1 50); do
      sleep 0.1
      run amqp-publish -e "$ex" -r "$pub" -b "via-$ex" || return 1
      kill -0 "$pid" 2>/dev/null || break
    done
    wait "$pid" || { cp "$TMP/c.err" "$TMP/err"; fail "consumer on $ex failed"; return; }
    [ "$(cat "$TMP/c.out")" = "via-$ex" ] || fail "$ex delivered '$(cat "$TMP/c.out")'" || return
  done
}

exchange_to_exchange() { skip "amqp-tools have no exchange.bind"; }

queue_durable() {
  local q
  q=$(unique ctools-durable)
  declare_q "$q" -d || return 1
  declare_q "$q" -d || return 1
  run amqp-declare-queue -q "$q" && fail "inequivalent redeclare succeeded" && return
  grep -q "406, message: PRECONDITION_FAILED" "$TMP/err" || fail "expected 406"
  local rc=$?
  delete_q "$q"
  return $rc
}

queue_exclusive() {
  local q
  q=$(unique ctools-excl)
  timeout 20 amqp-consume --url="$URL" -q "$q" -x -c 1 cat >"$TMP/x.out" 2>"$TMP/x.err" &
  local pid=$!
  BG_PIDS+=("$pid")
  local i
  for i in $(seq 1 50); do
    sleep 0.1
    run amqp-get -q "$q"
    grep -q "405, message: RESOURCE_LOCKED" "$TMP/err" && break
  done
  grep -q "405, message: RESOURCE_LOCKED" "$TMP/err" || fail "another connection used the exclusive queue" || return
  publish "$q" done || return 1
  wait "$pid" || { cp "$TMP/x.err" "$TMP/err"; fail "exclusive consumer failed"; return; }
  # Gone with its connection.
  run amqp-get -q "$q" && fail "exclusive queue outlived its connection" && return
  grep -q "404, message: NOT_FOUND" "$TMP/err" || fail "expected 404"
}

queue_auto_delete() {
  # amqp-consume -d declares its queue auto-delete (and exclusive only with -x).
  local q
  q=$(unique ctools-ad)
  timeout 20 amqp-consume --url="$URL" -q "$q" -d -c 1 cat >"$TMP/a.out" 2>"$TMP/a.err" &
  local pid=$!
  BG_PIDS+=("$pid")
  local i
  for i in $(seq 1 50); do
    sleep 0.1
    run amqp-publish -r "$q" -b ad
    kill -0 "$pid" 2>/dev/null || break
  done
  wait "$pid" || { cp "$TMP/a.err" "$TMP/err"; fail "consumer failed"; return; }
  run amqp-get -q "$q" && fail "auto-delete queue outlived its consumer" && return
  grep -q "404, message: NOT_FOUND" "$TMP/err" || fail "expected 404"
}

queue_server_named() {
  declare_q "" || return 1
  local name
  name=$(cat "$TMP/out")
  [[ "$name" == amq.gen-* ]] || fail "server-named queue '$name'" || return
  delete_q "$name"
}

passive_missing_404() { skip "amqp-tools have no passive declare; see basic_get_missing_queue_404"; }

basic_get_missing_queue_404() {
  run amqp-get -q "$(unique ctools-missing)" && fail "get on a missing queue succeeded" && return
  grep -q "404, message: NOT_FOUND - no queue" "$TMP/err" || fail "expected 404"
}

publish_confirms() { skip "amqp-publish does not use publisher confirms"; }
mandatory_return() { skip "amqp-publish has no mandatory flag"; }

consume_manual_ack() {
  local q
  q=$(unique ctools-ack)
  declare_q "$q" || return 1
  publish "$q" m0 && publish "$q" m1 && publish "$q" m2 || return 1
  # Without -A, amqp-consume acks each message after its command succeeds.
  run amqp-consume -q "$q" -c 3 -- sh -c 'cat; echo' || fail "consume failed" || return
  [ "$(tr '\n' ' ' <"$TMP/out")" = "m0 m1 m2 " ] || fail "got '$(cat "$TMP/out")'" || return
  run amqp-get -q "$q"
  [ $? -eq 2 ] || fail "acked messages still in the queue" || return
  delete_q "$q"
}

nack_requeue() { skip "amqp-consume acks every message; no basic.nack"; }
reject_no_requeue() { skip "amqp-consume acks every message; no basic.reject"; }

basic_get() {
  local q
  q=$(unique ctools-get)
  declare_q "$q" || return 1
  run amqp-get -q "$q"
  [ $? -eq 2 ] && [ ! -s "$TMP/out" ] || fail "get on an empty queue did not say empty" || return
  publish "$q" g1 && publish "$q" g2 || return 1
  run amqp-get -q "$q" && clean || return 1
  [ "$(cat "$TMP/out")" = "g1" ] || fail "got '$(cat "$TMP/out")'" || return
  delete_q "$q"
}

prefetch() {
  local q
  q=$(unique ctools-qos)
  declare_q "$q" || return 1
  publish "$q" p0 && publish "$q" p1 && publish "$q" p2 || return 1
  # Prefetch 1: while the consumer works on p0, p1 and p2 stay in the queue.
  timeout 20 amqp-consume --url="$URL" -q "$q" -p 1 -c 1 -- sh -c 'cat; sleep 2' >"$TMP/p.out" 2>"$TMP/p.err" &
  local pid=$!
  BG_PIDS+=("$pid")
  sleep 1
  run amqp-get -q "$q" && clean || { wait "$pid"; fail "nothing left in the queue (prefetch ignored)"; return; }
  local got
  got=$(cat "$TMP/out")
  wait "$pid" || { cp "$TMP/p.err" "$TMP/err"; fail "consumer failed"; return; }
  [ "$got" = "p1" ] || fail "basic.get got '$got', expected p1" || return
  [ "$(cat "$TMP/p.out")" = "p0" ] || fail "consumer got '$(cat "$TMP/p.out")'" || return
  delete_q "$q"
}

cancel_consumer() { skip "amqp-tools have no basic.cancel"; }
transactions() { skip "amqp-tools have no tx.select"; }
headers_roundtrip() { skip "amqp-publish sets flat string headers only and no tool prints received headers"; }

large_message() {
  local q
  q=$(unique ctools-large)
  declare_q "$q" || return 1
  # 1 MiB + a line from stdin: many body frames.
  { head -c 1048576 /dev/zero | tr '\0' 'x'; echo end; } >"$TMP/large"
  timeout 20 amqp-publish --url="$URL" -r "$q" <"$TMP/large" 2>"$TMP/err" && clean || return 1
  run amqp-get -q "$q" && clean || return 1
  cmp -s "$TMP/out" "$TMP/large" || fail "body of $(wc -c <"$TMP/out") bytes differs" || return
  delete_q "$q"
}

close_cleanly() {
  # Every tool ends with channel.close and connection.close; a failed close prints an error.
  local q
  q=$(unique ctools-close)
  declare_q "$q" || return 1
  run amqp-delete-queue -q "$q" && clean
}

# Dead lettering, length limits and priorities all need queue arguments (x-dead-letter-exchange,
# x-max-length, x-max-priority), which amqp-declare-queue cannot send.
no_queue_arguments() { skip "amqp-declare-queue cannot send queue arguments"; }

scenario connect_heartbeat connect_heartbeat
scenario exchange_types exchange_types
scenario builtin_exchange_routing builtin_exchange_routing
scenario exchange_to_exchange_binding exchange_to_exchange
scenario queue_durable queue_durable
scenario queue_exclusive queue_exclusive
scenario queue_auto_delete queue_auto_delete
scenario queue_server_named queue_server_named
scenario passive_declare_missing_404 passive_missing_404
scenario basic_get_missing_queue_404 basic_get_missing_queue_404
scenario publish_confirms publish_confirms
scenario mandatory_unroutable_return mandatory_return
scenario consume_manual_ack consume_manual_ack
scenario nack_requeue_redelivered nack_requeue
scenario reject_without_requeue reject_no_requeue
scenario basic_get_empty_and_nonempty basic_get
scenario prefetch_honoured prefetch
scenario cancel_consumer cancel_consumer
scenario tx_commit_rollback transactions
scenario headers_nested_roundtrip headers_roundtrip
scenario large_message_roundtrip large_message
scenario dead_letter_x_death no_queue_arguments
scenario max_length_reject_publish no_queue_arguments
scenario priority_order no_queue_arguments
scenario close_cleanly close_cleanly

[ "$FAILED" -eq 0 ]
