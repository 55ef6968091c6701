#!/bin/sh
# checks/dramatiq.lua against a real redis-server filled the way Dramatiq's
# RedisBroker fills it (per queue a list of message ids and a hash of
# id -> message; delay queues <q>.DQ, dead letters <q>.XQ with a sorted set;
# acks sets and the heartbeats sorted set beside them): one gauge per queue
# from the .msgs hashes, SCAN over more keys than one round returns,
# max_queues, another namespace, db and password, a daemon run that follows
# the queues as they change, and the errors a user meets.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
t_ok "redis-server starts" redis_start
rc() { redis-cli -p "$REDIS_PORT" "$@"; }

# Dramatiq's layout for one message of queue $1 in namespace $2 (db $3)
cmds() {
    _q=$1
    _ns=${2:-dramatiq}
    _n=$3
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        _id="$_q-msg-$_i"
        printf "HSET %s:%s.msgs %s '{\"queue_name\":\"%s\",\"actor_name\":\"send\",\"message_id\":\"%s\"}'\n" \
            "$_ns" "$_q" "$_id" "$_q" "$_id"
        case $_q in
        *.XQ) printf 'ZADD %s:%s %d %s\n' "$_ns" "$_q" "$_i" "$_id" ;;
        *) printf 'RPUSH %s:%s %s\n' "$_ns" "$_q" "$_id" ;;
        esac
        _i=$((_i + 1))
    done
}
{
    cmds default dramatiq 5
    cmds default.DQ dramatiq 2
    cmds default.XQ dramatiq 3
    cmds emails dramatiq 11
    printf 'SADD dramatiq:__acks__.worker-1.default default-msg-0\n'
    printf 'ZADD dramatiq:__heartbeats__ 1700000000000 worker-1\n'
    printf 'SET dramatiq:unrelated.msgs.not 1\n'
    printf 'HSET other:default.msgs x y\n'
    cmds jobs myapp 4
    i=0
    while [ $i -lt 1200 ]; do
        printf 'HSET dramatiq:bulk%04d.msgs m1 x\n' "$i"
        i=$((i + 1))
    done
} > "$MS_TMP/fill.txt"
rc < "$MS_TMP/fill.txt" > /dev/null
t_eq "redis holds the dramatiq-style keys" "$(rc dbsize)" 1214
rc -n 2 hset dramatiq:other-db.msgs a 1 > /dev/null

conf() { # extra settings of checks.dramatiq
    {
        ms_paths
        echo "checks: { dramatiq: { port: $REDIS_PORT, $1 } }"
    } > "$MS_TMP/d.yaml"
}
gauge() { # queue -> value from $out
    printf '%s\n' "$out" | sed -n "s/^dramatiq\.queue_size{host=[^,]*,queue=$1,server=127\.0\.0\.1:$REDIS_PORT,type=queue} \([0-9]*\) gauge$/\1/p"
}

conf "max_queues: 2000"
out=$("$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq 2> "$MS_TMP/d.err")
t_eq "--check dramatiq exits 0" "$?" 0
t_eq "queue default: the messages in its hash" "$(gauge default)" 5
t_eq "delay queue default.DQ" "$(gauge 'default\.DQ')" 2
t_eq "dead-letter queue default.XQ" "$(gauge 'default\.XQ')" 3
t_eq "queue emails" "$(gauge emails)" 11
t_eq "one of the 1200 small queues" "$(gauge bulk0777)" 1
t_eq "every queue once, over several SCAN rounds (1204 gauges)" \
    "$(printf '%s\n' "$out" | grep -c '^dramatiq\.queue_size{')" 1204
t_not "acks, heartbeats and other namespaces are not queues" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq 'queue=(__acks__|__heartbeats__|unrelated|jobs)'" _ "$out"

conf ""
out=$("$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq 2> "$MS_TMP/d2.err")
t_eq "past max_queues (default 1000) the run still succeeds" "$?" 0
t_eq "with 1000 queues" "$(printf '%s\n' "$out" | grep -c '^dramatiq\.queue_size{')" 1000
t_match "and a warning says why" "$(cat "$MS_TMP/d2.err")" 'more than max_queues \(1000\) keys match dramatiq:\*\.msgs'

conf "namespace: myapp"
out=$("$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq 2> /dev/null)
t_eq "another namespace" "$(gauge jobs)" 4
t_eq "only its queues" "$(printf '%s\n' "$out" | grep -c '^dramatiq\.queue_size{')" 1

conf "db: 2"
out=$("$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq 2> /dev/null)
t_eq "another database (SELECT)" "$(gauge other-db)" 1

conf "metrics: [dramatiq.other]"
out=$("$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq 2> /dev/null)
t_eq "metrics without dramatiq.queue_size sends none" "$(printf '%s\n' "$out" | grep -c '^dramatiq')" 0

# the daemon follows the queues
mkdir -p "$MS_TMP/none"
{
    ms_paths "$MS_TOP/checks"
    cat << EOF
checks:
  cpu: { enabled: false }
  load: { enabled: false }
  memory: { enabled: false }
  dramatiq: { port: $REDIS_PORT, interval: 0.5s, max_queues: 2000 }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
} > "$MS_TMP/daemon.yaml"
ms_start "$MS_TMP/daemon.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
has() { grep -Eq "$1" "$MS_TMP/out.lp" 2> /dev/null; }
t_ok "queue default at 5" _ms_poll 10 has '^dramatiq\.queue_size,host=[^,]+,queue=default,server=[^,]+,type=queue value=5 '
cmds default dramatiq 8 | rc > /dev/null
t_ok "three more messages: 8" _ms_poll 10 has '^dramatiq\.queue_size,host=[^,]+,queue=default,server=[^,]+,type=queue value=8 '
rc hdel dramatiq:default.msgs default-msg-0 default-msg-1 > /dev/null
t_ok "two acknowledged: 6" _ms_poll 10 has '^dramatiq\.queue_size,host=[^,]+,queue=default,server=[^,]+,type=queue value=6 '
ms_stop
t_eq "clean exit" "$?" 0
t_not "no check errors" grep -q 'check dramatiq:' "$MS_LOG"

# errors: a password is needed, a wrong one, nothing listening
rc config set requirepass s3cret > /dev/null
conf ""
"$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq > /dev/null 2> "$MS_TMP/e1.err"
t_eq "without the password the run fails" "$?" 1
t_match "and says what redis answered" "$(cat "$MS_TMP/e1.err")" 'dramatiq: redis 127\.0\.0\.1:[0-9]+: SCAN failed: NOAUTH'
conf "password: s3cret, max_queues: 2000"
out=$("$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq 2> /dev/null)
t_eq "with the password (AUTH)" "$(gauge emails)" 11
conf "password: wrong"
"$MS_BIN" -c "$MS_TMP/d.yaml" --check dramatiq > /dev/null 2> "$MS_TMP/e2.err"
t_match "a wrong password says AUTH failed" "$(cat "$MS_TMP/e2.err")" 'dramatiq: redis 127\.0\.0\.1:[0-9]+: AUTH failed: .*(WRONGPASS|invalid)'
DEAD=$(free_port tcp)
{
    ms_paths
    echo "checks: { dramatiq: { port: $DEAD } }"
} > "$MS_TMP/dead.yaml"
"$MS_BIN" -c "$MS_TMP/dead.yaml" --check dramatiq > /dev/null 2> "$MS_TMP/e3.err"
t_match "nothing listening: connection refused" "$(cat "$MS_TMP/e3.err")" "tcp connect to 127\.0\.0\.1:$DEAD: connection refused"
t_done
