#!/bin/sh
# The http transport's TLS client certificate (cert, key, key_password; see
# docs/forwarders/http.md) against an HTTPS receiver that requires a client
# certificate signed by a test CA (post_sink.py with the certificates of
# lib.sh's tls_certs, made with openssl here):
#   withcert   cert + key: the samples arrive
#   encrypted  cert + an AES-encrypted key + key_password: they arrive, and
#              the password never appears in the log
#   nocert     the receiver refuses the handshake: the forwarder logs the TLS
#              error and retries (moonstat_forwarder_retries_total grows),
#              nothing is lost or counted as sent
# A cert file that cannot be read, or a key without a cert, stops the start
# with a message naming the forwarder and the file.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
TLS=$MS_TMP/tls
mkdir -p "$MS_TMP/checks" "$MS_TMP/sink"
t_ok "test CA and certificates made with openssl" tls_certs "$TLS"
openssl pkey -in "$TLS/client.key" -aes256 -passout pass:s3cret-pw -out "$TLS/client.enc.key" 2> /dev/null
t_ok "the encrypted key needs its password" grep -q ENCRYPTED "$TLS/client.enc.key"
cat > "$MS_TMP/checks/tick.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("tls.tick", n)
end }
LUA
SINK=$(free_port tcp)
ms_bg "$MS_TMP/sink.log" "$MS_PY" "$MS_TOP/tests/integration/post_sink.py" "$SINK" "$MS_TMP/sink" "$TLS"
t_ok "HTTPS sink is up" wait_port "$SINK" 10

U="https://127.0.0.1:$SINK"
PATHS="paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }"

# ---- start errors ---------------------------------------------------------
cat > "$MS_TMP/bad1.yaml" << YAML
$PATHS
forwarders:
  f: { type: influxdb, url: "$U", ca_file: "$TLS/ca.pem", cert: "$TLS/nope.pem" }
YAML
out=$(cd "$MS_TOP" && timeout 10 "$MS_BIN" -c "$MS_TMP/bad1.yaml" 2>&1)
t_match "an unreadable cert stops the start, naming the file" "$out" \
    "forwarder f: cannot read cert file $TLS/nope\.pem"
cat > "$MS_TMP/bad2.yaml" << YAML
$PATHS
forwarders:
  f: { type: influxdb, url: "$U", ca_file: "$TLS/ca.pem", key: "$TLS/client.key" }
YAML
out=$(cd "$MS_TOP" && timeout 10 "$MS_BIN" -c "$MS_TMP/bad2.yaml" 2>&1)
t_match "a key without a cert stops the start" "$out" "forwarder f: key is set but cert is not"

# ---- the run --------------------------------------------------------------
cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: h1, stats_interval: 1s, check_jitter: 0s }
$PATHS
checks: { tick: {} }
forwarders:
  withcert: { type: influxdb, url: "$U", db: withcert, ca_file: "$TLS/ca.pem",
              cert: "$TLS/client.pem", key: "$TLS/client.key", include: { name: "tls.*" } }
  encrypted: { type: influxdb, url: "$U", db: encrypted, ca_file: "$TLS/ca.pem",
               cert: "$TLS/client.pem", key: "$TLS/client.enc.key", key_password: "s3cret-pw",
               include: { name: "tls.*" } }
  nocert: { type: influxdb, url: "$U", db: nocert, ca_file: "$TLS/ca.pem",
            retry: { base: 200ms, cap: 500ms }, include: { name: "tls.*" } }
  stats: { type: file, path: "$MS_TMP/stats.lp",
           include: { name: "moonstat_forwarder_*", tags: { forwarder: nocert } } }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10

got() { grep -q "db=$1&" "$MS_TMP/sink/requests.log" 2> /dev/null; }
t_ok "withcert: the samples arrive over HTTPS with the client certificate" _ms_poll 15 got withcert
t_ok "encrypted: they arrive with the encrypted key and key_password" _ms_poll 15 got encrypted
n=$(grep "db=withcert&" "$MS_TMP/sink/requests.log" | head -1 | cut -d' ' -f1)
t_match "withcert: the body is the samples" "$(cat "$MS_TMP/sink/body.$n")" '^tls\.tick,host=h1 value=[0-9]+ [0-9]+$'
t_ok "nocert: the TLS error is logged and retried" \
    ms_wait_log "forwarder nocert: POST $U/write\?db=nocert.*: .*(SSL|TLS|alert|certificate|reset|closed).*\(retry in" 15
retried() {
    grep -Eq 'moonstat_forwarder_retries_total,forwarder=nocert,host=h1 value=([2-9]|[1-9][0-9]+)i ' "$MS_TMP/stats.lp"
}
t_ok "nocert: retried again and again (retries_total >= 2)" _ms_poll 15 retried
t_ok "the receiver refused the client without a certificate" [ -s "$MS_TMP/sink/refused.log" ]
t_not "nocert: nothing got through" got nocert
t_not "nocert: nothing counted as sent" grep -Eq \
    'moonstat_forwarder_sent_samples_total,forwarder=nocert,host=h1 value=[1-9]' "$MS_TMP/stats.lp"
ms_stop
t_eq "clean exit on SIGTERM" "$?" 0
t_not "the key password is never logged" grep -q 's3cret-pw' "$MS_LOG"
t_done
