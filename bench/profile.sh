#!/usr/bin/env bash
# Where culex's broker spends its time under one `culex bench` scenario:
# starts the broker on loopback, samples it with `perf record` while the
# scenario runs (setup included, which is the point for conn), and writes
# what perf saw as text.
#
#   bench/profile.sh fanout -c 8 -q 1 --inflight 100
#   DURATION=3s bench/profile.sh conn -c 10000 --source-ips 4
#
# Writes into OUT (default target/bench-profile/DATE):
#   report.txt   perf report: self time by function, with callers
#   top.txt      self time by function, flat (the first lines are printed)
#   folded.txt   one line per distinct stack, "frame;frame;... samples", for
#                a flame graph tool or grep
#   bench.json   the scenario's own summary
#
# Environment:
#   CULEX        a culex binary (default target/release/culex, built when missing)
#   DURATION     measured phase of the scenario (default 5s)
#   WINDOW       the broker's max_inflight_messages (default 100; empty: culex's default)
#   FREQ         samples per second per thread (default 499)
#   CALL_GRAPH   perf's --call-graph: dwarf (default; release builds keep
#                line tables but no frame pointers) or fp
#   OUT          output directory
#
# This VM has no hardware counters (`perf stat -e instructions` is "not
# supported"), so the samples come from the cpu-clock software event.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -gt 0 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
DURATION=${DURATION:-5s}
WINDOW=${WINDOW-100}
FREQ=${FREQ:-499}
CALL_GRAPH=${CALL_GRAPH:-dwarf}
OUT=${OUT:-$ROOT/target/bench-profile/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

command -v perf >/dev/null || { echo "profile.sh: perf is needed (apt-get install linux-perf)" >&2; exit 1; }
if [[ -z ${CULEX:-} ]]; then
    CULEX="$ROOT/target/release/culex"
    [[ -x $CULEX ]] || (cd "$ROOT" && cargo build --release -q -p culex)
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port"
    [[ -z $WINDOW ]] || printf 'max_inflight_messages %s\n' "$WINDOW"
} >"$OUT/broker.conf"

broker_pid=""
perf_pid=""
cleanup() {
    [[ -z $perf_pid ]] || kill -INT "$perf_pid" 2>/dev/null || true
    [[ -z $broker_pid ]] || kill "$broker_pid" 2>/dev/null || true
}
trap cleanup EXIT

"$CULEX" broker -c "$OUT/broker.conf" >"$OUT/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

perf record -e cpu-clock -F "$FREQ" --call-graph "$CALL_GRAPH" -p "$broker_pid" \
    -o "$OUT/perf.data" >"$OUT/perf-record.log" 2>&1 &
perf_pid=$!
sleep 0.5 # perf attaches to every thread of the broker

echo "== culex bench $* -d $DURATION -p $port (broker pid $broker_pid)" >&2
"$CULEX" bench "$@" -d "$DURATION" -p "$port" --json --quiet >"$OUT/bench.json" 2>"$OUT/bench.err" ||
    echo "   (the run counted errors or failed: see $OUT/bench.err)" >&2

kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
perf_pid=""
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null || true
broker_pid=""

perf report -i "$OUT/perf.data" --stdio --no-children --percent-limit 0.5 \
    >"$OUT/report.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --stdio --no-children -g none --percent-limit 0.3 \
    --sort dso,symbol >"$OUT/top.txt" 2>/dev/null
perf script -i "$OUT/perf.data" 2>/dev/null | python3 -c '
import collections, sys

# perf script prints a header line per sample, then one frame per line
# (innermost first), then a blank line.
stacks = collections.Counter()
comm, frames = None, []
def flush():
    if comm is not None:
        stacks[";".join([comm] + frames[::-1])] += 1
for line in sys.stdin:
    if not line.strip():
        flush()
        comm, frames = None, []
    elif not line[0].isspace():
        comm = line.split(None, 1)[0]
    else:
        parts = line.split(None, 1)
        symbol = parts[1].rsplit(" (", 1)[0] if len(parts) > 1 else "?"
        frames.append(symbol.split("+0x")[0].replace(";", ":"))
flush()
for stack, n in stacks.most_common():
    print(stack, n)
' >"$OUT/folded.txt"

jq -r '"\(.scenario): received \(.throughput.received_per_s | floor)/s, connect rate \(.connections.connect_rate | floor)/s"' \
    "$OUT/bench.json" 2>/dev/null || true
grep -v '^#' "$OUT/top.txt" | grep -v '^$' | sed 's/[ -]*$//' | head -25
echo "Full report: $OUT/report.txt; stacks: $OUT/folded.txt" >&2
