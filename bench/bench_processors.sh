#!/bin/sh
# bench/bench_processors.sh - the cost of Lua processors, beside the same
# chain in C.
#
# The chain rename (glob cpu.* -> system.cpu.*) + filter (exclude *.idle) +
# drop_stale (2m ahead, 5m behind) over a batch of BENCH_SAMPLES (1M) samples
# of BENCH_SERIES (1000) series, a tenth of them stale, a tenth idle:
#   - Lua: the built-ins in lua/processors/ run by moonstat's processor loop
#     (bench/proc_chain.lua under `moonstat --script`, the JIT on);
#   - C: bench/proc_chain.c, the same decisions cached per series id in
#     arrays, compiled here with -O2 against the moonstat objects in build/.
# Each runs BENCH_ROUNDS (20) rounds after a warm-up round and reports its
# best round in ns per sample. Prints a table (metric, moonstat, C, ratio,
# target, pass/fail) and writes it to bench/out/results-processors.txt.
# Knobs: BENCH_SAMPLES BENCH_SERIES BENCH_ROUNDS MS_BIN BENCH_STRICT=1 (exit 1 on FAIL).
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out
mkdir -p "$OUT"
N=${BENCH_SAMPLES:-1000000}
S=${BENCH_SERIES:-1000}
R=${BENCH_ROUNDS:-20}
MS_BIN=${MS_BIN:-$TOP/moonstat}
PKGS="luajit libuv libcurl yaml-0.1"

[ -x "$MS_BIN" ] || make moonstat > /dev/null || exit 1
objs=$(ls build/*.o | grep -v '/main\.o$')
# shellcheck disable=SC2046,SC2086
if ! cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags $PKGS) -o "$OUT/proc_chain" \
    bench/proc_chain.c $objs $(pkg-config --libs $PKGS) -lm -lpthread -Wl,-E; then
    echo "bench_processors: cannot build bench/proc_chain.c" >&2
    exit 1
fi
lua_out=$("$MS_BIN" --script bench/proc_chain.lua "$N" "$S" "$R") || exit 1
c_out=$("$OUT/proc_chain" "$N" "$S" "$R") || exit 1
lua_ns=${lua_out% *}
lua_kept=${lua_out#* }
c_ns=${c_out% *}
c_kept=${c_out#* }

res=$OUT/results-processors.txt
awk -v l="$lua_ns" -v c="$c_ns" -v lk="$lua_kept" -v ck="$c_kept" -v n="$N" -v s="$S" '
function row(m, a, b, r, t, ok) {
    printf "%-34s %10s %10s %7s %10s  %s\n", m, a, b, r, t, ok ? "pass" : "FAIL"
}
BEGIN {
    printf "processors: rename + filter + drop_stale, %d samples, %d series\n", n, s
    printf "%-34s %10s %10s %7s %10s  %s\n", "metric", "moonstat", "C chain", "ratio", "target", ""
    ratio = l / c
    row("ns per sample (best round)", sprintf("%.2f", l), sprintf("%.2f", c),
        sprintf("%.2fx", ratio), "<= 2x", ratio <= 2)
    row("ns per sample, absolute", sprintf("%.2f", l), "-", "-", "<= 30", l <= 30)
    row("samples kept (same result)", lk, ck, "-", "equal", lk == ck)
}' | tee "$res"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q 'FAIL$' "$res"; then exit 1; fi
exit 0
