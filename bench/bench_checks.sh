#!/bin/sh
# bench/bench_checks.sh - idle memory and the cost of Lua checks, beside collectd.
#
# Measures, in one run (about 2 minutes with the defaults):
#   1. idle RSS: moonstat with the repo's config.yaml, and collectd 5.12 with a
#      comparable minimal config (cpu, load, memory; no network; interval 10),
#      both left alone for BENCH_IDLE_SECONDS (15), then VmRSS is read.
#   2. 1000 trivial Lua checks at 1 s intervals: moonstat running
#      bench/out/checks/trivial_NNNN.lua, collectd running 1000 scripts of its
#      lua plugin with the same body. After a warm-up, the CPU time
#      (utime+stime of all threads, /proc/PID/stat) over BENCH_SECONDS (30) is
#      reported as % of one core, plus RSS and the samples per second each one
#      actually wrote out - the proof that the callbacks really ran.
# Prints a table (metric, moonstat, collectd, ratio, target, pass/fail) and
# writes it to bench/out/results-checks.txt. Logs and configs stay in bench/out/.
#
# Knobs (environment): BENCH_SECONDS=30 BENCH_WARMUP=5 BENCH_IDLE_SECONDS=15
# BENCH_CHECKS=1000 MS_BIN=./moonstat BENCH_STRICT=1 (exit 1 on a FAIL row).
# Only Debian tools are used: sh, awk, sed, /proc; collectd from collectd-core.
set -u

cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out
SECS=${BENCH_SECONDS:-30}
WARM=${BENCH_WARMUP:-5}
IDLE=${BENCH_IDLE_SECONDS:-15}
NCHECKS=${BENCH_CHECKS:-1000}
MS_BIN=${MS_BIN:-$TOP/moonstat}
CD_BIN=/usr/sbin/collectd
HZ=$(getconf CLK_TCK)

# Results; "n/a" when a run could not be made.
idle_ms=n/a idle_cd=n/a
cpu_ms=n/a cpu_cd=n/a
rss_ms=n/a rss_cd=n/a
rate_ms=n/a rate_cd=n/a
notes=""

# ---- process helpers ----------------------------------------------------

PIDS="" # everything started here, ended by the trap

cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2> /dev/null; done
    sleep 0.5
    for p in $PIDS; do kill -KILL "$p" 2> /dev/null; done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start LOG CMD...: run CMD in the background from the repo root; PID in $PID.
start() {
    log=$1
    shift
    "$@" > "$log" 2>&1 < /dev/null &
    PID=$!
    PIDS="$PIDS $PID"
}

# alive PID: true while it runs (a not yet reaped child shows state Z).
alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^[ZX]'
}

# stop PID: SIGTERM, up to 10 s, then SIGKILL.
stop() {
    kill -TERM "$1" 2> /dev/null
    n=0
    while alive "$1" && [ $n -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
        [ $((n % 10)) -eq 0 ] && kill -TERM "$1" 2> /dev/null
    done
    alive "$1" && kill -KILL "$1" 2> /dev/null
    wait "$1" 2> /dev/null
    return 0
}

# rss_mib PID: resident set size (VmRSS, all threads) in MiB.
rss_mib() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2> /dev/null
}

# cpu_ticks PID: utime + stime in clock ticks. They are fields 14 and 15 of
# /proc/PID/stat; counted after the ")" closing the command name (which may
# hold spaces) they are the 12th and 13th.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

now() { date +%s.%N; }

# count FILE REGEX: lines of FILE matching REGEX (0 when there is no file).
count() {
    if [ -f "$1" ]; then grep -c -e "$2" "$1"; else echo 0; fi
}

# tail_log NAME FILE: show why something failed.
tail_log() {
    echo "  -- $1: last lines of $2:"
    tail -n 15 "$2" 2> /dev/null | sed 's/^/     /'
}

# measure PID OUTFILE REGEX: CPU%, RSS and output rate of PID over SECS
# seconds; sets M_CPU, M_RSS, M_RATE (n/a when PID died meanwhile).
measure() {
    t0=$(now)
    c0=$(cpu_ticks "$1")
    n0=$(count "$2" "$3")
    sleep "$SECS"
    t1=$(now)
    c1=$(cpu_ticks "$1")
    n1=$(count "$2" "$3")
    M_RSS=$(rss_mib "$1")
    if ! alive "$1" || [ -z "$c1" ]; then
        M_CPU=n/a M_RSS=n/a M_RATE=n/a
        return 1
    fi
    M_CPU=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
        'BEGIN { printf "%.2f", (b - a) / hz / (t1 - t0) * 100 }')
    M_RATE=$(awk -v a="$n0" -v b="$n1" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')
    return 0
}

# ---- configs -------------------------------------------------------------

rm -rf "$OUT"
mkdir -p "$OUT/checks" "$OUT/collectd-idle" "$OUT/collectd-lua/scripts"

# collectd for the idle figure: what a minimal host agent runs.
cat > "$OUT/collectd-idle/collectd.conf" << EOF
# bench/run.sh: collectd idle, comparable to moonstat's default config
Hostname "bench"
FQDNLookup false
BaseDir "$OUT/collectd-idle"
PIDFile "$OUT/collectd-idle/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 10
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$OUT/collectd-idle/collectd.log"
</Plugin>
LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
EOF

# The 1000 trivial checks, for moonstat and for collectd's lua plugin.
# collectd's value cache drops a second value of the same identifier with the
# same time, so each collectd script dispatches under its own plugin instance.
i=1
while [ $i -le "$NCHECKS" ]; do
    n=$(printf '%04d' $i)
    echo 'return { interval = 1, collect = function() ms.gauge("bench.trivial", 1) end }' \
        > "$OUT/checks/trivial_$n.lua"
    cat > "$OUT/collectd-lua/scripts/trivial_$n.lua" << EOF
local function read()
  collectd.dispatch_values({ plugin = "bench", plugin_instance = "$n",
    type = "gauge", type_instance = "trivial", values = { 1 } })
  return 0
end
collectd.register_read(read)
EOF
    i=$((i + 1))
done

# moonstat: the checks, samples written as influx lines to a file. Relative
# paths in a config are relative to its file, so the repo's lua/ and
# forwarders/ are named by absolute path.
ms_paths="paths: { checks: [\"$OUT/checks\"], lua: [\"$TOP/lua\"], forwarders: [\"$TOP/forwarders\"] }"
cat > "$OUT/moonstat.yaml" << EOF
# bench/run.sh: $NCHECKS trivial checks every second
agent: { interval: 1s, check_jitter: 1s }
$ms_paths
forwarders: { sink: { type: file, path: "$OUT/moonstat-samples.txt", format: influx } }
EOF
# The same without a forwarder, in case the file forwarder is not there.
cat > "$OUT/moonstat-noforwarder.yaml" << EOF
# bench/run.sh: $NCHECKS trivial checks every second, no forwarder
agent: { interval: 1s, check_jitter: 1s }
$ms_paths
EOF

# collectd: the lua plugin with the same scripts; values written by the csv
# plugin to stdout (a file), the counterpart of moonstat's file forwarder.
{
    cat << EOF
# bench/run.sh: $NCHECKS lua read callbacks every second
Hostname "bench"
FQDNLookup false
BaseDir "$OUT/collectd-lua"
PIDFile "$OUT/collectd-lua/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$OUT/collectd-lua/collectd.log"
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "stdout"
</Plugin>
LoadPlugin lua
<Plugin lua>
  BasePath "$OUT/collectd-lua/scripts"
EOF
    for f in "$OUT"/collectd-lua/scripts/trivial_*.lua; do
        echo "  Script \"$(basename "$f")\""
    done
    echo "</Plugin>"
} > "$OUT/collectd-lua/collectd.conf"

have_ms=1
if [ ! -x "$MS_BIN" ]; then
    have_ms=0
    notes="$notes
  moonstat: no binary at $MS_BIN (run make)"
fi
have_cd=1
if [ ! -x "$CD_BIN" ] || [ ! -f /usr/lib/collectd/lua.so ]; then
    have_cd=0
    notes="$notes
  collectd: $CD_BIN or its lua plugin missing (run make deps)"
fi

# ---- 1. idle RSS (both at once: they sleep) -------------------------------

echo "bench: idle RSS, ${IDLE}s ..."
ms_idle_pid="" cd_idle_pid=""
if [ $have_ms -eq 1 ] && [ -f config.yaml ]; then
    start "$OUT/moonstat-idle.log" "$MS_BIN" -c config.yaml
    ms_idle_pid=$PID
elif [ $have_ms -eq 1 ]; then
    notes="$notes
  moonstat idle: no config.yaml at the repo root"
fi
if [ $have_cd -eq 1 ]; then
    start "$OUT/collectd-idle/stdout.log" "$CD_BIN" -f -C "$OUT/collectd-idle/collectd.conf"
    cd_idle_pid=$PID
fi
sleep "$IDLE"
if [ -n "$ms_idle_pid" ]; then
    if alive "$ms_idle_pid"; then
        idle_ms=$(rss_mib "$ms_idle_pid")
    else
        tail_log "moonstat (idle) exited early" "$OUT/moonstat-idle.log"
    fi
    stop "$ms_idle_pid"
fi
if [ -n "$cd_idle_pid" ]; then
    if alive "$cd_idle_pid"; then
        idle_cd=$(rss_mib "$cd_idle_pid")
    else
        tail_log "collectd (idle) exited early" "$OUT/collectd-idle/collectd.log"
    fi
    stop "$cd_idle_pid"
fi

# ---- 2a. moonstat: 1000 checks ------------------------------------------

if [ $have_ms -eq 1 ]; then
    echo "bench: moonstat, $NCHECKS checks: ${WARM}s warm-up, ${SECS}s measured ..."
    start "$OUT/moonstat-checks.log" "$MS_BIN" -c "$OUT/moonstat.yaml"
    pid=$PID
    sleep "$WARM"
    if ! alive "$pid"; then
        # Perhaps the file forwarder is not there yet: try without one.
        tail_log "moonstat exited with the file forwarder; retrying without" "$OUT/moonstat-checks.log"
        notes="$notes
  moonstat checks: ran without a forwarder (samples/s not measured)"
        start "$OUT/moonstat-checks-nofw.log" "$MS_BIN" -c "$OUT/moonstat-noforwarder.yaml"
        pid=$PID
        sleep "$WARM"
    fi
    if alive "$pid" && measure "$pid" "$OUT/moonstat-samples.txt" 'bench.trivial'; then
        cpu_ms=$M_CPU rss_ms=$M_RSS rate_ms=$M_RATE
        [ -f "$OUT/moonstat-samples.txt" ] || rate_ms=n/a
    else
        tail_log "moonstat (checks) did not run" "$(ls -t "$OUT"/moonstat-checks*.log | head -n 1)"
    fi
    stop "$pid"
fi

# ---- 2b. collectd: 1000 lua read callbacks --------------------------------

if [ $have_cd -eq 1 ]; then
    echo "bench: collectd, $NCHECKS lua scripts: start-up, ${WARM}s warm-up, ${SECS}s measured ..."
    cd_out=$OUT/collectd-lua/values.txt
    start "$cd_out" "$CD_BIN" -f -C "$OUT/collectd-lua/collectd.conf"
    pid=$PID
    # Loading 1000 scripts takes a while: wait for the read loop (60 s max).
    n=0
    while alive "$pid" && [ $n -lt 600 ] &&
        ! grep -q 'entering read-loop' "$OUT/collectd-lua/collectd.log" 2> /dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    sleep "$WARM"
    if alive "$pid" && measure "$pid" "$cd_out" 'gauge-trivial'; then
        cpu_cd=$M_CPU rss_cd=$M_RSS rate_cd=$M_RATE
    else
        tail_log "collectd (lua) did not run" "$OUT/collectd-lua/collectd.log"
    fi
    stop "$pid"
    errs=$(grep -ciE 'error|fail' "$OUT/collectd-lua/collectd.log")
    loaded=$(grep -c 'loaded successfully' "$OUT/collectd-lua/collectd.log")
    notes="$notes
  collectd lua: $loaded scripts loaded, $errs error lines in its log"
fi

# ---- table ----------------------------------------------------------------

# row METRIC MOONSTAT COLLECTD TARGET_OP TARGET: one table line; pass/fail
# judges the moonstat figure against the target (op: le or ge).
row() {
    awk -v m="$1" -v a="$2" -v b="$3" -v op="$4" -v t="$5" 'BEGIN {
        num = "^[0-9]+([.][0-9]+)?$"
        ratio = (a ~ num && b ~ num && b + 0 > 0) ? sprintf("%.3f", a / b) : "n/a"
        if (op == "-") { target = "-"; verdict = "-" }
        else {
            target = (op == "le" ? "<= " : ">= ") t
            if (a !~ num) verdict = "n/a"
            else if (op == "le") verdict = (a + 0 <= t + 0) ? "PASS" : "FAIL"
            else verdict = (a + 0 >= t + 0) ? "PASS" : "FAIL"
        }
        printf "%-38s %10s %10s %10s %10s %6s\n", m, a, b, ratio, target, verdict
    }'
}

# A CPU figure only counts when the samples really came out: without that
# the checks may not have run at all, and the row says "unverif".
min_rate=$((NCHECKS * 9 / 10))
cpu_row=$(row "$NCHECKS checks @1s: CPU (% of one core)" "$cpu_ms" "$cpu_cd" le 5)
case $rate_ms in
'' | n/a | *[!0-9]*) cpu_ok=0 ;;
*) if [ "$rate_ms" -ge "$min_rate" ]; then cpu_ok=1; else cpu_ok=0; fi ;;
esac
if [ $cpu_ok -eq 0 ] && [ "$cpu_ms" != n/a ]; then
    cpu_row=$(printf '%s\n' "$cpu_row" | sed 's/ \(PASS\|FAIL\)$/unverif/')
    notes="$notes
  moonstat CPU: not verified, its samples/s did not reach $min_rate"
fi
{
    printf "%-38s %10s %10s %10s %10s %6s\n" metric moonstat collectd ratio target result
    row "idle RSS, default config (MiB)" "$idle_ms" "$idle_cd" le 8
    printf '%s\n' "$cpu_row"
    row "$NCHECKS checks @1s: RSS (MiB)" "$rss_ms" "$rss_cd" - -
    row "$NCHECKS checks @1s: samples/s written" "$rate_ms" "$rate_cd" ge "$min_rate"
} > "$OUT/results-checks.txt"

echo
echo "moonstat $("$MS_BIN" --version 2> /dev/null | head -n 1) vs collectd $(dpkg-query -W -f='${Version}' collectd-core 2> /dev/null); ${SECS}s measured, $(nproc) cores"
cat "$OUT/results-checks.txt"
[ -n "$notes" ] && printf 'notes:%s\n' "$notes"
echo "(ratio = moonstat / collectd; results in bench/out/results-checks.txt)"

if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q ' FAIL$' "$OUT/results-checks.txt"; then
    exit 1
fi
exit 0
