-- dramatiq: queue sizes of Dramatiq's Redis broker, as chouette does. Off
-- until config.yaml has a section for it:
--
--   checks:
--     dramatiq: { host: 127.0.0.1, port: 6379, password: secret, db: 0 }
--
-- Dramatiq's RedisBroker keeps, per queue, a list of message ids
-- (`dramatiq:<queue>`) and a hash of message id -> message
-- (`dramatiq:<queue>.msgs`); a message leaves the hash only when a worker
-- acknowledges it, so the hash's size counts the messages waiting or being
-- worked on. Delayed messages live in the queue `<queue>.DQ`, dead-lettered
-- ones in `<queue>.XQ`, each with its own .msgs hash.
--
-- Each run SCANs for `<namespace>:*.msgs` (never KEYS, which blocks the
-- server), then sends HLEN for every key in one pipeline (LLEN for a key
-- that turns out to be a list), and sends one gauge per queue:
-- dramatiq.queue_size, tagged queue=<name> (the key without the namespace
-- and .msgs: default, default.DQ, default.XQ, ...) and server=<host:port>.
-- At most `max_queues` keys are read per run (a warning says when more
-- exist). `metrics`: a list of metric names to send only some of them.
local resp = require "moonstat.resp"
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 10,
  type = "queue",
  defaults = { host = "127.0.0.1", port = 6379, password = false, db = 0, namespace = "dramatiq",
               request_timeout = 5, max_queues = 1000, metrics = false },
}

local BATCH = 500 -- keys per SCAN round and per pipeline

-- A namespace as a literal inside a SCAN MATCH pattern.
local function glob_escape(s)
  return (s:gsub("[%*%?%[%]\\]", "\\%0"))
end

-- "<namespace>:<queue>.msgs" -> "<queue>", or nil.
function M.queue_name(key, namespace)
  local prefix = namespace .. ":"
  if key:sub(1, #prefix) ~= prefix or key:sub(-5) ~= ".msgs" or #key <= #prefix + 5 then
    return nil
  end
  return key:sub(#prefix + 1, -6)
end

-- Every key matching the pattern (deduplicated, SCAN may repeat one), at
-- most max; the second value is true when there were more.
local function scan(r, pattern, max)
  local keys, seen, cursor = {}, {}, "0"
  repeat
    local reply, err = r:call("SCAN", cursor, "MATCH", pattern, "COUNT", BATCH)
    if not reply then return nil, "SCAN failed: " .. tostring(err) end
    if type(reply) ~= "table" or type(reply[1]) ~= "string" or type(reply[2]) ~= "table" then
      return nil, "SCAN gave an unexpected reply"
    end
    cursor = reply[1]
    for _, k in ipairs(reply[2]) do
      if type(k) == "string" and not seen[k] then
        if #keys >= max then return keys, true end
        seen[k] = true
        keys[#keys + 1] = k
      end
    end
  until cursor == "0"
  return keys, false
end

-- The size of each key: HLEN in pipelines of BATCH, LLEN where a key is a
-- list. Returns { [key] = n } or nil, err.
local function sizes(r, keys)
  local out, retry = {}, {}
  for first = 1, #keys, BATCH do
    local cmds = {}
    for i = first, math.min(first + BATCH - 1, #keys) do cmds[#cmds + 1] = { "HLEN", keys[i] } end
    local replies, err = r:pipeline(cmds)
    if not replies then return nil, "HLEN failed: " .. tostring(err) end
    for i, v in ipairs(replies) do
      local key = cmds[i][2]
      if type(v) == "number" then
        out[key] = v
      elseif resp.is_error(v) and v.err:match("^WRONGTYPE") then
        retry[#retry + 1] = { "LLEN", key }
      elseif resp.is_error(v) then
        return nil, "HLEN " .. key .. " failed: " .. v.err
      end
    end
  end
  if #retry > 0 then
    local replies, err = r:pipeline(retry)
    if not replies then return nil, "LLEN failed: " .. tostring(err) end
    for i, v in ipairs(replies) do
      if type(v) == "number" then out[retry[i][2]] = v end -- neither hash nor list: skipped
    end
  end
  return out
end

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local where = cfg.host .. ":" .. cfg.port
  local max = tonumber(cfg.max_queues)
  if not max or max < 1 then
    error("max_queues must be a positive number, got " .. tostring(cfg.max_queues), 0)
  end
  local r, err = resp.connect(cfg.host, cfg.port, {
    timeout = cfg.request_timeout, password = cfg.password or nil, db = cfg.db,
  })
  if not r then
    if err:match("^AUTH") or err:match("^SELECT") then
      err = "dramatiq: redis " .. where .. ": " .. err
    end
    error(err, 0)
  end
  local keys, more = scan(r, glob_escape(cfg.namespace) .. ":*.msgs", max)
  if not keys then
    r:close()
    error("dramatiq: redis " .. where .. ": " .. more, 0)
  end
  if more then
    ms.log.warn("more than max_queues (%d) keys match %s:*.msgs on %s; the rest are skipped",
      max, cfg.namespace, where)
  end
  local n, serr = sizes(r, keys)
  r:close()
  if not n then error("dramatiq: redis " .. where .. ": " .. serr, 0) end
  if not want("dramatiq.queue_size") then return end
  for _, key in ipairs(keys) do
    local q = M.queue_name(key, cfg.namespace)
    if q and n[key] then ms.gauge("dramatiq.queue_size", n[key], { queue = q, server = where }) end
  end
end

return M
