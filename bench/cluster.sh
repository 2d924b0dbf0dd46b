#!/usr/bin/env bash
# Cross-node speed of a culex cluster: three nats-servers with JetStream
# (R3, as in production) and two culex nodes on loopback; publishers on
# node one, subscribers on node two (`culex bench --sub-port`), beside the
# same load on one node of the same cluster, and a single culex without any
# cluster. Reports messages per second, latency and the CPU each process
# spent per delivered message.
#
#   bench/cluster.sh                      # release build of this checkout
#   CULEX=/path/to/culex DURATION=10s bench/cluster.sh
#
# Needs nats-server 2.10 or newer in PATH (scripts/test installs 2.15.1).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CULEX=${CULEX:-$here/target/release/culex}
DURATION=${DURATION:-5s}
[[ -x $CULEX ]] || { echo "no culex at $CULEX (cargo build --release -p culex)" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "nats-server is not in PATH" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Three nats-servers on 127.0.61.1-3 (ports below 32768, fixed per address).
for n in 1 2 3; do
    routes=""
    for m in 1 2 3; do
        [[ $m == "$n" ]] || routes+="\"nats-route://127.0.61.$m:6222\", "
    done
    cat >"$work/nats$n.conf" <<EOF
server_name: n$n
listen: "127.0.61.$n:4222"
http: "127.0.61.$n:8222"
ping_interval: "2s"
jetstream { store_dir: "$work/js$n", max_memory_store: 256MB, max_file_store: 2GB }
cluster { name: bench, listen: "127.0.61.$n:6222", routes: [${routes%, }] }
EOF
    nats-server -c "$work/nats$n.conf" >"$work/nats$n.log" 2>&1 &
    pids+=($!)
done
nats_pids=("${pids[@]}")
for n in 1 2 3; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.61.$n:8222/healthz?js-enabled-only=true" >/dev/null && break
        sleep 0.1
    done
done
sleep 2
servers="nats://127.0.61.1:4222,nats://127.0.61.2:4222,nats://127.0.61.3:4222"

start_culex() { # name port [cluster]
    local name=$1 port=$2
    {
        printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n' "$port"
        [[ ${3:-} == cluster ]] && printf 'cluster_servers %s\ncluster_node %s\n' "$servers" "$name"
    } >"$work/$name.conf"
    "$CULEX" broker -c "$work/$name.conf" >"$work/$name.log" 2>&1 &
    pids+=($!)
    echo $!
}

one_port=$(free_port); two_port=$(free_port); alone_port=$(free_port)
one=$(start_culex one "$one_port" cluster)
two=$(start_culex two "$two_port" cluster)
alone=$(start_culex alone "$alone_port")
for _ in $(seq 100); do
    grep -q "joined" "$work/one.log" && grep -q "joined" "$work/two.log" && break
    sleep 0.1
done

cpu_ticks() { # pid: utime + stime in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# run LABEL PORT SUBPORT bench-args...: one row.
run() {
    local label=$1 port=$2 sub=$3
    shift 3
    local procs=("$one" "$two" "$alone" "${nats_pids[@]}") before=() after=() i
    for i in "${!procs[@]}"; do before[i]=$(cpu_ticks "${procs[$i]}"); done
    local json
    json=$("$CULEX" bench "$@" -p "$port" --sub-port "$sub" -d "$DURATION" --json --quiet)
    for i in "${!procs[@]}"; do after[i]=$(cpu_ticks "${procs[$i]}"); done
    local hz
    hz=$(getconf CLK_TCK)
    python3 - "$label" "$json" "$hz" "${before[@]}" "${after[@]}" <<'EOF'
import json, sys
label, report, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
ticks = [int(t) for t in sys.argv[4:]]
n = len(ticks) // 2
spent = [(a - b) / hz for b, a in zip(ticks[:n], ticks[n:])]
received = report["messages"]["received"]
rate = report["throughput"]["received_per_s"]
lat = report.get("latency_us") or {}
p50, p99 = lat.get("p50", 0), lat.get("p99", 0)
delivered = report["messages"].get("delivered_fraction")
per_msg = lambda s: f"{s / received * 1e6:.2f}" if received else "-"
nats = sum(spent[3:])
shown = f"{rate/1000:.1f}k/s" + (f" ({delivered:.3f})" if delivered is not None else "")
print(f"| {label} | {shown} | {p50:.0f} / {p99:.0f} µs | "
      f"{per_msg(spent[0])} | {per_msg(spent[1])} | {per_msg(spent[2])} | {per_msg(nats)} |")
EOF
}

echo "| load | delivered/s | latency p50 / p99 | CPU µs per message: node one | node two | culex alone | NATS (3 servers) |"
echo "|---|---|---|---|---|---|---|"
for rate in 50000 200000; do
    run "QoS 0, 8 pairs, ${rate}/s offered, node one → node two" "$one_port" "$two_port" pairs -c 8 -q 0 --total-rate $rate
    run "QoS 0, 8 pairs, ${rate}/s offered, culex alone" "$alone_port" "$alone_port" pairs -c 8 -q 0 --total-rate $rate
done
for qos in 1 2; do
    run "QoS $qos, 8 pairs flat out (window 20), node one → node two" "$one_port" "$two_port" pairs -c 8 -q $qos --inflight 20
    run "QoS $qos, 8 pairs flat out (window 20), within node one" "$one_port" "$one_port" pairs -c 8 -q $qos --inflight 20
    run "QoS $qos, 8 pairs flat out (window 20), culex alone" "$alone_port" "$alone_port" pairs -c 8 -q $qos --inflight 20
done
run "QoS 0, 8 pairs flat out, node one → node two (the ceiling; the rest is dropped)" "$one_port" "$two_port" pairs -c 8 -q 0
for qos in 0 1; do
    run "latency QoS $qos, 10 × 1000/s, node one → node two" "$one_port" "$two_port" latency -c 10 -r 1000 -q $qos
    run "latency QoS $qos, 10 × 1000/s, culex alone" "$alone_port" "$alone_port" latency -c 10 -r 1000 -q $qos
done
echo
echo "culex: $("$CULEX" --version 2>/dev/null || echo "$CULEX"); nats-server $(nats-server --version | awk '{print $NF}'); load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
