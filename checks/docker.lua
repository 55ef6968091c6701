-- docker: per-container CPU, memory, network, block I/O and process counts
-- from the Docker Engine API on its unix socket (HTTP over a unix socket,
-- as `docker stats` gets them). Off until config.yaml has a section for it:
--
--   checks:
--     docker: { socket: /var/run/docker.sock }
--
-- Each run lists the running containers (GET /containers/json), then asks
-- for one stats snapshot of each (GET /containers/<id>/stats?stream=false
-- &one-shot=true), one after the other.
--
-- Per container, tagged container=<name>, container_id=<first 12 hex
-- digits>, image=<image>:
--   docker.cpu.percent       gauge  % of one CPU, as `docker stats` shows
--                                   it (200 = two CPUs busy)
--   docker.memory.usage      gauge  bytes used, page cache not counted
--                                   (usage - inactive_file, as docker stats)
--   docker.memory.limit      gauge  bytes the container may use
--   docker.memory.percent    gauge  usage in % of limit
--   docker.net.rx_bytes, docker.net.tx_bytes, docker.net.rx_packets,
--   docker.net.tx_packets    rate   per second, all interfaces summed
--   docker.blkio.read_bytes, docker.blkio.write_bytes
--                            rate   per second, all block devices summed
--   docker.pids              gauge  processes (and threads) in it
-- And docker.containers.running (gauge, untagged): containers listed.
--
-- CPU %: (container CPU time delta / host CPU time delta) * CPUs * 100
-- between two readings. With one_shot (the default) Docker answers at once
-- with one reading and the previous one is this check's own from its last
-- run, so the first run after a start sends no docker.cpu.percent. Daemons
-- older than API 1.41 (or one_shot: false) take about a second per container
-- to answer with both readings (precpu_stats); then raise `timeout` for many
-- containers.
--
-- Config: socket (default /var/run/docker.sock), one_shot (true),
-- request_timeout (seconds, 5), metrics (a list of names to send; a prefix
-- such as "docker.net" selects all below it; all when unset).
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 10,
  type = "container",
  defaults = { socket = "/var/run/docker.sock", one_shot = true, request_timeout = 5,
               metrics = false },
}

-- a JSON number or nil (cjson gives JSON null as a light userdata)
local function num(v)
  if type(v) == "number" then return v end
end

local function tbl(v)
  if type(v) == "table" then return v end
  return {}
end

-- CPU % between two cpu_stats readings, as docker stats computes it, or nil
-- when the pair does not allow it (no previous reading, counters reset).
function M.cpu_percent(cur, prev)
  cur, prev = tbl(cur), tbl(prev)
  local cu, pu = tbl(cur.cpu_usage), tbl(prev.cpu_usage)
  local total, ptotal = num(cu.total_usage), num(pu.total_usage)
  local sys, psys = num(cur.system_cpu_usage), num(prev.system_cpu_usage)
  if not (total and ptotal and sys and psys) or psys == 0 then return nil end
  local cpu_delta, sys_delta = total - ptotal, sys - psys
  if cpu_delta < 0 or sys_delta <= 0 then return nil end
  local ncpu = num(cur.online_cpus)
  if not ncpu or ncpu == 0 then
    ncpu = type(cu.percpu_usage) == "table" and #cu.percpu_usage or 0
  end
  if ncpu == 0 then ncpu = 1 end
  return cpu_delta / sys_delta * ncpu * 100
end

-- memory_stats -> used bytes without the page cache (docker CLI's rule:
-- cgroup v1 total_inactive_file, else v2 inactive_file), limit, percent.
function M.memory(ms_)
  ms_ = tbl(ms_)
  local usage = num(ms_.usage)
  if not usage then return nil end
  local st = tbl(ms_.stats)
  local inactive = num(st.total_inactive_file) or num(st.inactive_file)
  if inactive and inactive < usage then usage = usage - inactive end
  local limit = num(ms_.limit)
  local pct = limit and limit > 0 and usage * 100 / limit or nil
  return usage, limit, pct
end

-- networks -> summed counters { rx_bytes=, tx_bytes=, rx_packets=, tx_packets= }
-- or nil when the container has no network
function M.network(nets)
  if type(nets) ~= "table" or next(nets) == nil then return nil end
  local sum = { rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0 }
  for _, ifc in pairs(nets) do
    for k in pairs(sum) do sum[k] = sum[k] + (num(tbl(ifc)[k]) or 0) end
  end
  return sum
end

-- blkio_stats -> read bytes, write bytes summed over devices (op is
-- "read"/"write" on cgroup v2, "Read"/"Write" on v1), or nil when absent
function M.blkio(b)
  local list = tbl(b).io_service_bytes_recursive
  if type(list) ~= "table" then return nil end
  local r, w = 0, 0
  for _, e in ipairs(list) do
    local op = type(e.op) == "string" and e.op:lower() or ""
    if op == "read" then r = r + (num(e.value) or 0)
    elseif op == "write" then w = w + (num(e.value) or 0) end
  end
  return r, w
end

-- one entry of /containers/json -> id, tags
function M.container_tags(c)
  local id = type(c.Id) == "string" and c.Id or "?"
  local name = type(c.Names) == "table" and type(c.Names[1]) == "string" and c.Names[1] or id
  return id, { container = (name:gsub("^/", "")), container_id = id:sub(1, 12),
               image = type(c.Image) == "string" and c.Image or "" }
end

-- Emit one container's samples from its stats document. prev: this check's
-- cpu_stats of the container from the previous run (or nil). emit(kind,
-- name, value) is ms.gauge / ms.rate with the container's tags bound.
function M.emit_stats(st, prev, emit)
  local pre = tbl(st.precpu_stats)
  local pct = M.cpu_percent(st.cpu_stats, pre)
  if not pct and prev then pct = M.cpu_percent(st.cpu_stats, prev) end
  if pct then emit("gauge", "docker.cpu.percent", pct) end
  local used, limit, mpct = M.memory(st.memory_stats)
  if used then emit("gauge", "docker.memory.usage", used) end
  if limit then emit("gauge", "docker.memory.limit", limit) end
  if mpct then emit("gauge", "docker.memory.percent", mpct) end
  local net = M.network(st.networks)
  if net then
    for _, k in ipairs({ "rx_bytes", "tx_bytes", "rx_packets", "tx_packets" }) do
      emit("rate", "docker.net." .. k, net[k])
    end
  end
  local r, w = M.blkio(st.blkio_stats)
  if r then
    emit("rate", "docker.blkio.read_bytes", r)
    emit("rate", "docker.blkio.write_bytes", w)
  end
  local pids = num(tbl(st.pids_stats).current)
  if pids then emit("gauge", "docker.pids", pids) end
end

local previous = {} -- container id -> cpu_stats of the last run

local function get(cfg, path)
  local where = "unix:" .. cfg.socket
  local status, headers, body = ms.http.get("http://docker" .. path, {
    unix_socket = cfg.socket, timeout = cfg.request_timeout,
  })
  if not status then
    return nil, ("docker API at %s: %s (is dockerd running, and may moonstat open the socket?)")
      :format(where, tostring(headers))
  end
  if status ~= 200 then
    return nil, ("docker API at %s: GET %s answered %d: %s"):format(where, path, status,
      (body or ""):sub(1, 200):gsub("%s+$", "")), status
  end
  local doc, err = ms.json.decode(body)
  if doc == nil then
    return nil, ("docker API at %s: GET %s: bad JSON: %s"):format(where, path, tostring(err))
  end
  return doc
end

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local list, err = get(cfg, "/containers/json")
  if not list then error(err, 0) end
  if type(list) ~= "table" then error("docker API: /containers/json is not a list", 0) end
  if want("docker.containers.running") then ms.gauge("docker.containers.running", #list) end
  local query = cfg.one_shot and "?stream=false&one-shot=true" or "?stream=false"
  local seen = {}
  for _, c in ipairs(list) do
    local id, tags = M.container_tags(tbl(c))
    local st, serr, status = get(cfg, "/containers/" .. id .. "/stats" .. query)
    if not st then
      -- 404: it stopped since the list was made; anything else is worth a line
      if status == 404 then ms.log.debug("%s", serr) else ms.log.warn("%s", serr) end
    else
      seen[id] = true
      M.emit_stats(st, previous[id], function(kind, name, value)
        if want(name) then ms[kind](name, value, tags) end
      end)
      previous[id] = tbl(st.cpu_stats)
    end
  end
  for id in pairs(previous) do
    if not seen[id] then previous[id] = nil end
  end
end

return M
