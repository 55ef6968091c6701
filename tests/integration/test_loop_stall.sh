#!/bin/sh
# moonstat_loop_max_stall_seconds: the longest turn of the event loop spent
# in callbacks, per stats interval. An idle daemon reports small stalls; a
# check that sorts a big table with a Lua comparator (a C function on the
# stack: the time-slice hook cannot yield there) holds the loop for as long
# as the sort takes, and the metric reports at least that.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/idle" "$MS_TMP/busy"

cat > "$MS_TMP/busy/sorter.lua" << 'LUA'
return { interval = 1, collect = function()
  local t = {}
  for i = 1, 200000 do t[i] = (i * 7919) % 200003 end
  local t0 = ms.monotime()
  table.sort(t, function(a, b) return a < b end)
  ms.gauge("sorter.seconds", ms.monotime() - t0)
end }
LUA
cat > "$MS_TMP/idle/tick.lua" << 'LUA'
return { interval = 0.2, collect = function() ms.gauge("tick", 1) end }
LUA

run() { # NAME CHECKDIR SECONDS: run the daemon, samples in $MS_TMP/NAME.lp
    {
        echo "agent: { stats_interval: 1s }"
        ms_paths "$2"
        echo "checks: { sorter: { memory: 64MiB, jitter: 0s } }"
        echo "forwarders: { out: { type: file, path: \"$MS_TMP/$1.lp\", format: influx } }"
    } > "$MS_TMP/$1.yaml"
    ms_start "$MS_TMP/$1.yaml"
    ms_wait_log 'started' 10 || return 1
    sleep "$3"
    ms_stop
}
values() { # FILE NAME: the values of NAME, one a line
    sed -n "s/^$2,[^ ]* value=\([-0-9.e+]*\) .*/\1/p" "$1"
}

t_ok "an idle daemon runs" run idle "$MS_TMP/idle" 4.5
idle=$(values "$MS_TMP/idle.lp" moonstat_loop_max_stall_seconds)
t_ok "it reports moonstat_loop_max_stall_seconds every interval ($(printf '%s\n' "$idle" | tr '\n' ' '))" \
    test "$(printf '%s\n' "$idle" | grep -c .)" -ge 3
# every_value CMP: all idle values pass the awk condition CMP on $1
every_value() { printf '%s\n' "$idle" | awk "!($1) { bad = 1 } END { exit bad }"; }
some_value() { printf '%s\n' "$idle" | awk "$1 { ok = 1 } END { exit !ok }"; }
t_ok "an idle loop never stalls 20 ms" every_value '$1 < 0.02'
t_ok "but the figure is measured (above zero)" some_value '$1 > 0'

t_ok "a daemon with a check that holds the loop runs" run busy "$MS_TMP/busy" 3.5
took=$(values "$MS_TMP/busy.lp" sorter.seconds | sort -n | head -n 1)
stall=$(values "$MS_TMP/busy.lp" moonstat_loop_max_stall_seconds | sort -n | tail -n 1)
t_ok "the sort took a while (${took:-?} s)" awk -v t="${took:-0}" 'BEGIN { exit !(t >= 0.02) }'
t_ok "the reported stall (${stall:-?} s) covers the shortest sort" \
    awk -v s="${stall:-0}" -v t="${took:-1}" 'BEGIN { exit !(s >= t) }'
t_done
