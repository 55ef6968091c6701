#!/bin/sh
# tools/deps.sh - install the Debian packages moonstat needs that are missing.
#
# Called by `make deps` (which `make run`, `make test` and `make bench` depend on).
#
#   tools/deps.sh          build packages + test/bench peers (the default)
#   tools/deps.sh build    only what building and running moonstat needs
#
# Only missing packages are installed: each is checked with dpkg-query first,
# and `apt-get update` runs only when something is missing. With nothing
# missing the script prints nothing and exits 0.
#
# Installing the peers (graphite-carbon, prometheus, collectd-core, influxdb) must not
# start their system services: the tests start their own copies on loopback
# ports. While apt-get runs, a /usr/sbin/policy-rc.d that exits 101 ("action
# forbidden") tells invoke-rc.d not to start anything; it is removed afterwards,
# but only if this script created it.
set -eu

# What building and running moonstat needs.
# lua-cjson: ms.json in checks, loaded at run time from /usr/lib/<arch>/lua/5.1.
# zlib1g-dev, libsnappy-dev: gzip and snappy HTTP bodies (src/compress.c; libsnappy is dlopen()ed).
BUILD_PKGS="gcc make pkg-config libluajit-5.1-dev luajit libuv1-dev libcurl4-openssl-dev libyaml-dev libssl-dev lua-cjson librdkafka-dev zlib1g-dev libsnappy-dev"
# The real peers the integration tests and the benchmark run, and test tools.
# collectd-core ships the lua plugin (/usr/lib/collectd/lua.so) used by bench/,
# but only recommends the Lua 5.3 library that plugin links: liblua5.3-0.
# libclang-rt-14-dev holds the sanitizer/fuzzer runtimes clang needs.
# monitoring-plugins-basic: the Nagios plugins (check_load, check_disk) the
# exec bridge tests run.
# nginx-light, redis-server: peers of the service checks, openssl makes their test
# certificates (tests/integration/test_net.sh).
# nodejs (with npm) runs the npm packages of tests/node (see npm_deps below).
# influxdb: the InfluxDB 1.x server of tests/integration/test_influxdb.sh.
# wrk: the HTTP client bench/bench_http_checks.sh compares the HTTP checks with.
TEST_PKGS="graphite-carbon python3-whisper prometheus collectd-core liblua5.3-0 curl procps clang clang-format libclang-rt-14-dev nodejs monitoring-plugins-basic nginx-light redis-server openssl influxdb wrk"

case "${1:-all}" in
build) want=$BUILD_PKGS ;;
all | test) want="$BUILD_PKGS $TEST_PKGS" ;;
*)
    echo "usage: $0 [build|all]" >&2
    exit 2
    ;;
esac

# The npm packages the tests and the benchmark run (Etsy statsd 0.9, the
# StatsD oracle, and the hot-shots DogStatsD client), pinned by
# tests/node/package-lock.json, installed into tests/node/node_modules when
# missing. Install scripts are not run: neither needs its optional native parts.
npm_deps() {
    [ "$want" = "$BUILD_PKGS" ] && return 0
    nd=$(cd "$(dirname "$0")/../tests/node" && pwd)
    if grep -q '"version": "0.9.0"' "$nd/node_modules/statsd/package.json" 2> /dev/null &&
        [ -f "$nd/node_modules/hot-shots/package.json" ]; then
        return 0
    fi
    if ! command -v npm > /dev/null 2>&1; then
        echo "deps: npm is missing (Debian: apt-get install npm; it comes with NodeSource's nodejs)" >&2
        exit 1
    fi
    echo "deps: npm ci in tests/node"
    (cd "$nd" && npm ci --no-audit --no-fund --ignore-scripts > /tmp/moonstat-npm.$$.log 2>&1) || {
        tail -n 30 /tmp/moonstat-npm.$$.log >&2
        rm -f /tmp/moonstat-npm.$$.log
        echo "deps: npm ci failed" >&2
        exit 1
    }
    rm -f /tmp/moonstat-npm.$$.log
}

# A package counts as present when dpkg says "install ok installed".
missing=""
for p in $want; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
    npm_deps
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "moonstat: missing Debian packages:$missing" >&2
    echo "install them as root: apt-get install --no-install-recommends$missing" >&2
    exit 1
fi

echo "deps: installing:$missing"

# Keep services from starting during the install (see the header).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from moonstat tools/deps.sh: start no services\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
    return 0
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # $missing is a word list on purpose
apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    $missing > /tmp/moonstat-deps.$$.log 2>&1 || {
    tail -n 30 /tmp/moonstat-deps.$$.log >&2
    rm -f /tmp/moonstat-deps.$$.log
    echo "deps: apt-get install failed" >&2
    exit 1
}
rm -f /tmp/moonstat-deps.$$.log

# Check that everything asked for is now really there.
still=""
for p in $missing; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || still="$still $p"
done
if [ -n "$still" ]; then
    echo "deps: still missing after install:$still" >&2
    exit 1
fi
npm_deps
echo "deps: done"
