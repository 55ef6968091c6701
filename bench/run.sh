#!/bin/sh
# bench/run.sh - `make bench`: runs every bench/bench_*.sh in turn. Each
# prints its own table of figures beside the peers its issue names (as
# ratios) and writes it to bench/out/results-<name>.txt; this script then
# prints all the tables together. BENCH_ONLY=pattern runs a subset.
cd "$(dirname "$0")/.." || exit 1
mkdir -p bench/out
rc=0
for b in bench/bench_*.sh; do
    name=$(basename "$b" .sh)
    name=${name#bench_}
    case $name in *${BENCH_ONLY:-}*) ;; *) continue ;; esac
    echo "=== bench: $name"
    sh "$b" || rc=1
done
echo
echo "=== all results"
for r in bench/out/results-*.txt; do
    [ -f "$r" ] && { echo "--- $r"; cat "$r"; }
done
exit $rc
