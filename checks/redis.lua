-- redis: INFO over TCP (memory, clients, ops, keyspace, replication). Off
-- until config.yaml has a section for it:
--
--   checks:
--     redis: { host: 127.0.0.1, port: 6379, password: secret }
--
-- Gauges: redis.memory.used, redis.memory.rss, redis.memory.peak,
-- redis.clients.connected, redis.clients.blocked, redis.ops_per_sec,
-- redis.keyspace.keys / redis.keyspace.expires (tag db=dbN),
-- redis.replication.connected_slaves, redis.replication.master_link_up,
-- redis.replication.is_master. Rates (per second): redis.commands,
-- redis.connections, redis.keyspace.hits, redis.keyspace.misses,
-- redis.keys.expired, redis.keys.evicted. Tagged server=<host:port>.
-- `metrics`: a list of those names to send only some of them.
local resp = require "moonstat.resp"
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 10,
  type = "database",
  defaults = { host = "127.0.0.1", port = 6379, password = false, request_timeout = 5,
               metrics = false },
}

-- INFO text -> { key = value-string } and { dbN = { keys=, expires= } }
function M.parse(text)
  local info, dbs = {}, {}
  for line in text:gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w_]+):(.*)$")
    if k then
      local keys, expires = v:match("keys=(%d+),expires=(%d+)")
      if k:match("^db%d+$") and keys then
        dbs[k] = { keys = tonumber(keys), expires = tonumber(expires) }
      else
        info[k] = v
      end
    end
  end
  return info, dbs
end

local GAUGES = {
  { "redis.memory.used", "used_memory" }, { "redis.memory.rss", "used_memory_rss" },
  { "redis.memory.peak", "used_memory_peak" }, { "redis.clients.connected", "connected_clients" },
  { "redis.clients.blocked", "blocked_clients" }, { "redis.ops_per_sec", "instantaneous_ops_per_sec" },
  { "redis.replication.connected_slaves", "connected_slaves" },
}
local RATES = {
  { "redis.commands", "total_commands_processed" }, { "redis.connections", "total_connections_received" },
  { "redis.keyspace.hits", "keyspace_hits" }, { "redis.keyspace.misses", "keyspace_misses" },
  { "redis.keys.expired", "expired_keys" }, { "redis.keys.evicted", "evicted_keys" },
}

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local where = cfg.host .. ":" .. cfg.port
  local r, err = resp.connect(cfg.host, cfg.port,
    { timeout = cfg.request_timeout, password = cfg.password or nil })
  if not r then
    if err:match("^AUTH") then err = "redis " .. where .. ": " .. err end
    error(err, 0)
  end
  local text, ierr = r:call("INFO")
  r:close()
  if not text then error("redis " .. where .. ": INFO failed: " .. ierr, 0) end
  if type(text) ~= "string" then error("redis " .. where .. ": INFO gave no text", 0) end
  local info, dbs = M.parse(text)
  local tags = { server = where }
  for _, g in ipairs(GAUGES) do
    local v = tonumber(info[g[2]])
    if v and want(g[1]) then ms.gauge(g[1], v, tags) end
  end
  for _, r in ipairs(RATES) do
    local v = tonumber(info[r[2]])
    if v and want(r[1]) then ms.rate(r[1], v, tags) end
  end
  if info.role and want("redis.replication.is_master") then
    ms.gauge("redis.replication.is_master", info.role == "master" and 1 or 0, tags)
  end
  if info.master_link_status and want("redis.replication.master_link_up") then
    ms.gauge("redis.replication.master_link_up", info.master_link_status == "up" and 1 or 0, tags)
  end
  for db, d in pairs(dbs) do
    local t = { server = where, db = db }
    if want("redis.keyspace.keys") then ms.gauge("redis.keyspace.keys", d.keys, t) end
    if want("redis.keyspace.expires") then ms.gauge("redis.keyspace.expires", d.expires, t) end
  end
end

return M
