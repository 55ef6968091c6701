#!/bin/sh
# forwarders/datadog.lua over the http transport against
# tests/integration/dd_receiver.py, a strict receiver of Datadog's
# /api/v1/series, /api/v2/series, /api/v1/check_run and /api/v1/events that
# checks the DD-API-KEY header and answers like the intake: gauges, counts
# (increases of a counter, with their interval) and rates arrive exactly over
# v1 and v2; health samples arrive as service checks and events as events
# (parts of one batch going to other endpoints); a 500 is retried; a bad key
# gets 403, the batch is dropped and counted; the key is never logged; the
# site option builds the URL; bodies are gzip-compressed by default.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/web.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("test.gauge", 42.5, { role = "db server" })
  ms.gauge("test.runs", n)
  ms.counter("test.total", n * 7)
  ms.rate("test.persec", n * 9)
  ms.send_special("test.health", 8, 'almost "full"')
  if n == 2 then ms.event("test.deploy", "v2 is out") end
end }
LUA
V1=$(free_port tcp)
V2=$(free_port tcp)
BAD=$(free_port tcp)
KEY=dd-key-0123456789abcdef
cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: "web1.example.com", stats_interval: 1s, shutdown_timeout: 500ms }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  # retry: short waits, so the connection failures, the 500 and the 429 do
  # not push the first delivery past the polls' time limits on a busy machine
  dd1: { type: datadog, url: "http://127.0.0.1:$V1", api_key: $KEY, compress: "",
         retry: { base: 200ms, cap: 1s } }
  dd2: { type: datadog, url: "http://127.0.0.1:$V2/", api_key: $KEY, api_version: v2,
         events: false, retry: { base: 200ms, cap: 1s } }
  ddbad: { type: datadog, url: "http://127.0.0.1:$BAD", api_key: wrong-secret-key, compress: "" }
  ddsite: { type: datadog, site: datadoghq.invalid, api_key: $KEY, compress: "" }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "site builds the URL" ms_wait_log 'forwarder ddsite: posting to https://api\.datadoghq\.invalid/api/v1/series' 5
t_ok "v1 down: connection error logged, retrying" \
    ms_wait_log "forwarder dd1: POST http://127\.0\.0\.1:$V1/api/v1/series: .*retry in" 10
sleep 1
before=$(date +%s)
# v1: the first request gets a 500, the second a 429 (both must be retried),
# then all is accepted.
ms_bg "$MS_TMP/v1.log" "$MS_PY" "$MS_TOP/tests/integration/dd_receiver.py" "$V1" "$MS_TMP/v1.jsonl" "$KEY" 500,429
ms_bg "$MS_TMP/v2.log" "$MS_PY" "$MS_TOP/tests/integration/dd_receiver.py" "$V2" "$MS_TMP/v2.jsonl" "$KEY"
ms_bg "$MS_TMP/bad.log" "$MS_PY" "$MS_TOP/tests/integration/dd_receiver.py" "$BAD" "$MS_TMP/bad.jsonl" "$KEY"
wait_port "$V1" 10
wait_port "$V2" 10
wait_port "$BAD" 10

has() { grep -q -e "$2" "$MS_TMP/$1.jsonl" 2> /dev/null; }
H='"host": "web1.example.com"'
t_ok "v1: a gauge arrives exactly, host as the host field, tags as k:v" _ms_poll 30 has v1 \
    "^{$H, \"interval\": null, \"metric\": \"test.gauge\", \"path\": \"/api/v1/series\", \"tags\": \[\"role:db_server\"\], \"ts\": [0-9]\{10\}, \"type\": \"gauge\", \"value\": 42.5}"
t_ok "v1: a counter arrives as a count of its increase with the interval" _ms_poll 30 has v1 \
    "^{$H, \"interval\": 1, \"metric\": \"test.total\", \"path\": \"/api/v1/series\", \"tags\": \[\], \"ts\": [0-9]*, \"type\": \"count\", \"value\": 7}"
t_not "v1: no count other than 7 (a counter's first sample only sets the base)" \
    grep -q '"metric": "test.total".*"value": \([0-68-9]\|7[0-9]\)' "$MS_TMP/v1.jsonl"
t_ok "v1: a rate arrives as a rate with an interval" _ms_poll 30 has v1 \
    '"interval": [1-9][0-9]*, "metric": "test.persec", .*"type": "rate", "value": [1-9][0-9.]*}'
t_ok "v1: health arrives as a service check (8 -> status 1 WARNING)" _ms_poll 30 has v1 \
    "^{\"check\": \"test.health\", \"host_name\": \"web1.example.com\", \"message\": \"almost \\\\\"full\\\\\"\", \"path\": \"/api/v1/check_run\", \"status\": 1, \"tags\": \[\], \"timestamp\": [0-9]\{10\}}"
t_ok "v1: the event arrives at /api/v1/events" _ms_poll 30 has v1 \
    "\"alert_type\": \"info\", \"date_happened\": [0-9]*, $H, \"path\": \"/api/v1/events\", \"tags\": \[\], \"text\": \"v2 is out\", \"title\": \"test.deploy\"}"
t_ok "v2: a gauge arrives as type 3 with the host as a resource" _ms_poll 30 has v2 \
    "^{$H, \"interval\": null, \"metric\": \"test.gauge\", \"path\": \"/api/v2/series\", \"tags\": \[\"role:db_server\"\], \"ts\": [0-9]\{10\}, \"type\": 3, \"value\": 42.5}"
t_ok "v2: a counter arrives as type 1 with the interval" _ms_poll 30 has v2 \
    '"interval": 1, "metric": "test.total", "path": "/api/v2/series", "tags": \[\], "ts": [0-9]*, "type": 1, "value": 7}'
t_ok "v2: a rate arrives as type 2" _ms_poll 30 has v2 '"interval": [1-9][0-9]*, "metric": "test.persec", .*"type": 2, "value": [1-9][0-9.]*}'
t_ok "v2: service checks go to /api/v1/check_run" _ms_poll 30 has v2 '"check": "test.health", .*"status": 1'
t_not "v2 with events: false: no event sent" has v2 '/api/v1/events'
t_ok "v2: bodies gzip-compressed by default (the receiver decompressed them)" \
    has v2 '"encoding": "gzip", "key_ok": true, "request": "/api/v2/series", "status": 202'
t_ok "v1 with compress \"\": plain bodies" has v1 '"encoding": null, "key_ok": true, "request": "/api/v1/series", "status": 202'
t_eq "every request passed the strict validation" \
    "$(grep -h '"error": "' "$MS_TMP/v1.jsonl" "$MS_TMP/v2.jsonl" | head -3)" ""
t_ok "every request carried the API key" test -z "$(grep -h '"key_ok": false' "$MS_TMP/v1.jsonl" "$MS_TMP/v2.jsonl")"
t_ok "the scripted 500 was answered once" has v1 '"status": 500'
t_ok "the 500 was logged and retried" ms_wait_log "forwarder dd1: POST .*/api/v1/(series|check_run): HTTP 500 \\(retry in" 5
t_ok "the 429 was logged and retried" ms_wait_log "forwarder dd1: POST .*/api/v1/(series|check_run): HTTP 429 \\(retry in" 5
first=$("$MS_PY" -c '
import json, sys
ts = [json.loads(l)["ts"] for l in open(sys.argv[1]) if "test.runs" in l]
print(min(ts))' "$MS_TMP/v1.jsonl")
t_ok "samples queued while the intake was down (and at the 500) arrived ($first < $before)" \
    test "${first:-9999999999}" -lt "$before"
runs() {
    "$MS_PY" -c '
import json, sys
vals = sorted(json.loads(l)["value"] for l in open(sys.argv[1]) if "\"test.runs\"" in l)
print(" ".join(str(v) for v in vals[:6]))' "$MS_TMP/v1.jsonl"
}
six_runs() { [ "$(runs | wc -w)" -ge 6 ]; }
_ms_poll 20 six_runs
t_eq "each sample arrived exactly once (none lost or repeated by the 500)" "$(runs)" "1 2 3 4 5 6"
t_ok "bad key: 403 drops the batch and logs the answer" \
    ms_wait_log "forwarder ddbad: POST http://127\.0\.0\.1:$BAD/api/v1/series: HTTP 403, dropping [0-9]* samples .*Forbidden" 10
t_ok "bad key: the drop is counted in moonstat_forwarder_failed_samples_total" _ms_poll 30 has v1 \
    '"metric": "moonstat_forwarder_failed_samples_total", "path": "/api/v1/series", "tags": \["forwarder:ddbad"\], "ts": [0-9]*, "type": "count", "value": [1-9]'
t_ok "sent samples counted" _ms_poll 30 has v1 \
    '"metric": "moonstat_forwarder_sent_samples_total", "path": "/api/v1/series", "tags": \["forwarder:dd1"\], "ts": [0-9]*, "type": "count", "value": [1-9]'
# The receiver itself is strict (else the checks above would prove little).
post() { # PORT PATH BODY [KEY] [gzip]: print the status of one POST
    if [ "${5:-}" = gzip ]; then
        printf '%s' "$3" | gzip -c | curl -s -o /dev/null -w '%{http_code}' -H "DD-API-KEY: ${4:-$KEY}" \
            -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' --data-binary @- \
            "http://127.0.0.1:$1$2"
    else
        curl -s -o /dev/null -w '%{http_code}' -H "DD-API-KEY: ${4:-$KEY}" \
            -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$1$2"
    fi
}
OK1='{"series":[{"metric":"a.b","type":"gauge","points":[[1700000000,1]],"tags":["k:v"]}]}'
t_eq "receiver: a valid gzip body is accepted (202)" "$(post "$V2" /api/v1/series "$OK1" "$KEY" gzip)" 202
t_eq "receiver: a wrong key gets 403" "$(post "$V2" /api/v1/series "$OK1" nope)" 403
t_eq "receiver: bad JSON gets 400" "$(post "$V2" /api/v1/series '{"series":[')" 400
t_eq "receiver: a metric name starting with a digit gets 400" \
    "$(post "$V2" /api/v1/series '{"series":[{"metric":"1a","points":[[1700000000,1]]}]}')" 400
t_eq "receiver: a count without interval gets 400" \
    "$(post "$V2" /api/v1/series '{"series":[{"metric":"a","type":"count","points":[[1700000000,1]]}]}')" 400
t_eq "receiver: a tag with a space gets 400" \
    "$(post "$V2" /api/v1/series '{"series":[{"metric":"a","points":[[1700000000,1]],"tags":["a b"]}]}')" 400
t_eq "receiver: a service check with status 4 gets 400" \
    "$(post "$V2" /api/v1/check_run '[{"check":"a","host_name":"h","status":4,"tags":[]}]')" 400
t_eq "receiver: a v2 point in v1 form gets 400" \
    "$(post "$V2" /api/v2/series '{"series":[{"metric":"a","type":3,"points":[[1700000000,1]]}]}')" 400
ms_stop
t_eq "clean exit" "$?" 0
t_not "the API keys are not in the log" grep -q "$KEY\|wrong-secret-key" "$MS_LOG"
t_done
