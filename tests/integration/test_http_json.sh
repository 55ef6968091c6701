#!/bin/sh
# The http transport with the opentsdb and kairosdb encoders, against
# tests/integration/json_receiver.py, a strict receiver of OpenTSDB's
# /api/put and KairosDB's /api/v1/datapoints JSON: values and tags arrive as
# sent; a 500 is retried (the batch stays queued and arrives later); a 400
# drops the batch, logs the body and counts moonstat_forwarder_failed_*;
# basic auth and extra headers reach the server; while the server is down
# data queues and arrives once it is up. influxdb2 over HTTPS: the token
# header, TLS verified with ca_file, insecure skipping verification, an
# unverifiable certificate refused (retried), a wrong token (401) dropped.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/web.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("test.gauge", 42.5, { role = "db server" })
  ms.gauge("test.runs", n)
  ms.counter("test.count", 7)
end }
LUA
TSDB=$(free_port tcp)
KAIROS=$(free_port tcp)
INFLUX2=$(free_port tcp)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$MS_TMP/key.pem" -out "$MS_TMP/cert.pem" \
    -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2> /dev/null
cat > "$MS_TMP/config.yaml" << YAML
# shutdown_timeout: influx2unverified never drains; the stop must not wait long.
agent: { hostname: "web1.example.com", stats_interval: 1s, shutdown_timeout: 500ms }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  tsdb: { type: opentsdb, url: "http://127.0.0.1:$TSDB/", user: alice, password: s3cret-pw,
          headers: { X-Test: hello } }
  tsdbms: { type: opentsdb, url: "http://127.0.0.1:$TSDB", milliseconds: true }
  kairos: { type: kairosdb, url: "http://127.0.0.1:$KAIROS", ttl: 1h }
  influx2: { type: influxdb2, url: "https://127.0.0.1:$INFLUX2", org: "my org", bucket: b1,
             token: tok-123, ca_file: "$MS_TMP/cert.pem" }
  influx2insecure: { type: influxdb2, url: "https://localhost:$INFLUX2", org: o, bucket: b2,
                     token: tok-123, insecure: true }
  influx2unverified: { type: influxdb2, url: "https://127.0.0.1:$INFLUX2", org: o, bucket: b3,
                       token: tok-123 }
  influx2badtoken: { type: influxdb2, url: "https://127.0.0.1:$INFLUX2", org: o, bucket: b4,
                     token: wrong-secret, ca_file: "$MS_TMP/cert.pem" }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "opentsdb down: connection error logged, retrying" \
    ms_wait_log "forwarder tsdb: POST http://127\.0\.0\.1:$TSDB/api/put\?details: .*retry in" 10
sleep 1
before=$(date +%s)
# OpenTSDB side: the first request gets a 500 (must be retried), then all is accepted.
ms_bg "$MS_TMP/tsdb.log" "$MS_PY" "$MS_TOP/tests/integration/json_receiver.py" "$TSDB" "$MS_TMP/tsdb.jsonl" 500
# KairosDB side: the first request gets a 400 (must be dropped and counted).
ms_bg "$MS_TMP/kairos.log" "$MS_PY" "$MS_TOP/tests/integration/json_receiver.py" "$KAIROS" "$MS_TMP/kairos.jsonl" 400
ms_bg "$MS_TMP/influx2.log" "$MS_PY" "$MS_TOP/tests/integration/json_receiver.py" "$INFLUX2" \
    "$MS_TMP/influx2.jsonl" "" tok-123 "$MS_TMP/cert.pem" "$MS_TMP/key.pem"
wait_port "$TSDB" 10
wait_port "$INFLUX2" 10
wait_port "$KAIROS" 10

has() { grep -q "$2" "$MS_TMP/$1.jsonl" 2> /dev/null; }
t_ok "opentsdb: a gauge arrives with its tags" _ms_poll 30 has tsdb \
    '"name": "test.gauge", "path": "/api/put", "tags": {"host": "web1.example.com", "role": "db_server"}, "ts": [0-9]\{10\}, "value": 42.5}'
t_ok "opentsdb ms: timestamps in milliseconds" _ms_poll 30 has tsdb '"name": "test.runs", .*"ts": [0-9]\{13\}'
t_ok "kairosdb: a gauge arrives with its tags and ttl" _ms_poll 30 has kairos \
    '"name": "test.gauge", "path": "/api/v1/datapoints", "tags": {"host": "web1.example.com", "role": "db server"}, "ts": [0-9]\{13\}, "ttl": 3600, "value": 42.5}'
t_ok "opentsdb: counter value" _ms_poll 30 has tsdb '"name": "test.count", .*"value": 7}'
t_eq "every request passed the strict validation" \
    "$(grep -h '"error": "' "$MS_TMP/tsdb.jsonl" "$MS_TMP/kairos.jsonl" | head -3)" ""
t_ok "the scripted 500 was answered once" has tsdb '"status": 500'
t_ok "the 500 was logged and retried" ms_wait_log "forwarder tsdb(ms)?: POST .*: HTTP 500 \\(retry in" 5
first=$("$MS_PY" -c '
import json, sys
ts = [json.loads(l)["ts"] for l in open(sys.argv[1]) if "test.runs" in l]
print(min(t for t in ts if t < 10**10))' "$MS_TMP/tsdb.jsonl")
t_ok "samples queued while opentsdb was down (and at the 500) arrived ($first < $before)" \
    test "${first:-9999999999}" -lt "$before"
t_ok "basic auth sent" has tsdb '"auth": "Basic YWxpY2U6czNjcmV0LXB3"'
t_ok "extra header sent" has tsdb '"x": "hello"'
t_ok "content type from the encoder" has kairos '"ctype": "application/json"'
t_ok "kairosdb 400: batch dropped, body logged" \
    ms_wait_log "forwarder kairos: POST http://127\.0\.0\.1:$KAIROS/api/v1/datapoints: HTTP 400, dropping [0-9]* samples .*scripted" 10
t_ok "kairosdb 400 counted in moonstat_forwarder_failed_samples_total" _ms_poll 30 has kairos \
    '"name": "moonstat_forwarder_failed_samples_total", "path": "/api/v1/datapoints", "tags": {"forwarder": "kairos", "host": "web1.example.com"}, "ts": [0-9]*, "ttl": 3600, "value": [1-9]'
t_ok "sent samples counted" _ms_poll 30 has tsdb \
    '"name": "moonstat_forwarder_sent_samples_total", .*"forwarder": "tsdb".*"value": [1-9]'
t_ok "influxdb2: line protocol over HTTPS (ca_file), org and bucket from the options" \
    _ms_poll 30 has influx2 '"bucket": "b1", "line": "test\.gauge,host=web1\.example\.com,role=db\\\\ server value=42\.5 [0-9]\{19\}", "org": "my org"'
t_ok "influxdb2: request line" has influx2 '"request": "/api/v2/write?org=my%20org&bucket=b1&precision=ns"'
t_ok "influxdb2: Authorization: Token" has influx2 '"auth": "Token tok-123"'
t_ok "influxdb2 insecure: written without verification" _ms_poll 30 has influx2 '"bucket": "b2", "line": "test\.count'
t_ok "influxdb2 unverified certificate: refused and retried" \
    ms_wait_log "forwarder influx2unverified: POST https://127\.0\.0\.1:$INFLUX2/api/v2/write\?org=o&bucket=b3&precision=ns: .*certificate.*retry in" 10
t_not "influxdb2 unverified certificate: nothing written" has influx2 '"bucket": "b3"'
t_ok "influxdb2 wrong token: 401 drops the batch" \
    ms_wait_log "forwarder influx2badtoken: POST .*: HTTP 401, dropping [0-9]* samples .*unauthorized" 10
t_not "the password is not in the log" grep -q 's3cret-pw' "$MS_LOG"
t_not "no token is in the log" grep -q 'tok-123\|wrong-secret' "$MS_LOG" grep -q 's3cret-pw' "$MS_LOG"
ms_stop
t_eq "clean exit" "$?" 0
t_done
