#!/bin/sh
# bench/bench_datadog.sh - forwarders/datadog.lua (Datadog /api/v1/series
# JSON) beside a C reference encoder for the same bytes (bench/dd_ref.c).
#
# One batch of BENCH_SAMPLES (100k) samples over BENCH_SERIES (10k) series,
# 10 tags each, mixed names, a tenth counters (sent as counts of their
# increase, with an interval) and the rest gauges with fractions
# (bench/dd_bench.lua builds it). Each encoder runs BENCH_ROUNDS (10) rounds
# after a warm-up that fills its per-series caches and counter bases; the best
# round's CPU time gives samples/s per core. Both encode the same batch in the
# same process, and the table says whether they wrote the same bytes.
# Target (issue "every backend as a Lua encoder"): the Lua encoder >= 50% of
# its C reference. Writes bench/out/results-datadog.txt. Knobs: BENCH_SAMPLES
# BENCH_SERIES BENCH_ROUNDS MS_BIN BENCH_STRICT=1 (exit 1 on FAIL).
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out
mkdir -p "$OUT"
N=${BENCH_SAMPLES:-100000}
S=${BENCH_SERIES:-10000}
R=${BENCH_ROUNDS:-10}
MS_BIN=${MS_BIN:-$TOP/moonstat}

[ -x "$MS_BIN" ] || make moonstat > /dev/null || exit 1
if ! cc -O2 -std=c11 -D_GNU_SOURCE -fPIC -shared -Iinclude -Wall -Wextra -Werror \
    -o "$OUT/dd_ref.so" bench/dd_ref.c -lm; then
    echo "bench_datadog: cannot build bench/dd_ref.c" >&2
    exit 1
fi
line=$("$MS_BIN" --script bench/dd_bench.lua "$OUT/dd_ref.so" "$N" "$S" "$R") || exit 1

res=$OUT/results-datadog.txt
echo "$line" | awk -v n="$N" -v s="$S" '
function row(m, a, b, r, t, ok) {
    printf "%-30s %12s %12s %7s %10s  %s\n", m, a, b, r, t, ok ? "pass" : "FAIL"
}
BEGIN {
    printf "datadog: batch of %d samples, %d series with 10 tags; samples/s per core (best round)\n", n, s
    printf "%-30s %12s %12s %7s %10s  %s\n", "encoder", "Lua", "C reference", "ratio", "target", ""
}
{
    ratio = $2 / $3
    row($1 " (v1 series)", sprintf("%.2fM", $2 / 1e6), sprintf("%.2fM", $3 / 1e6),
        sprintf("%.2f", ratio), ">= 0.50", ratio >= 0.5)
    row("  same bytes as C (" $4 " B)", $5 ? "yes" : "no", "-", "-", "yes", $5 == 1)
}' | tee "$res"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q 'FAIL$' "$res"; then exit 1; fi
exit 0
