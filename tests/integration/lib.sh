# tests/integration/lib.sh - shell library for moonstat's integration tests.
#
# POSIX sh (dash). Sourced by tests/integration/test_*.sh:
#
#     . "$(dirname "$0")/lib.sh"
#     ms_tmpdir                      # tests/tmp/<test>/ + cleanup trap
#     port=$(free_port)
#     { ms_paths; echo "forwarders: ..."; } > "$MS_TMP/config.yaml"
#     ms_start "$MS_TMP/config.yaml"
#     t_ok "moonstat is up" ms_wait_log 'started'
#     ms_stop; t_eq "clean exit on SIGTERM" "$?" 0
#     t_done
#
# What is here:
#   TAP        t_ok, t_not, t_eq, t_match, t_pass, t_fail, t_diag, t_done
#   processes  ms_tmpdir (per-test dir + cleanup trap), ms_bg, ms_paths,
#              ms_start, ms_wait_log, ms_stop, ms_run_for, ms_log_tail
#   network    free_port, wait_port, tcp_send, udp_send, http_get
#   peers      carbon_start / carbon_fetch / carbon_points / carbon_fetch_tagged
#              prom_start / prom_query / prom_value / prom_wait_up / prom_target
#              nginx_start (stub_status, basic auth, HTTPS with client
#              certificates), tls_certs, redis_start
#              influx_start / influx_stop / influx_create_db / influx_query /
#              influx_rows
#
# Every peer is a real Debian-packaged server (graphite-carbon, prometheus,
# influxdb, nginx, redis) started as a child of the test, listening only on
# 127.0.0.1 on free ports, with all its files under the test's tmp dir. The
# cleanup trap ends every process the test started (and only those) and
# keeps the tmp dir for reading.
#
# Output is TAP: "ok - desc" / "not ok - desc", diagnostics as "# ..." lines,
# and a trailing plan "1..N" from t_done. tests/run.sh counts the ok lines.
#
# Conventions: helpers that start a process must be called directly, never
# inside $(...) (a subshell's children are not ours to wait for). Timeouts
# are whole seconds. Names starting with _ms are private.

# ---- locations ---------------------------------------------------------

# Repository root: tests/integration/ is two levels below it.
MS_TOP=${MS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MS_BIN=${MS_BIN:-$MS_TOP/moonstat}
# Debian's python3 sees the python3-whisper and graphite-carbon modules;
# another python3 first in PATH (pyenv, venv) may not.
if [ -x /usr/bin/python3 ]; then MS_PY=${MS_PY:-/usr/bin/python3}; else MS_PY=${MS_PY:-python3}; fi
MS_PIDS=""       # every process this test started, for the cleanup trap
MS_PID=""        # the last moonstat started by ms_start
MS_LOG=""        # its log (stdout+stderr)
_ms_tests=0
_ms_failed=0
_ms_nstart=0

# ---- TAP ---------------------------------------------------------------

# t_pass DESC / t_fail DESC: one TAP line.
t_pass() {
    _ms_tests=$((_ms_tests + 1))
    echo "ok - $1"
}
t_fail() {
    _ms_tests=$((_ms_tests + 1))
    _ms_failed=$((_ms_failed + 1))
    echo "not ok - $1"
}

# t_diag TEXT...: diagnostic lines ("# ..."), one per input line.
t_diag() {
    printf '%s\n' "$*" | sed 's/^/# /'
}

# t_ok DESC CMD [ARGS...]: ok when CMD exits 0. CMD runs in this shell (so
# shell functions work and may set variables); its output is shown as
# diagnostics only when it fails.
t_ok() {
    _ms_desc=$1
    shift
    _ms_out=${MS_TMP:-${TMPDIR:-/tmp}}/.t_ok.$$
    if "$@" > "$_ms_out" 2>&1; then
        t_pass "$_ms_desc"
    else
        _ms_rc=$?
        t_fail "$_ms_desc"
        t_diag "command: $* (exit $_ms_rc)"
        [ -s "$_ms_out" ] && tail -n 20 "$_ms_out" | sed 's/^/#   /'
    fi
    rm -f "$_ms_out"
}

# t_not DESC CMD [ARGS...]: ok when CMD exits non-zero.
t_not() {
    _ms_desc=$1
    shift
    if "$@" > /dev/null 2>&1; then
        t_fail "$_ms_desc"
        t_diag "command succeeded but should not have: $*"
    else
        t_pass "$_ms_desc"
    fi
}

# t_eq DESC ACTUAL EXPECTED: ok when the two strings are equal.
t_eq() {
    if [ "$2" = "$3" ]; then
        t_pass "$1"
    else
        t_fail "$1"
        t_diag "expected: $3"
        t_diag "     got: $2"
    fi
}

# t_match DESC TEXT REGEX: ok when some line of TEXT matches the extended
# regular expression REGEX (grep -E).
t_match() {
    if printf '%s\n' "$2" | grep -Eq -e "$3"; then
        t_pass "$1"
    else
        t_fail "$1"
        t_diag "no line matches: $3"
        printf '%s\n' "$2" | tail -n 20 | sed 's/^/#   /'
    fi
}

# t_done: print the plan and exit; the status is 1 when anything failed.
# The cleanup trap runs on the way out.
t_done() {
    echo "1..$_ms_tests"
    [ "$_ms_failed" -eq 0 ] && exit 0
    exit 1
}

# ---- temp dir and cleanup ---------------------------------------------

# ms_tmpdir [NAME]: create tests/tmp/NAME (default: the test script's name,
# plus the build dir for non-default binaries, e.g. test_x-build-asan), empty
# it if an earlier run left it, export MS_TMP, and install the cleanup trap.
ms_tmpdir() {
    _ms_name=${1:-$(basename "$0" .sh)}
    case $MS_BIN in
    "$MS_TOP/moonstat") ;;
    *) _ms_name="$_ms_name-$(basename "$(dirname "$MS_BIN")")" ;;
    esac
    MS_TMP=$MS_TOP/tests/tmp/$_ms_name
    rm -rf "$MS_TMP"
    mkdir -p "$MS_TMP"
    export MS_TMP
    trap ms_cleanup EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# ms_cleanup: end every process this test started: SIGTERM, up to 5 s for
# them to go, then SIGKILL. Files are left in place for post-mortems.
# ms_tmpdir_public [NAME]: ms_tmpdir, but MS_TMP is a fresh directory under
# /tmp (mode 755, removed at exit) rather than under the checkout: the exec
# bridge runs scripts as an unprivileged user (nobody, when the tests run as
# root), who must be able to reach them, and a checkout may sit below a
# directory only its owner can enter (mktemp -d makes those).
ms_tmpdir_public() {
    ms_tmpdir "$@"
    MS_PUBLIC_TMP=$(mktemp -d /tmp/moonstat-test.XXXXXX) || exit 1
    chmod 755 "$MS_PUBLIC_TMP"
    MS_TMP=$MS_PUBLIC_TMP
    export MS_TMP
}

ms_cleanup() {
    _ms_live=""
    for _ms_p in $MS_PIDS; do
        if kill -0 "$_ms_p" 2> /dev/null; then
            kill -TERM "$_ms_p" 2> /dev/null
            _ms_live="$_ms_live $_ms_p"
        fi
    done
    _ms_i=0
    while [ -n "$_ms_live" ] && [ $_ms_i -lt 50 ]; do
        _ms_still=""
        for _ms_p in $_ms_live; do
            _ms_alive "$_ms_p" && _ms_still="$_ms_still $_ms_p"
        done
        _ms_live=$_ms_still
        [ -n "$_ms_live" ] && sleep 0.1
        _ms_i=$((_ms_i + 1))
        if [ $((_ms_i % 10)) -eq 0 ]; then # repeat SIGTERM (see ms_stop)
            for _ms_p in $_ms_live; do kill -TERM "$_ms_p" 2> /dev/null; done
        fi
    done
    for _ms_p in $_ms_live; do
        kill -KILL "$_ms_p" 2> /dev/null
    done
    MS_PIDS=""
    [ -n "${MS_PUBLIC_TMP:-}" ] && rm -rf "$MS_PUBLIC_TMP"
    return 0
}

# _ms_alive PID: true while PID runs. A child that exited but was not reaped
# yet is a zombie (state Z): kill -0 still succeeds on it, so read the state.
_ms_alive() {
    [ -r "/proc/$1/stat" ] || return 1
    # field 3 of /proc/PID/stat, after the ")" that closes the command name
    _ms_state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2> /dev/null)
    [ -n "$_ms_state" ] && [ "$_ms_state" != Z ] && [ "$_ms_state" != X ]
}

_ms_forget() {
    _ms_keep=""
    for _ms_p in $MS_PIDS; do
        [ "$_ms_p" = "$1" ] || _ms_keep="$_ms_keep $_ms_p"
    done
    MS_PIDS=$_ms_keep
}

# ms_bg LOGFILE CMD [ARGS...]: start CMD in the background with stdout and
# stderr to LOGFILE and stdin from /dev/null; record its PID for cleanup and
# leave it in MS_BG_PID.
ms_bg() {
    _ms_bglog=$1
    shift
    "$@" > "$_ms_bglog" 2>&1 < /dev/null &
    MS_BG_PID=$!
    MS_PIDS="$MS_PIDS $MS_BG_PID"
}

# ---- moonstat ----------------------------------------------------------

# ms_start CONFIG [ARGS...]: start "$MS_BIN" -c CONFIG [ARGS] from the repo
# root. Sets MS_PID and MS_LOG (moonstat.log, moonstat.2.log, ... for later
# starts). Paths in CONFIG are relative to CONFIG's own folder: use ms_paths.
ms_start() {
    _ms_conf=$1
    shift
    _ms_nstart=$((_ms_nstart + 1))
    if [ "$_ms_nstart" -eq 1 ]; then
        MS_LOG=$MS_TMP/moonstat.log
    else
        MS_LOG=$MS_TMP/moonstat.$_ms_nstart.log
    fi
    # Start from the repo root, then come back (no subshell: we must stay
    # the process's parent so ms_stop can wait for it).
    _ms_cwd=$(pwd)
    cd "$MS_TOP" || return 1
    ms_bg "$MS_LOG" "$MS_BIN" -c "$_ms_conf" "$@"
    cd "$_ms_cwd" || return 1
    MS_PID=$MS_BG_PID
}

# ms_paths [CHECKS_DIR...]: print a one-line "paths:" section naming the
# repo's checks/, scripts/, lua/ and forwarders/ by absolute path, for a test
# config: relative paths in a config are relative to the config's file,
# which lives in $MS_TMP. CHECKS_DIRs, when given, replace checks/.
ms_paths() {
    _ms_checks=""
    for _ms_d in "$@"; do
        _ms_checks="$_ms_checks${_ms_checks:+, }\"$_ms_d\""
    done
    [ -n "$_ms_checks" ] || _ms_checks="\"$MS_TOP/checks\""
    printf 'paths: { checks: [%s], scripts: ["%s"], lua: ["%s"], forwarders: ["%s"] }\n' \
        "$_ms_checks" "$MS_TOP/scripts" "$MS_TOP/lua" "$MS_TOP/forwarders"
}

# ms_wait_log REGEX [TIMEOUT=10] [LOG=$MS_LOG]: wait until a line of the log
# matches REGEX (grep -E). Fails at the timeout, or at once when moonstat
# exited (the log tail is printed then).
ms_wait_log() {
    _ms_re=$1
    _ms_n=$((${2:-10} * 10))
    _ms_file=${3:-$MS_LOG}
    while [ "$_ms_n" -gt 0 ]; do
        grep -Eq -e "$_ms_re" "$_ms_file" 2> /dev/null && return 0
        if [ -n "$MS_PID" ] && [ "$_ms_file" = "$MS_LOG" ] && ! _ms_alive "$MS_PID"; then
            grep -Eq -e "$_ms_re" "$_ms_file" 2> /dev/null && return 0
            echo "moonstat exited before the log matched: $_ms_re"
            ms_log_tail
            return 1
        fi
        sleep 0.1
        _ms_n=$((_ms_n - 1))
    done
    echo "timed out waiting for log line: $_ms_re"
    ms_log_tail
    return 1
}

# ms_log_tail [N=20]: the end of the moonstat log.
ms_log_tail() {
    [ -n "$MS_LOG" ] && tail -n "${1:-20}" "$MS_LOG" 2> /dev/null
    return 0
}

# ms_stop [TIMEOUT=10] [PID=$MS_PID]: SIGTERM, wait up to TIMEOUT seconds
# (then SIGKILL) and return the process's exit status (128+signal when a
# signal ended it; 137 after SIGKILL). Call it directly, e.g.
#     ms_stop; rc=$?; t_eq "clean exit" "$rc" 0
ms_stop() {
    _ms_n=$((${1:-10} * 10))
    _ms_p=${2:-$MS_PID}
    [ -n "$_ms_p" ] || return 255
    kill -TERM "$_ms_p" 2> /dev/null
    while [ "$_ms_n" -gt 0 ] && _ms_alive "$_ms_p"; do
        sleep 0.1
        _ms_n=$((_ms_n - 1))
        # Repeat SIGTERM each second: one sent right after the fork, before
        # the child exec'd, can be lost in the child shell's trap handler.
        [ $((_ms_n % 10)) -eq 0 ] && kill -TERM "$_ms_p" 2> /dev/null
    done
    if _ms_alive "$_ms_p"; then
        echo "# pid $_ms_p still running after SIGTERM, sending SIGKILL" >&2
        kill -KILL "$_ms_p" 2> /dev/null
    fi
    wait "$_ms_p"
    _ms_rc=$?
    _ms_forget "$_ms_p"
    return $_ms_rc
}

# ms_run_for SECONDS CONFIG [ARGS...]: start moonstat (ms_start), let it run
# SECONDS after its "started" line, then stop it; two TAP lines: "daemon
# starts" and "clean exit on SIGTERM". Its log stays in MS_LOG.
ms_run_for() {
    _ms_secs=$1
    shift
    ms_start "$@"
    t_ok "daemon starts" ms_wait_log 'started' 10
    sleep "$_ms_secs"
    ms_stop
    t_eq "clean exit on SIGTERM" "$?" 0
}

# ---- network helpers ---------------------------------------------------

# free_port [tcp|udp|both]: print a loopback port that is free now (for TCP
# and UDP both, by default), never one already handed out in this test
# (those are listed in a file, since $(free_port) runs in a subshell).
free_port() {
    _ms_seen=${MS_TMP:-${TMPDIR:-/tmp}}/.ports.$$
    "$MS_PY" - "${1:-both}" "$_ms_seen" << 'EOF'
import socket, sys
kind, seen_file = sys.argv[1], sys.argv[2]
try:
    seen = set(open(seen_file).read().split())
except OSError:
    seen = set()
for _ in range(200):
    first = socket.socket(socket.AF_INET,
                          socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    first.bind(("127.0.0.1", 0))
    port = first.getsockname()[1]
    ok = str(port) not in seen
    if ok and kind == "both":
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            ok = False
        other.close()
    first.close()
    if ok:
        with open(seen_file, "a") as f:
            f.write("%d\n" % port)
        print(port)
        sys.exit(0)
sys.exit("free_port: no free port found")
EOF
}

# wait_port PORT [TIMEOUT=10] [HOST=127.0.0.1]: wait until a TCP connect to
# HOST:PORT succeeds.
wait_port() {
    "$MS_PY" - "$1" "${2:-10}" "${3:-127.0.0.1}" << 'EOF'
import socket, sys, time
port, timeout, host = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
end = time.time() + timeout
while True:
    try:
        socket.create_connection((host, port), timeout=1).close()
        sys.exit(0)
    except OSError:
        if time.time() > end:
            sys.exit("wait_port: nothing accepts on %s:%d after %gs" % (host, port, timeout))
        time.sleep(0.1)
EOF
}

# tcp_send PORT [HOST=127.0.0.1]: send stdin over one TCP connection, then
# close it.
tcp_send() {
    "$MS_PY" -c '
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
s.close()' "$1" "${2:-127.0.0.1}"
}

# udp_send PORT [HOST=127.0.0.1]: send each line of stdin as one UDP
# datagram (without its newline).
udp_send() {
    "$MS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin.buffer.read().splitlines():
    s.sendto(line, (sys.argv[2], int(sys.argv[1])))' "$1" "${2:-127.0.0.1}"
}

# http_get URL: print the body; fails on a connection error or HTTP >= 400.
http_get() {
    curl -sS --fail --max-time 5 "$1"
}

# _ms_poll TIMEOUT CMD [ARGS...]: run CMD every 0.2 s until it succeeds.
_ms_poll() {
    _ms_pn=$(($1 * 5))
    shift
    while [ "$_ms_pn" -gt 0 ]; do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.2
        _ms_pn=$((_ms_pn - 1))
    done
    return 1
}

# ---- nginx and redis-server (service checks) ---------------------------

# tls_certs DIR [DAYS=30]: make a test CA (ca.pem), a server certificate for
# 127.0.0.1/localhost valid DAYS days (server.pem, server.key) and a client
# certificate (client.pem, client.key), both signed by the CA, with openssl.
tls_certs() {
    mkdir -p "$1"
    (
        cd "$1" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=moonstat test CA" 2> /dev/null &&
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
                -subj "/CN=localhost" 2> /dev/null &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -out server.pem -days "${2:-30}" -extfile server.ext 2> /dev/null &&
            openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr \
                -subj "/CN=moonstat client" 2> /dev/null &&
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -out client.pem -days 2 2> /dev/null
    )
}

# nginx_start [USER PASSWORD]: start a private nginx (one process, no
# daemon) on 127.0.0.1 serving stub_status at /status (and, with USER and
# PASSWORD, at /auth_status behind basic auth), files in $MS_TMP/nginx.
# With NGINX_TLS_DIR (made by tls_certs) it also serves /status over HTTPS on
# NGINX_TLS_PORT, requiring a client certificate signed by the test CA.
# Exports NGINX_PORT and NGINX_PID; waits until the port accepts.
nginx_start() {
    _ms_ndir=$MS_TMP/nginx
    mkdir -p "$_ms_ndir/logs" "$_ms_ndir/tmp"
    NGINX_PORT=$(free_port tcp)
    export NGINX_PORT
    _ms_tls=""
    if [ -n "${NGINX_TLS_DIR:-}" ]; then
        NGINX_TLS_PORT=$(free_port tcp)
        export NGINX_TLS_PORT
        _ms_tls="server {
        listen 127.0.0.1:$NGINX_TLS_PORT ssl;
        ssl_certificate $NGINX_TLS_DIR/server.pem;
        ssl_certificate_key $NGINX_TLS_DIR/server.key;
        ssl_client_certificate $NGINX_TLS_DIR/ca.pem;
        ssl_verify_client on;
        location = /status { stub_status; }
    }"
    fi
    printf '%s:{PLAIN}%s\n' "${1:-user}" "${2:-secret}" > "$_ms_ndir/htpasswd"
    cat > "$_ms_ndir/nginx.conf" << EOF
daemon off;
master_process off;
pid $_ms_ndir/nginx.pid;
error_log $_ms_ndir/logs/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $_ms_ndir/tmp/body;
    proxy_temp_path $_ms_ndir/tmp/proxy;
    fastcgi_temp_path $_ms_ndir/tmp/fastcgi;
    uwsgi_temp_path $_ms_ndir/tmp/uwsgi;
    scgi_temp_path $_ms_ndir/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /status { stub_status; }
        location = /auth_status {
            stub_status;
            auth_basic "moonstat test";
            auth_basic_user_file $_ms_ndir/htpasswd;
        }
    }
    $_ms_tls
}
EOF
    ms_bg "$_ms_ndir/nginx.out" /usr/sbin/nginx -p "$_ms_ndir" -c "$_ms_ndir/nginx.conf"
    NGINX_PID=$MS_BG_PID
    export NGINX_PID
    wait_port "$NGINX_PORT" 10 || {
        tail -n 20 "$_ms_ndir/nginx.out" "$_ms_ndir/logs/error.log" 2> /dev/null | sed 's/^/#   /' >&2
        return 1
    }
}

# redis_start [PASSWORD]: start a private redis-server on 127.0.0.1 (no
# persistence, dir $MS_TMP/redis). Exports REDIS_PORT, REDIS_PID.
redis_start() {
    _ms_rdir=$MS_TMP/redis
    mkdir -p "$_ms_rdir"
    REDIS_PORT=$(free_port tcp)
    export REDIS_PORT
    set -- ${1:+--requirepass "$1"}
    ms_bg "$_ms_rdir/redis.log" /usr/bin/redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
        --dir "$_ms_rdir" --save "" --appendonly no --daemonize no "$@"
    REDIS_PID=$MS_BG_PID
    export REDIS_PID
    wait_port "$REDIS_PORT" 10 || {
        tail -n 20 "$_ms_rdir/redis.log" | sed 's/^/#   /' >&2
        return 1
    }
}

# ---- carbon (graphite-carbon's carbon-cache) ---------------------------

# carbon_start: start a private carbon-cache on 127.0.0.1 with its data, logs
# and pid file in $MS_TMP/carbon. Every metric is kept at 1 s resolution for
# an hour. Exports CARBON_PORT (plaintext line receiver), CARBON_PICKLE_PORT,
# CARBON_UDP_PORT (UDP line receiver), CARBON_WHISPER_DIR, CARBON_PID; waits
# until the line port accepts. A CARBON_PORT, CARBON_PICKLE_PORT or
# CARBON_UDP_PORT set beforehand is used (so moonstat can be pointed at
# carbon before carbon runs).
carbon_start() {
    _ms_cdir=$MS_TMP/carbon
    mkdir -p "$_ms_cdir/conf" "$_ms_cdir/storage/whisper" "$_ms_cdir/log" "$_ms_cdir/run"
    CARBON_PORT=${CARBON_PORT:-$(free_port tcp)}
    CARBON_PICKLE_PORT=${CARBON_PICKLE_PORT:-$(free_port tcp)}
    CARBON_UDP_PORT=${CARBON_UDP_PORT:-$(free_port udp)}
    _ms_cquery=$(free_port tcp)
    CARBON_WHISPER_DIR=$_ms_cdir/storage/whisper
    export CARBON_PORT CARBON_PICKLE_PORT CARBON_UDP_PORT CARBON_WHISPER_DIR
    # USER empty: run as whoever runs the test (the packaged default is
    # _graphite). Tags: carbon still stores "name;k=v" series under _tagged/,
    # but must not post them to a graphite-web tag database.
    cat > "$_ms_cdir/conf/carbon.conf" << EOF
[cache]
STORAGE_DIR = $_ms_cdir/storage
LOCAL_DATA_DIR = $CARBON_WHISPER_DIR
CONF_DIR = $_ms_cdir/conf
LOG_DIR = $_ms_cdir/log
PID_DIR = $_ms_cdir/run
USER =
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
MIN_TIMESTAMP_RESOLUTION = 1
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $CARBON_PORT
ENABLE_UDP_LISTENER = True
UDP_RECEIVER_INTERFACE = 127.0.0.1
UDP_RECEIVER_PORT = $CARBON_UDP_PORT
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $CARBON_PICKLE_PORT
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $_ms_cquery
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CREATES = True
LOG_LISTENER_CONN_SUCCESS = False
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = False
ENABLE_TAGS = False
TAG_HASH_FILENAMES = False
EOF
    cat > "$_ms_cdir/conf/storage-schemas.conf" << 'EOF'
# moonstat tests: every series at 1 s resolution, kept for one hour
[everything]
pattern = .*
retentions = 1s:1h
EOF
    cat > "$_ms_cdir/conf/storage-aggregation.conf" << 'EOF'
# moonstat tests: no aggregation happens with a single 1 s archive
[default]
pattern = .*
xFilesFactor = 0
aggregationMethod = average
EOF
    # --nodaemon: stay in the foreground as our child; with it carbon logs
    # to stdout, which goes to carbon.out. PYTHONWARNINGS hides twisted's
    # cryptography deprecation noise there.
    ms_bg "$_ms_cdir/carbon.out" env PYTHONWARNINGS=ignore /usr/bin/carbon-cache \
        --config="$_ms_cdir/conf/carbon.conf" --nodaemon \
        --pidfile="$_ms_cdir/run/carbon-cache.pid" start
    CARBON_PID=$MS_BG_PID
    export CARBON_PID
    if ! wait_port "$CARBON_PORT" 30; then
        echo "# carbon-cache did not start; its output:" >&2
        tail -n 20 "$_ms_cdir/carbon.out" "$_ms_cdir/log/console.log" 2> /dev/null | sed 's/^/#   /' >&2
        return 1
    fi
}

# carbon_wsp METRIC.PATH: the whisper file of a plain dotted metric.
carbon_wsp() {
    printf '%s/%s.wsp\n' "$CARBON_WHISPER_DIR" "$(printf '%s' "$1" | tr . /)"
}

# _ms_whisper_dump FILE WITH_TIMESTAMPS: the non-None points of the last
# hour, oldest first; whole numbers print without ".0".
_ms_whisper_dump() {
    "$MS_PY" - "$1" "$2" << 'EOF'
import sys, time, whisper
path, with_ts = sys.argv[1], sys.argv[2] == "1"
(start, end, step), values = whisper.fetch(path, time.time() - 3600)
for i, v in enumerate(values):
    if v is None:
        continue
    text = repr(v)
    if text.endswith(".0"):
        text = text[:-2]
    print("%d %s" % (start + i * step, text) if with_ts else text)
EOF
}

# carbon_fetch METRIC.PATH: print the stored non-None values, one a line,
# oldest first. Fails when carbon has not created the series (yet).
carbon_fetch() {
    _ms_wsp=$(carbon_wsp "$1")
    [ -f "$_ms_wsp" ] || return 1
    _ms_whisper_dump "$_ms_wsp" 0
}

# carbon_points METRIC.PATH: like carbon_fetch, as "timestamp value" lines.
carbon_points() {
    _ms_wsp=$(carbon_wsp "$1")
    [ -f "$_ms_wsp" ] || return 1
    _ms_whisper_dump "$_ms_wsp" 1
}

# carbon_tagged_wsp 'name;tag=value;...': the whisper file of a tagged
# series, located with carbon's own code (it sorts and normalises the tags).
carbon_tagged_wsp() {
    "$MS_PY" - "$1" "$CARBON_WHISPER_DIR" << 'EOF'
import os, sys
from carbon.util import TaggedSeries
series = TaggedSeries.parse(sys.argv[1]).path
print(os.path.join(sys.argv[2], TaggedSeries.encode(series, os.sep, hash_only=False) + ".wsp"))
EOF
}

# carbon_fetch_tagged 'name;tag=value;...': carbon_fetch for a tagged series.
carbon_fetch_tagged() {
    _ms_wsp=$(carbon_tagged_wsp "$1") || return 1
    [ -f "$_ms_wsp" ] || return 1
    _ms_whisper_dump "$_ms_wsp" 0
}

# carbon_wait METRIC.PATH REGEX [TIMEOUT=20]: wait until some stored value of
# METRIC matches REGEX (e.g. '^42$'); prints the values it saw last.
carbon_wait() {
    _ms_cn=$((${3:-20} * 5))
    while [ "$_ms_cn" -gt 0 ]; do
        _ms_vals=$(carbon_fetch "$1" 2> /dev/null)
        if printf '%s\n' "$_ms_vals" | grep -Eq -e "$2"; then
            printf '%s\n' "$_ms_vals"
            return 0
        fi
        sleep 0.2
        _ms_cn=$((_ms_cn - 1))
    done
    echo "carbon_wait: $1 has no value matching $2; values: $_ms_vals"
    return 1
}

# ---- prometheus --------------------------------------------------------

# prom_start TARGET_HOST:PORT: start a private prometheus on 127.0.0.1 that
# scrapes TARGET every second as job "$PROM_JOB" (default "moonstat"), TSDB
# in $MS_TMP/prometheus. Uses PROM_PORT when already set (so a test can
# point prometheus at itself), else a free port. Exports PROM_PORT, PROM_PID
# and waits until the HTTP API answers. Further ARGS are passed to prometheus
# (e.g. --web.enable-remote-write-receiver).
prom_start() {
    _ms_pdir=$MS_TMP/prometheus
    mkdir -p "$_ms_pdir/data"
    PROM_PORT=${PROM_PORT:-$(free_port tcp)}
    PROM_JOB=${PROM_JOB:-moonstat}
    export PROM_PORT PROM_JOB
    cat > "$_ms_pdir/prometheus.yml" << EOF
# moonstat integration test: scrape one target every second
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: $PROM_JOB
    static_configs:
      - targets: ['$1']
EOF
    shift
    ms_bg "$_ms_pdir/prometheus.log" /usr/bin/prometheus "$@" \
        --config.file="$_ms_pdir/prometheus.yml" \
        --storage.tsdb.path="$_ms_pdir/data" \
        --storage.tsdb.retention.time=1d \
        --web.listen-address="127.0.0.1:$PROM_PORT"
    PROM_PID=$MS_BG_PID
    export PROM_PID
    if ! _ms_poll 30 curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready"; then
        echo "# prometheus did not become ready; its log:" >&2
        tail -n 20 "$_ms_pdir/prometheus.log" | sed 's/^/#   /' >&2
        return 1
    fi
}

# prom_query 'PROMQL': print the JSON answer of /api/v1/query (instant).
prom_query() {
    curl -sS --fail --max-time 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
        --data-urlencode "query=$1"
}

# prom_value 'PROMQL': print the value of each series in the answer, one a
# line ("labels value" when there are several series); fails when empty.
prom_value() {
    prom_query "$1" | "$MS_PY" -c '
import json, sys
d = json.load(sys.stdin)["data"]
r = d["result"]
if d["resultType"] == "scalar":
    r = [{"metric": {}, "value": r}]
if not r:
    sys.exit(1)
for s in r:
    if len(r) == 1:
        print(s["value"][1])
    else:
        labels = ",".join("%s=%s" % kv for kv in sorted(s["metric"].items()))
        print("{%s} %s" % (labels, s["value"][1]))'
}

# prom_target: print "health<TAB>lastError" of the scrape target of job
# $PROM_JOB, from /api/v1/targets (health: up, down or unknown).
prom_target() {
    curl -sS --fail --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/targets" | "$MS_PY" -c '
import json, sys
job = sys.argv[1]
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    if t["labels"].get("job") == job:
        print("%s\t%s" % (t["health"], t["lastError"]))' "$PROM_JOB"
}

# prom_wait_up [TIMEOUT=30]: wait until up{job="$PROM_JOB"} is 1. On a time
# out, prints the target's health and last scrape error.
prom_wait_up() {
    _ms_pn=$((${1:-30} * 2))
    while [ "$_ms_pn" -gt 0 ]; do
        [ "$(prom_value "up{job=\"$PROM_JOB\"}" 2> /dev/null)" = 1 ] && return 0
        sleep 0.5
        _ms_pn=$((_ms_pn - 1))
    done
    echo "prom_wait_up: target not up; health and last error:"
    prom_target
    return 1
}

# ---- influxd (Debian influxdb: InfluxDB 1.x) ----------------------------

# influx_start: start a private influxd on 127.0.0.1 with its config, data
# and WAL in $MS_TMP/influx (no reporting, no query or HTTP logs). The first
# call picks the ports (an INFLUX_PORT set beforehand is used, so moonstat
# can be pointed at InfluxDB before it runs); a call after influx_stop
# starts it again on the same port and data. Exports INFLUX_PORT (the HTTP
# API) and INFLUX_PID; logs to influxd.log, influxd.2.log, ...; waits until
# the HTTP port accepts (30 s).
influx_start() {
    _ms_idir=$MS_TMP/influx
    if [ ! -f "$_ms_idir/influxdb.conf" ]; then
        mkdir -p "$_ms_idir"
        INFLUX_PORT=${INFLUX_PORT:-$(free_port tcp)}
        _ms_irpc=$(free_port tcp)
        cat > "$_ms_idir/influxdb.conf" << CONF
reporting-disabled = true
bind-address = "127.0.0.1:$_ms_irpc"
[meta]
  dir = "$_ms_idir/meta"
[data]
  dir = "$_ms_idir/data"
  wal-dir = "$_ms_idir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
CONF
    fi
    export INFLUX_PORT
    _ms_ninflux=$((${_ms_ninflux:-0} + 1))
    _ms_ilog=$MS_TMP/influxd.log
    [ "$_ms_ninflux" -gt 1 ] && _ms_ilog=$MS_TMP/influxd.$_ms_ninflux.log
    ms_bg "$_ms_ilog" influxd run -config "$_ms_idir/influxdb.conf"
    INFLUX_PID=$MS_BG_PID
    export INFLUX_PID
    if ! wait_port "$INFLUX_PORT" 30; then
        echo "# influxd did not start; its log:" >&2
        tail -n 20 "$_ms_ilog" | sed 's/^/#   /' >&2
        return 1
    fi
}

# influx_stop: SIGTERM the influxd of influx_start and wait until it is gone.
influx_stop() {
    kill "$INFLUX_PID" 2> /dev/null
    wait "$INFLUX_PID"
    _ms_forget "$INFLUX_PID"
}

# influx_create_db NAME: CREATE DATABASE over the HTTP API; fails unless
# InfluxDB answers with results.
influx_create_db() {
    curl -sS --fail --max-time 5 -XPOST "http://127.0.0.1:$INFLUX_PORT/query" \
        --data-urlencode "q=CREATE DATABASE \"$1\"" | grep -q results
}

# influx_query DB 'INFLUXQL': print the JSON answer of /query.
influx_query() {
    curl -sS --max-time 10 -G "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "db=$1" \
        --data-urlencode "q=$2"
}

# influx_rows DB 'INFLUXQL': print each row of the answer as a JSON object
# (column: value, keys sorted), one a line.
influx_rows() {
    influx_query "$1" "$2" | "$MS_PY" -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
for s in r.get("series", []):
    for v in s["values"]:
        print(json.dumps(dict(zip(s["columns"], v)), sort_keys=True))'
}
