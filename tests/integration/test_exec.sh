#!/bin/sh
# The exec bridge's formats and basic safety: the PuyPuy example (stack +
# rate, no trailing newline), Debian's Nagios plugins (check_load,
# check_disk) and one script per exit code, collectd PUTVAL/PUTNOTIF, Influx
# and Graphite lines, a bad line logged with script and line number, stderr
# logged, a non-zero exit counted, a non-executable file skipped and logged,
# the environment, the unprivileged user, --config-test errors.
. "$(dirname "$0")/lib.sh"
ms_tmpdir_public
S=$MS_TMP/scripts
mkdir -p "$S"
P=/usr/lib/nagios/plugins

# PuyPuy's example: two lines, one stack one rate, the last without newline
cat > "$S/puypuy.sh" <<'EOF'
#!/bin/sh
printf 'app.sessions 42 myapp stack\napp.requests %s myapp rate' "$(( $(date +%s%N) / 1000000 ))"
EOF
cat > "$S/check_load" <<EOF
#!/bin/sh
exec $P/check_load -w 1000,1000,1000 -c 2000,2000,2000
EOF
cat > "$S/check_disk" <<EOF
#!/bin/sh
exec $P/check_disk -w 1% -c 1% -p /
EOF
for code in 0 1 2 3; do
    cat > "$S/nagios_$code" <<EOF
#!/bin/sh
echo "STATE$code - plugin said $code | value=$code;1;2;0;10"
exit $code
EOF
done
cat > "$S/putval.sh" <<'EOF'
#!/bin/sh
echo "PUTVAL \"$COLLECTD_HOSTNAME/exec-magic/gauge-answer\" interval=$COLLECTD_INTERVAL N:42"
echo "PUTVAL $COLLECTD_HOSTNAME/load/load N:0.5:0.25:0.125"
echo "PUTNOTIF severity=failure plugin=magic type=check message=\"it broke\""
EOF
cat > "$S/mixed.sh" <<'EOF'
#!/bin/sh
echo "net.bytes,iface=eth0 rx=100i,tx=200i"
echo "graphite.path 7.5"
echo "this is not a metric line"
echo "env.interval $MOONSTAT_INTERVAL"
echo "env.hostname_ok $([ "$MOONSTAT_HOSTNAME" = "$(cat "$1")" ] && echo 1 || echo 0)"
echo "env.uid $(id -u)"
echo "env.args $#"
echo "env.fds $(ls /proc/self/fd | wc -l)"
echo "complaint from mixed" >&2
exit 4
EOF
echo 'echo never.runs 1' > "$S/plain.txt" # not executable
chmod 755 "$S"/*.sh "$S"/check_* "$S"/nagios_*
chmod 644 "$S/plain.txt"
hostname_file=$MS_TMP/hostname
echo "exec-test-host" > "$hostname_file"
chmod 644 "$hostname_file"

port=$(free_port tcp)
cat > "$MS_TMP/config.yaml" <<EOF
agent: { stats_interval: 1s, hostname: exec-test-host }
paths: { checks: [], scripts: [scripts], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
scripts:
  interval: 1s
  timeout: 5s
  mixed.sh: { args: ["$hostname_file"], tags: { team: ops } }
  nagios_2: { format: nagios }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
  prom: { type: prometheus, listen: "127.0.0.1:$port" }
EOF

t_ok "--config-test accepts the scripts section" "$MS_BIN" -c "$MS_TMP/config.yaml" --config-test
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10

i=0
while [ $i -lt 60 ] && ! grep -q '^app\.requests,' "$MS_TMP/out.lp" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
sleep 1.2
health=$(http_get "http://127.0.0.1:$port/health")
t_match "/health lists the scripts" "$health" '"scripts":\{.*"mixed\.sh":\{"file":"[^"]*/scripts/mixed\.sh","mode":"periodic"'
t_match "/health shows a failing script's error" "$health" '"mixed\.sh":\{[^}]*"status":"(error|running)"'
t_ok "/health is valid JSON" "$MS_PY" -c 'import json,sys; json.loads(sys.argv[1])' "$health"
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
log=$(cat "$MS_LOG")
out=$(cat "$MS_TMP/out.lp" 2>/dev/null)

t_match "PuyPuy stack line: gauge with type tag" "$out" '^app\.sessions,host=exec-test-host,type=myapp value=42 '
# the script prints a millisecond clock: its rate is about 1000/s (within 10%:
# the clock is read a few ms after the run's start time)
t_match "PuyPuy rate line (last line, no newline): about 1000/s" "$out" '^app\.requests,host=exec-test-host,type=myapp value=(9[0-9][0-9]|10[0-9][0-9])(\.[0-9]+)? '
t_match "check_load perfdata with thresholds" "$out" '^check_load\.load1,crit=2000,host=exec-test-host,min=0,warn=1000 value=[0-9.]+ '
t_match "check_load health OK with the status line" "$out" '^check_load\.health,host=exec-test-host value=0,message="LOAD OK - total load average: [^"]*",level="OK" '
t_match "check_disk bytes with unit tag" "$out" '^check_disk\./,crit=[0-9]+,host=exec-test-host,max=[0-9]+,min=0,unit=bytes,warn=[0-9]+ value=[0-9]+ '
t_match "check_disk health" "$out" '^check_disk\.health,host=exec-test-host value=0,message="DISK OK'
t_match "exit 0 -> OK" "$out" '^nagios_0\.health,host=exec-test-host value=0,message="STATE0 - plugin said 0",level="OK"'
t_match "exit 1 -> WARNING (8)" "$out" '^nagios_1\.health,host=exec-test-host value=8,message="STATE1 - plugin said 1",level="WARNING"'
t_match "exit 2 -> CRITICAL (16), format set per script" "$out" '^nagios_2\.health,host=exec-test-host value=16,message="STATE2 - plugin said 2",level="CRITICAL"'
t_match "exit 3 -> UNKNOWN" "$out" '^nagios_3\.health,host=exec-test-host value=16,message="STATE3 - plugin said 3",level="UNKNOWN"'
t_match "nagios perfdata ranges kept as tags" "$out" '^nagios_1\.value,crit=2,host=exec-test-host,max=10,min=0,warn=1 value=1 '
t_not "a Nagios WARNING is not an exec error" grep -q 'script nagios_1: exited' "$MS_LOG"
t_match "PUTVAL with the collectd environment" "$out" '^exec\.gauge,host=exec-test-host,plugin_instance=magic,type_instance=answer value=42 '
t_match "PUTVAL multi-value load" "$out" '^load\.load\.longterm,host=exec-test-host value=0\.125 '
t_match "PUTNOTIF as a health sample" "$out" '^magic\.check\.notification,host=exec-test-host value=16,message="it broke",level="FAILURE"'
t_match "Influx line with script tags" "$out" '^net\.bytes\.rx,host=exec-test-host,iface=eth0,team=ops value=100 '
t_match "Graphite line" "$out" '^graphite\.path,host=exec-test-host,team=ops value=7\.5 '
t_match "MOONSTAT_INTERVAL" "$out" '^env\.interval,.* value=1 '
t_match "MOONSTAT_HOSTNAME" "$out" '^env\.hostname_ok,.* value=1 '
t_match "args passed" "$out" '^env\.args,.* value=1 '
# ls sees its 0, 1, 2 and the directory it reads: nothing of moonstat's
t_match "no descriptor of moonstat's is inherited" "$out" '^env\.fds,.* value=4 '
if [ "$(id -u)" -eq 0 ]; then
    t_match "as root, scripts run as nobody" "$out" "^env\.uid,.* value=$(id -u nobody) "
else
    t_match "scripts run as moonstat's user" "$out" "^env\.uid,.* value=$(id -u) "
fi
t_match "bad line logged with script name, line number and text" "$log" 'script mixed\.sh line 3: not PuyPuy, Nagios, collectd, Influx or Graphite output: "this is not a metric line"'
t_match "the rest of the output is used (lines after the bad one)" "$out" '^env\.args,'
t_match "bad lines counted" "$out" '^moonstat_exec_bad_lines_total,host=exec-test-host,script=mixed\.sh value=[1-9][0-9]*i'
t_match "stderr logged, attributed to the script" "$log" 'script mixed\.sh: stderr: complaint from mixed'
t_match "non-zero exit logged" "$log" 'script mixed\.sh: exited with status 4'
t_match "non-zero exit counted" "$out" '^moonstat_exec_errors_total,host=exec-test-host,script=mixed\.sh value=[1-9][0-9]*i'
t_match "runs counted" "$out" '^moonstat_exec_runs_total,host=exec-test-host,script=puypuy\.sh value=[1-9][0-9]*i'
t_match "non-executable file skipped and logged" "$log" 'script .*/plain\.txt: not executable, skipped'
t_not "non-executable file never ran" grep -q '^never\.runs' "$MS_TMP/out.lp"
t_match "skipped files counted" "$out" '^moonstat_exec_skipped_files,host=exec-test-host value=1 '

# --config-test: errors with file:line:col
case_bad() { # name regex config-text (no pipe: a pipeline would run this in a subshell)
    printf '%s\nscripts:\n%b\n' "$paths" "$3" > "$MS_TMP/$1.yaml"
    "$MS_BIN" -c "$MS_TMP/$1.yaml" --config-test > "$MS_TMP/$1.out" 2>&1
    t_eq "--config-test $1: exit 1" "$?" 1
    t_match "--config-test $1: message" "$(cat "$MS_TMP/$1.out")" "$2"
}
paths="paths: { checks: [], scripts: [scripts], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }"
case_bad unknown 'unknown\.yaml:4:3: scripts\.bogus: unknown key' '  timeout: 5s\n  bogus: 3'
case_bad format 'format\.yaml:3:19: scripts\.x\.sh\.format: expected auto, puypuy' '  x.sh: { format: xml }'
case_bad duration 'duration\.yaml:3:20: .*duration' '  x.sh: { timeout: soon }'
case_bad user 'user\.yaml:3:9: scripts\.user: no such user' '  user: no-such-user-here'
case_bad nagioslong 'nagioslong\.yaml:3:.*nagios output needs the exit code' '  x.sh: { mode: long-running, format: nagios }'
if [ "$(id -u)" -eq 0 ]; then
    case_bad root 'root\.yaml:3:9: scripts\.user: scripts would run as root' '  user: root'
    printf '%s\nscripts:\n  user: root\n  allow_root: true\n' "$paths" > "$MS_TMP/rootok.yaml"
    t_ok "--config-test: root allowed with allow_root" "$MS_BIN" -c "$MS_TMP/rootok.yaml" --config-test

    # a script below a directory only root may enter: nobody cannot run it,
    # and the error says why
    mkdir -p "$MS_TMP/private/scripts"
    chmod 700 "$MS_TMP/private"
    printf '#!/bin/sh\necho hidden.value 1 gauge\n' > "$MS_TMP/private/scripts/hidden.sh"
    chmod 755 "$MS_TMP/private/scripts/hidden.sh"
    printf '%s\nscripts: { interval: 1s }\n' \
        "paths: { checks: [], scripts: [scripts], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }" \
        > "$MS_TMP/private/config.yaml"
    ms_start "$MS_TMP/private/config.yaml"
    t_ok "a script nobody cannot reach: the error names the user setting" \
        ms_wait_log 'script hidden\.sh: cannot run .*/hidden\.sh: permission denied \(it runs as scripts\.user: that user must be able to enter every directory above it' 10
    ms_stop 10
fi
t_done
