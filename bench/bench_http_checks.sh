#!/bin/sh
# bench/bench_http_checks.sh - HTTP checks: CPU per request and loop stalls,
# beside wrk.
#
# A private nginx (Debian's nginx-light, one process) on 127.0.0.1 answers
# GET /ping with a 5-byte body. moonstat runs BENCH_HTTP_CHECKS (200) checks,
# each doing one ms.http.get of /ping every second (checks spread over the
# second by check_jitter, BENCH_JITTER, 1s), samples to a file forwarder.
# BENCH_JITTER=0 is the worst case for the loop: every check is due in the
# same scheduling tick, each second. After BENCH_WARMUP
# (5) s, over BENCH_SECONDS (30) s:
#   - requests nginx served (its stub_status counter, the two reads of it
#     not counted) and moonstat's CPU (utime+stime of /proc/PID/stat): CPU
#     microseconds per request and % of one core;
#   - moonstat_loop_max_stall_seconds (agent.stats_interval 1s): the worst
#     and the median of the per-second maxima, and how many seconds reached
#     5 ms. Target: worst < 5 ms. Stalls are wall-clock time: beside them,
#     the time the loop's thread spent runnable but waiting for a CPU
#     (/proc/PID/task/PID/schedstat), which says how much of a stall other
#     processes on the machine caused.
# Then wrk (Debian's wrk) runs against the same URL at full speed for
# BENCH_WRK_SECONDS (10) with 1 thread and as many connections as checks:
# its requests per second and its own CPU per request (/proc of the wrk
# process). The CPU per request of the two is the comparison (a ratio): wrk
# is the floor for issuing one HTTP request from a client.
#
# Prints a table and writes it to bench/out/results-http_checks.txt; logs,
# configs and checks stay in bench/out/http_checks/. About a minute. Knobs:
# BENCH_SECONDS, BENCH_WARMUP, BENCH_HTTP_CHECKS, BENCH_WRK_SECONDS, BENCH_JITTER, MS_BIN,
# BENCH_NICE (e.g. -10: run moonstat at that niceness, as root, so that other
# work on a shared machine preempts its loop less), BENCH_STRICT=1 (exit 1 on
# a FAIL row).
set -u

cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/bench/out/http_checks
SECS=${BENCH_SECONDS:-30}
WARM=${BENCH_WARMUP:-5}
NCHECKS=${BENCH_HTTP_CHECKS:-200}
WRK_SECS=${BENCH_WRK_SECONDS:-10}
JITTER=${BENCH_JITTER:-1s}
MS_BIN=${MS_BIN:-$TOP/moonstat}
nice=${BENCH_NICE:+nice -n $BENCH_NICE}
. "$TOP/bench/lib.sh"

rm -rf "$OUT"
mkdir -p "$OUT/checks" "$OUT/nginx/logs" "$OUT/nginx/tmp"
notes=""
now() { date +%s.%N; }
# runq_ns PID: nanoseconds its main thread (the loop) spent runnable but
# waiting for a CPU (second field of /proc/PID/task/PID/schedstat)
runq_ns() { awk '{ print $2 }' "/proc/$1/task/$1/schedstat" 2> /dev/null || echo 0; }

# ---- nginx ------------------------------------------------------------
PORT=$(free_port)
cat > "$OUT/nginx/nginx.conf" << EOF
daemon off;
master_process off;
worker_rlimit_nofile 4096;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/logs/error.log;
events { worker_connections 2048; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx/tmp/body;
    proxy_temp_path $OUT/nginx/tmp/proxy;
    fastcgi_temp_path $OUT/nginx/tmp/fastcgi;
    uwsgi_temp_path $OUT/nginx/tmp/uwsgi;
    scgi_temp_path $OUT/nginx/tmp/scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /ping { default_type text/plain; return 200 "pong\n"; }
        location = /status { stub_status; }
    }
}
EOF
start "$OUT/nginx/nginx.out" /usr/sbin/nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf"
NGINX_PID=$PID
URL=http://127.0.0.1:$PORT/ping
n=0
until curl -sf "$URL" > /dev/null 2>&1 || [ $n -ge 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
# nginx_requests: requests served so far (stub_status "server accepts
# handled requests" line, third number)
nginx_requests() {
    curl -sf "http://127.0.0.1:$PORT/status" | awk 'f { print $3; exit } /accepts handled requests/ { f = 1 }'
}

# ---- moonstat: NCHECKS HTTP checks --------------------------------------
i=1
while [ $i -le "$NCHECKS" ]; do
    cat > "$OUT/checks/http_$(printf '%04d' $i).lua" << EOF
return { interval = 1, collect = function()
  local status, err = ms.http.get("$URL")
  if not status then error(err, 0) end
  ms.gauge("bench.http", status)
end }
EOF
    i=$((i + 1))
done
cat > "$OUT/moonstat.yaml" << EOF
# bench/bench_http_checks.sh: $NCHECKS checks, one HTTP GET each every second
agent: { interval: 1s, check_jitter: $JITTER, stats_interval: 1s }
paths: { checks: ["$OUT/checks"], lua: ["$TOP/lua"], forwarders: ["$TOP/forwarders"] }
forwarders: { sink: { type: file, path: "$OUT/samples.txt", format: influx } }
EOF

runq=n/a ms_req=n/a ms_rps=n/a ms_us=n/a ms_cpu=n/a stall_max=n/a stall_med=n/a stall_over=n/a ok_rate=n/a
echo "bench: moonstat, $NCHECKS HTTP checks @1s (jitter $JITTER) against nginx: ${WARM}s warm-up, ${SECS}s measured ..."
# shellcheck disable=SC2086 # $nice is a word list on purpose
start "$OUT/moonstat.log" $nice "$MS_BIN" -c "$OUT/moonstat.yaml"
MS_PID=$PID
sleep "$WARM"
if alive "$MS_PID" && alive "$NGINX_PID"; then
    l0=$(wc -l < "$OUT/samples.txt" 2> /dev/null || echo 0)
    r0=$(nginx_requests)
    c0=$(cpu_ticks "$MS_PID")
    q0=$(runq_ns "$MS_PID")
    t0=$(now)
    sleep "$SECS"
    c1=$(cpu_ticks "$MS_PID")
    q1=$(runq_ns "$MS_PID")
    t1=$(now)
    r1=$(nginx_requests)
    l1=$(wc -l < "$OUT/samples.txt")
    if alive "$MS_PID" && [ -n "$r0" ] && [ -n "$r1" ]; then
        ms_req=$((r1 - r0 - 1)) # minus our first stub_status read
        ms_rps=$(awk -v n="$ms_req" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
        ms_us=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$ms_req" 'BEGIN { if (n > 0) printf "%.1f", c / hz * 1e6 / n; else print "n/a" }')
        runq=$(awk -v a="$q0" -v b="$q1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 / (t1 - t0) }')
        ms_cpu=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", c / hz / (b - a) * 100 }')
        sed -n "$((l0 + 1)),${l1}p" "$OUT/samples.txt" > "$OUT/window.txt"
        ok_rate=$(awk -v a="$t0" -v b="$t1" '/^bench\.http,.* value=200 / { n++ } END { printf "%.0f", n / (b - a) }' "$OUT/window.txt")
        sed -n 's/^moonstat_loop_max_stall_seconds,[^ ]* value=\([0-9.e+-]*\) .*/\1/p' "$OUT/window.txt" |
            sort -g > "$OUT/stalls.txt"
        if [ -s "$OUT/stalls.txt" ]; then
            stall_max=$(tail -n 1 "$OUT/stalls.txt" | awk '{ printf "%.3f", $1 * 1000 }')
            stall_med=$(awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] * 1000 }' "$OUT/stalls.txt")
            stall_over=$(awk '$1 >= 0.005 { n++ } END { printf "%d of %d", n, NR }' "$OUT/stalls.txt")
        else
            notes="$notes
  moonstat: no moonstat_loop_max_stall_seconds in its output"
        fi
    fi
    errs=$(grep -c 'error check' "$OUT/moonstat.log")
    [ "$errs" -gt 0 ] && notes="$notes
  moonstat: $errs check errors in its log, e.g. $(grep -m 1 'error check' "$OUT/moonstat.log")"
else
    echo "  -- moonstat or nginx did not run; moonstat log:"
    tail -n 15 "$OUT/moonstat.log" | sed 's/^/     /'
fi
stop "$MS_PID"

# ---- wrk at full speed -------------------------------------------------
wrk_rps=n/a wrk_us=n/a wrk_cpu=n/a
if command -v wrk > /dev/null 2>&1; then
    echo "bench: wrk -t1 -c$NCHECKS -d${WRK_SECS}s $URL ..."
    start "$OUT/wrk.txt" wrk -t1 -c"$NCHECKS" -d"${WRK_SECS}s" "$URL"
    WRK_PID=$PID
    sleep 0.3
    w0=$(cpu_ticks "$WRK_PID")
    # wrk's CPU: read just before it exits (it prints and ends at -d)
    w1=$w0
    while alive "$WRK_PID"; do
        w=$(cpu_ticks "$WRK_PID" 2> /dev/null)
        [ -n "$w" ] && w1=$w
        sleep 0.2
    done
    wait "$WRK_PID" 2> /dev/null
    wrk_req=$(awk '/requests in/ { print $1 }' "$OUT/wrk.txt")
    wrk_rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$OUT/wrk.txt")
    if [ -n "$wrk_req" ] && [ -n "$wrk_rps" ] && [ "$wrk_rps" -gt 0 ]; then
        # CPU over the part of the run we sampled (0.3 s in to the end)
        wrk_part=$(awk -v r="$wrk_rps" -v s="$WRK_SECS" 'BEGIN { printf "%.0f", r * (s - 0.3) }')
        wrk_us=$(awk -v c="$((w1 - w0))" -v hz="$HZ" -v n="$wrk_part" 'BEGIN { printf "%.1f", c / hz * 1e6 / n }')
        wrk_cpu=$(awk -v c="$((w1 - w0))" -v hz="$HZ" -v s="$WRK_SECS" 'BEGIN { printf "%.2f", c / hz / (s - 0.3) * 100 }')
    else
        notes="$notes
  wrk: no figures in its output: $(head -c 300 "$OUT/wrk.txt")"
    fi
else
    notes="$notes
  wrk: not installed (make deps)"
fi
stop "$NGINX_PID"

# ---- table --------------------------------------------------------------
row() { # METRIC MOONSTAT WRK TARGET_OP TARGET [noratio]
    awk -v m="$1" -v a="$2" -v b="$3" -v op="$4" -v t="$5" -v nr="${6:-}" 'BEGIN {
        num = "^[0-9]+([.][0-9]+)?$"
        ratio = (nr == "" && a ~ num && b ~ num && b + 0 > 0) ? sprintf("%.2f", a / b) : "-"
        if (op == "-") { target = "-"; verdict = "-" }
        else {
            target = (op == "lt" ? "< " : ">= ") t
            if (a !~ num) verdict = "n/a"
            else if (op == "lt") verdict = (a + 0 < t + 0) ? "PASS" : "FAIL"
            else verdict = (a + 0 >= t + 0) ? "PASS" : "FAIL"
        }
        printf "%-40s %10s %10s %8s %9s %6s\n", m, a, b, ratio, target, verdict
    }'
}
min_rps=$((NCHECKS * 9 / 10))
{
    printf "%-40s %10s %10s %8s %9s %6s\n" metric moonstat wrk ratio target result
    row "requests/s (wrk: at full speed)" "$ms_rps" "$wrk_rps" ge "$min_rps" noratio
    row "requests/s answered 200 (check samples)" "$ok_rate" - ge "$min_rps"
    row "CPU per request (us)" "$ms_us" "$wrk_us" - -
    row "CPU (% of one core)" "$ms_cpu" "$wrk_cpu" - - noratio
    row "loop max stall, worst second (ms)" "$stall_max" - lt 5
    row "loop max stall, median second (ms)" "$stall_med" - - -
    row "seconds with a stall >= 5 ms" "$stall_over" - - -
    row "loop thread waiting for a CPU (ms per s)" "$runq" - - -
} > "$TOP/bench/out/results-http_checks.txt"

echo
echo "moonstat $("$MS_BIN" --version 2> /dev/null | head -n 1)${nice:+ ($nice)}, load average $(cut -d' ' -f1-3 /proc/loadavg), $NCHECKS checks x 1 GET/s (jitter $JITTER) for ${SECS}s; wrk $(dpkg-query -W -f='${Version}' wrk 2> /dev/null) -t1 -c$NCHECKS at full speed for ${WRK_SECS}s; $(nproc) cores"
cat "$TOP/bench/out/results-http_checks.txt"
[ -n "$notes" ] && printf 'notes:%s\n' "$notes"
echo "(ratio = moonstat / wrk; results in bench/out/results-http_checks.txt)"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q ' FAIL$' "$TOP/bench/out/results-http_checks.txt"; then
    exit 1
fi
exit 0
