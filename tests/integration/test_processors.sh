#!/bin/sh
# Processors in the daemon: the global list (drop_stale, rename, filter,
# units, hostname and two custom ones) over a check that emits samples with
# old and future timestamps; a forwarder with its own list next to one
# without; a processor that raises (passed on, counted, logged with
# file:line); reload of a changed processor, then of a broken one, which
# keeps the previous version; --config-test errors with line:col.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks" "$MS_TMP/lua/processors"
cat > "$MS_TMP/checks/emit.lua" <<'LUA'
return { interval = 0.2, collect = function()
  local t = ms.timestamp()
  ms.gauge("cpu.user", 1)
  ms.gauge("cpu.idle", 2)
  ms.gauge("old.sample", 3, nil, t - 3600)
  ms.gauge("future.sample", 4, nil, t + 3600)
  ms.gauge("recent.sample", 5, nil, t - 60)
  ms.gauge("mem.bytes", 3 * 1048576)
  ms.counter("neg.value", -7)
end }
LUA
cat > "$MS_TMP/lua/processors/stage.lua" <<'LUA'
-- test processor: tags every sample stage=v1
return function(s) return s:tag("stage", "v1") end
LUA
cat > "$MS_TMP/lua/processors/boom.lua" <<'LUA'
-- test processor: raises on negative values
return function(s)
  if s.value < 0 then error("negative " .. s.name) end
  return s
end
LUA
cat > "$MS_TMP/config.yaml" <<EOF
agent: { hostname: web1.example.com, stats_interval: 1s }
paths: { checks: [checks], lua: [$MS_TMP/lua, $MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
processors:
  - drop_stale
  - rename: { rules: [ { glob: "cpu.*", to: "system.cpu.%1" } ] }
  - filter: { exclude: ["*.idle"] }
  - units: { rules: [ { glob: "*.bytes", from: bytes, to: MiB } ] }
  - hostname: { strip: [".example.com"] }
  - boom
  - stage
forwarders:
  all: { type: file, path: "$MS_TMP/all.txt", format: graphite }
  mem:
    type: file
    path: "$MS_TMP/mem.txt"
    format: graphite
    processors: [ { filter: { include: ["mem.*"] } }, { rename: { rules: [ { glob: "mem.*", to: "m.%1" } ] } } ]
EOF
t_ok "--config-test loads the processors" "$MS_BIN" -c "$MS_TMP/config.yaml" --config-test
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
A=$MS_TMP/all.txt
t_ok "renamed, host trimmed, tagged by the custom processor" \
    _ms_poll 5 grep -q '^system\.cpu\.user;host=web1;stage=v1 1 ' "$A"
t_ok "units: bytes to MiB" grep -q '^mem\.bytes;host=web1;stage=v1 3 ' "$A"
sleep 1
t_not "rename: the old name is gone" grep -q '^cpu\.user' "$A"
t_not "filter: *.idle excluded" grep -q 'idle' "$A"
t_not "drop_stale: an hour old dropped" grep -q '^old\.sample' "$A"
t_not "drop_stale: an hour ahead dropped" grep -q '^future\.sample' "$A"
line=$(grep '^recent\.sample' "$A" | tail -n 1)
now=$(date +%s)
ts=${line##* }
t_ok "drop_stale: a minute old kept, with its own timestamp" \
    test -n "$ts" -a "$ts" -le $((now - 55)) -a "$ts" -ge $((now - 70))
t_ok "a raising processor: sample passed on as it entered the list (host not trimmed, no stage)" \
    grep -q '^neg\.value;host=web1\.example\.com -7 ' "$A"
t_ok "a raising processor: logged with file:line" \
    ms_wait_log 'processors: processor boom: .*/lua/processors/boom\.lua:3: negative neg\.value; sample passed on unchanged' 5
t_ok "errors counted" _ms_poll 5 grep -Eq '^moonstat_processor_errors_total;host=web1;processor=boom;stage=v1 [1-9]' "$A"
t_ok "drops counted" grep -Eq '^moonstat_processor_dropped_total;host=web1;processor=drop_stale;stage=v1 [1-9]' "$A"
n=$(grep -c 'negative neg' "$MS_LOG")
t_ok "error log rate-limited (one line for many errors)" test "$n" -eq 1

M=$MS_TMP/mem.txt
t_ok "forwarder's own processors: filter and rename on its copy" grep -q '^m\.bytes;host=web1;stage=v1 3 ' "$M"
t_eq "forwarder's own processors: nothing else" "$(grep -vc '^m\.bytes;' "$M")" 0
t_ok "forwarder's own processors: the other forwarder unaffected" grep -q '^mem\.bytes;' "$A"
t_ok "forwarder's drops counted with its name" \
    _ms_poll 5 grep -Eq '^moonstat_processor_dropped_total;forwarder=mem;host=web1;processor=filter;stage=v1 [1-9]' "$A"

# reload: a changed processor is re-read
cat > "$MS_TMP/lua/processors/stage.lua" <<'LUA'
-- test processor: tags every sample stage=v2
return function(s) return s:tag("stage", "v2") end
LUA
kill -HUP "$MS_PID"
t_ok "changed processor reloaded" _ms_poll 5 grep -q '^system\.cpu\.user;host=web1;stage=v2 ' "$A"

# reload: a broken processor keeps the previous version
printf -- '-- broken\nreturn function(s)\n  return s:tag("stage", "v3"\nend\n' > "$MS_TMP/lua/processors/stage.lua"
kill -HUP "$MS_PID"
t_ok "broken processor reported with file:line, previous kept" \
    ms_wait_log 'stage\.lua:[0-9]+: .*keeping the previous version of stage' 5
lines=$(wc -l < "$A")
sleep 1
t_ok "v2 still runs after the broken reload" sh -c "tail -n +$lines '$A' | grep -q '^system\.cpu\.user;host=web1;stage=v2 '"
t_not "v3 never ran" grep -q 'stage=v3' "$A"

ms_stop
t_eq "clean exit" "$?" 0

# --config-test: processor errors with positions
cat > "$MS_TMP/bad.yaml" <<EOF
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
processors:
  - drop_stale: { ahead: 1m, behnd: 5m }
EOF
out=$("$MS_BIN" -c "$MS_TMP/bad.yaml" --config-test 2>&1)
t_match "unknown setting with line:col" "$out" "bad\.yaml:3:30: processors\[0\] drop_stale: unknown setting 'behnd' \(known: drop_on_error, .*ahead"
cat > "$MS_TMP/bad.yaml" <<EOF
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
processors: [drop_stale, nosuch]
forwarders:
  out: { type: file, path: "-", processors: [ { filter: { include: 5 } } ] }
EOF
out=$("$MS_BIN" -c "$MS_TMP/bad.yaml" --config-test 2>&1)
t_match "missing processor" "$out" "bad\.yaml:2:26: processors\[1\] nosuch: no processors/nosuch\.lua"
sed -i 's/, nosuch//' "$MS_TMP/bad.yaml"
out=$("$MS_BIN" -c "$MS_TMP/bad.yaml" --config-test 2>&1)
t_match "wrong setting type in a forwarder's list" "$out" "bad\.yaml:4:[0-9]+: forwarders\.out\.processors\[0\] filter\.include: expected a list or a map"
t_done
