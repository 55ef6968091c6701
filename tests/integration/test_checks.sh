#!/bin/sh
# Checks under the scheduler: a good check keeps running on time while a
# runaway loop, a pcall-wrapped loop, an allocation bomb and a failing check
# are stopped, logged with file:line and counted; --test and --check print
# samples; a broken file is reported and the rest load.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/good.lua" <<'LUA'
local total = 0
return { interval = 0.2, type = "demo", collect = function()
  ms.gauge("good.value", 42, { role = "db" })
  total = total + 10
  ms.rate("good.rate", total)
end }
LUA
cat > "$MS_TMP/checks/runaway.lua" <<'LUA'
return { interval = 1, timeout = 0.5, collect = function()
  while true do end
end }
LUA
cat > "$MS_TMP/checks/pcallloop.lua" <<'LUA'
return { interval = 1, timeout = 0.3, collect = function()
  while true do pcall(function() while true do end end) end
end }
LUA
cat > "$MS_TMP/checks/bomb.lua" <<'LUA'
return { interval = 1, collect = function()
  local t = {}
  while true do t[#t + 1] = string.rep("x", 1000) .. #t end
end }
LUA
cat > "$MS_TMP/checks/failing.lua" <<'LUA'
return { interval = 1, collect = function()
  ms.gauge("failing.before", 1)
  local x = nil
  return x.field
end }
LUA
cat > "$MS_TMP/checks/sorter.lua" <<'LUA'
-- long work inside a C function (table.sort with a Lua comparator) must not
-- be yielded across: it completes.
return { interval = 1, collect = function()
  local t = {}
  for i = 1, 30000 do t[i] = (i * 7919) % 10007 end
  table.sort(t, function(a, b) return a < b end)
  ms.gauge("sorter.min", t[1])
end }
LUA
cat > "$MS_TMP/checks/slow.lua" <<'LUA'
-- runs 0.5 s (sliced, so the loop goes on) on a 0.2 s interval: overlaps
return { interval = 0.2, timeout = 2, collect = function()
  local t = os.clock()
  while os.clock() - t < 0.5 do end
  ms.gauge("slow.done", 1)
end }
LUA
cat > "$MS_TMP/checks/broken.lua" <<'LUA'
return { collect = function() ms.gauge("x", 1) end
LUA
cat > "$MS_TMP/config.yaml" <<EOF
agent: { stats_interval: 1s, check_memory: 4MiB }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF

ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
sleep 3.5
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
log=$(cat "$MS_LOG")
out=$(cat "$MS_TMP/out.lp" 2>/dev/null)

t_match "broken file reported with file:line" "$log" 'check broken: .*broken\.lua:2: .*expected'
t_match "runaway check stopped at its timeout, with file:line" "$log" 'check runaway: .*runaway\.lua:[0-9]+: .*timed out'
t_match "pcall cannot swallow the timeout" "$log" 'check pcallloop: .*timed out'
t_match "allocation bomb stopped at the memory limit" "$log" 'check bomb: .*memory limit of 4\.0 MiB'
t_match "failing check logged with file:line" "$log" "check failing: .*failing\.lua:4: attempt to index"
t_not "sorter never fails (no yield across table.sort)" grep -q 'check sorter' "$MS_LOG"
t_match "sorter emitted" "$out" '^sorter\.min,host=[^ ]*'
t_match "samples of a failed run before the error are kept" "$out" '^failing\.before,'
t_match "good check emits with its type and tags" "$out" '^good\.value,host=[^,]+,role=db,type=demo value=42 '
good_runs=$(grep -c '^good\.value,' "$MS_TMP/out.lp")
t_ok "good check kept its 0.2 s schedule beside the runaway ones ($good_runs runs in ~3.5 s)" test "$good_runs" -ge 12
t_match "rate emitted from the second run on (about 10 per 0.2 s)" "$out" '^good\.rate,.* value=[1-9][0-9]\.?[0-9]* '
first_rate=$(grep -c '^good\.rate,' "$MS_TMP/out.lp")
t_eq "no rate on the first run" "$first_rate" "$((good_runs - 1))"
t_match "timeouts counted in moonstat_check_timeouts_total" "$out" '^moonstat_check_timeouts_total,check=runaway,.* value=[1-9][0-9]*i'
t_match "errors counted for the bomb" "$out" '^moonstat_check_errors_total,check=bomb,.* value=[1-9][0-9]*i'
t_match "overlapping run skipped and logged" "$log" 'check slow: still running at its next interval, run skipped'
t_match "skips counted in moonstat_check_skipped_total" "$out" '^moonstat_check_skipped_total,check=slow,.* value=[1-9][0-9]*i'
t_match "the slow check still completes its runs" "$out" '^slow\.done,'
t_match "load errors counted" "$out" '^moonstat_check_load_errors_total,.* value=1i'

# --test: every enabled check once; --check: one; exit status tells failure
cat > "$MS_TMP/config2.yaml" <<EOF
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
checks: { runaway: { enabled: false }, pcallloop: { enabled: false }, bomb: { enabled: false }, failing: { enabled: false }, slow: { enabled: false } }
EOF
one=$("$MS_BIN" -c "$MS_TMP/config2.yaml" --check good 2>"$MS_TMP/check.err")
t_eq "--check good exits 0" "$?" 0
t_match "--check prints name{tags} value kind" "$one" '^good\.value\{host=[^,]+,role=db,type=demo\} 42 gauge$'
t_eq "--check prints only that check" "$(echo "$one" | grep -vc '^good\.')" 0
all=$("$MS_BIN" -c "$MS_TMP/config2.yaml" --test 2>/dev/null)
t_match "--test runs the others too" "$all" '^sorter\.min'
"$MS_BIN" -c "$MS_TMP/config.yaml" --check failing > /dev/null 2> "$MS_TMP/fail.err"
t_eq "--check on a failing check exits 1" "$?" 1
t_match "and says why with file:line" "$(cat "$MS_TMP/fail.err")" 'failing\.lua:4:'
"$MS_BIN" -c "$MS_TMP/config2.yaml" --check nosuch > /dev/null 2> "$MS_TMP/nosuch.err"
t_eq "--check on an unknown check exits 1" "$?" 1
t_done
