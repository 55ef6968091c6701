#!/bin/sh
# The http transport's `compress` option against the real InfluxDB 1.x
# (Debian influxdb): an influxdb forwarder with compress: gzip writes through
# a recording proxy (http_recorder.py), so the test sees what went over the
# wire: Content-Encoding: gzip and a body that gunzips to line protocol;
# InfluxDB decodes it and the points are queried back, with the escaped
# names and tags. A forwarder without compress sends plain bodies beside it.
# A bad compress value is a config error with line:col; a libsnappy.so.1
# without snappy's C API stops the start with a message.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks" "$MS_TMP/rec"
cat > "$MS_TMP/checks/web.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("test gauge,x", 42.5, { ["a b"] = "x=y,z", role = "db" })
  ms.gauge("test.runs", n)
  ms.counter("test.count", 7)
end }
LUA
REC=$(free_port tcp)
t_ok "influxd starts" influx_start
for db in gz plain; do
    influx_create_db "$db" || t_fail "create database $db"
done
ms_bg "$MS_TMP/recorder.log" "$MS_PY" "$MS_TOP/tests/integration/http_recorder.py" "$REC" \
    "$INFLUX_PORT" "$MS_TMP/rec"
t_ok "recording proxy is up" wait_port "$REC" 10

# A bad value is refused before anything starts.
cat > "$MS_TMP/bad.yaml" << YAML
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  influx: { type: influxdb, url: "http://127.0.0.1:$INFLUX_PORT",
            compress: zstd }
YAML
out=$(cd "$MS_TOP" && "$MS_BIN" --config-test -c "$MS_TMP/bad.yaml" 2>&1)
t_match "compress: zstd is a config error with line:col" "$out" \
    "bad\.yaml:4:23: forwarders\.influx\.compress: 'zstd' is not one of: , gzip, snappy"

# libsnappy is loaded when a snappy forwarder starts: one that is not the
# real library (an empty one first in LD_LIBRARY_PATH) stops the start with
# a message naming the forwarder.
mkdir -p "$MS_TMP/fakelib"
echo 'int not_snappy(void) { return 0; }' > "$MS_TMP/fakelib/x.c"
cc -shared -fPIC -o "$MS_TMP/fakelib/libsnappy.so.1" "$MS_TMP/fakelib/x.c"
cat > "$MS_TMP/snappy.yaml" << YAML
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  sn: { type: influxdb, url: "http://127.0.0.1:$INFLUX_PORT", compress: snappy }
YAML
out=$(cd "$MS_TOP" && LD_LIBRARY_PATH="$MS_TMP/fakelib" timeout 10 "$MS_BIN" -c "$MS_TMP/snappy.yaml" 2>&1)
rc=$?
t_eq "no usable libsnappy: moonstat does not start" "$rc" 1
t_match "... and says why" "$out" "forwarder sn: compress snappy: libsnappy\.so\.1 lacks the snappy C API"

cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: "web1.example.com", stats_interval: 1s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  gz: { type: influxdb, url: "http://127.0.0.1:$REC", db: gz, compress: gzip }
  plain: { type: influxdb, url: "http://127.0.0.1:$INFLUX_PORT", db: plain }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10

# has_row DB QUERY REGEX: some row of the query's answer matches REGEX.
has_row() { influx_rows "$1" "$2" | grep -q "$3"; }
t_ok "gzip: escaped measurement, tag key and tag value read back from InfluxDB" _ms_poll 30 has_row gz \
    'SELECT * FROM "test gauge,x"' '"a b": "x=y,z", "host": "web1.example.com", "role": "db", "time": "[^"]*", "value": 42.5}'
t_ok "gzip: integer counter read back" _ms_poll 30 has_row gz 'SELECT * FROM "test.count"' '"value": 7}'
t_ok "no compression: the same points" _ms_poll 30 has_row plain \
    'SELECT * FROM "test gauge,x"' '"a b": "x=y,z", "host": "web1.example.com", "role": "db", "time": "[^"]*", "value": 42.5}'

# What went over the wire: every request gzip, each body gunzips to lines.
wire=$("$MS_PY" -c '
import gzip, json, os, sys
d = sys.argv[1]
for line in open(os.path.join(d, "requests.jsonl")):
    r = json.loads(line)
    raw = open(os.path.join(d, "body.%d" % r["n"]), "rb").read()
    text = gzip.decompress(raw).decode()
    lines = text.splitlines()
    good = all(" value=" in l for l in lines) and len(lines) > 0
    print(r["path"], r["headers"].get("content-encoding"), raw[:2].hex(), r["status"],
          "lines-ok" if good else "lines-BAD", "smaller" if len(raw) < len(text) else "bigger")
' "$MS_TMP/rec")
t_match "requests carry Content-Encoding: gzip, gzip bodies that gunzip to line protocol" "$wire" \
    '^/write\?db=gz&precision=ns gzip 1f8b 204 lines-ok'
t_eq "every request was gzip and accepted" \
    "$(printf '%s\n' "$wire" | grep -vc '^/write?db=gz&precision=ns gzip 1f8b 204 lines-ok')" 0
t_match "a batch with many lines shrinks" "$wire" ' smaller$'
t_ok "sent samples counted for gz" _ms_poll 30 has_row gz \
    'SELECT last(value) FROM moonstat_forwarder_sent_samples_total WHERE forwarder = '"'"'gz'"'"'' '"last": [1-9]'
ms_stop
t_eq "clean exit" "$?" 0
t_done
