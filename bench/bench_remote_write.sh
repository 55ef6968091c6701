#!/bin/sh
# bench/bench_remote_write.sh - the prometheus_remote_write Lua encoder
# beside a C reference encoder of the same protobuf (bench/rw_ref.c), and the
# snappy compression the http transport applies to each body.
#
# The batch of bench_encoders.sh: BENCH_SAMPLES (100k) samples over
# BENCH_SERIES (10k) series with 10 tags each, mixed names, a tenth counters;
# each series has BENCH_SAMPLES/BENCH_SERIES samples in the batch, which go
# into one TimeSeries. Best of BENCH_ROUNDS (30) rounds after a warm-up, Lua
# and C rounds alternating (so both see the same caches and clock), CPU
# time, samples/s per core; the table says whether Lua and C wrote the same
# bytes. Target (issue "every backend as a Lua encoder"): the Lua encoder
# >= 50% of its C reference. Writes bench/out/results-remote_write.txt.
# Knobs: BENCH_SAMPLES BENCH_SERIES BENCH_ROUNDS MS_BIN BENCH_STRICT=1.
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out
mkdir -p "$OUT"
N=${BENCH_SAMPLES:-100000}
S=${BENCH_SERIES:-10000}
R=${BENCH_ROUNDS:-30}
MS_BIN=${MS_BIN:-$TOP/moonstat}

[ -x "$MS_BIN" ] || make moonstat > /dev/null || exit 1
if ! cc -O2 -std=c11 -D_GNU_SOURCE -fPIC -shared -Iinclude -Wall -Wextra -Werror \
    -o "$OUT/rw_ref.so" bench/rw_ref.c -lm; then
    echo "bench_remote_write: cannot build bench/rw_ref.c" >&2
    exit 1
fi
line=$("$MS_BIN" --script bench/rw_bench.lua "$OUT/rw_ref.so" "$N" "$S" "$R") || exit 1

res=$OUT/results-remote_write.txt
echo "$line" | awk -v n="$N" -v s="$S" '
function row(m, a, b, r, t, ok) {
    printf "%-34s %12s %12s %7s %10s  %s\n", m, a, b, r, t, ok
}
{
    printf "remote write: batch of %d samples, %d series with 10 tags; samples/s per core (best round)\n", n, s
    printf "%-34s %12s %12s %7s %10s  %s\n", "", "Lua", "C reference", "ratio", "target", ""
    ratio = $1 / $2
    row("prometheus_remote_write encode", sprintf("%.2fM", $1 / 1e6), sprintf("%.2fM", $2 / 1e6),
        sprintf("%.2f", ratio), ">= 0.50", ratio >= 0.5 ? "pass" : "FAIL")
    row("  same bytes as C (" $3 " B)", $4 ? "yes" : "no", "-", "-", "yes", $4 == 1 ? "pass" : "FAIL")
    row("snappy of that body (C core)", "-", sprintf("%.2fM", $5 / 1e6), "-", "-",
        sprintf("%d -> %d B", $3, $6))
}' | tee "$res"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q FAIL "$res"; then exit 1; fi
exit 0
