#!/bin/sh
# The address of the socket transports (tcp and udp, src/resolve.c) when
# its name does not resolve: each says so with the name, retries on its
# schedule, and moonstat still stops cleanly on SIGTERM once
# shutdown_timeout is over (a resolve pending on the thread pool is
# cancelled). An address without a
# port is a config error naming its line and column.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/one.lua" << 'LUA'
return { interval = 0.2, collect = function() ms.gauge("one", 1) end }
LUA
cat > "$MS_TMP/config.yaml" << YAML
agent: { shutdown_timeout: 1s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  t: { type: graphite, address: "no-such-host.invalid:2003", retry: { base: 200ms, cap: 200ms } }
  u: { type: graphite, protocol: udp, address: "no-such-host.invalid:2003", retry: { base: 300ms, cap: 300ms } }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "tcp: the name that does not resolve is logged, with a retry" \
    ms_wait_log 'forwarder t: resolve no-such-host\.invalid:2003: .*\(retry in 0\.[0-9]s\)' 10
t_ok "tcp: and resolved again after the backoff" \
    _ms_poll 10 sh -c "[ \$(grep -c 'forwarder t: resolve no-such-host' '$MS_LOG') -ge 2 ]"
t_ok "udp: the name that does not resolve is logged, with a retry after its retry policy" \
    ms_wait_log 'forwarder u: resolve no-such-host\.invalid:2003: .*\(retry in 0\.[0-9]s\)' 10
t_ok "udp: and resolved again after the backoff" \
    _ms_poll 10 sh -c "[ \$(grep -c 'forwarder u: resolve no-such-host' '$MS_LOG') -ge 2 ]"
start=$(date +%s)
ms_stop 10
t_eq "clean exit on SIGTERM while resolving" "$?" 0
t_ok "... within shutdown_timeout (1 s) and a little" test $(($(date +%s) - start)) -le 4

cat > "$MS_TMP/bad.yaml" << YAML
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  nop: { type: graphite, protocol: udp, address: "graphite.example.com" }
YAML
out=$(cd "$MS_TOP" && timeout 10 "$MS_BIN" -c "$MS_TMP/bad.yaml" 2>&1)
t_match "udp: an address without a port is a config error with line:col" "$out" \
    "bad\\.yaml:3:50: forwarders\\.nop\\.address: expected an address, got 'graphite\\.example\\.com'"
t_done
