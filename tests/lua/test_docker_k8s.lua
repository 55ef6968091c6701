-- checks/docker.lua and checks/kubernetes.lua against recorded Docker Engine
-- API and kubelet /stats/summary answers (tests/fixtures/docker, k8s), and
-- their error paths through the real check host. Live test servers (a unix
-- socket, HTTPS with a client CA): tests/integration/test_docker_k8s.sh.
local T = require "moonstat.testing"
-- the fixtures are decoded with the lua-cjson the checks' ms.json uses
-- (Debian installs it in /usr/lib/<multiarch>/lua/5.1)
local so = io.popen("ls /usr/lib/*/lua/5.1/cjson.so /usr/lib/lua/5.1/cjson.so 2>/dev/null"):read("*l")
if so then package.cpath = so:gsub("cjson%.so$", "?.so") .. ";" .. package.cpath end
local cjson = require "cjson.safe"

local read = T.read

local function approx(got, want, what)
  local ok = type(got) == "number" and math.abs(got - want) < 1e-9 * math.max(1, math.abs(want))
  return T.ok(ok, ("%s: got %s, want %s"):format(what, tostring(got), tostring(want)))
end

-- collects emit(kind, name, value[, tags]) calls as out[name] = { kind, value, tags }
local function collector()
  local out, n = {}, 0
  return out, function(kind, name, value, tags)
    n = n + 1
    out[name .. (tags and tags.pod and ("/" .. tags.pod) or "")] = { kind = kind, value = value, tags = tags }
    out.n = n
  end
end

-- ---- docker ----
local docker = dofile("checks/docker.lua")
T.eq(docker.enabled, false, "docker is off until configured")
local list = assert(cjson.decode(read("tests/fixtures/docker/containers.json")))
local id, tags = docker.container_tags(list[1])
T.eq(id, "8dfafdbc3a40e1d9a2c3b0f1e5d6c7b8a9f0e1d2c3b4a5968778695a4b3c2d1e", "container id")
T.eq(tags.container, "web", "container name without its slash")
T.eq(tags.container_id, "8dfafdbc3a40", "short id (12 hex digits)")
T.eq(tags.image, "nginx:1.25", "image")

-- cgroup v2 document (online_cpus, inactive_file, lower-case blkio ops)
local web = assert(cjson.decode(read("tests/fixtures/docker/stats_web.json")))
local out, emit = collector()
docker.emit_stats(web, nil, emit)
-- (40.25e9 - 40e9) / (9876545e9 - 9876541e9) * 4 CPUs * 100
approx(out["docker.cpu.percent"] and out["docker.cpu.percent"].value, 25, "web: CPU % from cpu_stats vs precpu_stats")
T.eq(out["docker.cpu.percent"].kind, "gauge", "CPU % is a gauge")
T.eq(out["docker.memory.usage"].value, 52428800 - 10485760, "web: memory usage without inactive_file (cgroup v2)")
T.eq(out["docker.memory.limit"].value, 209715200, "web: memory limit")
approx(out["docker.memory.percent"].value, 20, "web: memory %")
T.eq(out["docker.net.rx_bytes"].value, 2000000, "web: rx bytes summed over eth0 and eth1")
T.eq(out["docker.net.tx_bytes"].value, 3250000, "web: tx bytes summed")
T.eq(out["docker.net.rx_packets"].value, 3000, "web: rx packets summed")
T.eq(out["docker.net.rx_bytes"].kind, "rate", "network counters go out as rates")
T.eq(out["docker.blkio.read_bytes"].value, 5242880, "web: block reads summed over devices")
T.eq(out["docker.blkio.write_bytes"].value, 1048576, "web: block writes")
T.eq(out["docker.pids"].value, 5, "web: pids")

-- cgroup v1 document (percpu_usage instead of online_cpus, total_inactive_file,
-- capitalised blkio ops, no network)
local worker = assert(cjson.decode(read("tests/fixtures/docker/stats_worker.json")))
out, emit = collector()
docker.emit_stats(worker, nil, emit)
approx(out["docker.cpu.percent"] and out["docker.cpu.percent"].value, 100,
  "worker: CPU count from percpu_usage when online_cpus is missing")
T.eq(out["docker.memory.usage"].value, 8388608 - 1048576, "worker: memory usage without total_inactive_file (cgroup v1)")
T.eq(out["docker.net.rx_bytes"], nil, "worker: no network, no network samples")
T.eq(out["docker.blkio.read_bytes"].value, 2048, "worker: Read (v1 spelling)")
T.eq(out["docker.blkio.write_bytes"].value, 8192, "worker: Write, Sync and Total not counted")

-- one-shot answers carry an empty precpu_stats: the previous run's reading is used
local oneshot = assert(cjson.decode(read("tests/fixtures/docker/stats_web.json")))
oneshot.precpu_stats = { cpu_usage = { total_usage = 0 }, throttling_data = {} }
out, emit = collector()
docker.emit_stats(oneshot, nil, emit)
T.eq(out["docker.cpu.percent"], nil, "one-shot without a previous reading: no CPU %")
T.ok(out["docker.memory.usage"], "but the other values")
out, emit = collector()
docker.emit_stats(oneshot, web.precpu_stats, emit)
approx(out["docker.cpu.percent"] and out["docker.cpu.percent"].value, 25, "one-shot with the previous run's reading: CPU %")
T.eq(docker.cpu_percent(web.precpu_stats, web.cpu_stats), nil, "a counter that went backwards gives no CPU %")
T.eq(docker.cpu_percent({ cpu_usage = { total_usage = cjson.null }, system_cpu_usage = 1 }, web.cpu_stats), nil,
  "JSON null values give no CPU %")

-- error paths through the host
local _, derr = T.run_check("checks/docker.lua", { socket = "/nonexistent/docker.sock" })
T.like(derr or "", "docker API at unix:/nonexistent/docker%.sock: GET http://docker/containers/json: .*is dockerd running",
  "no socket: the error names the socket and what to verify")

-- ---- kubernetes ----
local k8s = dofile("checks/kubernetes.lua")
T.eq(k8s.enabled, false, "kubernetes is off until configured")
local summary = assert(cjson.decode(read("tests/fixtures/k8s/summary.json")))
out, emit = collector()
T.eq(k8s.emit_summary(summary, emit), 2, "two pods")
T.eq(out["k8s.node.cpu.usage_nano_cores"].value, 350000000, "node CPU nanocores")
T.eq(out["k8s.node.cpu.usage_nano_cores"].tags.node, "worker-1", "tagged with the node name")
T.eq(out["k8s.node.cpu.usage_core_nano_seconds"].kind, "counter", "node CPU time is a counter")
T.eq(out["k8s.node.memory.working_set_bytes"].value, 2952790016, "node working set")
T.eq(out["k8s.node.memory.available_bytes"].value, 5368709120, "node available memory")
T.eq(out["k8s.node.network.rx_bytes"].value, 9000000000, "node rx bytes (default interface)")
T.eq(out["k8s.node.network.rx_bytes"].kind, "rate", "as a rate")
T.eq(out["k8s.node.fs.inodes_free"].value, 2900000, "node inodes free")
T.eq(out["k8s.node.fs.inodes_used"].value, 376800, "node inodes used")
T.eq(out["k8s.node.fs.available_bytes"].value, 30000000000, "node filesystem available")
T.eq(out["k8s.node.fs.capacity_bytes"].value, 50000000000, "node filesystem capacity")
T.eq(out["k8s.pods.running"].value, 2, "pods running")
local p = out["k8s.pod.cpu.usage_nano_cores/web-7d9c6b5f4-abcde"]
T.eq(p and p.value, 125000000, "pod CPU nanocores")
T.eq(p and p.tags.namespace, "shop", "pod tagged with its namespace")
T.eq(out["k8s.pod.memory.working_set_bytes/web-7d9c6b5f4-abcde"].value, 123000000, "pod working set")
T.eq(out["k8s.pod.network.tx_bytes/web-7d9c6b5f4-abcde"].value, 350000000, "pod tx bytes")
T.eq(out["k8s.pod.memory.usage_bytes/coredns-5d78c9869d-q8xzt"].value, 20480000, "second pod memory")
T.eq(out["k8s.pod.network.rx_bytes/coredns-5d78c9869d-q8xzt"], nil, "a pod without network stats sends none")
T.eq(out["k8s.pod.memory.available_bytes/web-7d9c6b5f4-abcde"], nil, "pods: no available_bytes (not in the summary)")
T.eq(out.n, (2 + 4 + 4 + 6 + 1) + (1 + 3 + 4) + (1 + 3), "no other samples (node, pod with network, pod without)")
out, emit = collector()
T.eq(k8s.emit_summary({ node = { nodeName = "n" } }, emit), 0, "an empty summary: no pods")
T.eq(out.n, 1, "and only k8s.pods.running")

local _, kerr = T.run_check("checks/kubernetes.lua", { url = "https://127.0.0.1:1/stats/summary" })
T.like(kerr or "", "^kubelet: GET https://127%.0%.0%.1:1/stats/summary: .*[Cc]onnect", "closed port: the URL and the reason")
local _, berr = T.run_check("checks/kubernetes.lua", { bearer_file = "/nonexistent/token" })
T.like(berr or "", "bearer_file: .*/nonexistent/token", "a missing bearer_file is named")
T.done()
