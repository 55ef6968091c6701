# bench/lib.sh - process helpers the listener benchmarks share; sourced by
# bench/bench_statsd.sh and bench/bench_collectd.sh after they set OUT.
#   start LOG CMD...   run CMD in the background, its PID in $PID (and $PIDS)
#   stop PID           SIGTERM, up to 10 s, then SIGKILL; reaps it
#   alive PID          the process exists and is not a zombie
#   cpu_ticks PID      utime + stime of all its threads, in clock ticks
#   free_port          a loopback port free for both UDP and TCP
# Every process started is ended on exit (the EXIT trap).
HZ=$(getconf CLK_TCK)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

PIDS=""
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2> /dev/null; done
    sleep 0.3
    for p in $PIDS; do kill -KILL "$p" 2> /dev/null; done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # LOG CMD...: background, PID in $PID
    log=$1
    shift
    "$@" > "$log" 2>&1 < /dev/null &
    PID=$!
    PIDS="$PIDS $PID"
}
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2> /dev/null | grep -q '^[ZX]'; }
stop() {
    kill -TERM "$1" 2> /dev/null
    n=0
    while alive "$1" && [ $n -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    alive "$1" && kill -KILL "$1" 2> /dev/null
    wait "$1" 2> /dev/null
    return 0
}
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
free_port() {
    "$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); t=socket.socket(); t.bind(("127.0.0.1", s.getsockname()[1])); print(s.getsockname()[1])'
}
