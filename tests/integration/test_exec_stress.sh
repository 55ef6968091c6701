#!/bin/sh
# 10,000 script runs leave no zombie and no leaked file descriptor: ten
# scripts every 10 ms are enabled by SIGHUP, run until 10,000 of their lines
# have arrived, are disabled by SIGHUP again; then moonstat's open fds
# (/proc/PID/fd) are what they were before, and it has no child left.
# Under ASan a fork costs ~8 ms of system time (the sanitizer's mappings), so
# that pass runs 3,000 runs to stay within a minute.
. "$(dirname "$0")/lib.sh"
ms_tmpdir_public
S=$MS_TMP/scripts
mkdir -p "$S"
for i in 0 1 2 3 4 5 6 7 8 9; do
    printf '#!/bin/sh\necho "stress.n 1"\n' > "$S/s$i"
    chmod 755 "$S/s$i"
done
write_config() { # enabled
    cat > "$MS_TMP/config.yaml" <<EOF
agent: { stats_interval: 1s }
paths: { checks: [], scripts: [scripts], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
scripts: { enabled: $1, interval: 10ms, timeout: 5s }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
}
write_config false
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
# warm-up: a few runs first, since the first spawn opens what stays open
# (libuv keeps a /dev/null descriptor), then the baseline
write_config true
kill -HUP "$MS_PID"
t_ok "reload enables the scripts (warm-up)" ms_wait_log 'reload done' 10
sleep 0.3
write_config false
kill -HUP "$MS_PID"
t_ok "reload disables them" ms_wait_log 'script s9: stopped' 10
sleep 1.5 # runs end; a stats tick opens what it opens
warm=$(grep -c '^stress\.n,' "$MS_TMP/out.lp" 2>/dev/null)
fd_before=$(ls "/proc/$MS_PID/fd" | wc -l)
ls -l "/proc/$MS_PID/fd" > "$MS_TMP/fd.before"

write_config true
kill -HUP "$MS_PID"
t_ok "reload enables the scripts" ms_wait_log 'reload done' 10
target=10000
case $MS_BIN in *asan*) target=3000 ;; esac
start=$(date +%s)
runs=0
while [ $(($(date +%s) - start)) -lt 45 ]; do
    runs=$(($(grep -c '^stress\.n,' "$MS_TMP/out.lp" 2>/dev/null) - warm))
    [ "$runs" -ge "$target" ] && break
    sleep 0.5
done
took=$(($(date +%s) - start))
t_ok "$target runs ($runs in ${took}s)" test "$runs" -ge "$target"

write_config false
kill -HUP "$MS_PID"
i=0
while [ $i -lt 50 ] && [ "$(grep -c 'script s9: stopped' "$MS_LOG")" -lt 2 ]; do sleep 0.1; i=$((i + 1)); done
t_eq "reload disables them again" "$(grep -c 'script s9: stopped' "$MS_LOG")" 2
sleep 1.5
fd_after=$(ls "/proc/$MS_PID/fd" | wc -l)
ls -l "/proc/$MS_PID/fd" > "$MS_TMP/fd.after"
t_eq "no leaked file descriptor (before: $fd_before)" "$fd_after" "$fd_before"
[ "$fd_after" = "$fd_before" ] || t_diag "$(diff "$MS_TMP/fd.before" "$MS_TMP/fd.after")"
zombies=$(ps -o stat= --ppid "$MS_PID" | grep -c '^Z')
t_eq "no zombie child" "$zombies" 0
t_eq "no child left at all" "$(ps -o pid= --ppid "$MS_PID" | wc -l)" 0
grep -q 'exited with status\|cannot run' "$MS_LOG" && t_diag "$(grep -m3 'exited with status\|cannot run' "$MS_LOG")"
t_not "no run failed" grep -q 'script s[0-9]: \(exited\|cannot run\|timed out\)' "$MS_LOG"
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
t_done
