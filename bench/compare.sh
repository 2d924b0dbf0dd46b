#!/usr/bin/env bash
# Side by side: culex, Debian's mosquitto, rumqttd 0.20 and FlashMQ 1.26, each
# started fresh on loopback for every run, measured with `culex bench`,
# printed as one table.
#
#   bench/compare.sh                      # every broker found, the default scenarios
#   FLASHMQ=/path/to/flashmq DURATION=5s bench/compare.sh
#   BROKERS="culex mosquitto" SCENARIOS="qos1-w20 latency" bench/compare.sh
#   CONFIG=defaults bench/compare.sh      # every broker with its own defaults
#
# Scenarios (the default set; 8 pairs or 1 -> 8 or 8 -> 1, 64-byte payloads,
# MQTT 3.1.1). Publisher windows are those real clients use: 20 is paho's and
# mosquitto's client default, 100 a generous one.
#   qos0          QoS 0, 8 pairs at rising offered rates (QOS0_RATES) until one
#                 is not sustained; the highest sustained rate
#   qos0-at-2M    QoS 0, 8 pairs offered 2M msg/s in all: received, p50 / p99
#                 (any qos0-at-RATE, e.g. qos0-at-500k)
#   qos1-w20      QoS 1, 8 pairs flat out, each publisher with 20 unacknowledged
#   qos1-w100     the same with 100 (any qos1-wN)
#   fanout-w100   QoS 1, 1 publisher (window 100) -> 8 subscribers (any fanout-wN)
#   shared-w100   QoS 1, 8 publishers (window 100) -> 8 subscribers in one
#                 shared group, $share/bench/ (any shared-wN; not in the
#                 default set)
#   fanin         QoS 0, 8 publishers flooding 1 subscriber
#   latency       10 pairs x 1000 msg/s, QoS 0: p50 / p99
#   conn          CONNS idle connections, 64 connecting at once: connect rate,
#                 broker memory per connection
#   connrate      connect rate with 1, 8, 64 and 256 connecting at once
#                 (CONNECT_CONCURRENCY), CONNRATE_CONNS connections each
# Over TLS and WebSockets (culex and mosquitto only; not in the default set):
#   tls-conn      TLS_CONNS idle TLS connections, 64 connecting at once: TLS
#                 handshakes (and CONNECTs) per second, broker memory per
#                 idle TLS connection
#   tls-qos1      QoS 1, 8 pairs flat out over TLS, window 100
#   ws-qos0       QoS 0, 8 pairs flat out over WebSockets
#   ws-qos1       QoS 1, 8 pairs flat out over WebSockets, window 100
#   ws-conn       TLS_CONNS idle WebSocket connections: connect rate, broker
#                 memory per idle WebSocket connection
# Their listener is `certfile`/`keyfile` (an ECDSA P-256 certificate made
# with openssl, world-readable since mosquitto drops root before reading
# its key) or `protocol websockets`, the rest as above.
# Every client writes CONNECT once the TCP handshake is reported complete, as
# mosquitto_pub and paho do; conn-early is conn with `--early-connect`, the
# load generator's faster way (CONNECT right after connect()).
#
# Broker configurations. Every broker listens on 127.0.0.1 only, allows
# anonymous clients and sets TCP_NODELAY (mosquitto's default is Nagle on).
#   NAME           equal windows: every broker gets the same outbound window
#                  for QoS 1/2 (WINDOW, default 100): max_inflight_messages
#                  (culex, mosquitto), max_inflight_count (rumqttd),
#                  max_qos_msg_pending_per_client (FlashMQ, which drops what
#                  goes past it instead of queueing it); FlashMQ runs
#                  thread_count 2 and log_level error
#   NAME-defaults  the broker's own defaults for everything else: culex and
#                  mosquitto max_inflight_messages 20, max_queued_messages
#                  1000; FlashMQ max_qos_msg_pending_per_client 512, threads
#                  auto, log_level info; rumqttd has no built-in defaults, so
#                  the values of the rumqttd.toml it ships (its window is 100)
#
# Environment:
#   BROKERS     names above (default: culex culex-defaults mosquitto rumqttd,
#               and flashmq when FLASHMQ is set)
#   CONFIG      defaults: run every broker in BROKERS with its own defaults
#   SCENARIOS   default: qos0 qos0-at-2M qos1-w20 qos1-w100 fanout-w100 fanin latency conn connrate
#   DURATION    measured phase of each message run (default 10s)
#   WINDOW      the brokers' outbound window with equal windows (default 100)
#   QOS0_RATES  offered rates per publisher tried in turn by qos0, until a rate is
#               not sustained: delivered < 0.999, or received < 0.95 of offered
#               (default "5000 15000 40000 95000 190000 380000")
#   CONNS       connections in conn (default 19000; the process limit here is 20000 files)
#   CONN_HOLD   how long conn and connrate hold their connections (default 2s)
#   CONNECT_CONCURRENCY  connects in flight tried by connrate (default "1 8 64 256")
#   CONNRATE_CONNS       connections per connrate run (default 5000)
#   TLS_CONNS   connections in tls-conn and ws-conn (default 5000)
#   FLASHMQ     path of a FlashMQ 1.26 binary (built outside the repository, see
#               bench/README.md); flashmq is left out when unset
#   MOSQUITTO   path of mosquitto (default: the one on PATH)
#   RUMQTTD     path of a rumqttd 0.20 binary; when unset and none is found, it is
#               built from crates.io into RUMQTTD_ROOT (default ~/.cache/culex-bench/rumqttd)
#   OUT         where the JSON of every run goes (default target/bench-compare/DATE)
#   CULEX       a culex binary to use instead of building target/release/culex
#   BENCH       the load generator command (default: "$CULEX bench")
#   CULEX_BROKER  culex's broker command (default: "$CULEX broker")
#   CULEX_EXTRA_CONFIG  lines added to culex's config file (both culex and
#               culex-defaults), e.g. CULEX_EXTRA_CONFIG="http_listener 18099"
#               to measure with the admin HTTP listener on
#
# Each cell also shows the broker's peak RSS and the cores it used over the run.
#
# The load generator shares the machine's cores with the broker it measures:
# ratios between brokers are what count; absolute figures drift between runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${BROKERS:-} ]]; then
    BROKERS="culex culex-defaults mosquitto rumqttd"
    if [[ -n ${FLASHMQ:-} ]]; then
        BROKERS+=" flashmq"
    else
        echo "compare.sh: FLASHMQ is not set, so FlashMQ is left out" >&2
    fi
fi
if [[ ${CONFIG:-} == defaults ]]; then
    with_defaults=""
    for broker in $BROKERS; do
        with_defaults+=" ${broker%-defaults}-defaults"
    done
    BROKERS=$(echo "$with_defaults" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
elif [[ -n ${CONFIG:-} ]]; then
    echo "compare.sh: CONFIG is 'defaults' or unset" >&2
    exit 1
fi
SCENARIOS=${SCENARIOS:-"qos0 qos0-at-2M qos1-w20 qos1-w100 fanout-w100 fanin latency conn connrate"}
DURATION=${DURATION:-10s}
WINDOW=${WINDOW:-100}
QOS0_RATES=${QOS0_RATES:-"5000 15000 40000 95000 190000 380000"}
CONNS=${CONNS:-19000}
CONN_HOLD=${CONN_HOLD:-2s}
CONNECT_CONCURRENCY=${CONNECT_CONCURRENCY:-"1 8 64 256"}
CONNRATE_CONNS=${CONNRATE_CONNS:-5000}
TLS_CONNS=${TLS_CONNS:-5000}
OUT=${OUT:-$ROOT/target/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)}
RUMQTTD_ROOT=${RUMQTTD_ROOT:-$HOME/.cache/culex-bench/rumqttd}
mkdir -p "$OUT"

need() { command -v "$1" >/dev/null || { echo "compare.sh: $1 is needed ($2)" >&2; exit 1; }; }
need jq "apt-get install jq"
need python3 "apt-get install python3"
need ss "apt-get install iproute2"

uses() { [[ " $BROKERS " == *" $1 "* || " $BROKERS " == *" $1-defaults "* ]]; }

if [[ -z ${CULEX:-} ]]; then
    echo "building culex (release)..." >&2
    (cd "$ROOT" && cargo build --release -q -p culex)
    CULEX="$ROOT/target/release/culex"
fi
# The load generator and culex's broker; BENCH and CULEX_BROKER override them
# (e.g. with the example binaries of culex-bench and culex-broker).
read -r -a BENCH <<<"${BENCH:-$CULEX bench}"
read -r -a CULEX_BROKER <<<"${CULEX_BROKER:-$CULEX broker}"

if uses mosquitto; then
    MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
    [[ -x $MOSQUITTO ]] || { echo "compare.sh: mosquitto is needed (apt-get install mosquitto)" >&2; exit 1; }
fi
if uses rumqttd; then
    RUMQTTD=${RUMQTTD:-$(command -v rumqttd || echo "$RUMQTTD_ROOT/bin/rumqttd")}
    if [[ ! -x $RUMQTTD ]]; then
        echo "building rumqttd 0.20.0 from crates.io into $RUMQTTD_ROOT..." >&2
        # Not --locked: its lock file pins metrics 0.22.1, which current Rust rejects.
        cargo install rumqttd --version 0.20.0 --root "$RUMQTTD_ROOT" -q
        RUMQTTD="$RUMQTTD_ROOT/bin/rumqttd"
    fi
fi
if uses flashmq; then
    # FlashMQ is never built by this script: see bench/README.md.
    [[ -n ${FLASHMQ:-} && -x ${FLASHMQ:-} ]] || {
        echo "compare.sh: set FLASHMQ to a FlashMQ 1.26 binary (see bench/README.md)" >&2
        exit 1
    }
fi

# A CA and a server certificate for 127.0.0.1 and localhost, for the TLS
# scenarios; world-readable, for mosquitto, which reads its key after
# dropping root.
CERTS="$OUT/certs"
if [[ " $SCENARIOS " == *" tls-"* ]]; then
    need openssl "apt-get install openssl"
    mkdir -p "$CERTS"
    (
        cd "$CERTS"
        key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${key[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=bench CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
        openssl req "${key[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.crt 2>/dev/null
        chmod 755 . && chmod 644 ./*
    )
fi

# The broker of the run in progress, stopped if the script ends early (an
# error under set -e, or Ctrl-C), so that no broker outlives the script.
BROKER_PID=""
trap '[[ -z $BROKER_PID ]] || kill "$BROKER_PID" 2>/dev/null || true' EXIT
# Every port a broker listened on, to tell the tool's TIME_WAIT sockets apart.
BROKER_PORTS=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "compare.sh: nothing listening on port $1" >&2
    return 1
}

# Sockets in TIME_WAIT on the client side of a connection to one of our
# brokers: they hold local ports, and many of them slow connect() down by
# orders of magnitude. (The broker's side, which closes first after
# DISCONNECT, holds only its own listening port.)
client_time_waits() {
    ss -Htan state time-wait 2>/dev/null |
        awk -v ports=" $BROKER_PORTS " '{ n = split($4, a, ":"); if (index(ports, " " a[n] " ")) c++ } END { print c + 0 }'
}

# Starts broker $1 (NAME or NAME-defaults) on port $2 with its files in
# directory $3, its listener plain, tls or ws ($4); prints its pid.
start_broker() {
    local name=${1%-defaults} port=$2 dir=$3 window=$WINDOW transport=${4:-plain}
    [[ $1 == *-defaults ]] && window=""
    case $name in
    culex | mosquitto)
        {
            printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port"
            case $transport in
            tls) printf 'certfile %s\nkeyfile %s\n' "$CERTS/server.crt" "$CERTS/server.key" ;;
            ws) printf 'protocol websockets\n' ;;
            esac
            # culex always sets TCP_NODELAY (and warns about the option).
            [[ $name == mosquitto ]] && printf 'set_tcp_nodelay true\n'
            [[ -n $window ]] && printf 'max_inflight_messages %s\n' "$window"
            # mosquitto 2.0.11 exits ("Unable to start any listening
            # sockets") when all its listeners are websockets ones.
            if [[ $name == mosquitto && $transport == ws ]]; then
                printf 'listener %s 127.0.0.1\n' "$(free_port)"
            fi
            [[ $name == culex && -n ${CULEX_EXTRA_CONFIG:-} ]] && printf '%s\n' "$CULEX_EXTRA_CONFIG"
        } >"$dir/broker.conf"
        if [[ $name == culex ]]; then
            "${CULEX_BROKER[@]}" -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
        else
            "$MOSQUITTO" -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
        fi
        ;;
    rumqttd)
        # The values of the rumqttd.toml rumqttd 0.20 ships (its window,
        # max_inflight_count, is 100), with room for CONNS connections and
        # the listener on loopback.
        cat >"$dir/rumqttd.toml" <<EOF
id = 0

[router]
id = 0
max_connections = $((CONNS + 1010))
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
    max_inflight_count = ${window:-100}
    dynamic_filters = true
EOF
        "$RUMQTTD" -c "$dir/rumqttd.toml" >"$dir/broker.log" 2>&1 &
        ;;
    flashmq)
        {
            printf 'allow_anonymous true\nrlimit_nofile %s\n' "$(ulimit -Hn)"
            if [[ -n $window ]]; then
                # It accepts 32 at least.
                printf 'thread_count 2\nlog_level error\nmax_qos_msg_pending_per_client %s\n' "$window"
            fi
            # inet_protocol ip4: by default it also listens on every IPv6 address.
            printf 'listen {\n  protocol mqtt\n  inet_protocol ip4\n  inet4_bind_address 127.0.0.1\n  port %s\n  tcp_nodelay true\n}\n' "$port"
        } >"$dir/flashmq.conf"
        "$FLASHMQ" --config-file "$dir/flashmq.conf" >"$dir/broker.log" 2>&1 &
        ;;
    *)
        echo "compare.sh: unknown broker $1" >&2
        exit 1
        ;;
    esac
    echo $!
}

# A rate such as 2M, 500k or 1500 as a number.
rate_value() {
    case $1 in
    *M) echo $((${1%M} * 1000000)) ;;
    *k) echo $((${1%k} * 1000)) ;;
    *) echo "$1" ;;
    esac
}

# The bench arguments of each scenario (conn-c<N> is connrate's run with N
# connecting at once).
scenario_args() {
    case $1 in
    qos0) echo "pairs -c 8 -q 0 -r $2" ;;
    qos0-at-*) echo "pairs -c 8 -q 0 --total-rate $(rate_value "${1#qos0-at-}")" ;;
    qos1) echo "pairs -c 8 -q 1 --inflight 100" ;;
    qos1-w*) echo "pairs -c 8 -q 1 --inflight ${1#qos1-w}" ;;
    fanout) echo "fanout -c 8 -q 1 --inflight 100" ;;
    fanout-w*) echo "fanout -c 8 -q 1 --inflight ${1#fanout-w}" ;;
    shared-w*) echo "fanout --publishers 8 -c 8 -q 1 --share bench --inflight ${1#shared-w}" ;;
    fanin) echo "fanin -c 8 -q 0" ;;
    latency) echo "latency -c 10 -r 1000" ;;
    conn) echo "conn -c $CONNS --source-ips 4" ;;
    conn-early) echo "conn -c $CONNS --source-ips 4 --early-connect" ;;
    conn-c*) echo "conn -c $CONNRATE_CONNS --source-ips 4 --connect-concurrency ${1#conn-c}" ;;
    tls-conn) echo "conn -c $TLS_CONNS --source-ips 4 --tls --cafile $CERTS/ca.crt" ;;
    tls-qos1) echo "pairs -c 8 -q 1 --inflight 100 --tls --cafile $CERTS/ca.crt" ;;
    ws-qos0) echo "pairs -c 8 -q 0 --ws" ;;
    ws-qos1) echo "pairs -c 8 -q 1 --inflight 100 --ws" ;;
    ws-conn) echo "conn -c $TLS_CONNS --source-ips 4 --ws" ;;
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
    local dir="$OUT/$tag-$broker" port pid rss_before rss_peak cpu_before cpu_after t_before t_after duration=$DURATION
    mkdir -p "$dir"
    port=$(free_port)
    BROKER_PORTS+=" $port"
    local transport=plain
    case $scenario in
    tls-*) transport=tls ;;
    ws-*) transport=ws ;;
    esac
    pid=$(start_broker "$broker" "$port" "$dir" "$transport")
    BROKER_PID=$pid
    if ! wait_port "$port"; then
        kill "$pid" 2>/dev/null || true
        BROKER_PID=""
        echo '{"error": "broker did not start"}' >"$dir/result.json"
        return
    fi
    if [[ $scenario == conn* || $scenario == *-conn ]]; then
        duration=$CONN_HOLD
        # The tool's sockets in TIME_WAIT from earlier runs (when a broker
        # did not close first) slow connecting down: wait, a minute at most.
        for _ in $(seq 60); do
            (($(client_time_waits) < 1000)) && break
            sleep 1
        done
    fi
    rss_before=$(rss_kib "$pid" VmRSS)
    cpu_before=$(cpu_s "$pid")
    t_before=$(date +%s.%N)
    read -r -a args <<<"$args_text"
    echo "== $tag / $broker: culex bench ${args[*]} -d $duration -p $port" >&2
    if ! "${BENCH[@]}" "${args[@]}" -d "$duration" -p "$port" --json --quiet >"$dir/bench.json" 2>"$dir/bench.err"; then
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

# What was measured, for the notes under the table.
{
    echo "culex: ${CULEX_BROKER[*]} ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    uses mosquitto && echo "mosquitto: $("$MOSQUITTO" -h 2>/dev/null | head -1)"
    uses rumqttd && echo "rumqttd: $RUMQTTD"
    uses flashmq && echo "flashmq: $("$FLASHMQ" --version 2>/dev/null | head -1)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
} >"$OUT/brokers.txt"

for scenario in $SCENARIOS; do
    for broker in $BROKERS; do
        # TLS and WebSocket listeners are configured for culex and mosquitto only.
        if [[ $scenario == tls-* || $scenario == ws-* ]] && [[ ${broker%-defaults} != culex && ${broker%-defaults} != mosquitto ]]; then
            continue
        fi
        case $scenario in
        qos0)
            # Raise the offered rate until delivery falls below 0.999.
            for rate in $QOS0_RATES; do
                run_one qos0 "$broker" "$(scenario_args qos0 "$rate")" "qos0-r$rate"
                PYTHONDONTWRITEBYTECODE=1 python3 "$ROOT/bench/sustained.py" "$OUT/qos0-r$rate-$broker/result.json" "$rate" || break
            done
            ;;
        connrate)
            for c in $CONNECT_CONCURRENCY; do
                run_one connrate "$broker" "$(scenario_args "conn-c$c")" "connrate-c$c"
            done
            ;;
        *)
            run_one "$scenario" "$broker" "$(scenario_args "$scenario")" "$scenario"
            ;;
        esac
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/brokers.txt"

PYTHONDONTWRITEBYTECODE=1 python3 - "$OUT" "$SCENARIOS" "$BROKERS" "$ROOT/bench" "$CONNECT_CONCURRENCY" <<'EOF'
import glob, json, os, sys

out, scenarios, brokers = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
sys.path.insert(0, sys.argv[4])
concurrencies = sys.argv[5].split()
from sustained import sustained

def si(x):
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"

def mib(kib):
    return f"{kib / 1024:.0f} MB"

def us(x):
    return f"{x / 1000:.1f} ms" if x >= 10_000 else f"{x:.0f} µs"

def broker_cpu(r):
    # The broker's CPU over the whole bench run (setup, measured phase, drain), in cores.
    if "broker_cpu_s" not in r:
        return ""
    return f", {r['broker_cpu_s'] / max(r['broker_wall_s'], 1e-3):.2f} cores"

def errors(r):
    return f", {r['errors']['total']} errors" if r["errors"]["total"] else ""

def fraction(r):
    frac = r["messages"].get("delivered_fraction")
    return f"{frac:.3f}" if frac is not None else "-"

def cell(scenario, r):
    if "error" in r:
        return "failed"
    t, lat = r["throughput"], r.get("latency_us") or {}
    rss = mib(r["broker_rss_peak_kib"])
    if scenario == "latency":
        return f"p50 {lat.get('p50', 0):.0f} / p99 {lat.get('p99', 0):.0f} µs, {fraction(r)}{errors(r)}"
    if scenario.startswith("qos0-at-"):
        pct = f"p50 {us(lat['p50'])} / p99 {us(lat['p99'])}" if lat else "none timed"
        return f"{si(t['received_per_s'])}/s, {fraction(r)}, {pct}, {rss}{broker_cpu(r)}{errors(r)}"
    if scenario.startswith("conn") or scenario.endswith("-conn"):
        c = r["connections"]
        per = (r["broker_rss_peak_kib"] - r["broker_rss_before_kib"]) * 1024 / max(c["established"], 1)
        p99 = (c.get("connect_latency_us") or {}).get("p99")
        p99 = f", p99 {us(p99)}" if p99 is not None else ""
        return f"{c['established']} at {si(c['connect_rate'])}/s{p99}, {per:.0f} B/conn{errors(r)}"
    p99 = f", p99 {lat['p99'] / 1000:.1f} ms" if lat else ""
    return f"{si(t['received_per_s'])}/s, {fraction(r)}{p99}, {rss}{broker_cpu(r)}{errors(r)}"

def load(tag):
    with open(os.path.join(out, tag, "result.json")) as f:
        return json.load(f)

def qos0_cell(broker):
    runs = []
    for path in glob.glob(os.path.join(out, f"qos0-r*-{broker}", "result.json")):
        # qos0-r<rate>-<broker>: the broker's name may itself hold a dash.
        rate = os.path.basename(os.path.dirname(path))[len("qos0-r"):-len(broker) - 1]
        if not rate.isdigit():
            continue
        with open(path) as f:
            runs.append((int(rate), json.load(f)))
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

def connrate_cell(broker):
    parts = []
    for c in concurrencies:
        try:
            r = load(f"connrate-c{c}-{broker}")
        except (OSError, ValueError):
            parts.append(f"{c}: missing")
            continue
        if "error" in r:
            parts.append(f"{c}: failed")
            continue
        conns = r["connections"]
        short = "" if conns["established"] == conns["wanted"] else f" ({conns['established']} of {conns['wanted']})"
        p99 = (conns.get("connect_latency_us") or {}).get("p99")
        p99 = f" (p99 {us(p99)})" if p99 is not None else ""
        parts.append(f"{c}: {si(conns['connect_rate'])}/s{p99}{short}")
    return "; ".join(parts)

def title(s):
    fixed = {
        "qos0": "QoS 0, 8 pairs: highest rate sustained (received ≥ 0.95 of offered, delivered ≥ 0.999; p99, broker RSS); the next rate",
        "fanin": "fan-in 8 → 1, QoS 0 flood: delivered/s, delivered, p99, broker RSS",
        "latency": "latency, 10 pairs × 1000 msg/s: p50 / p99, delivered",
        "conn": "idle connections, 64 connecting at once: established, connect rate, p99 connect → CONNACK, broker RSS per connection",
        "conn-early": "idle connections, CONNECT right after connect() (--early-connect): established, connect rate, p99, RSS per connection",
        "connrate": "connect rate by connections in flight (CONNECT after the handshake; p99 connect → CONNACK)",
        "tls-conn": "idle TLS connections, 64 connecting at once: established, TLS handshakes + CONNECT per s, p99, broker RSS per connection",
        "ws-conn": "idle WebSocket connections, 64 connecting at once: established, upgrades + CONNECT per s, p99, broker RSS per connection",
        "tls-qos1": "QoS 1 over TLS, 8 pairs flat out, publisher window 100: received/s, delivered, p99, broker RSS",
        "ws-qos0": "QoS 0 over WebSockets, 8 pairs flat out: received/s, delivered, p99, broker RSS",
        "ws-qos1": "QoS 1 over WebSockets, 8 pairs flat out, publisher window 100: received/s, delivered, p99, broker RSS",
    }
    if s in fixed:
        return fixed[s]
    window = lambda prefix: s[len(prefix):] if s.startswith(prefix) else "100"
    if s.startswith("qos0-at-"):
        return f"QoS 0, 8 pairs, {s[len('qos0-at-'):]}/s offered in all: received/s, delivered, p50 / p99, broker RSS"
    if s.startswith("qos1"):
        return f"QoS 1, 8 pairs flat out, publisher window {window('qos1-w')}: received/s, delivered, p99, broker RSS"
    if s.startswith("shared-w"):
        return f"shared group: 8 publishers → 8 subscribers in $share/bench/, QoS 1, publisher window {window('shared-w')}: received/s, delivered, p99, broker RSS"
    if s.startswith("fanout"):
        return f"fan-out 1 → 8, QoS 1, publisher window {window('fanout-w')}: deliveries/s, delivered, p99, broker RSS"
    return s

rows = [["scenario"] + brokers]
for s in scenarios:
    row = [title(s)]
    for b in brokers:
        if s.split("-")[0] in ("tls", "ws") and b.removesuffix("-defaults") not in ("culex", "mosquitto"):
            row.append("-")
            continue
        try:
            if s == "qos0":
                row.append(qos0_cell(b))
            elif s == "connrate":
                row.append(connrate_cell(b))
            else:
                row.append(cell(s, load(f"{s}-{b}")))
        except (OSError, ValueError, KeyError) as e:
            row.append(f"missing ({e.__class__.__name__})")
    rows.append(row)
print(f"| {' | '.join(rows[0])} |")
print(f"|{'---|' * len(rows[0])}")
for row in rows[1:]:
    print(f"| {' | '.join(row)} |")
print()
with open(os.path.join(out, "brokers.txt")) as f:
    print(f.read().rstrip())
print(f"\nRaw JSON: {out}")
EOF
