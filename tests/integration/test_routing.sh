#!/bin/sh
# Forwarder routing (src/forwarder_route.c, docs/forwarders/routing.md):
#  - include/exclude: file forwarders receiving disjoint sets, by name glob
#    and by tag; excluded samples counted; config errors with line:col;
#  - balance: hash over three TCP line receivers: every series on exactly
#    one backend, the same one after a restart; with one backend down the
#    others go on and its share is queued, then delivered when it is back;
#  - balance: failover over TCP (graphite) and HTTP (influxdb): the primary
#    refuses (or answers 503) and the secondary gets everything; failback to
#    the primary once it is up; the primary dies and the secondary takes over.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
PEERS="$MS_TOP/tests/integration/route_peers.py"
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/emit.lua" << 'LUA'
-- test check: 30 route.* series, a few tagged ones and a sequence number,
-- all carrying the run number n as value
local n = 0
return { interval = 0.2, collect = function()
  n = n + 1
  for i = 1, 30 do ms.gauge("route.s" .. i, n) end
  ms.gauge("cpu.user", n, { env = "prod" })
  ms.gauge("cpu.idle", n, { env = "prod" })
  ms.gauge("mem.used", n, { env = "dev" })
  ms.gauge("seq", n)
end }
LUA

# peer KIND NAME PORT [STATUS]: start a backend writing to $MS_TMP/NAME.out;
# its pid goes to $MS_TMP/NAME.pid.
peer() {
    ms_bg "$MS_TMP/$2.log" "$MS_PY" "$PEERS" "$1" "$3" "$MS_TMP/$2.out" ${4:-}
    echo "$MS_BG_PID" > "$MS_TMP/$2.pid"
    wait_port "$3" 10
}
peer_stop() {
    _p=$(cat "$MS_TMP/$1.pid")
    kill "$_p" 2> /dev/null
    wait "$_p" 2> /dev/null
    _ms_forget "$_p"
}

P1=$(free_port tcp)
P2=$(free_port tcp)
P3=$(free_port tcp)
F1=$(free_port tcp)
F2=$(free_port tcp)
H1=$(free_port tcp)
H2=$(free_port tcp)
for n in 1 2 3; do # three real carbon-caches, each with its own ports and files
    eval "C$n=\$(free_port tcp) CP$n=\$(free_port tcp)"
done
cat > "$MS_TMP/config.yaml" << EOF
agent: { hostname: h1, stats_interval: 1s, flush_interval: 100ms }
paths: { checks: ["$MS_TMP/checks"], lua: ["$MS_TOP/lua"], forwarders: ["$MS_TOP/forwarders"] }
forwarders:
  cpu: { type: file, path: "$MS_TMP/cpu.txt", format: graphite, include: ["cpu.*"] }
  rest: { type: file, path: "$MS_TMP/rest.txt", format: graphite, exclude: "cpu.*" }
  dev:
    type: file
    path: "$MS_TMP/dev.txt"
    format: graphite
    include: [ { tags: { env: d?v } }, { name: "cpu.*", tags: { env: prod } } ]
    exclude: [ "*.idle" ]
  carbon:
    type: graphite
    tag_mode: none
    include: ["route.*"]
    endpoints: ["127.0.0.1:$P1", "127.0.0.1:$P2", "127.0.0.1:$P3"]
    balance: hash
  fo:
    type: graphite
    tag_mode: none
    include: ["seq"]
    endpoints: ["127.0.0.1:$F1", "127.0.0.1:$F2"]
    failback: 3s
  carbons:
    type: graphite
    tag_mode: none
    include: ["route.*"]
    endpoints: ["127.0.0.1:$C1", "127.0.0.1:$C2", "127.0.0.1:$C3"]
    balance: hash
  fh:
    type: influxdb
    include: ["seq"]
    endpoints: ["http://127.0.0.1:$H1", "http://127.0.0.1:$H2"]
EOF

# ---- config errors -----------------------------------------------------

bad() { # DESC REGEX YAML-LINES...: --config-test fails with a message matching REGEX
    _desc=$1
    _re=$2
    shift 2
    {
        echo "paths: { checks: [], lua: [\"$MS_TOP/lua\"], forwarders: [\"$MS_TOP/forwarders\"] }"
        echo "forwarders:"
        for _l in "$@"; do echo "  $_l"; done
    } > "$MS_TMP/bad.yaml"
    _out=$("$MS_BIN" -c "$MS_TMP/bad.yaml" --config-test 2>&1)
    _rc=$?
    if [ "$_rc" -ne 0 ] && printf '%s\n' "$_out" | grep -Eq -e "$_re"; then
        t_pass "$_desc"
    else
        t_fail "$_desc"
        t_diag "exit $_rc, output: $_out"
    fi
}
t_ok "--config-test accepts the routing keys" "$MS_BIN" -c "$MS_TMP/config.yaml" --config-test
bad "include: an unknown key in an entry, with line:col" \
    'bad\.yaml:3:41: forwarders\.x\.include\[1\]: unknown key .nme. \(known: name, tags\)' \
    'x: { type: file, include: ["cpu.*", { nme: "a" }] }'
bad "exclude: tags must be a map" \
    'bad\.yaml:3:39: forwarders\.x\.exclude\[0\]\.tags: expected a map' \
    'x: { type: file, exclude: [ { tags: [a] } ] }'
bad "endpoints and address together" \
    'bad\.yaml:3:52: forwarders\.x: give address or endpoints, not both' \
    'x: { type: graphite, endpoints: ["127.0.0.1:1"], address: "127.0.0.1:2" }'
bad "an endpoint that is no host:port" \
    'bad\.yaml:3:51: forwarders\.x\.endpoints\[1\]: expected host:port' \
    'x: { type: graphite, endpoints: ["127.0.0.1:1", "nope"] }'
bad "an endpoint listed twice" \
    "forwarders\\.x\\.endpoints\\[1\\]: '127\\.0\\.0\\.1:1' is listed twice" \
    'x: { type: graphite, endpoints: ["127.0.0.1:1", "127.0.0.1:1"] }'
bad "balance must be failover or hash" \
    'bad\.yaml:3:61: forwarders\.x\.balance: expected failover or hash' \
    'x: { type: graphite, endpoints: ["127.0.0.1:1"], balance: random }'
bad "balance without endpoints" \
    'bad\.yaml:3:24: forwarders\.x\.balance: needs endpoints' \
    'x: { type: graphite, balance: hash }'
bad "failback is for failover" \
    'forwarders\.x\.failback: only for balance: failover' \
    'x: { type: graphite, endpoints: ["127.0.0.1:1"], balance: hash, failback: 1s }'
bad "endpoints on a kafka forwarder: refused, pointing at brokers" \
    'forwarders\.x\.endpoints: the kafka transport has no endpoints .*kafka takes its .brokers. list' \
    'x: { type: kafka, endpoints: ["127.0.0.1:1"] }'
bad "endpoints on a file forwarder: refused" \
    'bad\.yaml:3:[0-9]+: forwarders\.x\.endpoints: the file transport has no endpoints' \
    'x: { type: file, endpoints: ["127.0.0.1:1"] }'
bad "endpoints on a scrape forwarder" \
    'forwarders\.x\.endpoints: the scrape transport serves' \
    'x: { type: prometheus, endpoints: ["127.0.0.1:1"] }'

# ---- start -------------------------------------------------------------

peer tcp p1 "$P1"
peer tcp p2 "$P2"
peer tcp p3 "$P3"
peer tcp f2 "$F2" # F1, the primary, is down at first
peer http h1 "$H1" 503
peer http h2 "$H2" 204
# carbon N: carbon_start (lib.sh) with its files in $MS_TMP/cN
carbon_n() {
    _save=$MS_TMP
    MS_TMP=$MS_TMP/c$1
    mkdir -p "$MS_TMP"
    eval "CARBON_PORT=\$C$1 CARBON_PICKLE_PORT=\$CP$1"
    cp "$_save/.ports.$$" "$MS_TMP/.ports.$$" 2> /dev/null # free_port: no port twice
    carbon_start
    _rc=$?
    cp "$MS_TMP/.ports.$$" "$_save/.ports.$$" 2> /dev/null
    MS_TMP=$_save
    return $_rc
}
t_ok "carbon-cache 1 starts" carbon_n 1
t_ok "carbon-cache 2 starts" carbon_n 2
t_ok "carbon-cache 3 starts" carbon_n 3
ms_start "$MS_TMP/config.yaml" -v
t_ok "daemon starts" ms_wait_log 'started' 10
sleep 3

# ---- include / exclude -------------------------------------------------

names() { # FILE: the distinct metric names (before ";" tags) in a graphite file
    sed 's/[; ].*//' "$1" | sort -u
}
t_eq "include cpu.*: only cpu.* arrive" "$(names "$MS_TMP/cpu.txt" | tr '\n' ' ')" "cpu.idle cpu.user "
t_not "exclude cpu.*: no cpu.* arrives" grep -q '^cpu\.' "$MS_TMP/rest.txt"
t_ok "exclude cpu.*: the rest arrives" grep -q '^mem\.used;' "$MS_TMP/rest.txt"
t_ok "exclude cpu.*: own metrics arrive too" grep -q '^moonstat_series;' "$MS_TMP/rest.txt"
t_eq "disjoint sets: nothing in both" \
    "$(names "$MS_TMP/cpu.txt" > "$MS_TMP/n1"; names "$MS_TMP/rest.txt" > "$MS_TMP/n2"; comm -12 "$MS_TMP/n1" "$MS_TMP/n2" | wc -l)" 0
t_eq "tags and name+tags rules, exclude wins" "$(names "$MS_TMP/dev.txt" | tr '\n' ' ')" "cpu.user mem.used "
t_ok "excluded samples counted per forwarder" \
    _ms_poll 5 grep -Eq '^moonstat_forwarder_excluded_samples_total;forwarder=cpu;host=h1 [1-9]' "$MS_TMP/rest.txt"

# ---- hash --------------------------------------------------------------

# owners FILE...: "series backend" for every route.* series in the files
owners() {
    for _f in "$@"; do
        sed -n "s/^\\(route\\.s[0-9]*\\) .*/\\1 $(basename "$_f" .out)/p" "$_f"
    done | sort -u
}
all_owned() { test "$(owners "$MS_TMP/p1.out" "$MS_TMP/p2.out" "$MS_TMP/p3.out" | cut -d' ' -f1 | sort -u | wc -l)" -eq 30; }
t_ok "hash: all 30 series arrived" _ms_poll 10 all_owned
owners "$MS_TMP/p1.out" "$MS_TMP/p2.out" "$MS_TMP/p3.out" > "$MS_TMP/owners1"
t_eq "hash: every series on exactly one backend" "$(wc -l < "$MS_TMP/owners1")" 30
t_eq "hash: all three backends get a share" "$(cut -d' ' -f2 "$MS_TMP/owners1" | sort -u | wc -l)" 3
t_ok "hash: counters per endpoint" _ms_poll 5 grep -Eq \
    "^moonstat_forwarder_sent_samples_total;endpoint=127\\.0\\.0\\.1:$P2;forwarder=carbon;host=h1 [1-9]" "$MS_TMP/rest.txt"

# whisper_owners: "series cN" for every route.* whisper file of the carbons
whisper_owners() {
    for n in 1 2 3; do
        for w in "$MS_TMP/c$n/carbon/storage/whisper/route/"*.wsp; do
            [ -f "$w" ] && echo "route.$(basename "$w" .wsp) c$n"
        done
    done | sort
}
all_whispers() { test "$(whisper_owners | cut -d' ' -f1 | sort -u | wc -l)" -eq 30; }
t_ok "hash over carbon-caches: every series has its whisper file" _ms_poll 30 all_whispers
whisper_owners > "$MS_TMP/wowners"
t_eq "hash over carbon-caches: each series stored by exactly one carbon" "$(wc -l < "$MS_TMP/wowners")" 30
t_eq "hash over carbon-caches: all three store a share" "$(cut -d' ' -f2 "$MS_TMP/wowners" | sort -u | wc -l)" 3
s=$(head -n 1 "$MS_TMP/wowners" | cut -d' ' -f1)
c=$(head -n 1 "$MS_TMP/wowners" | cut -d' ' -f2)
stored() { # CARBON SERIES: whisper-fetch finds values of SERIES in that carbon
    CARBON_WHISPER_DIR=$MS_TMP/$1/carbon/storage/whisper
    carbon_fetch "$2" | grep -q '^[1-9]'
}
t_ok "hash over carbon-caches: values stored ($s in $c)" _ms_poll 10 stored "$c" "$s"

# ---- failover (primary down from the start) ----------------------------

seqs() { # FILE...: the seq values in graphite lines, sorted numerically, unique
    cat "$@" | sed -n 's/^seq \([0-9]*\) .*/\1/p' | sort -n -u
}
contiguous() { # FILE...: seq values from 1 with no gap
    seqs "$@" > "$MS_TMP/seqs"
    _n=$(wc -l < "$MS_TMP/seqs")
    [ "$_n" -gt 5 ] && [ "$(head -n 1 "$MS_TMP/seqs")" = 1 ] && [ "$(tail -n 1 "$MS_TMP/seqs")" = "$_n" ]
}
t_ok "failover tcp: the secondary got every seq from 1 on" contiguous "$MS_TMP/f2.out"
t_ok "failover tcp: logged" grep -q "forwarder fo: endpoint 127.0.0.1:$F1 failed; failing over to 127.0.0.1:$F2" "$MS_LOG"
hseqs() { sed -n 's/^seq,host=h1 value=\([0-9]*\) .*/\1/p' "$MS_TMP/h2.out" | sort -n -u; }
hseqs > "$MS_TMP/hs"
t_ok "failover http: the primary answered 503" grep -q '^#503 /write' "$MS_TMP/h1.out"
t_ok "failover http: the secondary got every seq from 1 on" \
    test "$(wc -l < "$MS_TMP/hs")" -gt 5 -a "$(head -n 1 "$MS_TMP/hs")" = 1 -a "$(tail -n 1 "$MS_TMP/hs")" = "$(wc -l < "$MS_TMP/hs")"
t_ok "failover counted" _ms_poll 5 grep -Eq '^moonstat_forwarder_failovers_total;forwarder=fh;host=h1 [1-9]' "$MS_TMP/rest.txt"

# ---- failback, then the primary dies -----------------------------------

peer tcp f1 "$F1"
t_ok "failback: the primary gets the traffic once it is up" _ms_poll 15 grep -q '^seq ' "$MS_TMP/f1.out"
t_ok "failback: logged" grep -q "forwarder fo: failing back to 127.0.0.1:$F1" "$MS_LOG"
sleep 1
t_ok "failback: nothing lost on the way (seq 1.. without a gap over both)" contiguous "$MS_TMP/f1.out" "$MS_TMP/f2.out"
last=$(seqs "$MS_TMP/f2.out" | tail -n 1)
sleep 1
t_eq "failback: the secondary no longer gets new samples" "$(seqs "$MS_TMP/f2.out" | tail -n 1)" "$last"
peer_stop f1
before=$(seqs "$MS_TMP/f1.out" | tail -n 1)
t_ok "primary gone: the secondary takes over" _ms_poll 15 sh -c \
    "sed -n 's/^seq \\([0-9]*\\) .*/\\1/p' '$MS_TMP/f2.out' | sort -n | tail -n 1 | awk '{ exit !(\$1 > $before) }'"

# ---- hash: one backend down, then back ---------------------------------

peer_stop p3
sleep 1
c1=$(wc -l < "$MS_TMP/p1.out")
c2=$(wc -l < "$MS_TMP/p2.out")
sleep 2
t_ok "one backend down: the others still receive" \
    test "$(wc -l < "$MS_TMP/p1.out")" -gt "$c1" -a "$(wc -l < "$MS_TMP/p2.out")" -gt "$c2"
t_ok "one backend down: its share is queued (the endpoint's last queue_bytes > 0)" _ms_poll 5 sh -c \
    "grep '^moonstat_forwarder_queue_bytes;endpoint=127\\.0\\.0\\.1:$P3;forwarder=carbon;host=h1 ' '$MS_TMP/rest.txt' | tail -n 1 | grep -Eq ' [1-9][0-9]* [0-9]+\$'"
t_ok "one backend down: marked down" grep -Eq \
    "^moonstat_forwarder_endpoint_up;endpoint=127\\.0\\.0\\.1:$P3;forwarder=carbon;host=h1 0" "$MS_TMP/rest.txt"
owners "$MS_TMP/p1.out" "$MS_TMP/p2.out" "$MS_TMP/p3.out" > "$MS_TMP/owners2"
t_eq "one backend down: its series do not move to the others" "$(wc -l < "$MS_TMP/owners2")" 30
# a value emitted while p3 was down, seen at p1
down_val=$(sed -n 's/^route\.s[0-9]* \([0-9]*\) .*/\1/p' "$MS_TMP/p1.out" | sort -n | tail -n 1)
s3=$(grep ' p3$' "$MS_TMP/owners1" | head -n 1 | cut -d' ' -f1)
mv "$MS_TMP/p3.out" "$MS_TMP/p3.before"
peer tcp p3 "$P3"
t_ok "backend back: the queued share arrives (value $down_val of $s3)" \
    _ms_poll 20 grep -q "^$s3 $down_val " "$MS_TMP/p3.out"
cat "$MS_TMP/p3.before" >> "$MS_TMP/p3.out"

# ---- reload: a changed routed forwarder is replaced, its queue carried --

sed -i 's/failback: 3s/failback: 5s/; s/include: \["cpu\.\*"\]/include: ["cpu.u*"]/' "$MS_TMP/config.yaml"
high=$(seqs "$MS_TMP/f2.out" | tail -n 1)
kill -HUP "$MS_PID"
t_ok "reload: the changed forwarders are replaced" ms_wait_log 'forwarder fo: stopped \(removed or changed\)' 10
t_ok "reload: the replaced failover forwarder goes on sending" _ms_poll 15 sh -c \
    "sed -n 's/^seq \\([0-9]*\\) .*/\\1/p' '$MS_TMP/f2.out' | sort -n | tail -n 1 | awk '{ exit !(\$1 > $high + 5) }'"
: > "$MS_TMP/cpu.txt"
sleep 1
t_eq "reload: new include rules apply" "$(names "$MS_TMP/cpu.txt" | tr '\n' ' ')" "cpu.user "
t_not "reload: the unchanged hash forwarder kept running" grep -q 'forwarder carbon: stopped' "$MS_LOG"
# endpoints -> one url: the new plain forwarder takes over the children's queues
sed -i "s|endpoints: \[\"http://127.0.0.1:$H1\", \"http://127.0.0.1:$H2\"\]|url: \"http://127.0.0.1:$H2\"|" "$MS_TMP/config.yaml"
hhigh=$(hseqs | tail -n 1)
kill -HUP "$MS_PID"
t_ok "reload: endpoints replaced by a single url" ms_wait_log 'forwarder fh: stopped \(removed or changed\)' 10
t_ok "reload: the plain forwarder goes on sending" _ms_poll 15 sh -c \
    "sed -n 's/^seq,host=h1 value=\\([0-9]*\\) .*/\\1/p' '$MS_TMP/h2.out' | sort -n | tail -n 1 | awk '{ exit !(\$1 > $hhigh + 5) }'"

# ---- restart: the same backend for every series ------------------------

ms_stop
t_eq "clean exit" "$?" 0
for p in p1 p2 p3; do mv "$MS_TMP/$p.out" "$MS_TMP/$p.run1"; done
ms_start "$MS_TMP/config.yaml"
t_ok "daemon restarts" ms_wait_log 'started' 10
t_ok "after the restart every series arrives again" _ms_poll 10 sh -c \
    "cat '$MS_TMP/p1.out' '$MS_TMP/p2.out' '$MS_TMP/p3.out' | sed -n 's/^\\(route\\.s[0-9]*\\) .*/\\1/p' | sort -u | wc -l | grep -qx 30"
owners "$MS_TMP/p1.out" "$MS_TMP/p2.out" "$MS_TMP/p3.out" > "$MS_TMP/owners3"
t_eq "after the restart every series is on the backend it was on" "$(cat "$MS_TMP/owners3")" "$(cat "$MS_TMP/owners1")"
ms_stop
t_eq "clean exit after the restart" "$?" 0
t_done
