#!/bin/sh
# make install into a private prefix gives a working layout: the example
# config validates and runs the shipped checks from the installed tree.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
P=$MS_TMP/prefix
make -s -C "$MS_TOP" install PREFIX="$P/usr" SYSCONFDIR="$P/etc" > "$MS_TMP/install.log" 2>&1
t_eq "make install succeeds" "$?" 0
t_ok "binary installed" test -x "$P/usr/bin/moonstat"
t_ok "checks installed" test -f "$P/usr/share/moonstat/checks/cpu.lua"
t_ok "encoders installed" test -f "$P/usr/share/moonstat/forwarders/prometheus.lua"
t_ok "runtime installed" test -f "$P/usr/share/moonstat/lua/moonstat/check.lua"
t_ok "config installed" test -f "$P/etc/moonstat/config.yaml"
t_match "systemd unit runs the installed binary in the foreground" "$(cat "$P/usr/lib/systemd/system/moonstat.service")" "^ExecStart=$P/usr/bin/moonstat -c $P/etc/moonstat/config.yaml$"
"$P/usr/bin/moonstat" -c "$P/etc/moonstat/config.yaml" --config-test > "$MS_TMP/ct.log" 2>&1
t_eq "installed config validates" "$?" 0
out=$("$P/usr/bin/moonstat" -c "$P/etc/moonstat/config.yaml" --check memory 2>&1)
t_match "installed checks run" "$out" '^memory\.total\{'
t_done
