#!/usr/bin/env bash
# One-command side-by-side benchmark: Warren against RabbitMQ (and GarageMQ), same load
# generator (warren-perf), same machine. Writes BENCHMARKS.md.
#
#   bench/run.sh            # full: 15 s + 2 s warm-up per scenario, S7 = 500k messages
#   bench/run.sh --quick    # quick: 5 s + 1 s, S7 = 100k messages
#
# Options:
#   --quick                 short run (see above)
#   --runs N                runs per broker, alternating brokers A B A B (default 2)
#   --scenarios "S1 S5"     subset (default S1..S10)
#   --out FILE              report path (default BENCHMARKS.md at the repository root)
#   --no-build              use the release binaries already built
#   --warren-only           do not look for RabbitMQ / GarageMQ
#   --report-only DIR       only (re)write the report from the raw results in DIR
# Environment:
#   RABBITMQ_PORT (5673), GARAGEMQ_PORT (5674), WARREN_PORT (5672, or a free port if taken),
#   AMQP_USER/AMQP_PASS (guest/guest), PAUSE (3 s between scenarios), WARREN_LOG_LEVEL (warn),
#   CARGO_TARGET_DIR (default ~/.cache/warren-target, as scripts/test), RESULTS (raw JSON/log dir, default /tmp/...)
#   BENCH_WARREN_BIN / BENCH_PERF_BIN (default the release binaries in CARGO_TARGET_DIR; with --no-build,
#   e.g. a debug warren to check that scenarios run at all: its figures mean nothing)
#   Warren's own WARREN_* settings pass through: to measure permission checks with a user
#   whose patterns are not `.*` (Warren only; warren-perf names everything warren-perf-*):
#     WARREN_DEFAULT_USER=bench WARREN_DEFAULT_PASS=bench AMQP_USER=bench AMQP_PASS=bench \
#     WARREN_DEFAULT_PERMISSIONS_CONFIGURE='^warren-perf-' WARREN_DEFAULT_PERMISSIONS_READ='^warren-perf-' \
#     WARREN_DEFAULT_PERMISSIONS_WRITE='^(warren-perf-|amq\.default$)' bench/run.sh --warren-only
#
# Scenarios S1-S7 are those of the shared perf README (same parameters). S8-S10 are ours:
#   S8  S2 with every message rejected: consumers basic.nack(requeue=false) per 100, the
#       queue dead-letters into a fanout DLX whose queue a second consumer drains (auto-ack);
#       reports the main consume rate and the dead-letter drain rate (warren-perf --nack
#       --dead-letter).
#   S9  S1 into a queue with x-max-length 1000 and x-overflow drop-head (warren-perf
#       --queue-args): the publisher outruns the consumer, so the head is dropped.
#   S10 S3 on a quorum queue (--queue-args x-queue-type=quorum; durable, as RabbitMQ
#       requires): persistent, confirms 1000, qos 1000, multi-ack 100, 1 KiB. RabbitMQ's
#       quorum queue (Raft log, one node) against Warren's.
# Raw results: one JSON per broker/run/scenario plus its stderr log in $RESULTS.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
RUNS=2
SCENARIOS="S1 S2 S3 S4 S5 S6 S7 S8 S9 S10"
OUT=$ROOT/BENCHMARKS.md
BUILD=1
OTHERS=1
REPORT_ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --warren-only) OTHERS=0 ;;
        --report-only) REPORT_ONLY=$2; shift ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ $QUICK = 1 ]; then T=5; W=1; BACKLOG=100000; MODE=quick; else T=15; W=2; BACKLOG=500000; MODE=full; fi
PAUSE=${PAUSE:-3}
USER_=${AMQP_USER:-guest}
PASS_=${AMQP_PASS:-guest}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/warren-target}
WARREN_BIN=${BENCH_WARREN_BIN:-$CARGO_TARGET_DIR/release/warren}
PERF_BIN=${BENCH_PERF_BIN:-$CARGO_TARGET_DIR/release/warren-perf}
RESULTS=${RESULTS:-/tmp/warren-bench/$(date +%Y%m%d-%H%M%S)-$MODE}
command -v python3 >/dev/null || { echo "python3 is needed to write the report" >&2; exit 1; }
FAILED=0
if [ -n "$REPORT_ONLY" ]; then
    RESULTS=$REPORT_ONLY
else
mkdir -p "$RESULTS"

if [ $BUILD = 1 ]; then
    echo "# building warren and warren-perf (release) into $CARGO_TARGET_DIR"
    (cd "$ROOT" && cargo build --release -p warren -p warren-perf) || { echo "build failed" >&2; exit 1; }
fi
[ -x "$WARREN_BIN" ] && [ -x "$PERF_BIN" ] || { echo "missing $WARREN_BIN or $PERF_BIN" >&2; exit 1; }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
port_pid() { ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

# ---- start Warren on a temp data dir ----
WARREN_PORT=${WARREN_PORT:-5672}
if port_open "$WARREN_PORT"; then
    for p in $(seq 5700 5799); do
        if ! port_open "$p"; then WARREN_PORT=$p; break; fi
    done
fi
WARREN_DATA=""
WARREN_PID=""
WARREN_STARTS=0
start_warren() {
    [ -n "$WARREN_DATA" ] && rm -rf "$WARREN_DATA"
    WARREN_DATA=$(mktemp -d /tmp/warren-bench-data.XXXXXX)
    WARREN_STARTS=$((WARREN_STARTS + 1))
    WLOG=$RESULTS/warren-$WARREN_STARTS.log
    WARREN_LOG=${WARREN_LOG_LEVEL:-warn} "$WARREN_BIN" --listen "127.0.0.1:$WARREN_PORT" --data-dir "$WARREN_DATA" \
        >"$WLOG" 2>&1 &
    WARREN_PID=$!
    for _ in $(seq 1 100); do
        port_open "$WARREN_PORT" && return 0
        kill -0 "$WARREN_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "warren did not start; log:" >&2
    cat "$RESULTS/warren-$WARREN_STARTS.log" >&2
    return 1
}
stop_warren() {
    if [ -n "$WARREN_PID" ] && kill -0 "$WARREN_PID" 2>/dev/null; then
        kill -TERM "$WARREN_PID"
        for _ in $(seq 1 100); do kill -0 "$WARREN_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$WARREN_PID" 2>/dev/null && kill -KILL "$WARREN_PID"
        wait "$WARREN_PID" 2>/dev/null
    fi
    WARREN_PID=""
    [ -n "$WARREN_DATA" ] && rm -rf "$WARREN_DATA"
    WARREN_DATA=""
}
trap stop_warren EXIT
trap 'exit 130' INT TERM
start_warren || exit 1
echo "# warren $("$WARREN_BIN" --version 2>/dev/null | head -1) on 127.0.0.1:$WARREN_PORT (pid $WARREN_PID, data $WARREN_DATA)"

# ---- the brokers ----
BROKERS="warren"
declare -A PORT
PORT[warren]=$WARREN_PORT
if [ $OTHERS = 1 ]; then
    PORT[rabbitmq]=${RABBITMQ_PORT:-5673}
    PORT[garagemq]=${GARAGEMQ_PORT:-5674}
    for b in rabbitmq garagemq; do
        if port_open "${PORT[$b]}"; then BROKERS="$BROKERS $b"; else echo "# $b: nothing on port ${PORT[$b]}, skipped"; fi
    done
fi

scenario_args() {
    case "$1" in
        S1) echo "--time $T --warmup $W --auto-ack" ;;
        S2) echo "--time $T --warmup $W --qos 1000 --multi-ack 100" ;;
        S3) echo "--time $T --warmup $W --durable --persistent --confirm 1000 --qos 1000 --multi-ack 100 --size 1024" ;;
        S4) echo "--time $T --warmup $W --fanout --queues 10 --consumers 10 --auto-ack" ;;
        S5) echo "--time $T --warmup $W --rate 10000 --auto-ack" ;;
        S6) echo "--time $T --warmup $W --queues 100 --producers 100 --consumers 100 --producer-connections 10 --consumer-connections 10 --auto-ack --max-lag 1000" ;;
        S7) echo "--backlog $BACKLOG --durable --persistent --confirm 1000 --qos 1000 --multi-ack 100 --size 1024" ;;
        S8) echo "--time $T --warmup $W --qos 1000 --multi-ack 100 --nack --dead-letter" ;;
        S9) echo "--time $T --warmup $W --auto-ack --queue-args x-max-length=1000,x-overflow=drop-head" ;;
        S10) echo "--time $T --warmup $W --durable --persistent --confirm 1000 --qos 1000 --multi-ack 100 --size 1024 --queue-args x-queue-type=quorum" ;;
        *) return 1 ;;
    esac
}

{
    echo "mode=$MODE"
    echo "time=$T"
    echo "warmup=$W"
    echo "backlog=$BACKLOG"
    echo "runs=$RUNS"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "mem_gib=$(free -g | awk '/Mem:/{print $2}')"
    echo "kernel=$(uname -r)"
    echo "rustc=$(rustc --version 2>/dev/null)"
    echo "commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo '+dirty')"
    echo "warren_bin=$WARREN_BIN"
    echo "brokers=$BROKERS"
    echo "scenarios=$SCENARIOS"
    echo "invocation=bench/run.sh $([ $QUICK = 1 ] && echo --quick) --runs $RUNS --scenarios \"$SCENARIOS\""
    for b in $BROKERS; do
        pid=$(port_pid "${PORT[$b]}")
        [ "$b" = warren ] && pid=$WARREN_PID
        echo "broker_$b=port ${PORT[$b]} pid ${pid:-?} $(cat /proc/${pid:-0}/comm 2>/dev/null)"
    done
} > "$RESULTS/meta.txt"

for run in $(seq 1 "$RUNS"); do
    for b in $BROKERS; do
        for S in $SCENARIOS; do
            ARGS=$(scenario_args "$S") || { echo "unknown scenario $S" >&2; continue; }
            # GarageMQ has no quorum queues.
            [ "$b" = garagemq ] && [ "$S" = S10 ] && continue
            if [ "$b" = warren ] && ! kill -0 "$WARREN_PID" 2>/dev/null; then
                echo "# warren is not running any more (see $WLOG); restarting on a fresh data dir" | tee -a "$RESULTS/incidents.txt"
                start_warren || exit 1
            fi
            # S7's target is the broker's own RSS while it holds a persistent backlog: a
            # process that just held S1/S2's transient backlogs keeps that memory mapped, so
            # Warren runs S7 in a fresh process (RabbitMQ keeps running; its S7 RSS therefore
            # carries over from earlier scenarios, as the shared perf README notes).
            if [ "$b" = warren ] && [ "$S" = S7 ] && [ "${FRESH_S7:-1}" = 1 ]; then
                stop_warren
                start_warren || exit 1
            fi
            pid=$(port_pid "${PORT[$b]}")
            [ "$b" = warren ] && pid=$WARREN_PID
            PID_ARGS=()
            [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] && PID_ARGS=(--broker-pid "$pid")
            URI="amqp://$USER_:$PASS_@127.0.0.1:${PORT[$b]}/%2f"
            BASE=$RESULTS/$b-run$run-$S
            if [ "$S" = S7 ]; then LIMIT=$((300 + BACKLOG / 500)); else LIMIT=$((T + W + 120)); fi
            # shellcheck disable=SC2086
            echo "warren-perf --uri amqp://$USER_:***@127.0.0.1:${PORT[$b]}/%2f --name $S $ARGS ${PID_ARGS[*]} --json" > "$BASE.cmd"
            LOAD1=$(cut -d' ' -f1 /proc/loadavg)
            # shellcheck disable=SC2086
            timeout --signal=TERM --kill-after=30 "$LIMIT" "$PERF_BIN" --uri "$URI" --name "$S" $ARGS "${PID_ARGS[@]}" --json \
                >"$BASE.json" 2>"$BASE.log"
            RC=$?
            echo "$RC $LOAD1" > "$BASE.rc"
            if [ "$b" = warren ] && ! kill -0 "$WARREN_PID" 2>/dev/null; then
                echo "# warren died during $S run $run (see $WLOG)" | tee -a "$RESULTS/incidents.txt"
            fi
            summary=$(python3 - "$BASE.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("no result"); sys.exit()
b = r.get("broker") or {}
lat = r.get("latency") or {}
if r.get("mode") == "backlog":
    s = f"publish {r.get('pub_rate')}/s drain {r.get('cons_rate')}/s"
else:
    s = f"cons {r.get('cons_rate')}/s acc {r.get('acc_rate')}/s p50 {lat.get('p50_us')}us"
    if r.get("dl_rate") is not None:
        s += f" dead-lettered {r.get('dl_rate')}/s"
    if r.get("dropped_estimate") is not None:
        s += f" dropped {r.get('dropped_estimate')}"
s += f" broker {b.get('us_per_msg')}us/msg client {(r.get('client') or {}).get('us_per_msg')}us/msg"
if r.get("errors"):
    s += " ERRORS: " + "; ".join(r["errors"])[:200]
print(s)
PY
)
            printf '%-8s run%s %s rc=%s  %s\n' "$b" "$run" "$S" "$RC" "$summary"
            [ "$RC" != 0 ] && FAILED=$((FAILED + 1))
            sleep "$PAUSE"
        done
    done
done
stop_warren
fi

python3 - "$RESULTS" "$OUT" <<'PY'
import json, os, statistics, sys, glob

res, out = sys.argv[1], sys.argv[2]
meta = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(res, "meta.txt")) if "=" in l)
brokers = meta["brokers"].split()
scen = meta["scenarios"].split()
titles = {
    "S1": "transient 1p1c 16 B auto-ack",
    "S2": "manual ack, qos 1000, multi-ack 100",
    "S3": "durable, persistent, confirms 1000, 1 KiB",
    "S4": "fanout 1p -> 10 queues/10 consumers (cons = deliveries)",
    "S5": "latency at 10k msg/s",
    "S6": "100 queues, 100p/100c on 10+10 conns, max-lag 1000",
    "S7": f"backlog {int(meta['backlog']):,} persistent 1 KiB: publish, then drain",
    "S8": "S2, every message nacked into a DLX, DLQ drained (cons / dead-letter drain)",
    "S9": "S1 into x-max-length 1000, drop-head",
    "S10": "S3 on a quorum queue",
}
names = {"warren": "Warren", "rabbitmq": "RabbitMQ", "garagemq": "GarageMQ"}

def load(b, s):
    runs = []
    for f in sorted(glob.glob(os.path.join(res, f"{b}-run*-{s}.json"))):
        rc_file = f[:-5] + ".rc"
        rc = open(rc_file).read().split()[0] if os.path.exists(rc_file) else "?"
        try:
            r = json.load(open(f))
        except Exception:
            r = {"errors": [f"no result (exit {rc}), see {f[:-5]}.log"]}
        r["_rc"] = rc
        runs.append(r)
    return runs

def get(r, *path):
    for p in path:
        if not isinstance(r, dict):
            return None
        r = r.get(p)
    return r

def med(runs, *path):
    vals = [get(r, *path) for r in runs if not r.get("errors")]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None

def fmt(v, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float) and v < 100:
        return f"{v:,.2f}{unit}"
    return f"{v:,.0f}{unit}"

def pct(v):
    return "–" if v is None else f"{v:,.0f}"

def ms(v):
    return "–" if v is None else (f"{v/1000:.2f}" if v < 10000 else f"{v/1000:,.0f}")

def ratio(a, b):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.2f}"

other = [b for b in brokers if b != "warren"]
ref = "rabbitmq" if "rabbitmq" in brokers else (other[0] if other else None)

data = {b: {s: load(b, s) for s in scen} for b in brokers}
bin_ = meta.get("warren_bin", "")
build = "release build" if bin_ == "" or bin_.endswith("/release/warren") else f"binary {bin_}, not the release build: figures not comparable"
L = []
L.append("# Warren benchmarks")
L.append("")
L.append(f"Generated by `{meta['invocation']}` on {meta['date']} ({meta['mode']} mode: "
         f"{meta['time']} s measured + {meta['warmup']} s warm-up per scenario, S7 = {int(meta['backlog']):,} messages; "
         f"{meta['runs']} runs per broker, brokers alternating; medians of the runs without errors).")
L.append("")
L.append(f"Machine: {meta['nproc']} cores ({meta['cpu']}), {meta['mem_gib']} GiB RAM, kernel {meta['kernel']}, {meta['rustc']}. "
         f"Warren commit {meta['commit']} ({build}). Load generator: `warren-perf` (crates/warren-perf), "
         "the same binary for every broker, on the same cores as the broker.")
L.append("")
def server_of(b):
    for s in scen:
        for r in data[b][s]:
            if r.get("server"):
                return r["server"]
    return ""
for b in brokers:
    L.append(f"- {names.get(b, b)}: {server_of(b)} ({meta.get('broker_' + b, '')})")
L.append("")
L.append("Scenarios S1–S7 are those of the shared perf README (same parameters); S8 is S2 with "
         "every message nacked (requeue=false) into a dead-letter exchange whose queue a second "
         "consumer drains, S9 is S1 into a queue with x-max-length 1000 and drop-head, S10 is S3 on a "
         "quorum queue (bench/run.sh --help). "
         "msg/s is consumed messages per second (S4: deliveries summed over the 10 consumers; "
         "S7: publish rate with confirms / drain rate; S8: main queue / dead-letter queue). "
         "bµs/msg is broker CPU time per consumed message of the main queues "
         "(S7: per message, publish + drain): the most noise-robust efficiency figure. "
         "Ratios are Warren ÷ reference: higher is better for msg/s, lower is better for latency, "
         "µs/msg and memory.")
L.append("")
for ref in other:
    R = names[ref]
    L.append(f"## Warren vs {R}")
    L.append("")
    L.append(f"| id | scenario | Warren msg/s | {R} msg/s | ratio | Warren p50 / p99 ms | {R} p50 / p99 ms | Warren bµs/msg | {R} bµs/msg | ratio | Warren RSS MB | {R} RSS MB |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in scen:
        w, o = data["warren"][s], data[ref][s]
        if s == "S7":
            wr = f"{fmt(med(w, 'pub_rate'))} / {fmt(med(w, 'cons_rate'))}"
            orr = f"{fmt(med(o, 'pub_rate'))} / {fmt(med(o, 'cons_rate'))}"
            rr = f"{ratio(med(w, 'pub_rate'), med(o, 'pub_rate'))} / {ratio(med(w, 'cons_rate'), med(o, 'cons_rate'))}"
            wl = ol = "–"
        elif s == "S8":
            wr = f"{fmt(med(w, 'cons_rate'))} / {fmt(med(w, 'dl_rate'))}"
            orr = f"{fmt(med(o, 'cons_rate'))} / {fmt(med(o, 'dl_rate'))}"
            rr = f"{ratio(med(w, 'cons_rate'), med(o, 'cons_rate'))} / {ratio(med(w, 'dl_rate'), med(o, 'dl_rate'))}"
            wl = f"{ms(med(w, 'latency', 'p50_us'))} / {ms(med(w, 'latency', 'p99_us'))}"
            ol = f"{ms(med(o, 'latency', 'p50_us'))} / {ms(med(o, 'latency', 'p99_us'))}"
        else:
            wr, orr = fmt(med(w, "cons_rate")), fmt(med(o, "cons_rate"))
            rr = ratio(med(w, "cons_rate"), med(o, "cons_rate"))
            wl = f"{ms(med(w, 'latency', 'p50_us'))} / {ms(med(w, 'latency', 'p99_us'))}"
            ol = f"{ms(med(o, 'latency', 'p50_us'))} / {ms(med(o, 'latency', 'p99_us'))}"
        wb, ob = med(w, "broker", "us_per_msg"), med(o, "broker", "us_per_msg")
        L.append(f"| {s} | {titles[s]} | {wr} | {orr} | {rr} | {wl} | {ol} | {fmt(wb)} | {fmt(ob)} | {ratio(wb, ob)} | "
                 f"{fmt(med(w, 'broker', 'rss_peak_mb'))} | {fmt(med(o, 'broker', 'rss_peak_mb'))} |")
    L.append("")

if other:
    L.append("In the open-loop scenarios (S1, S2, S4, S8) publishers outrun consumers and backlogs grow, so "
             "their latency is the age of a growing backlog, not a latency figure; S5 is the latency test. "
             "In S9 the length limit caps the backlog: the latency is that of a queue of at most 1000 "
             "messages, and the messages dropped from its head are in the per-run notes.")
    L.append("")

L.append("## Every run")
L.append("")
L.append("sent/s: published (written to the socket; with confirms: confirmed). acc/s: taken in by the broker "
         "(consumed + queue growth, from passive declares). bCPU%/cCPU%: broker / load generator CPU "
         "(100 = one core). cµs/msg: load generator CPU per consumed message. oth%: CPU of other processes "
         "(above ~10 the row is disturbed).")
L.append("")
L.append("| broker | run | id | sent/s | acc/s | cons/s | p50 ms | p99 ms | bCPU% | cCPU% | oth% | bµs/msg | cµs/msg | bRSS peak MB | notes |")
L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for b in brokers:
    for s in scen:
        for i, r in enumerate(data[b][s], 1):
            notes = []
            if r.get("errors"):
                notes.append("**ERROR** (exit " + str(r.get("_rc")) + "): " + "; ".join(r["errors"])[:300])
            if r.get("mode") == "backlog":
                notes.append(f"publish {r.get('pub_s')} s, drain {r.get('drain_s')} s, depth after publish "
                             f"{r.get('depth_after_publish')}, RSS after publish {r.get('broker_rss_after_publish_mb')} MB")
            if r.get("dl_rate") is not None:
                notes.append(f"dead-lettered {fmt(r.get('dl_rate'))}/s ({r.get('dead_lettered')} in the window)")
            if r.get("dropped_estimate") is not None:
                notes.append(f"dropped by the length limit ≈ {r.get('dropped_estimate'):,}")
            if r.get("zero_consume_seconds"):
                notes.append(f"{r['zero_consume_seconds']} s with no delivery")
            if r.get("zero_confirm_seconds"):
                notes.append(f"{r['zero_confirm_seconds']} s with no confirm")
            if r.get("connection_blocked_events"):
                notes.append(f"connection.blocked ×{r['connection_blocked_events']}")
            lat = (r.get("latency") or {}) if r.get("mode") != "backlog" else {}
            L.append("| " + " | ".join([
                names.get(b, b), str(i), s, fmt(r.get("pub_rate")), fmt(r.get("acc_rate")), fmt(r.get("cons_rate")),
                ms(lat.get("p50_us")), ms(lat.get("p99_us")),
                pct(get(r, "broker", "cpu_pct")), pct(get(r, "client", "cpu_pct")), pct(get(r, "system", "other_cpu_pct")),
                fmt(get(r, "broker", "us_per_msg")), fmt(get(r, "client", "us_per_msg")),
                fmt(get(r, "broker", "rss_peak_mb")), "; ".join(notes),
            ]) + " |")
L.append("")
inc = os.path.join(res, "incidents.txt")
if os.path.exists(inc):
    L.append("## Incidents")
    L.append("")
    for l in open(inc):
        L.append("- " + l.strip().lstrip("# "))
    L.append("")
# Figures measured by other commands (durability, idle footprint), kept by hand in
# bench/measured.md with the commands that reproduce them.
measured = os.path.join(os.path.dirname(os.path.abspath(out)), "bench", "measured.md")
if os.path.exists(measured):
    L.append(open(measured).read().rstrip("\n"))
    L.append("")
L.append("## Exact commands")
L.append("")
L.append("```")
L.append(meta["invocation"])
seen = set()
for b in brokers:
    for s in scen:
        for f in sorted(glob.glob(os.path.join(res, f"{b}-run1-{s}.cmd"))):
            L.append(open(f).read().strip())
L.append("```")
L.append("")
L.append(f"Raw JSON results and logs: `{res}` (not kept in git). Warren ran from its release binary "
         "with a fresh temporary data directory (`warren --listen 127.0.0.1:PORT --data-dir DIR`), "
         "restarted before S7 so that S7's RSS is its own (set FRESH_S7=0 to keep one process).")
open(out, "w").write("\n".join(L) + "\n")
print(f"# wrote {out}")
PY
echo "# raw results in $RESULTS"
[ $FAILED = 0 ]
