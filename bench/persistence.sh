#!/usr/bin/env bash
# QoS 1 with persistent subscribers, each broker started fresh on loopback:
# culex without persistence, with `persistence true` (sync: PUBACK once
# durable), with `autosave_interval 1` (periodic, 1 s window), and Debian's
# mosquitto with `persistence true`. Prints one line per broker.
#
#   cargo build --release -p culex-broker --example broker -p culex-bench --example bench
#   bench/persistence.sh            # DURATION=5s CLIENTS=8 to change the run
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BROKER=${CULEX_BROKER:-$TARGET/release/examples/broker}
BENCH=${BENCH:-$TARGET/release/examples/bench}
DURATION=${DURATION:-5s}
CLIENTS=${CLIENTS:-8}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run() { # NAME culex|mosquitto EXTRA-CONFIG (DIR is replaced by the run's directory)
    local name=$1 kind=$2 extra=$3 port dir pid out rss
    port=$(free_port)
    dir=$(mktemp -d)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n%b\n' \
        "$port" "${extra//DIR/$dir}" > "$dir/broker.conf"
    if [ "$kind" = culex ]; then
        "$BROKER" -c "$dir/broker.conf" > "$dir/log" 2>&1 &
    else
        (cd "$dir" && exec mosquitto -c "$dir/broker.conf" > "$dir/log" 2>&1) &
    fi
    pid=$!
    trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
    sleep 0.7
    out=$("$BENCH" pairs -c "$CLIENTS" -q 1 --persistent -d "$DURATION" -p "$port" --json --quiet || true)
    rss=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"; trap - EXIT
    printf '%s' "$out" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print('%-30s %9.0f msg/s  delivered %.3f  p99 %7.0f us  broker peak RSS %6.1f MB' % (
    '$name', s['throughput']['received_per_s'], s['messages']['delivered_fraction'],
    s['latency_us']['p99'], $rss / 1024))"
}

run "culex, persistence off" culex ""
run "culex, persistence true (sync)" culex "persistence true\npersistence_location DIR/"
run "culex, autosave_interval 1" culex "persistence true\npersistence_location DIR/\nautosave_interval 1"
run "mosquitto, persistence true" mosquitto "persistence true\npersistence_location DIR/\nset_tcp_nodelay true"
