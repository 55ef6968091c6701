#!/bin/sh
# --config-test: exit 0 on a good config; exit 1 with file:line:col on each
# kind of broken one (schema, YAML, forwarder options, check keys).
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/mine.lua" <<'LUA'
return { defaults = { threshold = 5 }, collect = function() ms.gauge("mine", ms.config.threshold) end }
LUA
paths="paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }"

# case NAME EXPECTED-REGEX  (config text on stdin)
case_bad() {
    cat > "$MS_TMP/$1.yaml"
    "$MS_BIN" -c "$MS_TMP/$1.yaml" --config-test > "$MS_TMP/$1.out" 2>&1
    rc=$?
    t_eq "$1: exit status 1" "$rc" 1
    t_match "$1: message" "$(cat "$MS_TMP/$1.out")" "$2"
}

"$MS_BIN" -c "$MS_TOP/config.yaml" --config-test > "$MS_TMP/good.out" 2>&1
t_eq "shipped config.yaml is valid" "$?" 0

printf '%s\nagent:\n  interval: 10s\n  colour: blue\n' "$paths" | case_bad unknown_key 'unknown_key\.yaml:4:3: unknown key .colour.'
printf '%s\nagent:\n  interval: soon\n' "$paths" | case_bad bad_duration 'bad_duration\.yaml:3:13: .*interval'
printf '%s\nagent:\n  log_level: loud\n' "$paths" | case_bad bad_level 'bad_level\.yaml:3:14: agent\.log_level'
printf '%s\nagent: { interval: 10s\n' "$paths" | case_bad bad_yaml 'bad_yaml\.yaml:[0-9]+:[0-9]+: '
printf '%s\nchecks: [load]\n' "$paths" | case_bad checks_list 'checks_list\.yaml:2:9: checks: expected a map'
printf '%s\nforwarders:\n  g: { type: graphite, adress: "127.0.0.1:2003" }\n' "$paths" | case_bad fwd_option "fwd_option\.yaml:3:24: forwarders\.g: unknown option 'adress'"
printf '%s\nforwarders:\n  g: { type: graphite, address: "nowhere" }\n' "$paths" | case_bad fwd_address 'fwd_address\.yaml:3:33: forwarders\.g\.address: expected an address'
printf '%s\nforwarders:\n  g: { type: graphite, tag_mode: labels }\n' "$paths" | case_bad fwd_choice "fwd_choice\.yaml:3:34: forwarders\.g\.tag_mode: 'labels' is not one of: path, tagged, none"
printf '%s\nforwarders:\n  p: { type: prometheus, expire: -1 }\n' "$paths" | case_bad fwd_duration "fwd_duration\.yaml:3:34: forwarders\.p\.expire: expected a duration, got '-1'"
printf '%s\nforwarders:\n  p: { type: prometheus, batch_size: 10 }\n' "$paths" | case_bad fwd_pull_batch "fwd_pull_batch\.yaml:3:26: forwarders\.p\.batch_size: a prometheus forwarder is scraped: it has no queue"
printf '%s\nforwarders:\n  g: { type: nosuch }\n' "$paths" | case_bad fwd_type 'no encoder nosuch\.lua'
printf '%s\nforwarders:\n  g: { type: file, buffer_size: lots }\n' "$paths" | case_bad fwd_buffer 'forwarders\.g\.buffer_size'
printf '%s\nchecks:\n  mine: { treshold: 3 }\n' "$paths" | case_bad check_key "check_key\.yaml:3:11: checks\.mine: unknown key 'treshold'"
printf '%s\nchecks:\n  mine: { interval: never }\n' "$paths" | case_bad check_interval 'check_interval\.yaml:3:21: checks\.mine\.interval'
printf '%s\nchecks:\n  mine: { threshold: 3, interval: 2s }\n' "$paths" > "$MS_TMP/ok2.yaml"
"$MS_BIN" -c "$MS_TMP/ok2.yaml" --config-test > /dev/null 2>&1
t_eq "a check's own declared key is accepted" "$?" 0
t_match "and reaches ms.config" "$("$MS_BIN" -c "$MS_TMP/ok2.yaml" --check mine 2>&1)" '^mine\{host=[^}]*\} 3 gauge$'
"$MS_BIN" -c "$MS_TMP/missing.yaml" --config-test > "$MS_TMP/missing.out" 2>&1
t_eq "missing file: exit 1" "$?" 1
t_match "missing file: named" "$(cat "$MS_TMP/missing.out")" 'missing\.yaml'
t_done
