#!/bin/sh
# SIGTERM flushes what is pending to the forwarders before exiting, and the
# stop is bounded when a backend cannot take the data; SIGINT works alike;
# --pid-file is written and removed.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/once.lua" <<'LUA'
return { interval = 3600, collect = function() ms.gauge("once.value", 7) ms.log.info("ran") end }
LUA
dead=$(free_port tcp)
cat > "$MS_TMP/config.yaml" <<EOF
agent: { flush_interval: 1h, stats_interval: 1h, shutdown_timeout: 1s, check_jitter: 0s }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
  dead: { type: graphite, address: "127.0.0.1:$dead" }
EOF
ms_start "$MS_TMP/config.yaml" --pid-file "$MS_TMP/ms.pid"
t_ok "first run of a 1 h check happens at start (no jitter)" ms_wait_log 'once.lua:1: ran' 5
t_eq "pid file holds the pid" "$(cat "$MS_TMP/ms.pid" 2>/dev/null)" "$MS_PID"
t_not "nothing flushed yet (flush_interval 1h)" test -s "$MS_TMP/out.lp"
start=$(date +%s)
ms_stop 10
t_eq "exit 0 on SIGTERM" "$?" 0
took=$(( $(date +%s) - start ))
t_ok "stop bounded by shutdown_timeout with a dead backend (${took}s)" test "$took" -le 4
t_match "the pending sample was flushed on the way out" "$(cat "$MS_TMP/out.lp" 2>/dev/null)" '^once\.value,host=[^ ]* value=7 '
t_match "unsent data of the dead backend is reported" "$(cat "$MS_LOG")" 'forwarder dead: stopping with [0-9]+ bytes unsent'
t_not "pid file removed" test -e "$MS_TMP/ms.pid"

# a second SIGTERM while the forwarders drain does not kill the process
ms_start "$MS_TMP/config.yaml"
t_ok "started for the double SIGTERM" ms_wait_log 'once.lua:1: ran' 5
kill -TERM "$MS_PID"
sleep 0.3
kill -TERM "$MS_PID"
wait "$MS_PID"
t_eq "exit 0 after two SIGTERMs (not killed by the second)" "$?" 0
MS_PID=

# SIGINT
rm -f "$MS_TMP/out.lp"
ms_start "$MS_TMP/config.yaml"
t_ok "started again" ms_wait_log 'once.lua:1: ran' 5
kill -INT "$MS_PID"
t_ok "SIGINT stops it" _ms_poll 5 sh -c "! kill -0 $MS_PID 2>/dev/null"
t_match "SIGINT flushes too" "$(cat "$MS_TMP/out.lp" 2>/dev/null)" '^once\.value,'
t_done
