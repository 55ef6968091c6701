#!/bin/sh
# Delivery guarantees (docs/delivery.md) against real servers:
#  1. the real InfluxDB 1.x (Debian influxdb) stopped for a while under a
#     steady load, then restarted: every sample arrives exactly as sent
#     (count, sum, min and max per series, queried from InfluxDB);
#  2. `kill -9` of moonstat during an outage with `fsync: batch`, a restart,
#     InfluxDB back: nothing the forwarder had taken is lost;
#  3. a spool segment written by this test with a bad record in the middle:
#     the good records before it and the next segment are delivered (paced
#     by replay_rate), the bad one is reported with file and offset, and
#     moonstat does not crash;
#  4. the spool at its size limit: drops counted by reason, memory and disk
#     stay bounded, no crash;
#  5. a backend (python3) that answers 400 to one batch and 204 to the rest:
#     that batch is rejected once (logged with the body, counted), the queue
#     goes on;
#  6. a backend that hangs without closing past the forwarder's timeout: the
#     request times out, is retried, and everything arrives; and one that
#     answers 429 with Retry-After: 2 once: the retry waits 2 s;
#  7. the real carbon-cache (graphite plaintext over TCP) stopped for a while
#     under load, then restarted: every value arrives.
# The load is a check (seq.lua) emitting 20 series every 100 ms whose value
# is a counter that continues across restarts (kept in $SEQ_FILE), so each
# series must hold exactly the values 1..N.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks" "$MS_TMP/burst"
SEQ_FILE=$MS_TMP/seq
SEQ_STOP=$MS_TMP/seq.stop
export SEQ_FILE SEQ_STOP
cat > "$MS_TMP/checks/seq.lua" << 'LUA'
-- 20 series "seq" (tag s=1..20), value n = 1, 2, 3, ... one step per run;
-- n survives restarts in $SEQ_FILE; nothing is emitted while $SEQ_STOP exists.
local path, stop = os.getenv("SEQ_FILE"), os.getenv("SEQ_STOP")
local n = 0
local f = io.open(path, "r")
if f then n = tonumber(f:read("*l")) or 0; f:close() end
return { interval = 0.1, collect = function()
  local s = io.open(stop, "r")
  if s then s:close(); return end
  n = n + 1
  for i = 1, 20 do ms.gauge("seq", n, { s = tostring(i) }) end
  local w = io.open(path, "w"); w:write(n, "\n"); w:close()
end }
LUA
cat > "$MS_TMP/burst/burst.lua" << 'LUA'
-- 2000 samples every 100 ms: fills a small spool fast.
return { interval = 0.1, collect = function()
  for i = 1, 2000 do ms.gauge("burst.value", i, { k = tostring(i % 50) }) end
end }
LUA

# metric NAME REGEX-OF-LABELS: the value of a moonstat_* sample on /metrics.
metric() {
    curl -sS --max-time 5 "http://127.0.0.1:$PROM/metrics" |
        grep -E "^$1\{[^}]*$2[^}]*\} " | head -n 1 | awk '{print $2}'
}
metric_ge() { # NAME LABELS MIN
    v=$(metric "$1" "$2")
    [ -n "$v" ] && "$MS_PY" -c "import sys; sys.exit(0 if float('$v') >= float('$3') else 1)"
}

# ---- InfluxDB --------------------------------------------------------
PROM=$(free_port tcp)
q() { influx_query delivery "$1"; }
# exact N: every one of the 20 seq series holds exactly the values 1..N
# (InfluxDB keeps one point per series and timestamp, so a batch delivered
# twice cannot inflate the count; a lost one shows).
exact() {
    q 'SELECT count(value), sum(value), min(value), max(value) FROM seq GROUP BY s' |
        "$MS_PY" -c '
import json, sys
n = int(sys.argv[1])
r = json.load(sys.stdin)["results"][0].get("series", [])
want = [n, n * (n + 1) / 2, 1, n]
bad = [(s["tags"]["s"], s["values"][0][1:]) for s in r if s["values"][0][1:] != want]
if len(r) != 20 or bad:
    print("want count,sum,min,max = %s for 20 series; got %d series, differing: %s"
          % (want, len(r), bad[:3]))
    sys.exit(1)' "$1"
}
seq_n() { cat "$SEQ_FILE"; }

influx_start || t_fail "influxd starts"
t_ok "database created" influx_create_db delivery
cat > "$MS_TMP/influx.yaml" << YAML
agent: { hostname: "h1", stats_interval: 1s, shutdown_timeout: 3s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  influx:
    type: influxdb
    url: "http://127.0.0.1:$INFLUX_PORT"
    db: delivery
    timeout: 2s
    retry: { base: 100ms, cap: 1s }
    buffer_size: 64KiB
    spool: { dir: spool, fsync: batch, segment_size: 64KiB }
  prom: { type: prometheus, listen: "127.0.0.1:$PROM" }
YAML

# 1. outage under load
ms_start "$MS_TMP/influx.yaml"
t_ok "moonstat starts" ms_wait_log 'started' 10
t_ok "samples reach InfluxDB" _ms_poll 20 sh -c "[ \$(cat '$SEQ_FILE') -ge 5 ] && \
    curl -sS -G 'http://127.0.0.1:$INFLUX_PORT/query' --data-urlencode db=delivery \
    --data-urlencode 'q=SELECT count(value) FROM seq' | grep -q count"
influx_stop
t_ok "influxd down: retried with backoff" ms_wait_log 'forwarder influx: POST .*retry in [0-9.]+s' 10
sleep 4
t_ok "outage: samples wait in the spool" metric_ge moonstat_forwarder_spool_samples 'forwarder="influx"' 200
t_ok "outage: oldest pending age grows" metric_ge moonstat_forwarder_oldest_pending_seconds 'forwarder="influx"' 2
t_ok "outage: segment files on disk" sh -c "ls '$MS_TMP/spool/'*.seg"
# a reload that replaces the forwarder mid-outage: the new one takes over the
# queue and the open spool (checked by the exact count below)
sed 's/buffer_size: 64KiB/buffer_size: 96KiB/' "$MS_TMP/influx.yaml" > "$MS_TMP/influx.yaml.new"
cp "$MS_TMP/influx.yaml" "$MS_TMP/influx.yaml.orig"
mv "$MS_TMP/influx.yaml.new" "$MS_TMP/influx.yaml"
kill -HUP "$MS_PID"
t_ok "reload mid-outage replaces the forwarder" ms_wait_log 'forwarder influx: stopped \(removed or changed\)' 10
sleep 2
mv "$MS_TMP/influx.yaml.orig" "$MS_TMP/influx.yaml"
influx_start || t_fail "influxd restarts"
# caught up: the oldest sample waiting is younger than a second again
caught_up() {
    v=$(metric moonstat_forwarder_oldest_pending_seconds 'forwarder="influx"')
    [ -n "$v" ] && "$MS_PY" -c "import sys; sys.exit(0 if float('$v') < 1 else 1)"
}
t_ok "backlog replayed after the outage" _ms_poll 30 caught_up
touch "$SEQ_STOP"
sleep 1
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
N1=$(seq_n)
t_ok "outage: every sample arrived exactly once (1..$N1 in each of 20 series)" _ms_poll 20 exact "$N1"

# 2. kill -9 during an outage (fsync: batch), restart, recover
influx_stop
rm -f "$SEQ_STOP"
ms_start "$MS_TMP/influx.yaml"
t_ok "restarted into an outage" ms_wait_log 'started' 10
sleep 3
touch "$SEQ_STOP"
sleep 1
kill -9 "$MS_PID"
wait "$MS_PID" 2> /dev/null
_ms_forget "$MS_PID"
N2=$(seq_n)
t_ok "the load ran during the outage ($N1 -> $N2)" test "$N2" -gt "$((N1 + 10))"
ms_start "$MS_TMP/influx.yaml"
t_ok "after kill -9: the spool is found with records to deliver" \
    ms_wait_log 'forwarder influx: spool .*: [1-9][0-9]* records \([0-9]* samples\) to deliver' 10
influx_start || t_fail "influxd back"
t_ok "after kill -9 and restart: nothing lost (1..$N2 in each of 20 series)" _ms_poll 30 exact "$N2"
ms_stop
t_eq "clean exit" "$?" 0
influx_stop

# 3. a corrupt segment written by the test
SINK3=$(free_port tcp)
mkdir -p "$MS_TMP/spool3"
BAD_OFF=$("$MS_PY" - "$MS_TMP/spool3" << 'EOF'
# Records as src/spool.c writes them: header (magic "MSR1", CRC-32C of the
# rest, data length, sample count, endpoint length, spare, time in ms), data.
import struct, sys, time
def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff
def record(i, corrupt=False):
    data = b"corrupt_test,n=%d value=%d %d\n" % (i, i, 1700000000000000000 + i)
    rest = struct.pack("<IIIIQ", len(data), 1, 0, 0, int(time.time() * 1000))
    crc = crc32c(rest + data)
    if corrupt:
        data = data.replace(b"value", b"vXlue")
    return struct.pack("<II", 0x3152534d, crc) + rest + data
d = sys.argv[1]
with open(d + "/0000000000000001.seg", "wb") as f:
    f.write(record(1) + record(2) + record(3) + record(4, corrupt=True) + record(5))
with open(d + "/0000000000000002.seg", "wb") as f:
    f.write(record(6) + record(7))
# the offset of the bad record, for the log check
print(len(record(1)) + len(record(2)) + len(record(3)))
EOF
)
cat > "$MS_TMP/corrupt.yaml" << YAML
agent: { hostname: "h1", stats_interval: 1s }
paths: { checks: [empty], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  c: { type: influxdb, url: "http://127.0.0.1:$SINK3", spool: { dir: spool3, replay_rate: 2 } }
  prom: { type: prometheus, listen: "127.0.0.1:$PROM" }
YAML
mkdir -p "$MS_TMP/empty"
ms_bg "$MS_TMP/sink3.log" "$MS_PY" "$MS_TOP/tests/integration/delivery_sink.py" "$SINK3" "$MS_TMP/sink3.out"
wait_port "$SINK3" 10
ms_start "$MS_TMP/corrupt.yaml"
t_ok "bad record reported with file and offset" \
    ms_wait_log 'forwarder c: spool .*/spool3/0000000000000001\.seg: bad checksum at offset '"$BAD_OFF"': skipping the rest of the segment' 10
t_ok "good records of both segments delivered" _ms_poll 10 sh -c \
    "[ \$(grep -c '^corrupt_test' '$MS_TMP/sink3.out') = 5 ]"
t_eq "exactly records 1, 2, 3, 6, 7" \
    "$(grep '^corrupt_test' "$MS_TMP/sink3.out" | sed 's/.*n=\([0-9]*\) .*/\1/' | tr '\n' ' ')" "1 2 3 6 7 "
t_ok "corrupt record counted" _ms_poll 10 metric_ge moonstat_forwarder_spool_corrupt_records_total 'forwarder="c"' 1
t_ok "delivered segments deleted" _ms_poll 10 sh -c "! ls '$MS_TMP/spool3/'*1.seg"
# replay_rate 2 (chunks a second, a burst of 2): the 5 records take >= 1.5 s
span=$(head -n 5 "$MS_TMP/sink3.out.log" | awk 'NR == 1 {a = $4} {b = $4} END {printf "%.1f", b - a}')
t_ok "replay paced by replay_rate: 5 chunks over ${span}s" "$MS_PY" -c "import sys; sys.exit(0 if $span >= 1.2 else 1)"
ms_stop
t_eq "no crash: clean exit" "$?" 0

# 4. the spool at its size limit (backend down all along)
DEAD=$(free_port tcp)
cat > "$MS_TMP/full.yaml" << YAML
agent: { hostname: "h1", stats_interval: 1s }
paths: { checks: [burst], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  full:
    type: influxdb
    url: "http://127.0.0.1:$DEAD"
    buffer_size: 256KiB
    retry: { base: 100ms, cap: 200ms }
    spool: { dir: spool4, max_size: 1MiB, segment_size: 128KiB, on_full: drop_oldest, fsync: never }
  prom: { type: prometheus, listen: "127.0.0.1:$PROM" }
YAML
# (under ASan, freed memory sits in a quarantine that would look like growth)
asan_saved=${ASAN_OPTIONS:-}
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
ms_start "$MS_TMP/full.yaml"
ASAN_OPTIONS=$asan_saved
t_ok "moonstat starts (spool limit)" ms_wait_log 'started' 10
t_ok "spool full: oldest dropped and counted" _ms_poll 20 metric_ge \
    moonstat_forwarder_dropped_samples_total 'forwarder="full",.*reason="spool_full"' 1
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$MS_PID/status")
sleep 4
rss2=$(awk '/VmRSS/ {print $2}' "/proc/$MS_PID/status")
disk=$(du -sk "$MS_TMP/spool4" | awk '{print $1}')
t_ok "spool stays within max_size (${disk} KiB on disk)" test "$disk" -le 1100
t_ok "memory stays bounded (RSS ${rss1} -> ${rss2} KiB)" test "$rss2" -le $((rss1 + 16384))
qbytes=$(metric moonstat_forwarder_queue_bytes 'forwarder="full"')
t_ok "memory queue within buffer_size ($qbytes bytes)" test "${qbytes:-999999999}" -le 262144
t_ok "still running" _ms_alive "$MS_PID"
ms_stop
t_eq "clean exit with a full spool" "$?" 0

# 5 and 6. one batch answered 400; a backend that hangs past the timeout
REJ=$(free_port tcp)
HANG=$(free_port tcp)
THR=$(free_port tcp)
rm -f "$SEQ_STOP" "$SEQ_FILE"
ms_bg "$MS_TMP/sink5.log" "$MS_PY" "$MS_TOP/tests/integration/delivery_sink.py" "$REJ" "$MS_TMP/rej.out" --reject 3
ms_bg "$MS_TMP/sink6.log" "$MS_PY" "$MS_TOP/tests/integration/delivery_sink.py" "$HANG" "$MS_TMP/hang.out" --hang 2
ms_bg "$MS_TMP/sink7.log" "$MS_PY" "$MS_TOP/tests/integration/delivery_sink.py" "$THR" "$MS_TMP/thr.out" --throttle 1
wait_port "$REJ" 10
wait_port "$HANG" 10
wait_port "$THR" 10
cat > "$MS_TMP/http.yaml" << YAML
agent: { hostname: "h1", stats_interval: 1s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  rej: { type: influxdb, url: "http://127.0.0.1:$REJ", include: [seq], spool: { dir: spool5 } }
  hang: { type: influxdb, url: "http://127.0.0.1:$HANG", include: [seq], timeout: 1s,
          retry: { base: 200ms, cap: 1s } }
  thr: { type: influxdb, url: "http://127.0.0.1:$THR", include: [seq], retry: { base: 100ms, cap: 200ms } }
  prom: { type: prometheus, listen: "127.0.0.1:$PROM" }
YAML
ms_start "$MS_TMP/http.yaml"
t_ok "moonstat starts (400 and hang)" ms_wait_log 'started' 10
t_ok "hung request times out and is retried" \
    ms_wait_log 'forwarder hang: POST .*: (Operation timed out|Timeout was reached).*retry in' 10
sleep 3
touch "$SEQ_STOP"
sleep 2
rejected=$(metric moonstat_forwarder_rejected_samples_total 'forwarder="rej"')
retries=$(metric moonstat_forwarder_retries_total 'forwarder="hang"')
ms_stop
t_eq "clean exit" "$?" 0
N5=$(seq_n)
t_eq "the 400 came once, every other request got 204" \
    "$(awk '{print $2}' "$MS_TMP/rej.out.log" | sort | uniq -c | awk '{print $2 ":" ($2 == 400 ? $1 : "n")}' | tr '\n' ' ')" "204:n 400:1 "
t_ok "400 logged with the response body" \
    grep -Eq 'forwarder rej: POST .*: HTTP 400, dropping [0-9]+ samples .*unable to parse line 1' "$MS_LOG"
t_eq "rejected samples counted" "$rejected" "$(grep -c '^seq' "$MS_TMP/rej.out.rejected")"
# each of the 20 series: the values accepted plus those in the rejected
# batch are exactly 1..N5, none twice (the rejected batch was not retried,
# and the queue went on behind it)
check_split() {
    cat "$1" "$1.rejected" | grep '^seq' | "$MS_PY" -c '
import sys, collections
n = int(sys.argv[1])
vals = collections.defaultdict(list)
for line in sys.stdin:
    key, field, _ = line.split(" ")
    vals[key].append(int(float(field.split("=")[1])))
ok = len(vals) == 20 and all(sorted(v) == list(range(1, n + 1)) for v in vals.values())
if not ok:
    print("series", len(vals), [(k, len(v), min(v), max(v)) for k, v in list(vals.items())[:3]])
sys.exit(0 if ok else 1)' "$2"
}
t_ok "after the 400: everything else arrived, once (1..$N5)" check_split "$MS_TMP/rej.out" "$N5"
t_ok "hang: the hung batch was retried and everything arrived (1..$N5)" check_split "$MS_TMP/hang.out" "$N5"
t_ok "hang: retries counted ($retries)" test "${retries:-0}" -ge 1
t_ok "429: waits what Retry-After asks, not the backoff" \
    grep -Eq 'forwarder thr: POST .*: HTTP 429 \(retry in 2\.0s, as Retry-After asks\)' "$MS_LOG"
gap=$(awk 'NR == 1 {a = $4} NR == 2 {printf "%.1f", $4 - a}' "$MS_TMP/thr.out.log")
t_ok "429: the retry came ${gap}s later" "$MS_PY" -c "import sys; sys.exit(0 if 1.9 <= $gap <= 3 else 1)"
t_ok "429: everything arrived (1..$N5)" check_split "$MS_TMP/thr.out" "$N5"

# 7. the real carbon-cache (graphite plaintext over TCP) stopped for a while
# under load, then restarted: every value arrives (whisper keeps one point a
# second, so this load is 5 series once a second)
mkdir -p "$MS_TMP/checks7"
CSEQ_FILE=$MS_TMP/cseq
export CSEQ_FILE
cat > "$MS_TMP/checks7/cseq.lua" << 'LUA'
local path, stop = os.getenv("CSEQ_FILE"), os.getenv("SEQ_STOP")
local n = 0
return { interval = 1, collect = function()
  local s = io.open(stop, "r")
  if s then s:close(); return end
  n = n + 1
  for i = 1, 5 do ms.gauge("cseq", n, { s = "s" .. i }) end
  local w = io.open(path, "w"); w:write(n, "\n"); w:close()
end }
LUA
rm -f "$SEQ_STOP"
carbon_start || t_fail "carbon-cache starts"
cat > "$MS_TMP/carbon.yaml" << YAML
agent: { hostname: "h1", stats_interval: 1s }
paths: { checks: [checks7], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
checks: { cseq: { jitter: 0s } } # one run a second, each in a second of its own
forwarders:
  carbon: { type: graphite, address: "127.0.0.1:$CARBON_PORT", include: [cseq],
            retry: { base: 200ms, cap: 1s }, spool: { dir: spool7, fsync: batch } }
YAML
ms_start "$MS_TMP/carbon.yaml"
t_ok "moonstat starts (carbon)" ms_wait_log 'started' 10
t_ok "values reach carbon" carbon_wait h1.s1.cseq '^[1-9]' 20
kill "$CARBON_PID"
wait "$CARBON_PID" 2> /dev/null
_ms_forget "$CARBON_PID"
t_ok "carbon down: noticed at once, reconnects with backoff" \
    ms_wait_log 'forwarder carbon: connection closed by 127\.0\.0\.1:[0-9]+: .*\(retry in' 15
sleep 4
carbon_start || t_fail "carbon-cache restarts"
sleep 4
touch "$SEQ_STOP"
sleep 2
ms_stop
t_eq "clean exit" "$?" 0
N7=$(cat "$CSEQ_FILE")
carbon_all() {
    for i in 1 2 3 4 5; do
        got=$(carbon_fetch "h1.s$i.cseq" | sort -n | tr '\n' ' ')
        want=$(seq 1 "$N7" | tr '\n' ' ')
        [ "$got" = "$want" ] || { echo "h1.s$i.cseq: got $got want $want"; return 1; }
    done
}
t_ok "carbon outage: every value 1..$N7 of the 5 series stored" _ms_poll 20 carbon_all
t_done
