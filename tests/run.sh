#!/bin/sh
# Runs every test and prints one closing line "N passed, N failed".
#
# Each test is a program or script that prints TAP lines ("ok ..." /
# "not ok ..."). A program that exits non-zero without printing a failure
# counts as one failure, so a crash is never silent.
#   - build/tests/test_*         C unit tests
#   - tests/lua/*.lua            Lua tests, run by ./moonstat --script
#   - tests/integration/*.sh     integration tests that start ./moonstat and real peers
#   - tests/once/*.sh            tests that do not depend on the build, run once:
#                                the libFuzzer harnesses, the peers harness
# The unit and integration tests run twice: with ./moonstat and with the
# ASan+UBSan build in build-asan/ (when it exists).
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
mkdir -p tests/tmp
log=tests/tmp/run.log
: > "$log"
pass=0
fail=0
failed_names=""

run_one() { # name, command...
    name=$1
    shift
    out=tests/tmp/out.$$
    "$@" > "$out" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$out")
    f=$(grep -c '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $name exited with status $rc" >> "$out"
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    { echo "### $name (rc=$rc)"; cat "$out"; } >> "$log"
    if [ "$f" -gt 0 ]; then
        failed_names="$failed_names $name"
        echo "FAIL $name: $p passed, $f failed"
        grep -e '^not ok' "$out" | head -20
        tail -n 15 "$out" | grep -v '^ok ' | sed 's/^/    /'
    else
        echo "PASS $name: $p passed"
    fi
    rm -f "$out"
}

suite() { # bin-dir label
    bdir=$1
    label=$2
    export MS_BIN="$top/$bdir/moonstat"
    [ "$bdir" = "." ] && export MS_BIN="$top/moonstat"
    tdir=build/tests
    [ "$bdir" != "." ] && tdir=$bdir/tests
    for t in "$tdir"/test_*; do
        [ -x "$t" ] || continue
        run_one "$label$(basename "$t")" "$t"
    done
    for t in tests/lua/test_*.lua; do
        [ -f "$t" ] || continue
        run_one "$label$(basename "$t")" "$MS_BIN" --script "$t"
    done
    for t in tests/integration/test_*.sh; do
        [ -f "$t" ] || continue
        run_one "$label$(basename "$t")" sh "$t"
    done
}

if [ -n "${MS_ONLY:-}" ]; then
    # MS_ONLY=pattern: run only matching tests (development aid).
    for t in build/tests/test_*$MS_ONLY* tests/lua/test_*$MS_ONLY*.lua tests/integration/test_*$MS_ONLY*.sh tests/once/test_*$MS_ONLY*.sh; do
        [ -e "$t" ] || continue
        export MS_BIN="$top/moonstat"
        case $t in
        *.lua) run_one "$(basename "$t")" ./moonstat --script "$t" ;;
        *.sh) run_one "$(basename "$t")" sh "$t" ;;
        *) run_one "$(basename "$t")" "$t" ;;
        esac
    done
else
    suite . ""
    for t in tests/once/test_*.sh; do
        [ -f "$t" ] && run_one "$(basename "$t")" sh "$t"
    done
    if [ -x build-asan/moonstat ]; then
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        export LSAN_OPTIONS=suppressions=$top/tests/lsan.supp
        suite build-asan "asan:"
    fi
fi
echo "full output: tests/tmp/run.log"
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
