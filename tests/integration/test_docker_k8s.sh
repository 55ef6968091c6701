#!/bin/sh
# checks/docker.lua and checks/kubernetes.lua against test servers answering
# recorded documents (tests/integration/apipeers.py): the Docker Engine API
# over HTTP on a unix socket, and a kubelet on HTTPS that requires a client
# certificate signed by a test CA (made here with openssl). The daemon runs
# both for a few seconds (rates and one-shot CPU % need a second run), then
# `--check` runs cover the other settings and the errors: a client without
# the certificate, an unverified server, a missing socket.
. "$(dirname "$0")/lib.sh"
ms_tmpdir

FIX=$MS_TOP/tests/fixtures
SOCK=$MS_TMP/docker.sock
TLS=$MS_TMP/tls
t_ok "test certificates (CA, server, client)" tls_certs "$TLS" 30
ms_bg "$MS_TMP/docker.out" "$MS_PY" "$MS_TOP/tests/integration/apipeers.py" docker "$SOCK" "$FIX/docker" "$MS_TMP/docker.requests"
t_ok "Docker API test server listens on a unix socket" _ms_poll 10 test -S "$SOCK"
KPORT=$(free_port tcp)
ms_bg "$MS_TMP/kubelet.out" "$MS_PY" "$MS_TOP/tests/integration/apipeers.py" kubelet "$KPORT" "$TLS" "$FIX/k8s/summary.json"
t_ok "kubelet test server listens (HTTPS, client CA)" wait_port "$KPORT" 10
KURL="https://127.0.0.1:$KPORT/stats/summary"
KAUTH="cert: \"$TLS/client.pem\", key: \"$TLS/client.key\", ca_file: \"$TLS/ca.pem\""

# ---- the daemon: both checks every second ----
{
    echo "agent: { stats_interval: 1s }"
    ms_paths
    cat << EOF
checks:
  cpu: { enabled: false }
  load: { enabled: false }
  memory: { enabled: false }
  docker: { socket: "$SOCK", interval: 1s }
  kubernetes: { url: "$KURL", $KAUTH, interval: 1s }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
} > "$MS_TMP/config.yaml"
ms_run_for 3.5 "$MS_TMP/config.yaml"
out=$(cat "$MS_TMP/out.lp" 2> /dev/null)
web='container=web,container_id=8dfafdbc3a40,host=[^,]+,image=nginx:1\.25,type=container'

t_match "docker: containers listed" "$out" '^docker\.containers\.running,host=[^,]+,type=container value=3 '
t_match "docker: memory usage without the page cache, tagged name/id/image" "$out" "^docker\.memory\.usage,$web value=41943040 "
t_match "docker: memory limit" "$out" "^docker\.memory\.limit,$web value=209715200 "
t_match "docker: memory %" "$out" "^docker\.memory\.percent,$web value=20 "
t_match "docker: CPU % from the one-shot readings of two runs (5% of one CPU)" "$out" "^docker\.cpu\.percent,$web value=5 "
t_match "docker: cgroup v1 container too" "$out" '^docker\.memory\.usage,container=worker,container_id=3f2e1d0c9b8a,.* value=7340032 '
t_match "docker: network rate from the second run on" "$out" "^docker\.net\.rx_bytes,$web value=0 "
t_match "docker: block I/O rate" "$out" '^docker\.blkio\.write_bytes,container=worker,.* value=0 '
t_match "docker: pids" "$out" "^docker\.pids,$web value=5 "
t_not "docker: the container that is gone (404) sends nothing" grep -q 'container=gone' "$MS_TMP/out.lp"
req=$(cat "$MS_TMP/docker.requests" 2> /dev/null)
t_match "docker: one stats snapshot per container, one-shot" "$req" '^/containers/8dfafdbc3a40[0-9a-f]+/stats\?stream=false&one-shot=true$'
t_match "kubernetes: node inodes free, tagged with the node" "$out" '^k8s\.node\.fs\.inodes_free,host=[^,]+,node=worker-1,type=kubernetes value=2900000 '
t_match "kubernetes: node filesystem used" "$out" '^k8s\.node\.fs\.used_bytes,.*node=worker-1,.* value=18000000000 '
t_match "kubernetes: node memory working set" "$out" '^k8s\.node\.memory\.working_set_bytes,.* value=2952790016 '
t_match "kubernetes: pod CPU, tagged namespace/pod" "$out" '^k8s\.pod\.cpu\.usage_nano_cores,host=[^,]+,namespace=shop,node=worker-1,pod=web-7d9c6b5f4-abcde,type=kubernetes value=125000000 '
t_match "kubernetes: pod memory" "$out" '^k8s\.pod\.memory\.usage_bytes,.*pod=coredns-5d78c9869d-q8xzt,.* value=20480000 '
t_match "kubernetes: pod network rate from the second run on" "$out" '^k8s\.pod\.network\.rx_bytes,.*pod=web-7d9c6b5f4-abcde,.* value=0 '
t_match "kubernetes: pods running" "$out" '^k8s\.pods\.running,.* value=2 '
t_not "no check errors" grep -Eq 'check (docker|kubernetes):' "$MS_LOG"

# ---- docker: precpu_stats of a daemon that waits for two readings ----
{ ms_paths; echo "checks: { docker: { socket: \"$SOCK\", one_shot: false } }"; } > "$MS_TMP/d2.yaml"
d2=$("$MS_BIN" -c "$MS_TMP/d2.yaml" --check docker 2> "$MS_TMP/d2.err")
t_eq "--check docker exits 0" "$?" 0
t_match "CPU % in one run from cpu_stats vs precpu_stats (25% of one CPU)" "$d2" '^docker\.cpu\.percent\{container=web,.*\} 25 gauge'
t_match "CPU count from percpu_usage (cgroup v1): 100%" "$d2" '^docker\.cpu\.percent\{container=worker,.*\} 100 gauge'
t_match "and the request asked for no one-shot" "$(tail -n 1 "$MS_TMP/docker.requests")" '/stats\?stream=false$'

# metrics: only the listed names (a prefix selects what is below it)
{ ms_paths; echo "checks: { docker: { socket: \"$SOCK\", one_shot: false, metrics: [docker.memory, docker.containers.running] } }"; } > "$MS_TMP/d3.yaml"
d3=$("$MS_BIN" -c "$MS_TMP/d3.yaml" --check docker 2> "$MS_TMP/d3.err")
t_eq "metrics: only docker.memory.* and docker.containers.running" \
    "$(printf '%s\n' "$d3" | sed 's/{.*//' | sort -u | tr '\n' ' ')" \
    "docker.containers.running docker.memory.limit docker.memory.percent docker.memory.usage "

# no socket
{ ms_paths; echo "checks: { docker: { socket: \"$MS_TMP/nothing.sock\" } }"; } > "$MS_TMP/d4.yaml"
"$MS_BIN" -c "$MS_TMP/d4.yaml" --check docker > /dev/null 2> "$MS_TMP/d4.err"
t_eq "docker without a socket fails the check" "$?" 1
t_match "and names the socket" "$(cat "$MS_TMP/d4.err")" "docker API at unix:$MS_TMP/nothing\.sock: .*is dockerd running"

# ---- kubernetes: the client certificate and the server's ----
kcheck() { # NAME YAML-SECTION: run --check kubernetes; output in $kout, stderr in $kerr, status in $krc
    { ms_paths; echo "checks: { kubernetes: { url: \"$KURL\", $2 } }"; } > "$MS_TMP/$1.yaml"
    kout=$("$MS_BIN" -c "$MS_TMP/$1.yaml" --check kubernetes 2> "$MS_TMP/$1.err")
    krc=$?
    kerr=$(cat "$MS_TMP/$1.err")
}
kcheck k1 "ca_file: \"$TLS/ca.pem\""
t_eq "without a client certificate the check fails" "$krc" 1
t_match "with a clear error: the URL, the TLS failure and what to set" "$kerr" \
    "kubelet: GET https://127\.0\.0\.1:$KPORT/stats/summary: .*\(the kubelet asks for a client certificate: set checks\.kubernetes\.cert and key\)"
t_not "and sends nothing" test -n "$kout"
kcheck k2 "cert: \"$TLS/client.pem\", key: \"$TLS/client.key\""
t_eq "a kubelet certificate from an unknown CA fails the check" "$krc" 1
t_match "and says to set ca_file or insecure" "$kerr" 'kubelet: GET https://.*certificate.*set checks\.kubernetes\.ca_file .*or insecure: true'
t_ok "a second CA and its client certificate" tls_certs "$MS_TMP/tls2" 30
kcheck k6 "cert: \"$MS_TMP/tls2/client.pem\", key: \"$MS_TMP/tls2/client.key\", ca_file: \"$TLS/ca.pem\""
t_eq "a client certificate the kubelet does not trust fails the check" "$krc" 1
t_match "and says it was refused" "$kerr" 'kubelet: GET https://.* alert .*\(the kubelet refused the client certificate'
kcheck k3 "cert: \"$TLS/client.pem\", key: \"$TLS/client.key\", insecure: true"
t_eq "insecure: true skips the server check" "$krc" 0
t_match "and reads the summary" "$kout" '^k8s\.pods\.running\{.*node=worker-1.*\} 2 gauge'
kcheck k4 "$KAUTH, metrics: [k8s.node.fs.inodes_free, k8s.pod.cpu]"
t_eq "--check kubernetes with the client certificate exits 0" "$krc" 0
t_eq "metrics: node inodes and pod CPU only" \
    "$(printf '%s\n' "$kout" | sed 's/ gauge$//; s/{.*pod=\([^,}]*\).*} / \1 /; s/{.*} / /' | sort | tr '\n' ';')" \
    "k8s.node.fs.inodes_free 2900000;k8s.pod.cpu.usage_nano_cores coredns-5d78c9869d-q8xzt 3000000;k8s.pod.cpu.usage_nano_cores web-7d9c6b5f4-abcde 125000000;"
{ ms_paths; echo "checks: { kubernetes: { url: \"https://127.0.0.1:$KPORT/nope\", $KAUTH } }"; } > "$MS_TMP/k5.yaml"
"$MS_BIN" -c "$MS_TMP/k5.yaml" --check kubernetes > /dev/null 2> "$MS_TMP/k5.err"
t_match "a wrong path: the status and the kubelet's answer" "$(cat "$MS_TMP/k5.err")" 'kubelet: GET https://127\.0\.0\.1:[0-9]+/nope answered 404: 404 page not found'
t_done
