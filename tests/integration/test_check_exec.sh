#!/bin/sh
# ms.exec under the daemon: a check running a command every 0.2 s gets its
# output, leaves no zombie and no descriptor behind; a command runs in a
# process group and session of its own; a check abandoned by a reload while
# its command (which ignores SIGTERM) runs has that whole group killed, and
# so does stopping moonstat; moonstat_check_exec_* count it all. Then the
# tegrastats check end to end with --check and a stand-in tegrastats.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"

cat > "$MS_TMP/checks/execfast.lua" << 'LUA'
return { interval = 0.2, collect = function()
  local code, out, err = ms.exec({ "/bin/sh", "-c", "echo $((6 * 7)); echo warn >&2; exit 5" })
  ms.gauge("execfast.value", tonumber(out))
  ms.gauge("execfast.code", code)
  ms.event("execfast.stderr", err)
end }
LUA
for w in waiter waiter2; do
    cat > "$MS_TMP/checks/$w.lua" << LUA
-- runs a command that ignores SIGTERM and would run for a minute
return { interval = 60, timeout = 30, collect = function()
  ms.exec({ "/bin/sh", "-c", "trap '' TERM; echo \$\$ > $MS_TMP/$w.pid; sleep 60; echo never" },
    { timeout = 30, grace = 0.5 })
  ms.gauge("$w.done", 1)
end }
LUA
done
{
    echo "agent: { stats_interval: 1s }"
    ms_paths "$MS_TMP/checks"
    cat << EOF
checks:
  execfast: {}
  waiter: { jitter: 0s }
  waiter2: { jitter: 0s }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
} > "$MS_TMP/config.yaml"

# group_alive PGID: some process of that group still runs (zombies aside)
group_alive() {
    for _p in $(pgrep -g "$1" 2> /dev/null); do
        _ms_alive "$_p" && return 0
    done
    return 1
}
# min_fds PID: the fewest descriptors PID had over 5 looks 0.1 s apart
min_fds() {
    _min=999999
    for _i in 1 2 3 4 5; do
        _n=$(ls "/proc/$1/fd" 2> /dev/null | wc -l)
        [ "$_n" -lt "$_min" ] && _min=$_n
        sleep 0.1
    done
    echo "$_min"
}
# zombies PID: children of PID in state Z
zombies() {
    for _s in /proc/[0-9]*/stat; do
        sed -n "s/^\([0-9]*\) (.*) Z $1 .*/\1/p" "$_s" 2> /dev/null
    done
}

ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "the waiters' commands run" _ms_poll 10 test -s "$MS_TMP/waiter.pid" -a -s "$MS_TMP/waiter2.pid"
g1=$(cat "$MS_TMP/waiter.pid")
g2=$(cat "$MS_TMP/waiter2.pid")
t_eq "a command leads a process group of its own" "$(ps -o pgid= -p "$g1" | tr -d ' ')" "$g1"
t_eq "and a session of its own" "$(ps -o sid= -p "$g1" | tr -d ' ')" "$g1"
t_ok "its child runs in that group" sh -c "pgrep -g $g1 -x sleep > /dev/null"

# reload abandons the waiting run: the group goes, SIGTERM-proof as it is
echo "-- changed" >> "$MS_TMP/checks/waiter.lua"
kill -HUP "$MS_PID"
t_ok "reload abandons the run that waits in ms.exec" ms_wait_log 'check waiter: run in progress abandoned' 10
sleep 1.5
t_not "its process group is gone after the grace (SIGKILL)" group_alive "$g1"
t_ok "the other waiter's group still runs" group_alive "$g2"

fds1=$(min_fds "$MS_PID")
sleep 2
fds2=$(min_fds "$MS_PID")
t_eq "moonstat's descriptors do not grow over ~15 execs ($fds1 then $fds2)" "$fds2" "$fds1"
z1=$(zombies "$MS_PID")
sleep 0.5
z2=$(zombies "$MS_PID")
stale=""
for z in $z1; do
    case " $(echo $z2) " in *" $z "*) stale="$stale $z" ;; esac
done
t_eq "no child of moonstat stays a zombie" "$stale" ""

ms_stop
t_eq "clean exit on SIGTERM while a command runs" "$?" 0
sleep 0.3
t_not "stopping moonstat kills the running command's group" group_alive "$g2"

out=$(cat "$MS_TMP/out.lp" 2> /dev/null)
t_match "the command's stdout reached the check" "$out" '^execfast\.value,host=[^ ]+ value=42 '
t_match "with its exit code" "$out" '^execfast\.code,host=[^ ]+ value=5 '
t_match "and its stderr" "$out" 'execfast\.stderr.*warn'
runs=$(grep -c '^execfast\.value' "$MS_TMP/out.lp")
t_ok "the 0.2 s exec check kept its schedule ($runs runs)" test "$runs" -ge 15
t_not "the waiters never finished" grep -q '^waiter' "$MS_TMP/out.lp"
t_match "execs counted" "$out" '^moonstat_check_exec_total,host=[^,]+,result=ok value=[1-9][0-9]*i'
t_match "children killed because their run ended, counted" "$out" '^moonstat_check_exec_killed_total,host=[^ ]+ value=[1-9][0-9]*i'
t_match "children running, a gauge" "$out" '^moonstat_check_exec_running,host=[^ ]+ value=[0-9]+ '
t_not "no check errors" grep -Eq 'error check (execfast|waiter)' "$MS_LOG"

# tegrastats end to end (--check), with the stand-in that prints forever
mkdir -p "$MS_TMP/tegra"
cp "$MS_TOP/tests/fixtures/tegrastats/tegrastats" "$MS_TOP/tests/fixtures/tegrastats/samples.txt" "$MS_TMP/tegra/"
echo 4 > "$MS_TMP/tegra/line"
{
    ms_paths
    echo "checks: { tegrastats: { path: \"$MS_TMP/tegra/tegrastats\", sample_interval: 100 } }"
} > "$MS_TMP/tegra.yaml"
tg=$("$MS_BIN" -c "$MS_TMP/tegra.yaml" --check tegrastats 2> "$MS_TMP/tegra.err")
t_eq "--check tegrastats exits 0" "$?" 0
t_match "RAM used of the AGX Xavier line" "$tg" '^tegrastats\.ram\.used\{host=[^,]+,type=system\} 4281335808 gauge'
t_match "RAM total" "$tg" '^tegrastats\.ram\.total\{.*\} 33469497344 gauge'
t_match "a zone's temperature" "$tg" '^tegrastats\.temperature\{host=[^,]+,type=system,zone=Tdiode\} 44\.75 gauge'
t_not "no PMIC zone" sh -c "printf '%s\n' \"\$1\" | grep -q zone=PMIC" _ "$tg"
tpid=$(cat "$MS_TMP/tegra/tegrastats.pid")
t_not "the stand-in tegrastats does not outlive the run" _ms_alive "$tpid"
{
    ms_paths
    echo "forwarders: {}"
} > "$MS_TMP/default.yaml"
all=$("$MS_BIN" -c "$MS_TMP/default.yaml" --test 2> /dev/null)
t_not "tegrastats and dramatiq do not run unless configured" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq '^(tegrastats|dramatiq)\.'" _ "$all"
t_done
