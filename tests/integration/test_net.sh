#!/bin/sh
# The checks' non-blocking network API against real peers: nginx stub_status
# (with basic auth) and redis INFO through checks/nginx.lua and
# checks/redis.lua, http_check, ms.tcp/unix/udp and ms.json; a slow HTTP
# server does not stall the loop (a 0.2 s check keeps its schedule), time
# outs give nil, err, a check killed at its timeout while waiting on a
# socket closes it, and a refused connection says so.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"

NGINX_TLS_DIR=$MS_TMP/tls
export NGINX_TLS_DIR
t_ok "test certificates (CA, server, client)" tls_certs "$NGINX_TLS_DIR" 30
t_ok "nginx starts (stub_status, basic auth, HTTPS with client certificates)" nginx_start stats s3cret
t_ok "redis-server starts" redis_start
redis-cli -p "$REDIS_PORT" set k1 v1 > /dev/null
redis-cli -p "$REDIS_PORT" set k2 v2 > /dev/null
SLOW_PORT=$(free_port tcp)
HOLD_PORT=$(free_port tcp)
UDP_PORT=$(free_port udp)
DEAD_PORT=$(free_port tcp)
ms_bg "$MS_TMP/peers.out" "$MS_PY" "$MS_TOP/tests/integration/netpeers.py" \
    "$SLOW_PORT" 2 "$HOLD_PORT" "$MS_TMP/hold.log" "$MS_TMP/peer.sock" "$UDP_PORT"
t_ok "test peers start" wait_port "$SLOW_PORT" 10

cat > "$MS_TMP/checks/fast.lua" << 'LUA'
return { interval = 0.2, collect = function() ms.gauge("fast.tick", 1) end }
LUA
cat > "$MS_TMP/checks/slowhttp.lua" << LUA
-- waits 2 s for its answer; the loop must go on meanwhile
return { interval = 1, timeout = 5, collect = function()
  local t0 = ms.monotime()
  local status, headers, body = ms.http.get("http://127.0.0.1:$SLOW_PORT/", { timeout = 4 })
  if not status then error(headers, 0) end
  ms.gauge("slow.status", status, { body = body, xtest = headers["x-test"] })
  ms.gauge("slow.latency", ms.monotime() - t0)
end }
LUA
cat > "$MS_TMP/checks/httptimeout.lua" << LUA
return { interval = 1, timeout = 5, collect = function()
  local status, err = ms.http.request{ url = "http://127.0.0.1:$SLOW_PORT/t", timeout = 0.5 }
  ms.event("httptimeout.result", tostring(status) .. " " .. tostring(err))
end }
LUA
cat > "$MS_TMP/checks/hold.lua" << LUA
-- killed at its 0.5 s timeout while waiting on a socket that never answers
return { interval = 1, timeout = 0.5, collect = function()
  local s = assert(ms.tcp("127.0.0.1", $HOLD_PORT, { timeout = 30 }))
  ms.log.info("hold connected")
  s:receive("*l")
  ms.gauge("hold.never", 1)
end }
LUA
cat > "$MS_TMP/checks/rcvtimeout.lua" << LUA
return { interval = 1, timeout = 5, collect = function()
  local s = assert(ms.tcp("localhost", $HOLD_PORT, { timeout = 0.3 }))
  local data, err, partial = s:receive(10)
  ms.event("rcvtimeout.result", tostring(data) .. " " .. tostring(err))
  s:close()
  local ok, cerr = s:send("x")
  ms.event("rcvtimeout.closed", tostring(ok) .. " " .. tostring(cerr))
end }
LUA
cat > "$MS_TMP/checks/refused.lua" << LUA
return { interval = 1, collect = function()
  local s, err = ms.tcp("127.0.0.1", $DEAD_PORT)
  if not s then error(err, 0) end
end }
LUA
cat > "$MS_TMP/checks/unixudp.lua" << LUA
return { interval = 1, collect = function()
  local u = assert(ms.unix("$MS_TMP/peer.sock"))
  local line = assert(u:receive("*l"))
  local rest, err = u:receive("*a")
  ms.event("unix.line", line .. "|" .. tostring(rest))
  local d = assert(ms.udp("127.0.0.1", $UDP_PORT, { timeout = 2 }))
  assert(d:send("ping"))
  ms.event("udp.reply", assert(d:receive()))
  local j = ms.json.decode('{"a":{"b":[10,20.5]},"s":"x"}')
  ms.gauge("json.value", j.a.b[2])
  local bad, jerr = ms.json.decode("{nope")
  ms.event("json.error", tostring(bad) .. " " .. tostring(jerr))
  ms.event("json.encoded", ms.json.encode({ k = "v" }))
end }
LUA
cat > "$MS_TMP/checks/atload.lua" << LUA
local s, err = ms.tcp("127.0.0.1", $DEAD_PORT)
local msg = tostring(err)
return { interval = 1, collect = function() ms.event("atload.result", msg) end }
LUA

cat > "$MS_TMP/checks/limits.lua" << LUA
return { interval = 1, collect = function()
  ms.event("limits.max_body", tostring(select(2, ms.http.get("http://127.0.0.1:$NGINX_PORT/status", { max_body = 10 }))))
  ms.event("limits.option", tostring(select(2, ms.http.get("http://127.0.0.1:$NGINX_PORT/status", { timout = 1 }))))
  local st, h = ms.http.request{ method = "HEAD", url = "http://127.0.0.1:$NGINX_PORT/status" }
  ms.event("limits.head", tostring(st) .. " " .. tostring(h["content-type"]))
  ms.event("limits.udpname", tostring(select(2, ms.udp("no-such-host.invalid", 9))))
end }
LUA
{
    echo "agent: { stats_interval: 1s }"
    ms_paths "$MS_TMP/checks" "$MS_TOP/checks"
    cat << EOF
checks:
  cpu: { enabled: false }
  load: { enabled: false }
  memory: { enabled: false }
  nginx: { url: "http://127.0.0.1:$NGINX_PORT/auth_status", user: stats, password: s3cret, interval: 1s }
  redis: { port: $REDIS_PORT, interval: 1s }
  http_check: { url: "http://127.0.0.1:$NGINX_PORT/status", interval: 1s, name: nginx }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
} > "$MS_TMP/config.yaml"

ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
sleep 4.5
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
log=$(cat "$MS_LOG")
out=$(cat "$MS_TMP/out.lp" 2> /dev/null)

# the loop is not stalled by the 2 s HTTP request
fast=$(grep -c '^fast\.tick,' "$MS_TMP/out.lp")
t_ok "a 0.2 s check kept its schedule while HTTP requests waited ($fast runs in ~4.5 s)" test "$fast" -ge 17
t_match "slow HTTP answered with status, headers and body" "$out" '^slow\.status,body=slow\\ ok,host=[^,]+,xtest=yes value=200 '
t_match "and took the 2 s the server slept" "$out" '^slow\.latency,host=[^ ]+ value=(1\.9[5-9]|2\.)'
t_match "an HTTP timeout gives nil, err" "$out" 'httptimeout\.result.*nil GET http://127\.0\.0\.1:[0-9]+/t: (Operation timed out|Timeout)'
t_match "a receive timeout gives nil, err" "$out" 'rcvtimeout\.result.*nil tcp receive from localhost:[0-9]+: timed out after 0\.3s'
t_match "a closed socket says so" "$out" 'rcvtimeout\.closed.*nil socket is closed'
t_match "the check waiting on a silent socket is killed at its timeout" "$log" 'check hold: .*hold\.lua:5: timed out after 0\.5s \(waiting for I/O\)'
t_match "and it had connected" "$log" 'hold\.lua:4: hold connected'
t_not "it never got past the receive" grep -q '^hold\.never' "$MS_TMP/out.lp"
closed=$(head -n 1 "$MS_TMP/hold.log" 2> /dev/null | awk '{print $2}')
t_ok "its socket was closed at the kill (peer saw EOF after ${closed:-never} s)" \
    awk -v c="${closed:-99}" 'BEGIN { exit !(c < 1.0) }'
t_match "connection refused is a clear error" "$log" "check refused: tcp connect to 127\.0\.0\.1:$DEAD_PORT: connection refused \(ECONNREFUSED\)"
t_match "network calls at load time are refused with a reason" "$out" 'atload\.result.*only be made while the check runs'
t_match "ms.unix reads a line without its CRLF, then until close" "$out" 'unix\.line.*hello unix\|"'
t_match "ms.udp sends and receives a datagram" "$out" 'udp\.reply.*PING'
t_match "a body past max_body is an error" "$out" 'limits\.max_body.*GET http://127\.0\.0\.1:[0-9]+/status: response body larger than max_body \(10 bytes\)'
t_match "a misspelt HTTP option is an error" "$out" "limits\.option.*ms\.http: unknown option 'timout'"
t_match "HEAD gets status and headers" "$out" 'limits\.head.*200 text/plain'
t_match "a name that does not resolve is an error" "$out" 'limits\.udpname.*udp connect to no-such-host\.invalid:9: '
t_match "HTTP requests counted by result" "$out" '^moonstat_check_io_requests_total,api=http,host=[^,]+,result=ok value=[1-9][0-9]*i'
t_match "HTTP errors counted" "$out" '^moonstat_check_io_requests_total,api=http,host=[^,]+,result=error value=[1-9][0-9]*i'
t_match "refused socket connects counted" "$out" '^moonstat_check_io_requests_total,api=socket,host=[^,]+,result=error value=[1-9][0-9]*i'
t_match "I/O timeouts counted" "$out" '^moonstat_check_io_timeouts_total,host=[^ ]+ value=[1-9][0-9]*i'
t_match "open sockets and requests gauge" "$out" '^moonstat_check_io_open,host=[^ ]+ value=[0-9]+ '
t_match "ms.json decodes (lua-cjson)" "$out" '^json\.value,host=[^ ]+ value=20\.5 '
t_match "bad JSON gives nil, err" "$out" 'json\.error.*nil Expected object key string'
t_match "ms.json encodes" "$out" 'json\.encoded.*k.*v'

# nginx: stub_status through basic auth
t_match "nginx active connections" "$out" "^nginx\.connections\.active,host=[^,]+,server=127\.0\.0\.1:$NGINX_PORT,type=webserver value=[1-9]"
t_match "nginx waiting connections" "$out" '^nginx\.connections\.waiting,.*type=webserver value=[0-9]'
t_match "nginx request rate from the second run on" "$out" '^nginx\.requests,.* value=[0-9.]+ '
t_match "http_check status of nginx" "$out" "^http\.status,host=[^,]+,type=http,url=http://127\.0\.0\.1:$NGINX_PORT/status value=200 "
t_match "http_check latency" "$out" '^http\.latency,.*type=http,.* value=0\.'
t_match "http_check health event OK" "$out" 'http_check\.nginx,.* .*value=0.*answered 200'

# redis INFO
t_match "redis used memory" "$out" "^redis\.memory\.used,host=[^,]+,server=127\.0\.0\.1:$REDIS_PORT,type=database value=[1-9]"
t_match "redis connected clients" "$out" '^redis\.clients\.connected,.* value=[1-9]'
t_match "redis keyspace keys per db" "$out" '^redis\.keyspace\.keys,db=db0,.* value=2 '
t_match "redis role master" "$out" '^redis\.replication\.is_master,.* value=1 '
t_match "redis command rate from the second run on" "$out" '^redis\.commands,.* value=[0-9.]+ '
t_not "no check errors from nginx, redis or http_check" grep -Eq 'check (nginx|redis|http_check):' "$MS_LOG"

# off until configured: the default config runs none of them
{ ms_paths; echo "forwarders: {}"; } > "$MS_TMP/default.yaml"
all=$("$MS_BIN" -c "$MS_TMP/default.yaml" --test 2> "$MS_TMP/default.err")
t_eq "--test without sections for them succeeds" "$?" 0
t_not "service checks do not run unless configured" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq '^(nginx|redis|http)\.'" _ "$all"

# wrong password: 401 with a hint; redis with a password it lacks
{
    ms_paths
    cat << EOF
checks:
  nginx: { url: "http://127.0.0.1:$NGINX_PORT/auth_status", user: stats, password: wrong }
  redis: { port: $REDIS_PORT, password: nope }
EOF
} > "$MS_TMP/bad.yaml"
"$MS_BIN" -c "$MS_TMP/bad.yaml" --check nginx > /dev/null 2> "$MS_TMP/bad.err"
t_eq "nginx with a wrong password fails the check" "$?" 1
t_match "and says 401 and what to verify" "$(cat "$MS_TMP/bad.err")" 'answered 401 .*user/password'
"$MS_BIN" -c "$MS_TMP/bad.yaml" --check redis > /dev/null 2> "$MS_TMP/bad2.err"
t_eq "redis AUTH failure fails the check" "$?" 1
t_match "and says why" "$(cat "$MS_TMP/bad2.err")" 'redis 127\.0\.0\.1:[0-9]+: AUTH failed: .*(password|AUTH)'

# a reload while a run waits on a socket abandons the run and closes it
mkdir -p "$MS_TMP/checks2"
cat > "$MS_TMP/checks2/waiter.lua" << LUA
return { interval = 60, timeout = 30, collect = function()
  local s = assert(ms.tcp("127.0.0.1", $HOLD_PORT, { timeout = 30 }))
  ms.log.info("waiter connected")
  s:receive("*l")
end }
LUA
: > "$MS_TMP/hold.log"
{ ms_paths "$MS_TMP/checks2"; echo "checks: { waiter: { jitter: 0s } }"; echo "forwarders: {}"; } > "$MS_TMP/reload.yaml"
ms_start "$MS_TMP/reload.yaml"
t_ok "the waiter connects" ms_wait_log 'waiter connected' 10
echo "-- changed" >> "$MS_TMP/checks2/waiter.lua"
kill -HUP "$MS_PID"
t_ok "reload abandons the waiting run" ms_wait_log 'check waiter: run in progress abandoned' 10
t_ok "and its socket is closed (the peer sees EOF)" _ms_poll 5 grep -q closed "$MS_TMP/hold.log"
ms_stop
t_eq "clean exit after the reload" "$?" 0

# HTTPS: a client certificate, a private CA, certificate expiry
T=$NGINX_TLS_DIR
cat > "$MS_TMP/checks/tls.lua" << LUA
local base = "https://127.0.0.1:$NGINX_TLS_PORT/status"
local function ev(name, st, err) ms.event(name, tostring(st) .. " " .. tostring(err)) end
return { enabled = false, timeout = 8, collect = function()
  local st, h, body = ms.http.get(base, { ca_file = "$T/ca.pem", cert = "$T/client.pem", key = "$T/client.key" })
  ev("tls.mutual", st, body and body:match("Active connections"))
  local st2, _, body2 = ms.http.get(base, { ca_file = "$T/ca.pem" })
  ev("tls.nocert", st2, body2 and body2:match("No required SSL certificate"))
  ev("tls.untrusted", ms.http.get(base, { cert = "$T/client.pem", key = "$T/client.key" }))
  ev("tls.insecure", ms.http.get(base, { cert = "$T/client.pem", key = "$T/client.key", insecure = true }))
end }
LUA
{
    ms_paths "$MS_TMP/checks" "$MS_TOP/checks"
    cat << EOF
checks:
  tls: {}
  http_check: { url: "https://127.0.0.1:$NGINX_TLS_PORT/status", name: tls, ca_file: "$T/ca.pem", cert: "$T/client.pem", key: "$T/client.key" }
EOF
} > "$MS_TMP/tls.yaml"
tls=$("$MS_BIN" -c "$MS_TMP/tls.yaml" --check tls 2> "$MS_TMP/tls.err")
t_eq "--check tls exits 0" "$?" 0
t_match "HTTPS with a client certificate and a private CA" "$tls" '^tls\.mutual\{.* 200 Active connections'
t_match "without the client certificate nginx refuses (400)" "$tls" '^tls\.nocert\{.* 400 No required SSL certificate'
t_match "a server certificate from an unknown CA is an error" "$tls" '^tls\.untrusted\{.* nil GET https://127\.0\.0\.1:[0-9]+/status: .*(certificate|SSL)'
t_match "insecure skips the server check" "$tls" '^tls\.insecure\{.* 200 '
hc=$("$MS_BIN" -c "$MS_TMP/tls.yaml" --check http_check 2> "$MS_TMP/hc.err")
t_eq "--check http_check over HTTPS exits 0" "$?" 0
t_match "http_check status over HTTPS" "$hc" '^http\.status\{.*\} 200 gauge'
t_match "http_check days left on the server certificate (30-day certificate)" "$hc" '^http\.cert_days_left\{.*\} (29\.9|30(\.0| ))'
t_match "http_check health OK" "$hc" '^http_check\.tls\{.*\} 0 health OK '
t_done
