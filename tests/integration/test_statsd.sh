#!/bin/sh
# The StatsD/DogStatsD and JSON listeners end to end: the hot-shots DogStatsD
# client (npm, tests/node) over UDP, plain lines over TCP and a unix datagram
# socket, pystatsd JSON datagrams; samples checked in a file forwarder's
# Influx lines; bad lines counted and logged with the peer; SIGHUP keeps the
# sockets and what is aggregated (also when the worker count changes);
# moonstat_statsd_* self metrics; --config-test on bad listener sections.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/nochecks"
SU=$(free_port both)
JU=$(free_port udp)
SOCK=$MS_TMP/dsd.sock
OUT=$MS_TMP/out.lp
write_config() { # workers percentiles
    { echo "agent: { hostname: h1, stats_interval: 1s }"
      ms_paths "$MS_TMP/nochecks"
      cat <<YAML
listeners:
  statsd:
    udp: "127.0.0.1:$SU"
    tcp: "127.0.0.1:$SU"
    unix: "$SOCK"
    workers: $1
    flush_interval: 1s
    percentiles: [$2]
  json: { udp: "127.0.0.1:$JU", flush_interval: 1s }
forwarders:
  out: { type: file, path: "$OUT", format: influx }
YAML
    } > "$MS_TMP/config.yaml"
}
write_config 2 90
t_ok "--config-test accepts the listeners" "$MS_BIN" -c "$MS_TMP/config.yaml" --config-test
ms_start "$MS_TMP/config.yaml"
t_ok "listening on UDP, TCP and the unix socket with 2 workers" ms_wait_log "listeners\.statsd: listening \(udp 127\.0\.0\.1:$SU, tcp 127\.0\.0\.1:$SU, unix $SOCK, 2 workers\)"
t_ok "json listener up" ms_wait_log "listeners\.json: listening \(udp 127\.0\.0\.1:$JU"

cat > "$MS_TMP/client.js" <<JS
const StatsD = require("$MS_TOP/tests/node/node_modules/hot-shots");
const c = new StatsD({ host: "127.0.0.1", port: $SU, globalTags: { env: "prod" },
                       errorHandler: (e) => { console.error("hot-shots:", e); process.exit(1); } });
c.increment("hs.requests", 3, ["route:home"]);
c.increment("hs.requests", 2, ["route:home"]);
c.gauge("hs.queue", 17);
c.histogram("hs.size", 10);
c.histogram("hs.size", 30);
c.distribution("hs.dist", 5);
c.timing("hs.latency", 42);
c.set("hs.users", "alice");
c.set("hs.users", "bob");
c.set("hs.users", "alice");
c.event("deploy", "version 2 is out", { alert_type: "info" });
c.check("hs.db", c.CHECKS.WARNING, { message: "replica lag" });
c.close(() => process.exit(0));
JS
t_ok "hot-shots sends without error" node "$MS_TMP/client.js"
has_line() { grep -Eq "$1" "$OUT"; }
t_ok "counter: count with client tags" _ms_poll 10 has_line '^hs\.requests\.count,env=prod,host=h1,route=home value=5 '
t_ok "counter: per-second rate" has_line '^hs\.requests\.rate,env=prod,host=h1,route=home value=5 '
t_ok "gauge" has_line '^hs\.queue,env=prod,host=h1 value=17 '
t_ok "histogram (DogStatsD h) as a timer: mean" has_line '^hs\.size\.mean,env=prod,host=h1 value=20 '
t_ok "histogram: upper_90" has_line '^hs\.size\.upper_90,env=prod,host=h1 value=30 '
t_ok "distribution (d) as a timer" has_line '^hs\.dist\.count,env=prod,host=h1 value=1 '
t_ok "timer" has_line '^hs\.latency\.median,env=prod,host=h1 value=42 '
t_ok "set: unique count" has_line '^hs\.users\.count,env=prod,host=h1 value=2 '
t_ok "event with its text" has_line '^event,.*env=prod.* text="deploy\\nversion 2 is out"'
t_ok "service check as a health sample with its message" has_line '^hs\.db,env=prod,host=h1 value=8,message="replica lag",level="WARNING"'

printf 'tcp.hits:4|c\ntcp.hits:6|c\ntcp.partial' | tcp_send "$SU"
t_ok "TCP lines" _ms_poll 10 has_line '^tcp\.hits\.count,host=h1 value=10 '
"$MS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"uds.hits:7|c|#via:uds", sys.argv[1])' "$SOCK"
t_ok "unix datagram socket" _ms_poll 10 has_line '^uds\.hits\.count,host=h1,via=uds value=7 '
printf '%s\n' '{"metric_name": "js.temp", "metric_type": "gauge", "value": 21.5, "room": "lab"}' \
    '{"metric_name": "js.hits", "metric_type": "counter", "value": 2}' \
    '{"metric_name": "js.hits", "metric_type": "counter", "value": 3}' \
    'not json' '{"metric_name": "x", "metric_type": "nope", "value": 1}' | udp_send "$JU"
t_ok "JSON gauge with a tag" _ms_poll 10 has_line '^js\.temp,host=h1,room=lab value=21\.5 '
t_ok "JSON counters aggregated" has_line '^js\.hits\.count,host=h1 value=5 '
t_ok "bad JSON logged with the peer" ms_wait_log 'listeners\.json: bad datagram from 127\.0\.0\.1:[0-9]+: not a JSON object: "not json"' 5
printf 'good:1|c\nbroken line\nk:abc|c\n' | udp_send "$SU"
t_ok "bad StatsD line logged with the peer and the reason" ms_wait_log 'listeners\.statsd: bad line from 127\.0\.0\.1:[0-9]+: no value: "broken line"' 5
t_ok "bad lines counted" _ms_poll 10 has_line '^moonstat_statsd_bad_lines_total,host=h1,listener=statsd value=[2-9]i? '
t_ok "json bad datagrams counted" has_line '^moonstat_statsd_bad_lines_total,host=h1,listener=json value=2i? '
t_ok "kernel drops exported" has_line '^moonstat_statsd_kernel_drops_total,host=h1,listener=statsd value=0i? '
t_ok "lines counted" has_line '^moonstat_statsd_lines_total,host=h1,listener=statsd value=[0-9]+i? '

# SIGHUP: nothing sent is lost, with the same sockets and with new workers
sum_hup() {
    grep -E '^hup\.c\.count,host=h1 ' "$OUT" | sed 's/.* value=\([0-9.]*\).*/\1/' |
        awk '{s += $1} END {print s + 0}'
}
hup_total_is() { [ "$(sum_hup)" = "$1" ]; }
send_hup() { # N: N lines of hup.c:1|c, one datagram each
    "$MS_PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(b"hup.c:1|c", ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.001)' "$SU" "$1"
}
send_hup 300 &
sp=$!
sleep 0.1
write_config 2 "90, 99"
kill -HUP "$MS_PID"
wait "$sp"
t_ok "reload with the same sockets" ms_wait_log 'reload done' 5
t_eq "sockets kept: no second 'listening' line" "$(grep -c 'listeners\.statsd: listening' "$MS_LOG")" 1
t_ok "every line sent across SIGHUP counted (300)" _ms_poll 10 hup_total_is 300
printf 'pt:5|ms\n' | udp_send "$SU"
t_ok "the reloaded percentiles apply (upper_99)" _ms_poll 10 has_line '^pt\.upper_99,host=h1 value=5 '
send_hup 300 &
sp=$!
sleep 0.1
write_config 1 90
kill -HUP "$MS_PID"
wait "$sp"
t_ok "changed workers: sockets reopened" ms_wait_log 'listeners\.statsd: listening .*1 worker\)' 5
t_ok "every line sent across the worker change counted (600)" _ms_poll 10 hup_total_is 600
printf 'last.c:9|c\n' | udp_send "$SU"
sleep 0.3
ms_stop
t_eq "clean exit" "$?" 0
t_ok "what was aggregated at SIGTERM is flushed" has_line '^last\.c\.count,host=h1 value=9 '

# kernel drops: moonstat stopped (SIGSTOP) with a tiny receive buffer; what
# the kernel drops shows in moonstat_statsd_kernel_drops_total, and kept +
# dropped is what was sent
KU=$(free_port udp)
OUT2=$MS_TMP/out2.lp
{ echo "agent: { hostname: h1, stats_interval: 1s }"
  ms_paths "$MS_TMP/nochecks"
  cat <<YAML
listeners:
  statsd: { udp: "127.0.0.1:$KU", tcp: "", flush_interval: 1s, recv_buffer: 4KiB }
forwarders:
  out: { type: file, path: "$OUT2", format: influx }
YAML
} > "$MS_TMP/kd.yaml"
ms_start "$MS_TMP/kd.yaml"
t_ok "second instance up" ms_wait_log "listeners\.statsd: listening \(udp 127\.0\.0\.1:$KU"
kill -STOP "$MS_PID"
"$MS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    s.sendto(b"kd.c:1|c", ("127.0.0.1", int(sys.argv[1])))' "$KU"
kill -CONT "$MS_PID"
kd_drops() { grep -E '^moonstat_statsd_kernel_drops_total,host=h1,listener=statsd ' "$OUT2" | tail -n 1 | sed 's/.* value=\([0-9]*\).*/\1/'; }
kd_kept() { grep -E '^kd\.c\.count,host=h1 ' "$OUT2" | sed 's/.* value=\([0-9.]*\).*/\1/' | awk '{s += $1} END {print s + 0}'; }
kd_adds_up() { [ -n "$(kd_drops)" ] && [ "$(kd_drops)" -gt 0 ] && [ $(($(kd_kept) + $(kd_drops))) -eq 2000 ]; }
t_ok "kernel drops counted: kept + dropped = 2000 sent" _ms_poll 10 kd_adds_up
t_diag "kept $(kd_kept), kernel drops $(kd_drops)"
ms_stop
t_eq "second instance: clean exit" "$?" 0

# --config-test names the bad key with file:line:col
printf 'listeners:\n  statsd:\n    bogus: 1\n' > "$MS_TMP/bad1.yaml"
t_not "unknown listener key fails --config-test" "$MS_BIN" -c "$MS_TMP/bad1.yaml" --config-test
t_match "... with file:line:col" "$("$MS_BIN" -c "$MS_TMP/bad1.yaml" --config-test 2>&1)" 'bad1\.yaml:3:5: .*bogus'
printf 'listeners:\n  statsd:\n    percentiles: [90, abc]\n' > "$MS_TMP/bad2.yaml"
t_match "bad percentile named" "$("$MS_BIN" -c "$MS_TMP/bad2.yaml" --config-test 2>&1)" 'bad2\.yaml:3:[0-9]+: listeners\.statsd\.percentiles'
printf 'listeners:\n  json:\n    histogram: [ { metric: a, bins: [1, x] } ]\n' > "$MS_TMP/bad3.yaml"
t_match "bad histogram bin named" "$("$MS_BIN" -c "$MS_TMP/bad3.yaml" --config-test 2>&1)" 'bad3\.yaml:3:.*histogram: a bin'
t_done
