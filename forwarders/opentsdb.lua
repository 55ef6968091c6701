-- forwarders/opentsdb.lua: OpenTSDB's HTTP API (POST /api/put?details, JSON).
--
-- Each batch is one JSON array, one object per sample:
--   [{"metric":"cpu.user","timestamp":1700000000,"value":12.5,
--     "tags":{"cpu":"0","host":"web1"}}, ...]
-- (the object's keys always in this order, tags by key).
--
--   forwarders:
--     tsdb: { type: opentsdb, url: "http://tsdb.example.com:4242", milliseconds: false }
--
-- Options (plus the http transport's: timeout, user/password, ca_file,
-- insecure, headers; see docs/forwarders/opentsdb.md):
--   url           base URL of the TSD                      (default http://127.0.0.1:4242)
--   milliseconds  timestamps in ms instead of seconds      (default false)
--   fallback_tag  "key=value" added to a series without tags: OpenTSDB needs
--                 at least one                             (default source=moonstat)
--
-- OpenTSDB accepts only a-z A-Z 0-9 - _ . / and Unicode letters in metric
-- names, tag keys and tag values: any other byte becomes "_" (so no JSON
-- escaping is ever needed); tags with an empty value are left out. Events
-- are skipped, health samples write their value (0/8/16); NaN and infinite
-- values are skipped; skipped samples are counted in
-- moonstat_forwarder_dropped_samples_total{reason="unencodable"}. With ?details a 400 answer lists the failed points:
-- the transport logs the start of it and drops the batch.
local E = require "moonstat.encoder"
local H = require "moonstat.http"
local LP = require "moonstat.lineproto"

local series, put_number = E.series, E.put_number
local EVENT = E.EVENT
local floor, huge, fmt = math.floor, math.huge, string.format
local byte = string.byte

-- OpenTSDB's charset: everything else becomes "_".
local SAFE = {}
for b = 0, 255 do
  local ok = (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122)
    or b == 45 or b == 95 or b == 46 or b == 47 or b >= 128
  SAFE[b] = not ok and "_"
end
local function clean(s) return LP.map_bytes(s, SAFE) end

-- The start of a sample's object for a series, up to `"value":`:
-- {"metric":"<name>","tags":{...},"timestamp":   (false: nothing to write)
local function series_prefix(id, fallback)
  local se = series(id)
  if not se then return false end
  local name = clean(se.name)
  if name == "" then name = "_" end
  local parts, n = {}, 0
  for i = 1, #se.keys do
    local k = se.keys[i]
    local ck, cv = clean(k), clean(se.tags[k])
    if ck ~= "" and cv ~= "" then
      n = n + 1
      parts[n] = '"' .. ck .. '":"' .. cv .. '"'
    end
  end
  if n == 0 then
    local eq = fallback:find("=", 1, true)
    local k = clean(eq and fallback:sub(1, eq - 1) or "source")
    local v = clean(eq and fallback:sub(eq + 1) or fallback)
    parts[1] = '"' .. (k ~= "" and k or "source") .. '":"' .. (v ~= "" and v or "moonstat") .. '"'
  end
  return '{"metric":"' .. name .. '","tags":{' .. table.concat(parts, ",") .. '},"timestamp":'
end

local caches = setmetatable({}, { __mode = "k" })

-- Hot loop: writes samples whose series prefix is cached; returns the index
-- of the first one that is not (or n) and the separator to use next.
local function run(batch, out, pre, first, n, sep, scale, half, skip)
  local s = batch.s
  local last_ts, ts_text = -huge, ""
  for i = first, n - 1 do
    local smp = s[i]
    local v = smp.value
    if smp.kind ~= EVENT and v == v and v ~= huge and v ~= -huge then
      local p = pre[smp.series]
      if p == nil then return i, sep, skip end
      if p then
        local ts = smp.ts
        if ts ~= last_ts then last_ts, ts_text = ts, fmt("%d", floor(ts * scale + half)) end
        out:put(sep, p, ts_text, ',"value":')
        put_number(out, v)
        out:put("}")
        sep = ","
      end
    else
      skip = skip + 1
    end
  end
  return n, sep, skip
end

return {
  transport = "http",
  options = H.options { -- plus user, password, timeout, ca_file, insecure, headers
    url = { type = "string", default = "http://127.0.0.1:4242", help = "OpenTSDB base URL" },
    endpoint = { type = "string", default = "/api/put?details",
                 help = "path and query after url" },
    milliseconds = { type = "bool", default = false, help = "timestamps in milliseconds" },
    fallback_tag = { type = "string", default = "source=moonstat",
                     help = "key=value tag for series without tags" },
    content_type = { type = "string", default = "application/json", help = "Content-Type" },
  },
  encode = function(batch, out, opts)
    local c = caches[opts]
    if c == nil or c.fallback ~= opts.fallback_tag then
      c = { fallback = opts.fallback_tag, pre = {} }
      caches[opts] = c
    end
    local pre, scale, half = c.pre, 1, 0
    if opts.milliseconds then scale, half = 1000, 0.5 end
    local n = batch.n
    local i, sep, skip = run(batch, out, pre, 0, n, "[", scale, half, 0)
    while i < n do
      local id = batch.s[i].series
      pre[id] = series_prefix(id, c.fallback)
      i, sep, skip = run(batch, out, pre, i, n, sep, scale, half, skip)
    end
    if sep == "," then out:put("]") end
    return skip -- NaN/Inf and events: counted by the core as unencodable
  end,
}
