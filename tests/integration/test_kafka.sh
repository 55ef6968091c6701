#!/bin/sh
# The kafka forwarder against librdkafka's mock cluster (3 brokers on
# loopback ports, run by tests/kafka/kafka_mock.c, built here with cc):
# moonstat produces a known set of samples over TCP while broker 2 (the
# leader of a third of the partitions) is down for a while; the program
# consumes the topic back and every message is checked: count, keys,
# values, order, one partition per series, timestamps. A message over
# message.max.bytes fails alone and is counted once; a reload replaces a
# changed producer while messages keep flowing. A forwarder pointed at a
# port where nothing listens: its messages time out, are retried and then
# counted as failed, and its apikey never reaches the log.
. "$(dirname "$0")/lib.sh"
ms_tmpdir

# ---- the mock cluster ----
t_ok "test program builds (cc, librdkafka)" cc -O2 -std=c11 -Wall -Wextra -Werror \
    -o "$MS_TMP/kafka_mock" "$MS_TOP/tests/kafka/kafka_mock.c" -lrdkafka
mkfifo "$MS_TMP/ctl"
"$MS_TMP/kafka_mock" metrics 6 big < "$MS_TMP/ctl" > "$MS_TMP/mock.out" 2> "$MS_TMP/mock.err" &
MS_PIDS="$MS_PIDS $!"
exec 3> "$MS_TMP/ctl" # the mock reads its commands from here
has_bootstrap() { grep -q '^bootstrap ' "$MS_TMP/mock.out"; }
t_ok "mock cluster starts" _ms_poll 10 has_bootstrap
BS=$(sed -n 's/^bootstrap //p' "$MS_TMP/mock.out")
t_match "three brokers" "$BS" '^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$'

# mock_cmd CMD ANSWER: send a command, wait for its answer line.
mock_cmd() {
    echo "$1" >&3
    _n=0
    while [ $_n -lt 100 ]; do
        grep -qx "$2" "$MS_TMP/mock.out" && return 0
        sleep 0.1
        _n=$((_n + 1))
    done
    return 1
}

# consume_check N: read the topic back and check it holds the N runs of the
# kt check (5 series, values 1..N each, in order) and every message's shape.
ends=0
consume_check() {
    ends=$((ends + 1))
    echo consume >&3
    _n=0
    while [ "$(grep -c '^end ' "$MS_TMP/mock.out")" -lt "$ends" ]; do
        [ $_n -gt 300 ] && return 1 # the mock gives up after 20 s without a message
        sleep 0.1
        _n=$((_n + 1))
    done
    "$MS_PY" - "$MS_TMP/mock.out" "$1" > "$MS_TMP/check.out" 2>&1 << 'EOF'
import json, sys, datetime
lines = open(sys.argv[1]).read().split("\n")
n = int(sys.argv[2])
block, cur = [], []
for l in lines:
    if l.startswith("msg\t"):
        cur.append(l)
    elif l.startswith("end "):
        block, cur = cur, []
msgs = [l.split("\t", 5) for l in block]
kt = [m for m in msgs if m[4].startswith("kt.v{")]
own = [m for m in msgs if m[4].startswith("moonstat_")]
problems = []
keys = sorted(set(m[4] for m in kt))
want_keys = ["kt.v{host=web1,s=%d}" % s for s in range(1, 6)]
if keys != want_keys:
    problems.append("keys %s" % keys)
if len(kt) != 5 * n:
    problems.append("%d kt messages, want %d" % (len(kt), 5 * n))
for key in keys:
    ms = [m for m in kt if m[4] == key]
    parts = set(m[1] for m in ms)
    if len(parts) != 1:
        problems.append("%s on partitions %s" % (key, sorted(parts)))
    ms.sort(key=lambda m: int(m[2]))
    vals = []
    for m in ms:
        o = json.loads(m[5])
        vals.append(o["value"])
        s = key[key.index(",s=") + 3:-1]
        want = {"name", "host", "s", "@version", "@timestamp", "value"}
        if set(o) != want or o["name"] != "kt.v" or o["host"] != "web1" or o["s"] != s \
                or o["@version"] != "1":
            problems.append("bad message %s" % m[5])
        t = datetime.datetime.strptime(o["@timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
        t = t.replace(tzinfo=datetime.timezone.utc)
        if round(t.timestamp() * 1000) != int(m[3]):
            problems.append("@timestamp %s but message timestamp %s" % (o["@timestamp"], m[3]))
    if vals != list(range(1, n + 1)):
        problems.append("%s values %s" % (key, vals[:60]))
if not own:
    problems.append("no moonstat_* messages")
print("\n".join(problems[:10]) if problems else "ok %d messages, %d kt" % (len(msgs), len(kt)))
sys.exit(1 if problems else 0)
EOF
}

# ---- moonstat ----
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/kt.lua" << 'LUA'
local n = 0
return { interval = 0.25, collect = function()
  n = n + 1
  if n > 40 then return end
  for s = 1, 5 do ms.gauge("kt.v", n, { s = tostring(s) }) end
end }
LUA
cat > "$MS_TMP/checks/big.lua" << 'LUA'
local done = false
return { interval = 0.5, collect = function()
  if done then return end
  done = true
  ms.gauge("big.one", 1, { blob = string.rep("x", 1500) })
end }
LUA
DEAD=$(free_port tcp)
PPORT=$(free_port tcp)
cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: web1, stats_interval: 1s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  k: { type: kafka, brokers: "$BS", topic: metrics, linger: 20ms, compression: lz4 }
  kdead: { type: kafka, brokers: "127.0.0.1:$DEAD", topic: metrics, message_timeout: 1s,
           max_retries: 1, apikey: SECRETKEY123, tenant_id: tenant7, apikey_as: both }
  kbig: { type: kafka, brokers: "$BS", topic: big, properties: { message.max.bytes: "1000" } }
  prom: { type: prometheus, listen: "127.0.0.1:$PPORT" }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "moonstat starts" ms_wait_log 'started' 10
t_ok "producer logs its topic and brokers" ms_wait_log "forwarder k: producing to topic metrics at $BS \\(librdkafka" 5
sleep 2
t_ok "broker 2 goes down mid-stream" mock_cmd "down 2" "ok down 2"
t_ok "moonstat loses broker 2" ms_wait_log 'forwarder k: librdkafka FAIL: .*:[0-9]+/2: (Disconnected|Connect to)' 5
sleep 3
t_ok "broker 2 comes back" mock_cmd "up 2" "ok up 2"
sleep 4
all_there() { # up to 10 reads, 2 s apart
    _i=0
    while [ $_i -lt 10 ]; do
        consume_check 40 && return 0
        sleep 2
        _i=$((_i + 1))
    done
    return 1
}
t_ok "every message arrived once, in order, one partition per series" all_there
t_diag "$(cat "$MS_TMP/check.out")"

metric() { # NAME FORWARDER: its value on /metrics
    http_get "http://127.0.0.1:$PPORT/metrics" |
        sed -n "s/^$1{forwarder=\"$2\"[^}]*} //p" | head -1
}
positive() { v=$(metric "$1" "$2") && [ -n "$v" ] && awk "BEGIN{exit !($v > 0)}"; }
delivered_all() { v=$(metric moonstat_forwarder_kafka_delivered_messages_total k) && [ "${v:-0}" -ge 200 ]; }
t_ok "delivery reports counted (moonstat_forwarder_kafka_delivered_messages_total >= 200)" _ms_poll 10 delivered_all
t_ok "sent samples counted" _ms_poll 10 positive moonstat_forwarder_sent_samples_total k
t_eq "no failed samples on the mock cluster" "$(metric moonstat_forwarder_failed_samples_total k)" 0
t_ok "a message over message.max.bytes fails for good, once, logged" \
    ms_wait_log 'forwarder kbig: 1 of [0-9]+ messages to topic big failed for good: .*too large' 5
t_eq "... and counts one failed sample" "$(metric moonstat_forwarder_failed_samples_total kbig)" 1
t_ok "... while the rest of its chunk was sent" positive moonstat_forwarder_sent_samples_total kbig

# reload: a changed section replaces the producer (the old one is destroyed
# on a worker thread), and messages keep flowing
before=$(sed -n 's/^ok \([0-9]*\) messages.*/\1/p' "$MS_TMP/check.out")
sed -i 's/linger: 20ms/linger: 30ms/' "$MS_TMP/config.yaml"
kill -HUP "$MS_PID"
second_producer() { [ "$(grep -c 'forwarder k: producing to topic' "$MS_LOG")" -ge 2 ]; }
t_ok "SIGHUP with a changed section starts a new producer" _ms_poll 10 second_producer
sleep 3
t_ok "the topic still holds every kt message once" consume_check 40
after=$(sed -n 's/^ok \([0-9]*\) messages.*/\1/p' "$MS_TMP/check.out")
t_ok "messages keep arriving after the reload ($before, then $after)" test "${after:-0}" -gt "${before:-0}"

t_ok "unreachable cluster: messages retried" _ms_poll 30 positive moonstat_forwarder_kafka_retried_messages_total kdead
t_ok "unreachable cluster: then counted as failed" _ms_poll 30 positive moonstat_forwarder_failed_samples_total kdead
t_ok "the retry is logged" ms_wait_log 'forwarder kdead: [0-9]+ of [0-9]+ messages not delivered: .*retry in' 5
t_ok "giving up is logged" ms_wait_log 'forwarder kdead: [0-9]+ of [0-9]+ messages not delivered after 1 retries, giving up' 10
t_not "the apikey never appears in the log" grep -q SECRETKEY123 "$MS_LOG"
ms_stop
t_eq "clean exit" "$?" 0

# ---- configuration errors name the property, never a secret's value ----
cat > "$MS_TMP/bad.yaml" << YAML
agent: { hostname: web1 }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  kbad: { type: kafka, brokers: "$BS", properties: { "ssl.key.password": "", "linger.ms": "soon" } }
YAML
ms_start "$MS_TMP/bad.yaml"
t_ok "a bad librdkafka property is reported with its key" \
    ms_wait_log 'forwarder kbad: kafka property linger\.ms: Invalid value' 10
ms_stop
echo quit >&3
t_done
