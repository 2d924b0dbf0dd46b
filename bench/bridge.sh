#!/usr/bin/env bash
# Messages per second across a bridge: publishers on the bridging broker,
# subscribers on the remote one (`culex bench --sub-port`), the bridge
# carrying `topic bench/# out QOS`. Pairs: culex → culex, culex → mosquitto
# and mosquitto → mosquitto, each at QoS 0, 1 and 2, both brokers started
# fresh for every row.
#
#   bench/bridge.sh
#   CULEX=/path/to/culex DURATION=10s bench/bridge.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CULEX=${CULEX:-$here/target/release/culex}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
DURATION=${DURATION:-5s}
# Publishers and their window: 4 pairs, window 20 (paho's default).
PAIRS=${PAIRS:-4}
WINDOW=${WINDOW:-20}

work=$(mktemp -d)
chmod 777 "$work"
pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() { # kind name config-text
    local kind=$1 name=$2
    printf '%s' "$3" >"$work/$name.conf"
    chmod 644 "$work/$name.conf"
    case $kind in
        culex) "${CULEX_BROKER:-$CULEX}" broker -c "$work/$name.conf" >"$work/$name.log" 2>&1 & ;;
        mosquitto) "$MOSQUITTO" -c "$work/$name.conf" >"$work/$name.log" 2>&1 & ;;
    esac
    pids+=($!)
}

wait_port() {
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    exit 1
}

# row LOCAL REMOTE QOS
row() {
    local local_kind=$1 remote_kind=$2 qos=$3
    local lport rport
    lport=$(free_port)
    rport=$(free_port)
    local limits='max_queued_messages 10000
max_inflight_messages 100
'
    start "$remote_kind" remote "listener $rport 127.0.0.1
allow_anonymous true
$limits"
    wait_port "$rport"
    start "$local_kind" local "listener $lport 127.0.0.1
allow_anonymous true
$limits
connection bench
address 127.0.0.1:$rport
topic bench/# out $qos
cleansession true
"
    wait_port "$lport"
    # The bridge connects and subscribes in the background.
    sleep 1.5
    local json
    json=$("$CULEX" bench pairs -c "$PAIRS" -q "$qos" --inflight "$WINDOW" \
        -p "$lport" --sub-port "$rport" -d "$DURATION" --json --quiet || echo '{}')
    stop_all
    python3 - "$local_kind → $remote_kind" "$qos" "$json" <<'EOF'
import json, sys
label, qos, raw = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.loads(raw) if raw.strip() else {}
if not r:
    print(f"| {label} | {qos} | failed | | |")
    sys.exit()
m, t, lat = r["messages"], r["throughput"], r.get("latency_us") or {}
frac = m.get("delivered_fraction")
print(f"| {label} | {qos} | {t['received_per_s']/1000:.1f}k/s | "
      f"{frac:.3f} | {lat.get('p50', 0)/1000:.1f} / {lat.get('p99', 0)/1000:.1f} ms |")
EOF
}

echo "| bridge | QoS | delivered/s | delivered | latency p50 / p99 |"
echo "|---|---|---|---|---|"
for qos in ${QOSES:-0 1 2}; do
    row culex culex "$qos"
    [[ -n ${CULEX_ONLY:-} ]] || row culex mosquitto "$qos"
    [[ -n ${CULEX_ONLY:-} ]] || row mosquitto mosquitto "$qos"
done
echo
echo "$PAIRS pairs, publisher window $WINDOW, 64-byte payloads, $DURATION each; $("$CULEX" --version); $("$MOSQUITTO" -h 2>/dev/null | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
