#!/bin/sh
# bench/bench_collectd.sh - collectd network-protocol ingest at line rate:
# moonstat's collectd listener beside collectd 5.12's own network plugin and
# a bare recvmmsg sink, in one run.
#
# For each pace (flat out, then BENCH_RATE values/s) and each server: start
# it alone on a loopback port, let bench/collectd_sender.c send collectd
# packets (up to 1452 bytes, ~35 values
# in ~30 value lists each: load, memory, cpu, interface, df and disk of 8
# hosts; gauges and derives, parts carried over the way collectd's network
# plugin fills packets) at the maximum rate one core produces (or at
# BENCH_RATE, 100000 values/s, where collectd should keep up) for
# BENCH_SECONDS (3), wait until the output stops growing, and count the
# values that came out:
#   moonstat   listeners.collectd (recv_buffer 32MiB) -> file forwarder
#              (buffer_size 2GiB, so the listener is measured, not the queue;
#              influx lines, one per value; DERIVE as rates, so the first
#              value of each of the sender's derive series gives no line and
#              is added back)
#   collectd   network plugin (Listen) -> csv plugin (one line per value
#              list; its values are counted), WriteQueueLimitHigh 1M
#   sink       bench/udp_sink.c (collectd): recvmmsg and walk the part headers,
#              counting values (the floor)
# Prints per server: values sent, % kept, CPU seconds (utime+stime of the
# server process, all threads) per million values kept, the values per
# second one core of it handles at that cost, and the CPU ratio to
# collectd's; then the issue's targets. Writes bench/out/results-collectd.txt.
# Knobs: BENCH_SECONDS=3 BENCH_RATE=100000 MS_BIN=./moonstat BENCH_STRICT=1
# (exit 1 on a FAIL).
set -u

cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out/collectd
SECS=${BENCH_SECONDS:-3}
RATE=${BENCH_RATE:-100000}
MS_BIN=${MS_BIN:-$TOP/moonstat}
CD_BIN=/usr/sbin/collectd
rm -rf "$OUT"
mkdir -p "$OUT"
. bench/lib.sh

cc -O2 -Wall -Wextra -o "$OUT/collectd_sender" bench/collectd_sender.c || exit 1
cc -O2 -Wall -Wextra -o "$OUT/udp_sink" bench/udp_sink.c || exit 1
mkdir -p "$OUT/nochecks"

# kept SERVER DIR: the values that came out so far.
kept() {
    case $1 in
    moonstat) grep -c '^bench[0-9]' "$2/out.lp" 2> /dev/null || echo 0 ;;
    collectd) cat "$2"/csv/*/*/* 2> /dev/null | awk -F, '!/^epoch/ { s += NF - 1 } END { print s + 0 }' ;;
    sink) awk '/^values/ { print $2 }' "$2/out.txt" ;;
    esac
}

# run SERVER PACE (max or a values/s rate): one measurement; sets SENT KEPT
# CPU (seconds) or n/a.
run() {
    srv=$1
    pace=$2
    dir=$OUT/$srv-$pace
    mkdir -p "$dir"
    port=$(free_port)
    SENT=n/a KEPT=n/a CPU=n/a
    case $srv in
    moonstat)
        cat > "$dir/config.yaml" << EOF
agent: { hostname: bench, stats_interval: 1h }
paths: { checks: ["$OUT/nochecks"], lua: ["$TOP/lua"], forwarders: ["$TOP/forwarders"] }
listeners:
  collectd: { udp: "127.0.0.1:$port", recv_buffer: 32MiB }
forwarders:
  out: { type: file, path: "$dir/out.lp", format: influx, buffer_size: 2GiB }
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
Interval 10
WriteQueueLimitHigh 1000000
WriteQueueLimitLow 800000
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$dir/collectd.log"
</Plugin>
LoadPlugin network
<Plugin network>
  Listen "127.0.0.1" "$port"
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "$dir/csv"
</Plugin>
EOF
        start "$dir/log" "$CD_BIN" -f -C "$dir/collectd.conf"
        ;;
    sink)
        start "$dir/out.txt" "$OUT/udp_sink" collectd "$port" 33554432
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
    r=0
    [ "$pace" = max ] || r=$pace
    line=$("$OUT/collectd_sender" 127.0.0.1 "$port" "$SECS" "$r")
    SENT=$(echo "$line" | awk '{ print $2 }')
    dser=$(echo "$line" | awk '{ print $8 }')
    # wait until the output stops growing (at most 15 s)
    last=-1
    n=0
    while [ $n -lt 30 ]; do
        sleep 0.5
        k=$(kept "$srv" "$dir")
        [ "$srv" = sink ] && break
        [ "$k" = "$last" ] && break
        last=$k
        n=$((n + 1))
    done
    c1=$(cpu_ticks "$pid")
    stop "$pid"
    CPU=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    KEPT=$(kept "$srv" "$dir")
    # moonstat: the first value of each derive series has no rate
    [ "$srv" = moonstat ] && KEPT=$(awk -v k="$KEPT" -v d="$dser" -v s="$SENT" 'BEGIN { k += d; if (k > s) k = s; print k }')
    return 0
}

results=$OUT/rows.txt
: > "$results"
for pace in max "$RATE"; do
    for srv in moonstat collectd sink; do
        run "$srv" "$pace"
        echo "$srv $pace $SENT $KEPT $CPU" >> "$results"
        echo "  $srv, pace $pace: sent $SENT values, kept $KEPT, cpu ${CPU}s" >&2
    done
done

# The table, with ratios to collectd and the targets.
awk -v secs="$SECS" '
function num(x) { return x != "n/a" && x != "" }
{ srv[NR] = $1; pace[NR] = $2; sent[NR] = $3; kept[NR] = $4; cpu[NR] = $5
  key = $1 "/" $2; K[key] = $4; C[key] = $5 }
END {
  printf "%-9s %7s %12s %9s %8s %15s %14s %10s\n", "server", "pace", "values sent", "Mvalues/s", "% kept", "CPU s/M values", "Mvalues/s/core", "CPU ratio"
  for (i = 1; i <= NR; i++) {
    pk = "n/a"; cm = "n/a"; pc = "n/a"; ra = "n/a"; off = "n/a"
    if (num(sent[i])) off = sprintf("%.2f", sent[i] / secs / 1e6)
    if (num(sent[i]) && num(kept[i]) && sent[i] > 0) pk = sprintf("%.2f", 100 * kept[i] / sent[i])
    if (num(kept[i]) && kept[i] > 0 && num(cpu[i])) { v = cpu[i] / (kept[i] / 1e6); cm = sprintf("%.3f", v); if (v > 0) pc = sprintf("%.2f", 1 / v) }
    ck = "collectd/" pace[i]
    if (cm != "n/a" && num(K[ck]) && K[ck] > 0 && C[ck] > 0) ra = sprintf("%.2f", cm / (C[ck] / (K[ck] / 1e6)))
    printf "%-9s %7s %12s %9s %8s %15s %14s %10s\n", srv[i], pace[i], sent[i], off, pk, cm, pc, ra
    PK[srv[i] "/" pace[i]] = pk; RA[srv[i] "/" pace[i]] = ra
    if (pace[i] != "max") paced = pace[i]
  }
  print ""
  print "targets (moonstat):"
  m = "moonstat/" paced; c = "collectd/" paced
  if (PK[c] == "100.00")
    printf "  0 loss where collectd keeps up (%s values/s: collectd 100%%): moonstat %s%% kept  %s\n", paced, PK[m], (PK[m] == "100.00" ? "PASS" : "FAIL")
  else
    printf "  0 loss where collectd keeps up: n/a, collectd kept %s%% at %s values/s (moonstat %s%%)\n", PK[c], paced, PK[m]
  printf "  CPU per value <= 1/2 of collectd, flat out:    ratio %s  %s\n", RA["moonstat/max"], (RA["moonstat/max"] != "n/a" && RA["moonstat/max"] + 0 <= 0.5 ? "PASS" : "FAIL")
  printf "  CPU per value <= 1/2 of collectd, %s/s: ratio %s  %s\n", paced, RA[m], (RA[m] != "n/a" && RA[m] + 0 <= 0.5 ? "PASS" : "FAIL")
}' "$results" > "$TOP/bench/out/results-collectd.txt"

echo
echo "collectd network ingest: moonstat $("$MS_BIN" --version 2> /dev/null | head -n 1 | cut -d' ' -f2) vs collectd $(dpkg-query -W -f='${Version}' collectd-core 2> /dev/null) network plugin (csv) vs a bare recvmmsg sink; ${SECS}s per run at the sender's maximum (one core) and at $RATE values/s, $(nproc) cores"
cat "$TOP/bench/out/results-collectd.txt"
echo "(CPU ratio = CPU per million values kept / collectd's; results in bench/out/results-collectd.txt)"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q 'FAIL$' "$TOP/bench/out/results-collectd.txt"; then
    exit 1
fi
exit 0
