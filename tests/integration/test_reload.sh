#!/bin/sh
# SIGHUP: changed checks restart, added ones start, removed ones stop; a
# broken script keeps its previous version; a broken config keeps the running
# one; unchanged checks, rate state and forwarder queues carry on, so no
# sample is lost across reloads.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
C=$MS_TMP/checks
cat > "$C/seq.lua" <<'LUA'
-- never changes: its run counter must continue without gaps across reloads
local n = 0
return { interval = 0.2, collect = function() n = n + 1 ms.gauge("seq", n) end }
LUA
cat > "$C/a.lua" <<'LUA'
return { interval = 0.2, collect = function() ms.gauge("a.version", 1) end }
LUA
cat > "$C/r.lua" <<'LUA'
return { interval = 0.2, collect = function() ms.rate("r.rate", os.time() * 100) end }
LUA
write_config() {
    cat > "$MS_TMP/config.yaml" <<EOF
agent: { log_level: $1 }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: graphite }
EOF
}
write_config info
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "a v1 runs" _ms_poll 5 grep -q '^a\.version;[^ ]* 1 ' "$MS_TMP/out.lp"

# 1. change a, add b
cat > "$C/a.lua" <<'LUA'
return { interval = 0.2, collect = function() ms.gauge("a.version", 2) end }
LUA
cat > "$C/b.lua" <<'LUA'
return { interval = 0.2, collect = function() ms.gauge("b.here", 1) end }
LUA
kill -HUP "$MS_PID"
t_ok "changed check reloaded" ms_wait_log 'check a: reloaded' 5
t_ok "a v2 runs" _ms_poll 5 grep -q '^a\.version;[^ ]* 2 ' "$MS_TMP/out.lp"
t_ok "added check runs" _ms_poll 5 grep -q '^b\.here' "$MS_TMP/out.lp"

# 2. break a: v2 keeps running
printf 'return { collect = function() ms.gauge("a.version", 3) end\n' > "$C/a.lua"
kill -HUP "$MS_PID"
t_ok "broken script reported with file:line, previous kept" ms_wait_log 'check a: .*a\.lua:2: .*keeping the previous version' 5
lines=$(wc -l < "$MS_TMP/out.lp")
sleep 1
t_ok "a v2 still runs after the broken reload" sh -c "tail -n +$lines '$MS_TMP/out.lp' | grep -q '^a\.version;[^ ]* 2 '"
t_not "v3 never ran" grep -q '^a\.version;[^ ]* 3 ' "$MS_TMP/out.lp"

# 3. break the config: everything keeps running
printf 'agent: { interval: 10s\n' > "$MS_TMP/config.yaml"
kill -HUP "$MS_PID"
t_ok "broken config reported with line:col" ms_wait_log 'reload: .*config\.yaml:[0-9]+:[0-9]+: .*keeping the running config' 5
lines=$(wc -l < "$MS_TMP/out.lp")
sleep 1
t_ok "checks still run after the broken config" sh -c "tail -n +$lines '$MS_TMP/out.lp' | grep -q '^seq;'"

# 4. remove b; rate state survives a change of r
write_config debug
rm "$C/b.lua"
cat > "$C/r.lua" <<'LUA'
-- changed file, same series: the rate state in C survives the restart
return { interval = 0.2, collect = function() ms.rate("r.rate", os.time() * 100) end }
LUA
mark=$(wc -l < "$MS_TMP/out.lp")
kill -HUP "$MS_PID"
t_ok "removed check stopped" ms_wait_log 'check b: removed' 5
t_ok "changed rate check reloaded" ms_wait_log 'check r: reloaded' 5
sleep 1.5
after=$(tail -n +"$((mark + 1))" "$MS_TMP/out.lp")
t_eq "no b samples in the last second" "$(tail -n 20 "$MS_TMP/out.lp" | grep -c '^b\.here')" 0
t_match "rate samples continue right after the reload" "$after" '^r\.rate;'
# 5. reload a check in the middle of a long (sliced) run: the run of the old
# version is abandoned cleanly and the new version takes over
cat > "$C/long.lua" <<'LUA'
return { interval = 0.5, timeout = 5, collect = function()
  ms.log.info("long v1 started")
  local t = os.clock()
  while os.clock() - t < 2 do end
  ms.gauge("long.version", 1)
end }
LUA
kill -HUP "$MS_PID"
t_ok "long v1 running" ms_wait_log 'long v1 started' 5
cat > "$C/long.lua" <<'LUA'
return { interval = 0.5, collect = function() ms.gauge("long.version", 2) end }
LUA
kill -HUP "$MS_PID"
t_ok "the run in progress is abandoned for the new version" ms_wait_log 'check long: run in progress abandoned' 5
t_ok "long v2 runs" _ms_poll 5 grep -q '^long\.version;[^ ]* 2 ' "$MS_TMP/out.lp"
t_not "v1 never finished a run" grep -q '^long\.version;[^ ]* 1 ' "$MS_TMP/out.lp"
ms_stop
t_eq "clean exit" "$?" 0

# seq must be 1..N without a gap or repeat
seqs=$(grep '^seq;' "$MS_TMP/out.lp" | awk '{print $2}')
n=$(echo "$seqs" | wc -l)
gaps=$(echo "$seqs" | awk 'NR != $1 { bad++ } END { print bad + 0 }')
t_ok "seq ran many times across six reloads ($n)" test "$n" -ge 20
t_eq "no sample of an unchanged check lost or repeated across reloads" "$gaps" 0
t_done
