#!/bin/sh
# bench/bench_statsd.sh - StatsD ingest at line rate: moonstat beside
# collectd 5.12's statsd plugin, Etsy statsd 0.9 and a bare recvmmsg sink.
#
# For each packet shape (20 lines per datagram, then 1 line) and each server,
# in one run: start the server alone on a loopback port, let
# bench/statsd_sender.c send "bench.k<N>:1|c" counters (1000 keys) at the
# maximum rate one core produces for BENCH_SECONDS (3), wait for the last
# flush, and read back what arrived as the sum of the flushed counts:
#   moonstat   statsd listener (1 worker, flush 1s) -> file forwarder (graphite lines)
#   collectd   statsd plugin (CounterSum) -> csv plugin, Interval 1
#   etsy       statsd 0.9 (tests/node, tools/deps.sh) -> graphite backend -> a TCP sink
#   sink       bench/udp_sink.c (lines): recvmmsg and count lines, nothing else (the floor)
# Prints per server and shape: lines sent, % of lines kept, CPU seconds
# (utime+stime of the server process, all threads) per million lines kept,
# and the lines per second one core of it handles at that cost; then the
# issue's targets. Writes bench/out/results-statsd.txt.
# Knobs: BENCH_SECONDS=3 MS_BIN=./moonstat BENCH_STRICT=1 (exit 1 on a FAIL).
set -u

cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out/statsd
SECS=${BENCH_SECONDS:-3}
MS_BIN=${MS_BIN:-$TOP/moonstat}
CD_BIN=/usr/sbin/collectd
ETSY=$TOP/tests/node/node_modules/statsd/stats.js
rm -rf "$OUT"
mkdir -p "$OUT"
. bench/lib.sh

cc -O2 -Wall -Wextra -o "$OUT/statsd_sender" bench/statsd_sender.c || exit 1
cc -O2 -Wall -Wextra -o "$OUT/udp_sink" bench/udp_sink.c || exit 1
mkdir -p "$OUT/nochecks"

# A Graphite plaintext sink for Etsy's graphite backend: appends every line to $1.
cat > "$OUT/graphite_sink.py" << 'EOF'
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[2])))
srv.listen(16)
out = open(sys.argv[1], "ab", buffering=0)
lock = threading.Lock()
def serve(c):
    data = b""
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        data += d
    with lock:
        out.write(data)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# run SERVER SHAPE: one measurement; sets SENT KEPT CPU (seconds) or n/a.
run() {
    srv=$1
    shape=$2
    dir=$OUT/$srv-$shape
    mkdir -p "$dir"
    port=$(free_port)
    SENT=n/a KEPT=n/a CPU=n/a
    case $srv in
    moonstat)
        cat > "$dir/config.yaml" << EOF
agent: { hostname: bench, stats_interval: 1h }
paths: { checks: ["$OUT/nochecks"], lua: ["$TOP/lua"], forwarders: ["$TOP/forwarders"] }
listeners:
  statsd: { udp: "127.0.0.1:$port", tcp: "", workers: 1, flush_interval: 1s, recv_buffer: 32MiB }
forwarders:
  out: { type: file, path: "$dir/out.txt", format: graphite }
EOF
        start "$dir/log" "$MS_BIN" -c "$dir/config.yaml"
        ;;
    collectd)
        cat > "$dir/collectd.conf" << EOF
Hostname "bench"
FQDNLookup false
BaseDir "$dir"
PIDFile "$dir/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$dir/collectd.log"
</Plugin>
LoadPlugin statsd
<Plugin statsd>
  Host "127.0.0.1"
  Port "$port"
  CounterSum true
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "$dir/csv"
</Plugin>
EOF
        start "$dir/log" "$CD_BIN" -f -C "$dir/collectd.conf"
        ;;
    etsy)
        gport=$(free_port)
        mport=$(free_port)
        start "$dir/gsink.log" "$PY" "$OUT/graphite_sink.py" "$dir/out.txt" "$gport"
        gpid=$PID
        cat > "$dir/config.js" << EOF
{ port: $port, address: "127.0.0.1", mgmt_port: $mport, mgmt_address: "127.0.0.1",
  flushInterval: 1000, graphiteHost: "127.0.0.1", graphitePort: $gport,
  backends: ["./backends/graphite"] }
EOF
        start "$dir/log" node "$ETSY" "$dir/config.js"
        ;;
    sink)
        start "$dir/out.txt" "$OUT/udp_sink" lines "$port" 33554432
        ;;
    esac
    pid=$PID
    sleep 1.5
    if ! alive "$pid"; then
        echo "  $srv did not start; last lines of $dir/log:" >&2
        tail -n 10 "$dir/log" >&2
        return 1
    fi
    c0=$(cpu_ticks "$pid")
    SENT=$("$OUT/statsd_sender" 127.0.0.1 "$port" "$SECS" "$shape" | awk '{ print $2 }')
    sleep 2.5 # the last flush (1 s intervals) and its write
    c1=$(cpu_ticks "$pid")
    stop "$pid"
    CPU=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    case $srv in
    moonstat) KEPT=$(grep -E '^bench\.k[0-9]+\.count' "$dir/out.txt" | awk '{ s += $2 } END { print s + 0 }') ;;
    collectd) KEPT=$(cat "$dir"/csv/*/statsd/count-bench.k* 2> /dev/null | grep -v epoch |
        awk -F, '{ s += $2 } END { printf "%.0f\n", s }') ;;
    etsy)
        stop "$gpid"
        KEPT=$(grep -E '^stats_counts\.bench\.k[0-9]+ ' "$dir/out.txt" | awk '{ s += $2 } END { print s + 0 }')
        ;;
    sink) KEPT=$(awk '/^lines/ { print $2 }' "$dir/out.txt") ;;
    esac
    return 0
}

results=$OUT/rows.txt
: > "$results"
for shape in 20 1; do
    for srv in moonstat collectd etsy sink; do
        if [ "$srv" = etsy ] && [ ! -f "$ETSY" ]; then
            echo "etsy $shape n/a n/a n/a" >> "$results"
            continue
        fi
        run "$srv" "$shape"
        echo "$srv $shape $SENT $KEPT $CPU" >> "$results"
        echo "  $srv, $shape-line packets: sent $SENT, kept $KEPT, cpu ${CPU}s" >&2
    done
done

# The table, with ratios to collectd and the targets.
awk -v secs="$SECS" '
function num(x) { return x != "n/a" && x != "" }
{ srv[NR] = $1; shape[NR] = $2; sent[NR] = $3; kept[NR] = $4; cpu[NR] = $5
  key = $1 "/" $2; K[key] = $4; S[key] = $3; C[key] = $5 }
END {
  printf "%-9s %5s %12s %9s %8s %14s %13s %10s\n", "server", "lines", "lines sent", "Mlines/s", "% kept", "CPU s/M lines", "Mlines/s/core", "CPU ratio"
  for (i = 1; i <= NR; i++) {
    pk = "n/a"; cm = "n/a"; pc = "n/a"; ra = "n/a"; off = "n/a"
    if (num(sent[i])) off = sprintf("%.2f", sent[i] / secs / 1e6)
    if (num(sent[i]) && num(kept[i]) && sent[i] > 0) pk = sprintf("%.2f", 100 * kept[i] / sent[i])
    if (num(kept[i]) && kept[i] > 0 && num(cpu[i])) { v = cpu[i] / (kept[i] / 1e6); cm = sprintf("%.3f", v); if (v > 0) pc = sprintf("%.2f", 1 / v) }
    ck = "collectd/" shape[i]
    if (cm != "n/a" && num(K[ck]) && K[ck] > 0 && C[ck] > 0) ra = sprintf("%.2f", cm / (C[ck] / (K[ck] / 1e6)))
    printf "%-9s %5s %12s %9s %8s %14s %13s %10s\n", srv[i], shape[i], sent[i], off, pk, cm, pc, ra
    PK[srv[i] "/" shape[i]] = pk; RA[srv[i] "/" shape[i]] = ra; PC[srv[i] "/" shape[i]] = pc
  }
  print ""
  print "targets (moonstat):"
  for (s = 20; s >= 1; s -= 19) {
    k = "moonstat/" s
    printf "  0 loss at the sender maximum, %2d-line packets: %s%% kept  %s\n", s, PK[k], (PK[k] == "100.00" ? "PASS" : "FAIL")
    printf "  CPU per M lines <= 1/3 of collectd, %2d-line:    ratio %s  %s\n", s, RA[k], (RA[k] != "n/a" && RA[k] + 0 <= 0.334 ? "PASS" : "FAIL")
  }
  k = "moonstat/20"
  printf "  >= 2M lines/s on one core (20-line packets):    %s M/s  %s\n", PC[k], (PC[k] != "n/a" && PC[k] + 0 >= 2 ? "PASS" : "FAIL")
}' "$results" > "$TOP/bench/out/results-statsd.txt"

echo
echo "StatsD ingest: moonstat $("$MS_BIN" --version 2> /dev/null | head -n 1 | cut -d' ' -f2) vs collectd $(dpkg-query -W -f='${Version}' collectd-core 2> /dev/null) statsd plugin vs Etsy statsd 0.9 (node $(node --version 2> /dev/null)) vs a bare recvmmsg sink; ${SECS}s at the sender's maximum per run, $(nproc) cores"
cat "$TOP/bench/out/results-statsd.txt"
echo "(CPU ratio = CPU per million lines kept / collectd's at the same shape; results in bench/out/results-statsd.txt)"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q 'FAIL$' "$TOP/bench/out/results-statsd.txt"; then
    exit 1
fi
exit 0
