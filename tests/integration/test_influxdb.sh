#!/bin/sh
# The influxdb encoder over the http transport, into the real InfluxDB 1.x
# server (Debian influxdb): moonstat starts before influxd (requests fail and
# are retried, the data stays queued), influxd starts with a temp config and
# data dir on free loopback ports, the database is created over its HTTP API,
# and the points are queried back: values, integer counters, and measurement
# names, tag keys and tag values that need escaping. A forwarder writing to
# a missing database gets a 404: the batch is dropped, InfluxDB's error is
# logged and the samples are counted as failed.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/web.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("test gauge,x", 42.5, { ["a b"] = "x=y,z", role = "db" })
  ms.gauge("test.runs", n)
  ms.counter("test.count", 7)
  ms.send_special("test.health", 8, 'almost "full"')
end }
LUA
# The database is created first, then influxd is stopped, so that moonstat
# starts with the server down and its queued data has a database to go to.
t_ok "influxd starts" influx_start
t_ok "database created over the HTTP API" influx_create_db "ms db"
influx_stop
cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: "web1.example.com", stats_interval: 1s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  influx: { type: influxdb, url: "http://127.0.0.1:$INFLUX_PORT", db: "ms db" }
  nodb: { type: influxdb, url: "http://127.0.0.1:$INFLUX_PORT", db: missing }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "influxdb down: error logged, retrying" \
    ms_wait_log "forwarder influx: POST http://127\.0\.0\.1:$INFLUX_PORT/write\?db=ms%20db&precision=ns: .*retry in" 10
sleep 1
before=$(date +%s)
t_ok "influxd restarts" influx_start

# has_row QUERY REGEX: some row of the query's answer matches REGEX.
rows() { influx_rows "ms db" "$1"; }
has_row() { rows "$1" | grep -q "$2"; }
t_ok "escaped measurement, tag key and tag value read back" _ms_poll 30 has_row \
    'SELECT * FROM "test gauge,x"' '"a b": "x=y,z", "host": "web1.example.com", "role": "db", "time": "[^"]*", "value": 42.5}'
t_ok "integer counter stored as an integer" _ms_poll 30 has_row \
    'SELECT * FROM "test.count"' '"value": 7}'
t_eq "counter field type is integer" \
    "$(influx_query "ms db" 'SHOW FIELD KEYS FROM "test.count"' | grep -o '"integer"')" '"integer"'
t_ok "health: value and message with quotes" _ms_poll 30 has_row \
    'SELECT * FROM "test.health"' '"message": "almost \\"full\\"", "time": "[^"]*", "value": 8}'
first=$(rows 'SELECT first(value) FROM "test.runs"' | "$MS_PY" -c '
import json, sys, datetime
t = json.loads(sys.stdin.readline())["time"]
print(int(datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()))')
t_ok "samples queued while influxd was down arrived ($first < $before)" test "${first:-9999999999}" -lt "$before"
t_ok "missing database: 404 logged with InfluxDB's message, batch dropped" \
    ms_wait_log "forwarder nodb: POST .*/write\?db=missing&precision=ns: HTTP 404, dropping [0-9]* samples .*database not found" 15
t_ok "dropped samples counted as failed" _ms_poll 30 has_row \
    'SELECT last(value) FROM moonstat_forwarder_failed_samples_total WHERE forwarder = '"'"'nodb'"'"'' '"last": [1-9]'
t_ok "sent samples counted" _ms_poll 30 has_row \
    'SELECT last(value) FROM moonstat_forwarder_sent_samples_total WHERE forwarder = '"'"'influx'"'"'' '"last": [1-9]'
ms_stop
t_eq "clean exit" "$?" 0
t_done
