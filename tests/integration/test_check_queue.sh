#!/bin/sh
# The checks' ready queue: 100 checks due in the same scheduling tick (no
# jitter), each spinning 0.4 ms of CPU, are 40 ms of work a second. Timers
# and I/O callbacks only queue the checks; the queue is drained for at most
# agent.check_turn_budget (1 ms) per loop turn, so no turn of the loop holds
# all of that work: the per-second maxima of moonstat_loop_max_stall_seconds
# stay far below 40 ms, every check still runs every second, in turn, and
# moonstat_check_ready_max_wait_seconds says how long the last one waited.
# With a budget of 1 s (no bound in practice) the stall is back, so the
# bound is what keeps the turns short. A budget of 0 is refused.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
N=100
i=1
while [ $i -le $N ]; do
    cat > "$MS_TMP/checks/spin_$(printf '%03d' $i).lua" << 'LUA'
return { interval = 1, collect = function()
  local t0 = os.clock()
  while os.clock() - t0 < 0.0004 do end
  ms.gauge("spin.run", 1)
end }
LUA
    i=$((i + 1))
done

run() { # NAME BUDGET: 5.5 s of the daemon, samples in $MS_TMP/NAME.lp
    {
        echo "agent: { stats_interval: 1s, check_jitter: 0s, check_turn_budget: $2 }"
        ms_paths "$MS_TMP/checks"
        echo "forwarders: { out: { type: file, path: \"$MS_TMP/$1.lp\", format: influx } }"
    } > "$MS_TMP/$1.yaml"
    ms_start "$MS_TMP/$1.yaml"
    ms_wait_log 'started' 20 || return 1
    sleep 5.5
    ms_stop
}
values() { # FILE NAME: the values of NAME after the first report, one a line
    sed -n "s/^$2,[^ ]* value=\([-0-9.e+]*\) .*/\1/p" "$1" | tail -n +2
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }

t_ok "a daemon with $N checks due together and a 1 ms turn budget runs" run bounded 1ms
stalls=$(values "$MS_TMP/bounded.lp" moonstat_loop_max_stall_seconds)
med=$(printf '%s\n' "$stalls" | median)
t_ok "it reports its stalls ($(printf '%s\n' "$stalls" | tr '\n' ' '))" \
    test "$(printf '%s\n' "$stalls" | grep -c .)" -ge 3
t_ok "the median second's longest turn (${med:-?} s) is far below the 40 ms of work due together" \
    awk -v m="${med:-1}" 'BEGIN { exit !(m < 0.015) }'
runs=$(grep -c '^spin\.run,' "$MS_TMP/bounded.lp")
t_ok "the checks still run every second ($runs runs of $N checks in 5.5 s)" test "$runs" -ge $((N * 4))
few=$(sed -n 's/^moonstat_check_runs_total,check=\([^,]*\),.* value=\([0-9]*\)i .*/\1 \2/p' "$MS_TMP/bounded.lp" |
    awk '{ last[$1] = $2 } END { n = 0; for (c in last) if (last[c] < 4) n++; print n + 0 }')
t_eq "no check is starved (checks with fewer than 4 runs)" "$few" 0
waits=$(values "$MS_TMP/bounded.lp" moonstat_check_ready_max_wait_seconds)
wmax=$(printf '%s\n' "$waits" | sort -g | tail -n 1)
t_ok "the work was spread over turns: the last check waited ${wmax:-?} s (> 10 ms, < 0.5 s)" \
    awk -v w="${wmax:-0}" 'BEGIN { exit !(w > 0.01 && w < 0.5) }'

t_ok "the same checks with a 1 s budget run" run unbounded 1s
med2=$(values "$MS_TMP/unbounded.lp" moonstat_loop_max_stall_seconds | median)
t_ok "without the bound one turn holds them all (median ${med2:-?} s >= 30 ms)" \
    awk -v m="${med2:-0}" 'BEGIN { exit !(m >= 0.03) }'

{
    echo "agent: { check_turn_budget: 0s }"
    ms_paths "$MS_TMP/checks"
} > "$MS_TMP/zero.yaml"
"$MS_BIN" -c "$MS_TMP/zero.yaml" --config-test > "$MS_TMP/zero.out" 2>&1
t_eq "a zero check_turn_budget is refused" "$?" 1
t_match "with file:line:col and the key" "$(cat "$MS_TMP/zero.out")" \
    'zero\.yaml:1:[0-9]+: agent\.check_turn_budget: must be greater than 0'
t_done
