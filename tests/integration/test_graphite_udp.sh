#!/bin/sh
# Graphite plaintext over UDP (forwarders/graphite.lua with protocol: udp,
# src/transport_udp.c) into the real carbon-cache's UDP line receiver
# (ENABLE_UDP_LISTENER): 60 series per run arrive with their exact values
# though each batch needs many datagrams of at most max_datagram bytes. A
# UDP sink beside it records the datagrams themselves: none is larger than
# max_datagram except one holding a single line longer than that, every one
# ends at a newline (lines are never split), and no line is lost or repeated.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/many.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  for i = 1, 60 do ms.gauge("udp.series" .. i, i * 1.5, { role = "db" }) end
  ms.gauge("udp.runs", n)
  ms.gauge("udp." .. string.rep("long", 60), 7)
end }
LUA
SINK=$(free_port udp)
CARBON_UDP_PORT=$(free_port udp)
export CARBON_UDP_PORT
t_ok "carbon-cache starts with its UDP listener" carbon_start
cat > "$MS_TMP/config.yaml" << EOF
agent: { hostname: "web1.example.com" }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  carbon: { type: graphite, protocol: udp, address: "127.0.0.1:$CARBON_UDP_PORT", prefix: u,
            max_datagram: 512 }
  sink: { type: graphite, protocol: udp, address: "127.0.0.1:$SINK", tag_mode: none,
          max_datagram: 200 }
EOF
ms_bg "$MS_TMP/sink.log" "$MS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        d = s.recv(70000)
        out.write(b"%d %s\n" % (len(d), d.hex().encode()))' "$SINK" "$MS_TMP/datagrams.txt"
cat > "$MS_TMP/bad.yaml" << EOF
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders: { x: { type: graphite, protocol: sctp } }
EOF
t_match "protocol other than tcp or udp: a config error with its line" \
    "$("$MS_BIN" --config-test -c "$MS_TMP/bad.yaml" 2>&1)" "bad\.yaml:2:.*protocol: 'sctp' is not one of: tcp, udp"
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "udp transport resolves the address" ms_wait_log "forwarder carbon: sending datagrams to 127\.0\.0\.1:$CARBON_UDP_PORT" 10
t_ok "carbon stored a value sent by UDP" carbon_wait u.web1_example_com.db.udp.series60 '^90$' 30
all_exact() {
    for i in 1 7 33 59; do
        carbon_fetch "u.web1_example_com.db.udp.series$i" | grep -qx "$(awk "BEGIN { v = $i * 1.5; print v }")" || return 1
    done
}
t_ok "every series arrives with its exact value" _ms_poll 20 all_exact
t_ok "a line longer than max_datagram arrives too" carbon_wait "u.web1_example_com.udp.$(printf 'long%.0s' $(seq 60))" '^7$' 20
sleep 1 # a few more runs for the sink
ms_stop
t_eq "clean exit" "$?" 0
sleep 0.5
check_datagrams() {
    "$MS_PY" - "$MS_TMP/datagrams.txt" << 'EOF'
import collections, sys
sizes, lines, bad = [], collections.Counter(), []
for rec in open(sys.argv[1]):
    n, hexd = rec.split()
    d = bytes.fromhex(hexd)
    sizes.append(len(d))
    if not d.endswith(b"\n"):
        bad.append("datagram does not end at a newline: %r" % d[-40:])
    body = d.decode().splitlines()
    if len(d) > 200 and len(body) != 1:
        bad.append("a %d-byte datagram holds %d lines" % (len(d), len(body)))
    for l in body:
        parts = l.split(" ")
        if len(parts) != 3:
            bad.append("split line %r" % l)
        lines[(parts[0], parts[2])] += 1
print("datagrams=%d max=%d lines=%d" % (len(sizes), max(sizes), sum(lines.values())))
if bad:
    print("\n".join(bad[:5]))
    sys.exit(1)
EOF
}
t_ok "sink: datagrams end at newlines, only a lone long line passes max_datagram" check_datagrams
runs_seen() {
    "$MS_PY" - "$MS_TMP/datagrams.txt" << 'EOF'
import sys
vals = []
for rec in open(sys.argv[1]):
    for l in bytes.fromhex(rec.split()[1]).decode().splitlines():
        if l.startswith("udp.runs "):
            vals.append(int(l.split()[1]))
vals.sort()
print(vals == list(range(1, len(vals) + 1)) and len(vals) >= 4, vals)
EOF
}
t_match "sink: every run's lines arrived once (udp.runs 1..n, no gap, no repeat)" "$(runs_seen)" '^True'
series_per_run() {
    "$MS_PY" - "$MS_TMP/datagrams.txt" << 'EOF'
import collections, sys
per = collections.Counter()
for rec in open(sys.argv[1]):
    for l in bytes.fromhex(rec.split()[1]).decode().splitlines():
        if l.startswith("udp.series"):
            per[l.split()[0]] += 1
print(len(per), len(set(per.values())))
EOF
}
t_eq "sink: all 60 series, each as often as the others" "$(series_per_run)" "60 1"
t_done
