#!/bin/sh
# Conformance with Etsy statsd 0.9 (npm `statsd`, installed in tests/node by
# tools/deps.sh) as the oracle: the same StatsD datagrams go to Etsy statsd
# (graphite backend) and to moonstat's statsd listener (graphite_naming on,
# graphite forwarder with tag_mode none); each writes Graphite lines to its
# own TCP sink and statsd_conformance.py compares them flush by flush, apart
# from self metrics and timestamps. Two runs: Etsy's defaults (idle keys
# sent as zeros, gauges persist) and deleteIdleStats.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
STATSD_JS=$MS_TOP/tests/node/node_modules/statsd/stats.js
t_ok "Etsy statsd 0.9 is installed (tools/deps.sh)" grep -q '"version": "0.9.0"' "$MS_TOP/tests/node/node_modules/statsd/package.json"
mkdir -p "$MS_TMP/nochecks"

run_mode() { # keep|delete
    mode=$1
    del=false
    [ "$mode" = delete ] && del=true
    eu=$(free_port udp)
    es=$(free_port tcp)
    mu=$(free_port udp)
    msk=$(free_port tcp)
    mg=$(free_port tcp)
    ready=$MS_TMP/ready.$mode
    ms_bg "$MS_TMP/driver.$mode.log" "$MS_PY" "$MS_TOP/tests/integration/statsd_conformance.py" \
        "$mode" "$eu" "$es" "$mu" "$msk" "$ready"
    driver=$MS_BG_PID
    n=0
    while [ ! -e "$ready" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    cat > "$MS_TMP/etsy.$mode.js" <<JS
{ port: $eu, address: "127.0.0.1", mgmt_port: $mg, mgmt_address: "127.0.0.1",
  flushInterval: 2000, graphiteHost: "127.0.0.1", graphitePort: $es,
  percentThreshold: [90, 95, 99.9, -10],
  histogram: [ { metric: "conf.t.hist", bins: [10, 100, "inf"] } ],
  deleteIdleStats: $del, backends: ["./backends/graphite"] }
JS
    ms_bg "$MS_TMP/etsy.$mode.log" node "$STATSD_JS" "$MS_TMP/etsy.$mode.js"
    { echo "agent: { hostname: conf, stats_interval: 1h }"
      ms_paths "$MS_TMP/nochecks"
      cat <<YAML
listeners:
  statsd:
    udp: "127.0.0.1:$mu"
    tcp: ""
    flush_interval: 2s
    dogstatsd: false
    graphite_naming: true
    percentiles: [90, 95, 99.9, -10]
    histogram: [ { metric: conf.t.hist, bins: [10, 100, inf] } ]
    delete_idle_stats: $del
forwarders:
  g: { type: graphite, address: "127.0.0.1:$msk", tag_mode: none }
YAML
    } > "$MS_TMP/ms.$mode.yaml"
    ms_start "$MS_TMP/ms.$mode.yaml"
    wait "$driver"
    while IFS= read -r line; do
        case $line in
        "ok - "*) t_pass "${line#ok - }" ;;
        "not ok - "*) t_fail "${line#not ok - }" ;;
        *) echo "$line" ;;
        esac
    done < "$MS_TMP/driver.$mode.log"
    t_ok "$mode: bad lines logged with the peer address" ms_wait_log 'listeners\.statsd: bad line from 127\.0\.0\.1:[0-9]+: ' 1
    ms_stop
    t_eq "$mode: clean exit" "$?" 0
}

run_mode keep
run_mode delete
t_done
