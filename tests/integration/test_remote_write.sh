#!/bin/sh
# The prometheus_remote_write encoder over the http transport into the real
# Prometheus (Debian prometheus, started with --web.enable-remote-write-receiver),
# read back through its HTTP query API: values, sanitized names, the full
# label sets, counters, two samples of one series in one TimeSeries, health
# samples and events left out. Between moonstat and Prometheus a recording
# proxy (http_recorder.py) keeps each request: the headers are checked
# (Content-Encoding: snappy, Content-Type: application/x-protobuf,
# X-Prometheus-Remote-Write-Version: 0.1.0); it answers the first two
# requests 429 and 503 itself, and the same body must come again (retried).
# A second forwarder sends out-of-order samples straight to Prometheus: it
# answers 400, the batch is dropped and counted as failed, never retried.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks" "$MS_TMP/rec"
cat > "$MS_TMP/checks/web.lua" << 'LUA'
local n, pt = 0, 0
return { interval = 0.5, collect = function()
  n = n + 1
  local t = ms.timestamp()
  ms.gauge("test.gauge", 42.5, { ["a.b"] = "x y", role = "db" })
  ms.gauge("test.runs", n)
  ms.counter("test.count", 7)
  ms.gauge("5xx rate", 0.25, { ["1st"] = "é" })
  if t > pt then -- once a second: a second run in the same second would go back in time
    pt = t
    ms.gauge("test.pair", 1, {}, t)
    ms.gauge("test.pair", 2, {}, t + 0.5)
  end
  ms.send_special("test.health", 8, "almost full")
  ms.event("test.event", "deployed")
end }
LUA
cat > "$MS_TMP/checks/ooo.lua" << 'LUA'
-- first run: now; every later run: a minute before that (out of order)
local t0
return { interval = 0.5, collect = function()
  local now = ms.timestamp()
  t0 = t0 or now
  if now == t0 then ms.gauge("test.ooo", 1) else ms.gauge("test.ooo", 2, {}, t0 - 60) end
end }
LUA
REC=$(free_port tcp)
prom_start 127.0.0.1:1 --web.enable-remote-write-receiver
t_ok "prometheus with the remote write receiver is up" test -n "$PROM_PID"
ms_bg "$MS_TMP/recorder.log" "$MS_PY" "$MS_TOP/tests/integration/http_recorder.py" "$REC" \
    "$PROM_PORT" "$MS_TMP/rec" "429,503"
t_ok "recording proxy is up" wait_port "$REC" 10
cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: "web1.example.com", stats_interval: 1s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  rw: { type: prometheus_remote_write, url: "http://127.0.0.1:$REC",
        processors: [ { filter: { exclude: ["test.ooo"] } } ] }
  rw_ooo: { type: prometheus_remote_write, url: "http://127.0.0.1:$PROM_PORT/",
            processors: [ { filter: { include: ["test.ooo"] } } ] }
YAML
cat > "$MS_TMP/bad.yaml" << YAML
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  rw: { type: prometheus_remote_write, compress: gzip }
YAML
out=$(cd "$MS_TOP" && "$MS_BIN" --config-test -c "$MS_TMP/bad.yaml" 2>&1)
t_match "compress other than snappy is a config error" "$out" \
    "bad\.yaml:3:50: forwarders\.rw\.compress: 'gzip' is not one of: snappy"
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "429 from the receiver: retried" \
    ms_wait_log "forwarder rw: POST http://127\.0\.0\.1:$REC/api/v1/write: HTTP 429 \(retry in" 10
t_ok "503 from the receiver: retried" \
    ms_wait_log "forwarder rw: POST http://127\.0\.0\.1:$REC/api/v1/write: HTTP 503 \(retry in" 10

# series 'PROMQL': one line per series, "k=v,k=v value", sorted.
series() {
    prom_query "$1" | "$MS_PY" -c '
import json, sys
out = []
for s in json.load(sys.stdin)["data"]["result"]:
    labels = ",".join("%s=%s" % kv for kv in sorted(s["metric"].items()))
    out.append("%s %s" % (labels, s["value"][1]))
print("\n".join(sorted(out)))'
}
has() { [ "$(series "$1")" = "$2" ]; }
any() { prom_query "$1" | grep -q '"result":\[{'; }
expect() { # DESC QUERY EXPECTED
    if _ms_poll 30 has "$2" "$3"; then
        t_pass "$1"
    else
        t_fail "$1"
        t_diag "query: $2" "expected: $3" "     got: $(series "$2")"
    fi
}
expect "gauge with sanitized label name and full label set" 'test_gauge' \
    '__name__=test_gauge,a_b=x y,host=web1.example.com,role=db 42.5'
expect "counter" 'test_count' '__name__=test_count,host=web1.example.com 7'
expect "metric name starting with a digit and a UTF-8 value" '{__name__="_5xx_rate"}' \
    '_1st=é,__name__=_5xx_rate,host=web1.example.com 0.25'
t_ok "later values of a series arrive" _ms_poll 30 any 'test_runs > 2'

# test_pair: each run sends 1 at t and 2 at t+0.5, one TimeSeries per batch.
pairs() {
    prom_query 'test_pair[5m]' | "$MS_PY" -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
pts = r[0]["values"] if len(r) == 1 else []
whole = [v for t, v in pts if float(t) % 1 == 0]
half = [v for t, v in pts if float(t) % 1 == 0.5]
ok = len(whole) >= 2 and len(half) >= 2 and set(whole) == {"1"} and set(half) == {"2"}
print(len(whole), len(half), sorted(set(whole)), sorted(set(half)))
sys.exit(0 if ok else 1)'
}
t_ok "two samples of one series in a batch: both stored with their timestamps" _ms_poll 30 pairs
t_eq "health samples and events are not written" \
    "$(series 'count({__name__=~"test_health|test_event"})')" ""

t_ok "the first chunk was sent three times (429, 503, then accepted)" \
    cmp "$MS_TMP/rec/body.1" "$MS_TMP/rec/body.3"
cmp -s "$MS_TMP/rec/body.1" "$MS_TMP/rec/body.2" && same12=yes || same12=no
t_eq "the retried body is the same chunk" "$same12" yes
hdrs=$("$MS_PY" -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = r["headers"]
    print(r["n"], r["method"], r["path"], h.get("content-encoding"), h.get("content-type"),
          h.get("x-prometheus-remote-write-version"), h.get("user-agent", "").split("/")[0], r["status"])
' "$MS_TMP/rec/requests.jsonl")
t_match "request 1: headers, answered 429" "$hdrs" \
    '^1 POST /api/v1/write snappy application/x-protobuf 0\.1\.0 moonstat 429$'
t_match "request 3: accepted by prometheus" "$hdrs" \
    '^3 POST /api/v1/write snappy application/x-protobuf 0\.1\.0 moonstat 204$'
t_eq "every request had the remote write headers" \
    "$(printf '%s\n' "$hdrs" | grep -vc ' POST /api/v1/write snappy application/x-protobuf 0\.1\.0 moonstat ')" 0

# out of order: 400 from Prometheus, dropped, counted, not retried
expect "first sample of the out-of-order series stored" 'test_ooo' \
    '__name__=test_ooo,host=web1.example.com 1'
t_ok "out-of-order sample: HTTP 400 logged with Prometheus's message, batch dropped" \
    ms_wait_log "forwarder rw_ooo: POST http://127\.0\.0\.1:$PROM_PORT/api/v1/write: HTTP 400, dropping 1 samples .*out of order" 15
t_ok "dropped samples counted as failed" _ms_poll 30 any \
    'moonstat_forwarder_failed_samples_total{forwarder="rw_ooo"} > 0'
t_not "forwarder rw: no request refused" grep -q "forwarder rw: .*HTTP 4[0-9][0-9], dropping" "$MS_LOG"
t_not "a 400 is never retried" grep -q "forwarder rw_ooo: .*retry in" "$MS_LOG"
t_ok "sent samples counted" _ms_poll 30 any 'moonstat_forwarder_sent_samples_total{forwarder="rw"} > 10'
ms_stop
t_eq "clean exit" "$?" 0
t_done
