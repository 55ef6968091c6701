#!/bin/sh
# The exec bridge's safety: a script that sleeps forever and forks a child
# that sleeps too (and ignores SIGTERM) is gone with its child after the
# timeout and grace; a script printing 100 MB is capped and moonstat's memory
# stays bounded; overlapping runs are skipped and counted; a long-running
# script's lines arrive as it prints them and it is restarted with backoff;
# SIGHUP adds and removes scripts without disturbing a running one; SIGTERM
# ends the running scripts' groups.
. "$(dirname "$0")/lib.sh"
ms_tmpdir_public
S=$MS_TMP/scripts
mkdir -p "$S"
mark=$$$(date +%N | cut -c1-4) # unique in this test run: sleep <mark>1 ...

cat > "$S/forever.sh" <<EOF
#!/bin/sh
echo "forever.started 1"
sh -c 'trap "" TERM; sleep ${mark}1; sleep ${mark}1' &
sleep ${mark}2
EOF
cat > "$S/big.sh" <<'EOF'
#!/bin/sh
yes 'big.metric 1' | head -c 100000000
echo "big.done 1"
EOF
cat > "$S/slow.sh" <<'EOF'
#!/bin/sh
sleep 0.7
echo "slow.done 1"
EOF
cat > "$S/stream.sh" <<'EOF'
#!/bin/sh
# long-running: a line every 0.2 s with our pid; exits after 3 lines when
# told to by its argument
n=0
while :; do
    n=$((n + 1))
    echo "stream.pid $$"
    echo "stream.n $n"
    [ "$1" = "short" ] && [ $n -ge 3 ] && exit 1
    sleep 0.2
done
EOF
sed 's/stream\./crashy./' "$S/stream.sh" > "$S/crashy.sh"
chmod 755 "$S"/*.sh

write_config() { # [extra lines for scripts:] [more settings of stream.sh] [... of added.sh]
    cat > "$MS_TMP/config.yaml" <<EOF
agent: { stats_interval: 1s }
paths: { checks: [], scripts: [scripts], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
scripts:
  interval: 30s
  forever.sh: { timeout: 1s, grace: 1s }
  big.sh: { max_output: 64KiB, timeout: 20s }
  slow.sh: { interval: 300ms, jitter: 0s, timeout: 5s }
  stream.sh: { mode: long-running$2 }
  added.sh: { interval: 300ms$3 }
  crashy.sh: { mode: long-running, args: [short], restart_delay: 500ms, restart_max: 4s }
$1
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
}
write_config ""
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
count_marked() { pgrep -f "sleep ${mark}" | wc -l; }
i=0
while [ $i -lt 50 ] && [ "$(count_marked)" -lt 3 ]; do sleep 0.1; i=$((i + 1)); done
# the script's sleep, its child shell and the child's sleep
t_eq "script and its child are running (3 marked processes)" "$(count_marked)" 3
t_ok "timeout logged" ms_wait_log 'script forever\.sh: timed out after 1s, terminating its process group' 10
t_ok "SIGKILL after the grace (the child ignores SIGTERM)" ms_wait_log 'script forever\.sh: still running 1s after SIGTERM, sent SIGKILL' 10
sleep 0.5
t_eq "both are gone after timeout + grace" "$(count_marked)" 0
t_not "no process of the forever script left" pgrep -f "$S/forever.sh"

t_ok "big script's output capped" ms_wait_log 'script big\.sh: stdout beyond max_output \(65536 bytes\) discarded' 20
sleep 1
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$MS_PID/status")
t_diag "moonstat peak RSS: $rss kB"
limit=80000
case $MS_BIN in *asan*) limit=250000 ;; esac
t_ok "moonstat's peak RSS stayed bounded ($rss kB < $limit kB) while reading 100 MB" test "$rss" -lt "$limit"
t_not "the big script did not time out (its output was drained)" grep -q 'script big\.sh: timed out' "$MS_LOG"

# long-running: lines arrive while it runs, from one process
sleep 1.5
pid1=$(grep '^stream\.pid,' "$MS_TMP/out.lp" | head -1 | sed 's/.* value=\([0-9]*\) .*/\1/')
nlines=$(grep -c '^stream\.n,' "$MS_TMP/out.lp")
t_ok "long-running script's lines arrive as it prints them ($nlines)" test "$nlines" -ge 5
t_eq "all from one process" "$(grep '^stream\.pid,' "$MS_TMP/out.lp" | sed 's/.* value=\([0-9]*\) .*/\1/' | sort -u | wc -l)" 1
t_ok "crashy long-running script restarted" ms_wait_log 'script crashy\.sh: restarting in 0\.5s' 10
t_ok "with backoff (doubling)" ms_wait_log 'script crashy\.sh: restarting in 1s' 10

# SIGHUP: add a script, remove slow.sh; stream.sh is not disturbed
cat > "$S/added.sh" <<'EOF'
#!/bin/sh
echo "added.value 5"
EOF
chmod 755 "$S/added.sh"
rm "$S/slow.sh"
kill -HUP "$MS_PID"
t_ok "reload done" ms_wait_log 'reload done' 10
t_ok "removed script logged" ms_wait_log 'script slow\.sh: removed' 5
i=0
while [ $i -lt 100 ] && ! grep -q '^added\.value,' "$MS_TMP/out.lp"; do sleep 0.1; i=$((i + 1)); done
t_ok "added script runs after SIGHUP" grep -q '^added\.value,' "$MS_TMP/out.lp"
sleep 1.2 # a run of slow.sh in progress at the reload finishes undisturbed (0.7 s)
slow_before=$(grep -c '^slow\.done,' "$MS_TMP/out.lp")
sleep 1.5
t_eq "removed script no longer runs" "$(grep -c '^slow\.done,' "$MS_TMP/out.lp")" "$slow_before"
t_eq "the long-running script kept its process across the reload" "$(grep '^stream\.pid,' "$MS_TMP/out.lp" | sed 's/.* value=\([0-9]*\) .*/\1/' | sort -u)" "$pid1"
t_ok "it still runs" kill -0 "$pid1"

# a broken scripts: section on reload keeps everything as it was
cp "$MS_TMP/config.yaml" "$MS_TMP/good.yaml"
write_config "  timeout: soon"
kill -HUP "$MS_PID"
t_ok "broken section reported with file:line:col" ms_wait_log 'reload: .*config\.yaml:[0-9]+:[0-9]+: .*scripts.*timeout.*\(keeping the scripts as they were\)' 10
sleep 0.5
t_ok "the long-running script still runs after the broken reload" kill -0 "$pid1"
# a broken section of one script keeps that script's previous settings
write_config "" "" ", format: xml"
kill -HUP "$MS_PID"
t_ok "broken script section reported" ms_wait_log 'script added\.sh: .*config\.yaml:[0-9]+:[0-9]+: scripts\.added\.sh\.format: .*\(keeping its previous settings\)' 10
n_added=$(grep -c '^added\.value,' "$MS_TMP/out.lp")
sleep 1.2
t_ok "and the script keeps running" test "$(grep -c '^added\.value,' "$MS_TMP/out.lp")" -gt "$n_added"
# a changed long-running script is restarted with its new settings
write_config "" ", env: { CHANGED: 1 }"
kill -HUP "$MS_PID"
t_ok "changed long-running script terminated" ms_wait_log 'script stream\.sh: changed: terminating its process group' 10
i=0
while [ $i -lt 50 ] && kill -0 "$pid1" 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
t_not "its old process is gone" kill -0 "$pid1"
i=0
while [ $i -lt 50 ] && [ "$(grep '^stream\.pid,' "$MS_TMP/out.lp" | sed 's/.* value=\([0-9]*\) .*/\1/' | sort -u | wc -l)" -lt 2 ]; do sleep 0.1; i=$((i + 1)); done
pid2=$(grep '^stream\.pid,' "$MS_TMP/out.lp" | tail -1 | sed 's/.* value=\([0-9]*\) .*/\1/')
t_ok "and it runs again as a new process ($pid1 -> $pid2)" test "$pid2" != "$pid1"
pid1=$pid2

ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
t_not "SIGTERM ended the long-running script" kill -0 "$pid1"
log=$(cat "$MS_LOG")
out=$(cat "$MS_TMP/out.lp")
t_match "timeouts counted" "$out" '^moonstat_exec_timeouts_total,host=[^,]*,script=forever\.sh value=1i'
t_match "the forever script's output before the kill was used" "$out" '^forever\.started,'
t_match "overlapping run skipped and logged" "$log" 'script slow\.sh: still running at its next interval, run skipped'
t_match "skips counted" "$out" '^moonstat_exec_skipped_total,host=[^,]*,script=slow\.sh value=[1-9][0-9]*i'
t_match "truncation counted" "$out" '^moonstat_exec_output_truncated_total,host=[^,]*,script=big\.sh value=1i'
t_match "big script's output up to the cap used" "$out" '^big\.metric,'
t_not "nothing past the cap used" grep -q '^big\.done,' "$MS_TMP/out.lp"
t_match "restarts counted" "$out" '^moonstat_exec_restarts_total,host=[^,]*,script=crashy\.sh value=[2-9]i'
t_done
