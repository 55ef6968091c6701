-- kubernetes: the kubelet's /stats/summary over HTTPS with a client
-- certificate (what chouette's K8sCollector reads): node CPU, memory,
-- network and filesystem/inodes, and per pod CPU, memory and network. Off
-- until config.yaml has a section for it:
--
--   checks:
--     kubernetes:
--       url: https://10.0.0.5:10250/stats/summary
--       cert: /etc/moonstat/kubelet-client.crt
--       key: /etc/moonstat/kubelet-client.key
--       ca_file: /etc/kubernetes/pki/ca.crt
--
-- Node, tagged node=<nodeName>:
--   k8s.node.cpu.usage_nano_cores               gauge    CPU in billionths of a core
--   k8s.node.cpu.usage_core_nano_seconds        counter  CPU time since start
--   k8s.node.memory.available_bytes, .usage_bytes, .working_set_bytes,
--   .rss_bytes                                  gauge    bytes
--   k8s.node.network.rx_bytes, .tx_bytes, .rx_errors, .tx_errors
--                                               rate     per second (default interface)
--   k8s.node.fs.available_bytes, .capacity_bytes, .used_bytes, .inodes_free,
--   .inodes, .inodes_used                       gauge    the node's root filesystem
--   k8s.pods.running                            gauge    pods the kubelet reports
-- Pod, tagged node=<nodeName>, namespace=<ns>, pod=<name>:
--   k8s.pod.cpu.usage_nano_cores                gauge
--   k8s.pod.memory.usage_bytes, .working_set_bytes, .rss_bytes   gauge
--   k8s.pod.network.rx_bytes, .tx_bytes, .rx_errors, .tx_errors  rate
-- A value the kubelet leaves out is not sent.
--
-- Config: url (default https://127.0.0.1:10250/stats/summary), cert and
-- key (PEM client certificate and key), ca_file (CA of the kubelet's serving
-- certificate), insecure (true: do not verify it; chouette's behaviour),
-- bearer_file (a file holding a service-account token, sent as Bearer),
-- request_timeout (seconds, 5), metrics (a list of names to send; a prefix
-- such as "k8s.node.fs" selects all below it; all when unset).
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 10,
  type = "kubernetes",
  defaults = { url = "https://127.0.0.1:10250/stats/summary", cert = false, key = false,
               ca_file = false, insecure = false, bearer_file = false, request_timeout = 5,
               metrics = false },
}

local function tbl(v)
  if type(v) == "table" then return v end
  return {}
end

-- metric suffix, kind, kubelet field, for each group of a node or pod
local CPU = { { "usage_nano_cores", "gauge", "usageNanoCores" },
              { "usage_core_nano_seconds", "counter", "usageCoreNanoSeconds" } }
local MEM = { { "available_bytes", "gauge", "availableBytes" },
              { "usage_bytes", "gauge", "usageBytes" },
              { "working_set_bytes", "gauge", "workingSetBytes" },
              { "rss_bytes", "gauge", "rssBytes" } }
local NET = { { "rx_bytes", "rate", "rxBytes" }, { "tx_bytes", "rate", "txBytes" },
              { "rx_errors", "rate", "rxErrors" }, { "tx_errors", "rate", "txErrors" } }
local FS = { { "available_bytes", "gauge", "availableBytes" },
             { "capacity_bytes", "gauge", "capacityBytes" },
             { "used_bytes", "gauge", "usedBytes" }, { "inodes_free", "gauge", "inodesFree" },
             { "inodes", "gauge", "inodes" }, { "inodes_used", "gauge", "inodesUsed" } }
-- pods: CPU time and available bytes are not sent (as chouette)
local POD_CPU = { CPU[1] }
local POD_MEM = { MEM[2], MEM[3], MEM[4] }

local function group(emit, prefix, fields, src, tags)
  src = tbl(src)
  for _, f in ipairs(fields) do
    local v = src[f[3]]
    if type(v) == "number" then emit(f[2], prefix .. f[1], v, tags) end
  end
end

-- Emit the samples of one /stats/summary document (a decoded table) through
-- emit(kind, name, value, tags). Returns the number of pods.
function M.emit_summary(doc, emit)
  local node = tbl(doc.node)
  local nname = type(node.nodeName) == "string" and node.nodeName or "unknown"
  local ntags = { node = nname }
  group(emit, "k8s.node.cpu.", CPU, node.cpu, ntags)
  group(emit, "k8s.node.memory.", MEM, node.memory, ntags)
  group(emit, "k8s.node.network.", NET, node.network, ntags)
  group(emit, "k8s.node.fs.", FS, node.fs, ntags)
  local pods = tbl(doc.pods)
  for _, pod in ipairs(pods) do
    local ref = tbl(tbl(pod).podRef)
    if type(ref.name) == "string" then
      local ptags = { node = nname, namespace = tostring(ref.namespace or ""), pod = ref.name }
      group(emit, "k8s.pod.cpu.", POD_CPU, pod.cpu, ptags)
      group(emit, "k8s.pod.memory.", POD_MEM, pod.memory, ptags)
      group(emit, "k8s.pod.network.", NET, pod.network, ptags)
    end
  end
  emit("gauge", "k8s.pods.running", #pods, ntags)
  return #pods
end

-- a transport error -> the same with a hint at the setting to look at
local function hint(err, cfg)
  local e = tostring(err)
  if e:find("certificate problem") or e:find("issuer") then -- curl: the server's
    return e .. " (to verify the kubelet, set checks.kubernetes.ca_file to the CA that signed its"
      .. " serving certificate, or insecure: true)"
  end
  -- a TLS alert from the server after our certificate went out (bad
  -- certificate, unknown ca, decrypt error, certificate required ...)
  if e:find(" alert ") or (not cfg.cert and (e:find("SSL") or e:find("TLS"))) then
    if cfg.cert then
      return e .. " (the kubelet refused the client certificate: is it signed by the CA of its --client-ca-file?)"
    end
    return e .. " (the kubelet asks for a client certificate: set checks.kubernetes.cert and key)"
  end
  return e
end

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local bearer
  if cfg.bearer_file then
    local tok, terr = ms.read_file(cfg.bearer_file)
    if not tok then error("kubernetes: bearer_file: " .. tostring(terr), 0) end
    bearer = tok:gsub("%s+$", "")
  end
  local status, headers, body = ms.http.get(cfg.url, {
    cert = cfg.cert or nil, key = cfg.key or nil, ca_file = cfg.ca_file or nil,
    insecure = cfg.insecure or nil, bearer = bearer, timeout = cfg.request_timeout,
  })
  if not status then error("kubelet: " .. hint(headers, cfg), 0) end
  if status ~= 200 then
    local why = status == 401 and " (no or unknown client certificate or token)"
      or status == 403 and " (the certificate's user may not get nodes/stats)" or ""
    error(("kubelet: GET %s answered %d%s: %s"):format(cfg.url, status, why,
      (body or ""):sub(1, 200):gsub("%s+$", "")), 0)
  end
  local doc, jerr = ms.json.decode(body)
  if type(doc) ~= "table" then
    error(("kubelet: GET %s: not a stats summary: %s"):format(cfg.url, tostring(jerr or "not an object")), 0)
  end
  M.emit_summary(doc, function(kind, name, value, tags)
    if want(name) then ms[kind](name, value, tags) end
  end)
end

return M
