#!/bin/sh
# Runs each libFuzzer harness (build-fuzz/fuzz_*, from `make fuzz-build`) over
# its seed corpus in fuzz/corpus/<name> plus FUZZ_RUNS (20000) mutations.
# A crash, leak or sanitizer report fails the harness's line.
cd "$(dirname "$0")/../.." || exit 1 # the repo root
runs=${FUZZ_RUNS:-20000}
n=0
fail=0
for f in fuzz/fuzz_*.c; do
    name=$(basename "$f" .c)
    bin=build-fuzz/$name
    corpus=fuzz/corpus/${name#fuzz_}
    n=$((n + 1))
    if [ ! -x "$bin" ]; then
        echo "not ok $n - $name: $bin not built (make fuzz-build)"
        fail=1
        continue
    fi
    work=tests/tmp/fuzz-${name#fuzz_}
    rm -rf "$work"
    mkdir -p "$work"
    if "$bin" -runs="$runs" -seed=1 -artifact_prefix="$work/" "$work" "$corpus" > "$work/log" 2>&1; then
        echo "ok $n - $name: corpus + $runs mutations, no crash or leak"
    else
        echo "not ok $n - $name: see $work/log"
        tail -n 20 "$work/log" | sed 's/^/#   /'
        fail=1
    fi
done
echo "1..$n"
exit $fail
