#!/bin/sh
# bench/bench_encoders.sh - each Lua encoder of forwarders/ beside a C
# reference encoder for the same format, written for the benchmark only:
# bench/enc_ref.c (influxdb, graphite, graphite_pickle, opentsdb, kairosdb),
# bench/kafka_ref.c (kafka json and influx), bench/dd_ref.c (datadog v1),
# bench/rw_ref.c (prometheus_remote_write), sharing bench/ref.h.
#
# One batch of BENCH_SAMPLES (100k) samples over BENCH_SERIES (10k) series,
# 10 tags each, mixed names, a tenth counters and the rest gauges with
# fractions (bench/enc_bench.lua builds it). Each encoder runs BENCH_ROUNDS
# (20) rounds after a warm-up that fills its per-series caches, Lua and C
# rounds alternating; the best round's CPU time gives samples/s per core.
# Lua and C encode the same batch in the same process, and the table says
# whether they wrote the same bytes (a C reference that wrote something else
# would prove nothing). A last row times the snappy compression of the
# remote write body (the C core's ms_compress).
# Targets (issue "every backend as a Lua encoder"): every Lua encoder >= 50%
# of its C reference; InfluxDB line protocol >= 5M samples/s per core.
# Writes bench/out/results-encoders.txt. Knobs: BENCH_SAMPLES BENCH_SERIES
# BENCH_ROUNDS BENCH_ENCODERS (names, space-separated) MS_BIN BENCH_STRICT=1
# (exit 1 on FAIL).
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out
mkdir -p "$OUT"
N=${BENCH_SAMPLES:-100000}
S=${BENCH_SERIES:-10000}
R=${BENCH_ROUNDS:-20}
MS_BIN=${MS_BIN:-$TOP/moonstat}

[ -x "$MS_BIN" ] || make moonstat > /dev/null || exit 1
if ! cc -O2 -std=c11 -D_GNU_SOURCE -fPIC -shared -Iinclude -Ibench -Wall -Wextra -Werror \
    -o "$OUT/enc_ref.so" bench/enc_ref.c bench/kafka_ref.c bench/dd_ref.c bench/rw_ref.c -lm; then
    echo "bench_encoders: cannot build the C reference encoders" >&2
    exit 1
fi
# shellcheck disable=SC2086
lines=$("$MS_BIN" --script bench/enc_bench.lua "$OUT/enc_ref.so" "$N" "$S" "$R" ${BENCH_ENCODERS:-}) || exit 1

res=$OUT/results-encoders.txt
echo "$lines" | awk -v n="$N" -v s="$S" '
function row(m, a, b, r, t, ok) {
    printf "%-30s %12s %12s %7s %10s  %s\n", m, a, b, r, t, ok ? "pass" : "FAIL"
}
BEGIN {
    printf "encoders: batch of %d samples, %d series with 10 tags; samples/s per core (best round)\n", n, s
    printf "%-30s %12s %12s %7s %10s  %s\n", "encoder", "Lua", "C reference", "ratio", "target", ""
}
$1 == "snappy" {
    row("snappy of the remote write body", "-", sprintf("%.2fM", $2 / 1e6), "-", "-", 1)
    printf "  (%d -> %d bytes, compressed by the C core)\n", $3, $4
    next
}
{
    ratio = $2 / $3
    row($1, sprintf("%.2fM", $2 / 1e6), sprintf("%.2fM", $3 / 1e6), sprintf("%.2f", ratio),
        ">= 0.50", ratio >= 0.5)
    row("  same bytes as C (" $4 " B)", $5 ? "yes" : "no", "-", "-", "yes", $5 == 1)
    if ($1 == "influxdb")
        row("  influxdb absolute", sprintf("%.2fM", $2 / 1e6), "-", "-", ">= 5M", $2 >= 5e6)
}' | tee "$res"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q 'FAIL$' "$res"; then exit 1; fi
exit 0
