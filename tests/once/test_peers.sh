#!/bin/sh
# tests/once/test_peers.sh - proves the test harness on its own,
# without moonstat: the real carbon-cache and prometheus that lib.sh starts
# on loopback ports take data and answer queries, and the TAP helpers and
# process handling in lib.sh behave.
# It does not use moonstat, so tests/run.sh runs it once, not once per build.
. "$(dirname "$0")/../integration/lib.sh"
ms_tmpdir

# --- TAP helpers themselves
t_eq "t_eq compares strings" "abc" "abc"
t_match "t_match finds a line" "$(printf 'one\ntwo 42\n')" '^two [0-9]+$'
sets_var() { peers_flag=$1; }
t_ok "t_ok runs shell functions in this shell" sets_var yes
t_eq "a function run by t_ok can set variables" "${peers_flag:-}" yes
t_not "t_not sees a failing command" false

# --- free_port hands out distinct ports
p1=$(free_port)
p2=$(free_port)
t_match "free_port prints a port number" "$p1" '^[0-9]+$'
t_not "free_port never repeats a port in one test" test "$p1" = "$p2"

# --- ms_bg / ms_stop with a stand-in process: exit status after SIGTERM
ms_bg "$MS_TMP/sleeper.log" sleep 600
MS_PID=$MS_BG_PID
ms_stop 5
t_eq "ms_stop returns 128+SIGTERM for a process that dies of it" "$?" 143

# --- carbon: a plaintext line ends up in the whisper file
if t_ok "carbon-cache starts on a loopback port" carbon_start; then
    now=$(date +%s)
    printf 'test.peer.value 42 %s\n' "$now" | tcp_send "$CARBON_PORT"
    t_ok "carbon stored test.peer.value = 42" carbon_wait test.peer.value '^42$' 30
    t_eq "carbon_points gives the timestamp we sent" \
        "$(carbon_points test.peer.value 2> /dev/null | tail -n 1)" "$now 42"
    # A tagged series lands under _tagged/; carbon sorts the tags.
    printf 'test.peer.tagged;zone=b;app=x 7.5 %s\n' "$now" | tcp_send "$CARBON_PORT"
    t_ok "carbon stored a tagged series" \
        _ms_poll 30 carbon_fetch_tagged 'test.peer.tagged;app=x;zone=b'
    t_eq "tagged value" "$(carbon_fetch_tagged 'test.peer.tagged;app=x;zone=b')" 7.5
else
    t_fail "carbon stored test.peer.value = 42 (carbon did not start)"
fi

# --- prometheus scraping itself
PROM_PORT=$(free_port tcp)
if t_ok "prometheus starts on a loopback port" prom_start "127.0.0.1:$PROM_PORT"; then
    t_ok "prometheus scrapes its target (up == 1)" prom_wait_up 30
    t_match "prom_target reports the target healthy" "$(prom_target)" '^up'
    t_match "prom_query returns success JSON" "$(prom_query 'up')" '"status":"success"'
else
    t_fail "prometheus scrapes its target (prometheus did not start)"
fi

# --- cleanup: every process started here is ended by the trap (checked in
# a child shell that runs the same trap on exit).
sh -c '. "$1/tests/integration/lib.sh"; MS_TMP=$2; trap ms_cleanup EXIT
       ms_bg "$MS_TMP/child.log" sleep 600; echo "$MS_BG_PID" > "$MS_TMP/child.pid"' \
    "$0" "$MS_TOP" "$MS_TMP"
sleep 0.2
child=$(cat "$MS_TMP/child.pid")
t_not "the cleanup trap ended the test's processes" _ms_alive "$child"

t_done
