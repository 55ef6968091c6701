#!/bin/sh
# Batching per forwarder (batch_size, batch_bytes, batch_interval; see
# docs/config.md, "forwarders") over the http transport, into a recording
# sink (post_sink.py: every POST body kept). Checks emit the samples: `big`
# 25000 gauges plus NaN/Inf values in one run, `small` 10 gauges every
# 250 ms. Beside each batching forwarder a file forwarder writes the same
# samples in the same format (line protocol) with no batching: the ground
# truth that each forwarder's bodies, put together, must equal line for line
# (every sample once, none lost, none twice).
#   count     batch_size 10000: the 25000-sample batch is 3 requests
#             (10000, 10000, 5000 lines; the 3 NaN/Inf values are skipped
#             and counted as dropped, reason unencodable)
#   bytes     batch_bytes 100kB: no body over 100000 bytes, and not many
#             more requests than that bound needs
#   merge     batch_interval 2s: one request per ~2 s holding ~8 flushes
#   plain     no batch_interval: a request per pipeline flush (the contrast)
#   hold      batch_interval 1h: nothing is sent until a reload (the old
#             forwarder queues what it held and hands it over) or the stop
#             (what is held is sent before exiting)
# Bad batching values are config errors with line:col.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks" "$MS_TMP/sink"
cat > "$MS_TMP/checks/big.lua" << 'LUA'
return { interval = 3600, collect = function()
  for i = 0, 24999 do ms.gauge("big.g", i, { i = tostring(i) }) end
  ms.gauge("big.nan", 0 / 0)
  ms.gauge("big.inf", math.huge)
  ms.gauge("big.minf", -math.huge)
end }
LUA
cat > "$MS_TMP/checks/small.lua" << 'LUA'
local run = 0
return { interval = 0.25, collect = function()
  run = run + 1
  for i = 1, 10 do ms.gauge("small.g", run, { i = tostring(i), r = tostring(math.random(1e9)) }) end
end }
LUA
SINK=$(free_port tcp)
ms_bg "$MS_TMP/sink.log" "$MS_PY" "$MS_TOP/tests/integration/post_sink.py" "$SINK" "$MS_TMP/sink"
t_ok "sink is up" wait_port "$SINK" 10

# ---- config errors -------------------------------------------------------
bad() { # bad KEY VALUE EXPECTED-MESSAGE
    cat > "$MS_TMP/bad.yaml" << YAML
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  f: { type: file, path: "$MS_TMP/x", $1: $2 }
YAML
    out=$(cd "$MS_TOP" && "$MS_BIN" --config-test -c "$MS_TMP/bad.yaml" 2>&1)
    t_match "$1: $2 is a config error with line:col" "$out" "bad\.yaml:3:[0-9]+: forwarders\.f\.$1: $3"
}
bad batch_size 0 "expected a count of samples from 1 to buffer_samples"
bad batch_size 2000000 "expected a count of samples from 1 to buffer_samples \(1000000\)"
bad batch_bytes 10 "expected a size like 1MB, from 64 bytes to buffer_size"
bad batch_bytes 1GiB "expected a size like 1MB, from 64 bytes to buffer_size \(67108864\)"
bad batch_interval soon "expected a duration like 10s"

# ---- the run -------------------------------------------------------------
config() { # config HOLD_INTERVAL
    U="http://127.0.0.1:$SINK"
    cat << YAML
agent: { hostname: h1, stats_interval: 1s, flush_interval: 200ms, pipeline_batch: 100000,
         check_slice: 5s, check_jitter: 0s, shutdown_timeout: 5s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
checks:
  big: {}
  small: {}
forwarders:
  count: { type: influxdb, url: "$U", db: count, batch_size: 10000, include: { name: "big.*" } }
  bytes: { type: influxdb, url: "$U", db: bytes, batch_size: 100000, batch_bytes: 100kB,
           include: { name: "big.*" } }
  merge: { type: influxdb, url: "$U", db: merge, batch_interval: 2s, include: { name: "small.*" } }
  plain: { type: influxdb, url: "$U", db: plain, include: { name: "small.*" } }
  hold: { type: influxdb, url: "$U", db: hold, batch_interval: $1, include: { name: "small.*" } }
  truth_big: { type: file, path: "$MS_TMP/truth_big.lp", include: { name: "big.*" } }
  truth_small: { type: file, path: "$MS_TMP/truth_small.lp", include: { name: "small.*" } }
  stats: { type: file, path: "$MS_TMP/stats.lp",
           include: { name: "moonstat_forwarder_*", tags: { forwarder: count } } }
YAML
}
config 1h > "$MS_TMP/config.yaml"
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10

# bodies DB: every line POSTed for db=DB, in order
bodies() {
    awk -v db="$1" '$4 ~ "db=" db "&" { print $1 }' "$MS_TMP/sink/requests.log" 2> /dev/null |
        while read -r n; do cat "$MS_TMP/sink/body.$n"; done
}
# requests DB: "n time bytes lines" per request for db=DB
requests() {
    awk -v db="$1" '$4 ~ "db=" db "&" { print $1, $2, $3 }' "$MS_TMP/sink/requests.log" 2> /dev/null |
        while read -r n t b; do echo "$n $t $b $(wc -l < "$MS_TMP/sink/body.$n")"; done
}
nlines() { bodies "$1" | wc -l; }
have_lines() { [ "$(nlines "$1")" -ge "$2" ]; }

t_ok "count: the 25000 good samples arrive" _ms_poll 20 have_lines count 25000
t_ok "bytes: the 25000 good samples arrive" _ms_poll 20 have_lines bytes 25000
sleep 0.5
t_eq "count: 3 requests of 10000, 10000 and 5000 lines" \
    "$(requests count | awk '{ printf "%s ", $4 }')" "10000 10000 5000 "
sort "$MS_TMP/truth_big.lp" > "$MS_TMP/truth_big.sorted"
bodies count | sort > "$MS_TMP/count.sorted"
t_ok "count: every sample exactly once (same lines as the file forwarder)" \
    cmp "$MS_TMP/count.sorted" "$MS_TMP/truth_big.sorted"
t_eq "the file forwarder wrote the 25000 good samples" "$(wc -l < "$MS_TMP/truth_big.lp")" 25000
bodies bytes | sort > "$MS_TMP/bytes.sorted"
t_ok "bytes: every sample exactly once" cmp "$MS_TMP/bytes.sorted" "$MS_TMP/truth_big.sorted"
total=$(requests bytes | awk '{ s += $3 } END { print s }')
largest=$(requests bytes | awk '$3 > m { m = $3 } END { print m }')
nreq=$(requests bytes | wc -l)
t_diag "bytes: $nreq requests, $total bytes, largest $largest"
t_ok "bytes: no body over batch_bytes (100000)" [ "$largest" -le 100000 ]
t_ok "bytes: split into as few requests as the bound allows, give or take (>= $(((total + 99999) / 100000)), <= $((total / 80000 + 2)))" \
    [ "$nreq" -ge $(((total + 99999) / 100000)) -a "$nreq" -le $((total / 80000 + 2)) ]
has_unencodable() {
    grep -q 'moonstat_forwarder_dropped_samples_total,forwarder=count,host=h1,reason=unencodable value=3i ' "$MS_TMP/stats.lp" 2> /dev/null
}
t_ok "count: the NaN/Inf values are counted: dropped_samples_total{reason=unencodable} 3" \
    _ms_poll 10 has_unencodable
sent_25000() {
    grep -q 'moonstat_forwarder_sent_samples_total,forwarder=count,host=h1 value=25000i ' "$MS_TMP/stats.lp" 2> /dev/null
}
t_ok "count: sent_samples_total is 25000 (skipped ones are not counted as sent)" _ms_poll 10 sent_25000

# merge vs plain: a few seconds more (about 10 s since the start)
sleep 8
t_eq "hold (batch_interval 1h): nothing sent yet" "$(nlines hold)" 0
requests merge > "$MS_TMP/merge.req"
requests plain > "$MS_TMP/plain.req"
nm=$(wc -l < "$MS_TMP/merge.req")
np=$(wc -l < "$MS_TMP/plain.req")
t_diag "merge: $nm requests; plain: $np requests"
t_ok "plain: a request per pipeline flush (4 a second: over 4 times as many as merge)" \
    [ "$nm" -ge 3 -a "$np" -gt $((4 * nm)) ]
gaps=$(awk 'NR > 1 { g = $2 - p; if (lo == "" || g < lo) lo = g; if (g > hi) hi = g } { p = $2 }
    END { print lo, hi }' "$MS_TMP/merge.req")
t_ok "merge: one request every ~2 s (gaps from ${gaps% *} to ${gaps#* } s)" \
    awk -v lo="${gaps% *}" -v hi="${gaps#* }" 'BEGIN { exit !(lo >= 1.8 && hi <= 4) }'
runs=$(awk 'NR > 1 && NR < 4 { print $1 }' "$MS_TMP/merge.req" | while read -r n; do
    sed 's/.* value=\([0-9]*\) .*/\1/' "$MS_TMP/sink/body.$n" | sort -u | wc -l; done | sort -n | head -1)
t_ok "merge: each request holds the samples of several runs ($runs >= 6)" [ "$runs" -ge 6 ]

# reload: hold's section changes; the old forwarder queues what it held
config 59m > "$MS_TMP/config.yaml"
before=$(wc -l < "$MS_TMP/truth_small.lp")
kill -HUP "$MS_PID"
has_hold() { [ "$(nlines hold)" -ge "$before" ]; }
t_ok "reload: what hold held is sent ($before+ lines)" _ms_poll 10 has_hold
t_eq "reload: in one request" "$(requests hold | wc -l)" 1
sleep 2
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
t_eq "stop: what hold held since the reload is sent at the stop" "$(requests hold | wc -l)" 2
sort "$MS_TMP/truth_small.lp" > "$MS_TMP/truth_small.sorted"
for f in merge plain hold; do
    bodies $f | sort > "$MS_TMP/$f.sorted"
    t_ok "$f: every sample exactly once, none lost over the reload and the stop" \
        cmp "$MS_TMP/$f.sorted" "$MS_TMP/truth_small.sorted"
done
t_not "no errors logged" grep -E 'error|ERROR' "$MS_LOG"
t_done
