#!/bin/sh
# bench/bench_exec.sh - the exec bridge's spawning cost, beside the floor.
#
# The floor: a dash loop that runs `/bin/sh -c 'echo bench.n 1'` back to
# back, BENCH_FLOOR_RUNS (3000) times - what spawning one trivial shell
# process costs with nothing else around it. Its runs per second and its CPU
# per run (the loop shell plus its children, from dash's `times`).
#
# moonstat: BENCH_SCRIPTS (20) copies of the same trivial script
# (`#!/bin/sh` + `echo bench.n 1`) scheduled every 2 ms, so runs start as
# fast as moonstat can spawn and reap them (an overlapping run is skipped).
# After BENCH_WARMUP (2) s, over BENCH_SECONDS (10) s: runs per second
# (lines that reached the file forwarder), and CPU per run: moonstat's own
# (utime+stime) plus its reaped children's (cutime+cstime), from
# /proc/PID/stat; moonstat's own share is shown separately.
#
# Prints a table with ratios to the floor and writes it to
# bench/out/results-exec.txt. About 30 s. Knobs: BENCH_SECONDS, BENCH_WARMUP,
# BENCH_SCRIPTS, BENCH_FLOOR_RUNS, BENCH_INTERVAL (2ms), MS_BIN. The machine should
# be otherwise idle: the figures are wall-clock and CPU times.
set -u

cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out/exec
SECS=${BENCH_SECONDS:-10}
WARM=${BENCH_WARMUP:-2}
NSCRIPTS=${BENCH_SCRIPTS:-20}
FLOOR_RUNS=${BENCH_FLOOR_RUNS:-3000}
MS_BIN=${MS_BIN:-$TOP/moonstat}
HZ=$(getconf CLK_TCK)
rm -rf "$OUT"
mkdir -p "$OUT/scripts"
chmod 755 "$OUT" "$OUT/scripts"

PID=""
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2> /dev/null
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the floor: /bin/sh -c in a loop ----------------------------------
# dash's `times` prints two lines: the shell's user/sys, then its children's,
# as e.g. "0m0.010000s 0m0.020000s".
sh -c '
s=$(date +%s%N)
i=0
while [ $i -lt '"$FLOOR_RUNS"' ]; do /bin/sh -c "echo bench.n 1" > /dev/null; i=$((i + 1)); done
e=$(date +%s%N)
echo "wall $(( (e - s) / 1000 ))"
times' > "$OUT/floor.txt"
# seconds from "XmY.Zs"
secs() { echo "$1" | awk -F'[ms]' '{ print $1 * 60 + $2 }'; }
floor_wall_us=$(awk '/^wall/ { print $2 }' "$OUT/floor.txt")
floor_cpu=$(sed -n '2,3p' "$OUT/floor.txt" | tr '\n' ' ' | awk '{
    t = 0; for (i = 1; i <= NF; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print t }')
floor_rps=$(awk -v n="$FLOOR_RUNS" -v us="$floor_wall_us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
floor_cpu_run=$(awk -v c="$floor_cpu" -v n="$FLOOR_RUNS" 'BEGIN { printf "%.1f", c / n * 1e6 }')

# ---- moonstat -------------------------------------------------------------
i=0
while [ $i -lt "$NSCRIPTS" ]; do
    printf '#!/bin/sh\necho "bench.n 1"\n' > "$OUT/scripts/t$i"
    chmod 755 "$OUT/scripts/t$i"
    i=$((i + 1))
done
cat > "$OUT/moonstat.yaml" << EOF
agent: { stats_interval: 60s, log_level: warn }
paths: { checks: [], scripts: [scripts], lua: [$TOP/lua], forwarders: [$TOP/forwarders] }
scripts: { interval: ${BENCH_INTERVAL:-2ms}, jitter: 0s, timeout: 5s }
forwarders:
  out: { type: file, path: "$OUT/out.lp", format: influx }
EOF
"$MS_BIN" -c "$OUT/moonstat.yaml" > "$OUT/moonstat.log" 2>&1 < /dev/null &
PID=$!
sleep "$WARM"
# cpu: utime stime cutime cstime (fields 14-17 of /proc/PID/stat)
cpu() { sed 's/.*) //' "/proc/$PID/stat" | awk '{ print $12, $13, $14, $15 }'; }
lines() { grep -c '^bench\.n,' "$OUT/out.lp" 2> /dev/null || echo 0; }
c0=$(cpu)
l0=$(lines)
t0=$(date +%s%N)
sleep "$SECS"
c1=$(cpu)
t1=$(date +%s%N)
sleep 0.5 # the last flush
l1=$(lines)
kill -TERM "$PID"
wait "$PID"
PID=""
runs=$((l1 - l0))
ms_rps=$(awk -v r="$runs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", r / ((b - a) / 1e9) }')
set -- $c0 $c1
own_ticks=$(($5 + $6 - $1 - $2))
kid_ticks=$(($7 + $8 - $3 - $4))
ms_cpu_run=$(awk -v o="$own_ticks" -v k="$kid_ticks" -v r="$runs" -v hz="$HZ" \
    'BEGIN { printf "%.1f", r ? (o + k) / hz / r * 1e6 : 0 }')
ms_own_run=$(awk -v o="$own_ticks" -v r="$runs" -v hz="$HZ" \
    'BEGIN { printf "%.1f", r ? o / hz / r * 1e6 : 0 }')
skipped=$(grep -c 'run skipped' "$OUT/moonstat.log")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
{
    echo "exec bridge: $NSCRIPTS trivial scripts every 2 ms for ${SECS}s vs /bin/sh -c in a loop ($FLOOR_RUNS runs)"
    printf '%-34s %12s %12s %8s\n' metric moonstat "sh -c loop" ratio
    printf '%-34s %12s %12s %8s\n' "runs per second" "$ms_rps" "$floor_rps" "$(ratio "$ms_rps" "$floor_rps")"
    printf '%-34s %12s %12s %8s\n' "CPU per run, us (incl. children)" "$ms_cpu_run" "$floor_cpu_run" "$(ratio "$ms_cpu_run" "$floor_cpu_run")"
    printf '%-34s %12s %12s %8s\n' "moonstat's own CPU per run, us" "$ms_own_run" "-" "$(ratio "$ms_own_run" "$floor_cpu_run")"
    echo "runs measured: $runs; CPU ticks: moonstat $own_ticks, children $kid_ticks (HZ $HZ)"
} | tee "$TOP/bench/out/results-exec.txt"
[ "$runs" -gt 0 ]
