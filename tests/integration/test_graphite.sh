#!/bin/sh
# Graphite plaintext into the real carbon-cache (Debian graphite-carbon):
# moonstat starts before carbon is up (connect fails, data queues, the
# transport retries), then carbon starts on that port and receives what was
# queued and what follows; path and tagged modes.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/web.lua" <<'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("test.gauge", 42, { role = "db" })
  ms.gauge("test.runs", n)
  ms.send_special("test.health", 8, "almost full")
end }
LUA
CARBON_PORT=$(free_port tcp)
export CARBON_PORT
cat > "$MS_TMP/config.yaml" <<EOF
agent: { hostname: "web1.example.com" }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  carbon: { type: graphite, address: "127.0.0.1:$CARBON_PORT", prefix: ms }
  tagged: { type: graphite, address: "127.0.0.1:$CARBON_PORT", tag_mode: tagged }
EOF
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "connect failure logged with the address, retrying" ms_wait_log "forwarder carbon: connect to 127\.0\.0\.1:$CARBON_PORT: .*retry" 10
sleep 2
before_carbon=$(date +%s)
t_ok "carbon-cache starts on the port moonstat waits for" carbon_start
t_ok "reconnects" ms_wait_log 'forwarder carbon: connected' 15
t_ok "path mode: host and tag values become levels" carbon_wait ms.web1_example_com.db.test.gauge '^42(\.0)?$' 30
t_ok "health value stored" carbon_wait ms.web1_example_com.test.health '^8(\.0)?$' 30
first=$(carbon_points ms.web1_example_com.test.runs | head -1 | cut -d' ' -f1)
t_ok "samples queued while carbon was down arrived ($first < $before_carbon)" test "${first:-9999999999}" -lt "$before_carbon"
tagged_is_42() {
    carbon_fetch_tagged 'test.gauge;host=web1.example.com;role=db' 2> /dev/null | grep -Eq '^42(\.0)?$'
}
t_ok "tagged mode stored as a tagged series" _ms_poll 30 tagged_is_42
ms_stop
t_eq "clean exit" "$?" 0
t_done
