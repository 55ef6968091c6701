#!/bin/sh
# tests/integration/test_prometheus.sh - the Prometheus scrape forwarder end
# to end: moonstat runs a check, serves /metrics and /health, a real
# prometheus scrapes it and answers queries with the check's values. Also:
# expiry (a second scrape forwarder with a short `expire`), HEAD and 404, and
# a reload that changes the forwarder keeps the port and the stored series.
. "$(dirname "$0")/lib.sh"
ms_tmpdir

port=$(free_port tcp)
port2=$(free_port tcp)
port3=$(free_port tcp)
mkdir -p "$MS_TMP/checks"
# test.once is sent on the check's first run only: it stays in a store with
# a long expire and leaves one with a short expire. test.wave is a sliding
# window of 30 series (run r sends i = 10r+1 .. 10r+30 with value r), so the
# stores keep adding new series and expiring old ones.
cat > "$MS_TMP/checks/promtest.lua" << 'EOF'
local runs = 0
return { interval = 1, collect = function()
  runs = runs + 1
  if runs == 1 then ms.gauge("test.once", 1) end
  for i = 10 * runs + 1, 10 * runs + 30 do ms.gauge("test.wave", runs, {i = i}) end
  ms.gauge("test.gauge", 42, {role="db"})
  ms.counter("test.requests", 7)
  ms.send_special("test.health", 8, "disk almost full")
end }
EOF

# write_config EXPIRE: the config, with `expire` of forwarder prom.
write_config() {
    cat > "$MS_TMP/config.yaml" << EOF
agent: { hostname: itest, stats_interval: 1s }
paths:
  checks: [$MS_TMP/checks]
  lua: [$MS_TOP/lua]
  forwarders: [$MS_TOP/forwarders]
forwarders:
  prom: { type: prometheus, listen: "127.0.0.1:$port", expire: $1 }
  short: { type: prometheus, listen: "127.0.0.1:$port2", expire: 2s }
  tiny: { type: prometheus, listen: "127.0.0.1:$port3", max_series: 5 }
EOF
}
write_config 5m

metrics_url=http://127.0.0.1:$port/metrics

# has_line URL FIXED-STRING: some line of the page is exactly that string.
has_line() {
    curl -sf --max-time 5 "$1" | grep -qxF -e "$2"
}
# wait_line URL FIXED-STRING [TIMEOUT=15]
wait_line() {
    _n=$((${3:-15} * 5))
    while [ "$_n" -gt 0 ]; do
        has_line "$1" "$2" && return 0
        sleep 0.2
        _n=$((_n - 1))
    done
    echo "no line '$2' in $1; the page:"
    curl -sS --max-time 5 "$1"
    return 1
}

# wait_match URL REGEX [TIMEOUT=15]: some line of the page matches (grep -E).
wait_match() {
    _n=$((${3:-15} * 5))
    while [ "$_n" -gt 0 ]; do
        curl -sf --max-time 5 "$1" | grep -Eq -e "$2" && return 0
        sleep 0.2
        _n=$((_n - 1))
    done
    echo "no line matching '$2' in $1; the page:"
    curl -sS --max-time 5 "$1" | grep -v '^test_wave'
    return 1
}

ms_start "$MS_TMP/config.yaml"
t_ok "moonstat listens on 127.0.0.1:$port" wait_port "$port" 15
t_ok "/metrics serves the check's gauge" \
    wait_line "$metrics_url" 'test_gauge{host="itest",role="db"} 42'

page=$(curl -sS --max-time 5 "$metrics_url")
t_match "HELP line for the gauge" "$page" '^# HELP test_gauge test\.gauge$'
t_match "TYPE gauge" "$page" '^# TYPE test_gauge gauge$'
t_match "TYPE counter" "$page" '^# TYPE test_requests counter$'
t_match "counter value" "$page" '^test_requests\{host="itest"\} 7$'
t_match "health level label" "$page" '^test_health\{host="itest",level="WARNING"\} 8$'
t_eq "one TYPE line per family" "$(printf '%s\n' "$page" | grep -c '^# TYPE test_gauge ')" 1
if printf '%s\n' "$page" | grep -q 'disk almost full'; then
    t_fail "health message is not a label"
else
    t_pass "health message is not a label"
fi

head=$(curl -sS --max-time 5 -D - -o "$MS_TMP/body" "$metrics_url" | tr -d '\r')
t_match "content type" "$head" '^Content-Type: text/plain; version=0\.0\.4; charset=utf-8$'
t_eq "Content-Length is the body's" \
    "$(printf '%s\n' "$head" | sed -n 's/^Content-Length: //p')" "$(wc -c < "$MS_TMP/body" | tr -d ' ')"
hhead=$(curl -sS --max-time 5 -I "$metrics_url" | tr -d '\r')
t_match "HEAD /metrics answers 200" "$hhead" '^HTTP/1\.1 200'
t_eq "unknown path is 404" \
    "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")" 404
t_eq "POST is 405" \
    "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -d x "$metrics_url")" 405

health=$(curl -sS --max-time 5 -D "$MS_TMP/health.head" "http://127.0.0.1:$port/health")
t_match "/health is JSON" "$(tr -d '\r' < "$MS_TMP/health.head")" '^Content-Type: application/json$'
t_match "/health names the check" "$health" '"promtest":\{'
t_match "/health says it runs fine" "$health" '"promtest":\{[^}]*"status":"ok"'
t_ok "/health parses as JSON" "$MS_PY" -c 'import json,sys; json.loads(sys.argv[1])' "$health"

# --- expiry: test.once is no longer served by the 2 s store, still by the 5 m one
sleep 4
t_ok "short expire: gauge still updated" \
    has_line "http://127.0.0.1:$port2/metrics" 'test_gauge{host="itest",role="db"} 42'
t_not "short expire: the series sent once is gone" \
    has_line "http://127.0.0.1:$port2/metrics" 'test_once{host="itest"} 1'
t_ok "long expire: the series sent once is kept" has_line "$metrics_url" 'test_once{host="itest"} 1'

# wave_ok URL: the newest window of test.wave is whole: with R the highest
# value served, every i in 10R+1..10R+30 is there with value R (a store that
# lost entries while expiring others would miss some).
wave_ok() {
    curl -sf --max-time 5 "$1" | "$MS_PY" -c '
import re, sys
waves = {}
for line in sys.stdin:
    m = re.match(r"test_wave\{.*i=\"(\d+)\".*\} (\d+)$", line)
    if m:
        waves[int(m.group(1))] = int(m.group(2))
if not waves:
    sys.exit("no test_wave series")
r = max(waves.values())
missing = [i for i in range(10 * r + 1, 10 * r + 31) if waves.get(i) != r]
if missing:
    sys.exit("run %d: missing or stale i=%s" % (r, missing))
print("run %d: %d series" % (r, len(waves)))'
}
t_ok "short expire: newest wave complete while old series expire" wave_ok "http://127.0.0.1:$port2/metrics"
t_ok "long expire: newest wave complete" wave_ok "$metrics_url"
nwave=$(curl -sf --max-time 5 "http://127.0.0.1:$port2/metrics" | grep -c '^test_wave{')
t_ok "short expire: old waves dropped ($nwave series left)" test "$nwave" -le 60

# --- max_series: the tiny store keeps 5 series and counts the rest as failed
t_eq "max_series: 5 series served" \
    "$(curl -sf --max-time 5 "http://127.0.0.1:$port3/metrics" | grep -vc '^#')" 5
t_ok "max_series: the drops are counted" wait_match "$metrics_url" \
    '^moonstat_forwarder_failed_samples_total\{forwarder="tiny"[^}]*\} [1-9]'

# --- a real prometheus scrapes it
if t_ok "prometheus starts" prom_start "127.0.0.1:$port"; then
    t_ok "prometheus sees the target up" prom_wait_up 30
    t_eq "target healthy, no scrape error" "$(prom_target)" "$(printf 'up\t')"
    # prom_wait_q QUERY VALUE: wait until the query gives VALUE.
    prom_wait_q() {
        _n=50
        while [ "$_n" -gt 0 ]; do
            [ "$(prom_value "$1" 2> /dev/null)" = "$2" ] && return 0
            sleep 0.2
            _n=$((_n - 1))
        done
        echo "query $1 gave: $(prom_value "$1" 2>&1)"
        return 1
    }
    t_ok 'test_gauge{role="db"} is 42 in prometheus' prom_wait_q 'test_gauge{role="db"}' 42
    t_ok "test_requests is 7 in prometheus" prom_wait_q 'test_requests' 7
    t_ok 'test_health{level="WARNING"} is 8 in prometheus' \
        prom_wait_q 'test_health{level="WARNING"}' 8
    t_ok "prometheus holds the four test series" \
        prom_wait_q 'count({job="moonstat",__name__=~"test_(gauge|requests|health|once)"})' 4
else
    t_fail "prometheus scrapes moonstat (prometheus did not start)"
fi

# --- reload with a changed forwarder: same port, the stored series stay
write_config 10m
kill -HUP "$MS_PID"
t_ok "reload done" ms_wait_log 'reload done' 10
t_ok "forwarder prom restarted" ms_wait_log 'forwarder prom: stopped' 10
t_ok "after reload the series sent once is still served" \
    has_line "$metrics_url" 'test_once{host="itest"} 1'
t_ok "after reload the gauge is served" \
    has_line "$metrics_url" 'test_gauge{host="itest",role="db"} 42'

ms_stop 15
t_eq "moonstat exits cleanly" "$?" 0
t_done
