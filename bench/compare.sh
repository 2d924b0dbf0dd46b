#!/usr/bin/env bash
# Side by side: culex, Debian's mosquitto (set_tcp_nodelay true) and rumqttd
# 0.20, each started fresh on loopback for every scenario, measured with
# `culex bench`, printed as one table.
#
#   bench/compare.sh                      # every broker, every scenario
#   BROKERS="culex mosquitto" SCENARIOS="qos1 latency" DURATION=5s bench/compare.sh
#
# Environment:
#   BROKERS     culex mosquitto rumqttd (default: all three)
#   SCENARIOS   qos0 qos1 fanout fanin latency conn (default: all)
#   DURATION    measured phase of each run (default 10s)
#   QOS0_RATES  offered rates per publisher tried in turn by the qos0 scenario, 8 pairs,
#               until a rate is not sustained: delivered < 0.999, or received < 0.95 of offered
#               until delivery falls below 0.999 (default "5000 15000 40000 95000")
#   CONNS       connections in the conn scenario (default 19000; the process limit here is 20000 files)
#   RUMQTTD     path of a rumqttd 0.20 binary; when unset and none is found, it is
#               built from crates.io into RUMQTTD_ROOT (default ~/.cache/culex-bench/rumqttd)
#   OUT         where the JSON of every run goes (default target/bench-compare/DATE)
#   CULEX       a culex binary to use instead of building target/release/culex
#   BENCH       the load generator command (default: "$CULEX bench")
#   CULEX_BROKER  culex's broker command (default: "$CULEX broker")
#
# Each cell also shows the broker's peak RSS and the cores it used over the run.
#
# The load generator shares the machine's cores with the broker it measures:
# ratios between brokers are what count; absolute figures drift between runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BROKERS=${BROKERS:-"culex mosquitto rumqttd"}
SCENARIOS=${SCENARIOS:-"qos0 qos1 fanout fanin latency conn"}
DURATION=${DURATION:-10s}
QOS0_RATES=${QOS0_RATES:-"5000 15000 40000 95000 190000 380000"}
CONNS=${CONNS:-19000}
OUT=${OUT:-$ROOT/target/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)}
RUMQTTD_ROOT=${RUMQTTD_ROOT:-$HOME/.cache/culex-bench/rumqttd}
mkdir -p "$OUT"

need() { command -v "$1" >/dev/null || { echo "compare.sh: $1 is needed ($2)" >&2; exit 1; }; }
need jq "apt-get install jq"
need python3 "apt-get install python3"

if [[ -z ${CULEX:-} ]]; then
    echo "building culex (release)..." >&2
    (cd "$ROOT" && cargo build --release -q -p culex)
    CULEX="$ROOT/target/release/culex"
fi
# The load generator and culex's broker; BENCH and CULEX_BROKER override them
# (e.g. with the example binaries of culex-bench and culex-broker).
read -r -a BENCH <<<"${BENCH:-$CULEX bench}"
read -r -a CULEX_BROKER <<<"${CULEX_BROKER:-$CULEX broker}"

if [[ " $BROKERS " == *" mosquitto "* ]]; then
    MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
    [[ -x $MOSQUITTO ]] || { echo "compare.sh: mosquitto is needed (apt-get install mosquitto)" >&2; exit 1; }
fi
if [[ " $BROKERS " == *" rumqttd "* ]]; then
    RUMQTTD=${RUMQTTD:-$(command -v rumqttd || echo "$RUMQTTD_ROOT/bin/rumqttd")}
    if [[ ! -x $RUMQTTD ]]; then
        echo "building rumqttd 0.20.0 from crates.io into $RUMQTTD_ROOT..." >&2
        # Not --locked: its lock file pins metrics 0.22.1, which current Rust rejects.
        cargo install rumqttd --version 0.20.0 --root "$RUMQTTD_ROOT" -q
        RUMQTTD="$RUMQTTD_ROOT/bin/rumqttd"
    fi
fi

# The broker of the run in progress, stopped if the script ends early (an
# error under set -e, or Ctrl-C), so that no broker outlives the script.
BROKER_PID=""
trap '[[ -z $BROKER_PID ]] || kill "$BROKER_PID" 2>/dev/null || true' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "compare.sh: nothing listening on port $1" >&2
    return 1
}

# Starts broker $1 on port $2 with its files in directory $3; prints its pid.
start_broker() {
    local name=$1 port=$2 dir=$3
    case $name in
    culex | mosquitto)
        # The same outbound window as rumqttd's max_inflight_count below.
        printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_inflight_messages 100\n' "$port" >"$dir/broker.conf"
        if [[ $name == culex ]]; then
            "${CULEX_BROKER[@]}" -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
        else
            "$MOSQUITTO" -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
        fi
        ;;
    rumqttd)
        cat >"$dir/rumqttd.toml" <<EOF
id = 0

[router]
id = 0
max_connections = 20010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$port"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
EOF
        "$RUMQTTD" -c "$dir/rumqttd.toml" >"$dir/broker.log" 2>&1 &
        ;;
    *)
        echo "compare.sh: unknown broker $name" >&2
        exit 1
        ;;
    esac
    echo $!
}

# The bench arguments of each scenario.
scenario_args() {
    case $1 in
    qos0) echo "pairs -c 8 -q 0 -r $2" ;;
    # Flat out: the publisher may have 1000 QoS 1 messages unacknowledged.
    qos1) echo "pairs -c 8 -q 1 --inflight 1000" ;;
    fanout) echo "fanout -c 8 -q 1 --inflight 1000" ;;
    fanin) echo "fanin -c 8 -q 0" ;;
    latency) echo "latency -c 10 -r 1000" ;;
    conn) echo "conn -c $CONNS --source-ips 4" ;;
    *)
        echo "compare.sh: unknown scenario $1" >&2
        exit 1
        ;;
    esac
}

rss_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# CPU seconds (user + system) a process has used, from /proc/PID/stat (in 1/100 s).
cpu_s() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ printf "%.2f", ($12 + $13) / 100 }' || echo 0; }

# Runs scenario $1 (bench arguments in $3) against broker $2 started fresh;
# the result goes to $OUT/$4-$2/result.json.
run_one() {
    local scenario=$1 broker=$2 args_text=$3 tag=$4
    local dir="$OUT/$tag-$broker" port pid rss_before rss_peak cpu_before cpu_after t_before t_after
    mkdir -p "$dir"
    port=$(free_port)
    pid=$(start_broker "$broker" "$port" "$dir")
    BROKER_PID=$pid
    if ! wait_port "$port"; then
        kill "$pid" 2>/dev/null || true
        BROKER_PID=""
        echo '{"error": "broker did not start"}' >"$dir/result.json"
        return
    fi
    if [[ $scenario == conn ]]; then
        # Sockets in TIME_WAIT from earlier runs slow connecting down by
        # orders of magnitude: wait (at most a minute) until few are left.
        for _ in $(seq 60); do
            (($(ss -tan state time-wait 2>/dev/null | wc -l) < 1000)) && break
            sleep 1
        done
    fi
    rss_before=$(rss_kib "$pid" VmRSS)
    cpu_before=$(cpu_s "$pid")
    t_before=$(date +%s.%N)
    read -r -a args <<<"$args_text"
    echo "== $scenario / $broker: culex bench ${args[*]} -d $DURATION -p $port" >&2
    if ! "${BENCH[@]}" "${args[@]}" -d "$DURATION" -p "$port" --json --quiet >"$dir/bench.json" 2>"$dir/bench.err"; then
        echo "   (the run counted errors or failed: see $dir/bench.err)" >&2
    fi
    rss_peak=$(rss_kib "$pid" VmHWM)
    cpu_after=$(cpu_s "$pid")
    t_after=$(date +%s.%N)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    BROKER_PID=""
    if jq -e . "$dir/bench.json" >/dev/null 2>&1; then
        jq --argjson before "${rss_before:-0}" --argjson peak "${rss_peak:-0}" \
            --argjson cpu0 "${cpu_before:-0}" --argjson cpu1 "${cpu_after:-0}" \
            --argjson t0 "$t_before" --argjson t1 "$t_after" \
            '. + {broker_rss_before_kib: $before, broker_rss_peak_kib: $peak,
                  broker_cpu_s: ($cpu1 - $cpu0), broker_wall_s: ($t1 - $t0)}' \
            "$dir/bench.json" >"$dir/result.json"
    else
        echo "{\"error\": $(jq -Rs . <"$dir/bench.err")}" >"$dir/result.json"
    fi
}

for scenario in $SCENARIOS; do
    for broker in $BROKERS; do
        if [[ $scenario == qos0 ]]; then
            # Raise the offered rate until delivery falls below 0.999.
            for rate in $QOS0_RATES; do
                run_one qos0 "$broker" "$(scenario_args qos0 "$rate")" "qos0-r$rate"
                PYTHONDONTWRITEBYTECODE=1 python3 "$ROOT/bench/sustained.py" "$OUT/qos0-r$rate-$broker/result.json" "$rate" || break
            done
        else
            run_one "$scenario" "$broker" "$(scenario_args "$scenario")" "$scenario"
        fi
    done
done

PYTHONDONTWRITEBYTECODE=1 python3 - "$OUT" "$SCENARIOS" "$BROKERS" "$ROOT/bench" <<'EOF'
import glob, json, os, sys

out, scenarios, brokers = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
sys.path.insert(0, sys.argv[4])
from sustained import sustained

def si(x):
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"

def mib(kib):
    return f"{kib / 1024:.0f} MB"

def broker_cpu(r):
    # The broker's CPU over the whole bench run (setup, measured phase, drain), in cores.
    if "broker_cpu_s" not in r:
        return ""
    return f", broker {r['broker_cpu_s'] / max(r['broker_wall_s'], 1e-3):.2f} cores"

def cell(scenario, r):
    if "error" in r:
        return "failed"
    m, t, lat = r["messages"], r["throughput"], r.get("latency_us") or {}
    rss = mib(r["broker_rss_peak_kib"])
    frac = m.get("delivered_fraction")
    frac = f"{frac:.3f}" if frac is not None else "-"
    errors = f", {r['errors']['total']} errors" if r["errors"]["total"] else ""
    if scenario == "latency":
        return f"p50 {lat.get('p50', 0):.0f} / p99 {lat.get('p99', 0):.0f} µs, {frac}{errors}"
    if scenario == "conn":
        c = r["connections"]
        per = (r["broker_rss_peak_kib"] - r["broker_rss_before_kib"]) * 1024 / max(c["established"], 1)
        return f"{c['established']} at {si(c['connect_rate'])}/s, {per:.0f} B/conn{errors}"
    p99 = f", p99 {lat['p99'] / 1000:.1f} ms" if lat else ""
    return f"{si(t['received_per_s'])}/s, {frac}{p99}, {rss}{broker_cpu(r)}{errors}"

def load(tag):
    with open(os.path.join(out, tag, "result.json")) as f:
        return json.load(f)

def qos0_cell(broker):
    runs = []
    for path in glob.glob(os.path.join(out, f"qos0-r*-{broker}", "result.json")):
        rate = int(os.path.basename(os.path.dirname(path))[len("qos0-r"):].split("-")[0])
        with open(path) as f:
            runs.append((rate, json.load(f)))
    runs.sort(key=lambda run: run[0])
    good = [(rate, r) for rate, r in runs if sustained(r, rate)]
    bad = [(rate, r) for rate, r in runs if (rate, r) not in good]
    text = "none" if not good else (
        f"{si(good[-1][1]['throughput']['received_per_s'])}/s "
        f"(p99 {(good[-1][1].get('latency_us') or {}).get('p99', 0) / 1000:.1f} ms, "
        f"{mib(good[-1][1]['broker_rss_peak_kib'])})"
    )
    if bad:
        rate, r = bad[0]
        frac = r.get("messages", {}).get("delivered_fraction")
        got = r.get("throughput", {}).get("received_per_s")
        text += f"; {si(8 * rate)}/s offered: " + (
            f"{si(got)}/s received, {frac:.3f} delivered" if frac is not None and got is not None else "failed"
        )
    return text

titles = {
    "qos0": "QoS 0, 8 pairs: highest rate sustained (received ≥ 0.95 of offered, delivered ≥ 0.999; p99, broker RSS); the next rate",
    "qos1": "QoS 1, 8 pairs flat out: received/s, delivered, p99, broker RSS",
    "fanout": "fan-out 1 → 8, QoS 1: deliveries/s, delivered, p99, broker RSS",
    "fanin": "fan-in 8 → 1, QoS 0 flood: delivered/s, delivered, p99, broker RSS",
    "latency": "latency, 10 pairs × 1000 msg/s: p50 / p99, delivered",
    "conn": "idle connections: established, connect rate, broker RSS per connection",
}
rows = [["scenario"] + brokers]
for s in scenarios:
    row = [titles.get(s, s)]
    for b in brokers:
        try:
            row.append(qos0_cell(b) if s == "qos0" else cell(s, load(f"{s}-{b}")))
        except (OSError, ValueError, KeyError) as e:
            row.append(f"missing ({e.__class__.__name__})")
    rows.append(row)
print(f"| {' | '.join(rows[0])} |")
print(f"|{'---|' * len(rows[0])}")
for row in rows[1:]:
    print(f"| {' | '.join(row)} |")
print(f"\nRaw JSON: {out}")
EOF
