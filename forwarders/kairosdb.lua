-- forwarders/kairosdb.lua: KairosDB's REST API (POST /api/v1/datapoints, JSON).
--
-- Each batch is one JSON array, one object per sample, timestamps in
-- milliseconds:
--   [{"name":"cpu.user","tags":{"cpu":"0","host":"web1"},
--     "datapoints":[[1700000000000,12.5]]}, ...]
-- With ttl > 0 each object also carries "ttl":<seconds>.
--
--   forwarders:
--     kairos: { type: kairosdb, url: "http://kairos.example.com:8080", ttl: 30d }
--
-- Options (plus the http transport's: timeout, user/password, ca_file,
-- insecure, headers; see docs/forwarders/kairosdb.md):
--   url           base URL                                 (default http://127.0.0.1:8080)
--   ttl           data point time to live, 0 for none     (default 0)
--   fallback_tag  "key=value" added to a series without tags: KairosDB needs
--                 at least one                             (default source=moonstat)
--
-- Names and tags are JSON-escaped ('"', "\" and control bytes); tag keys and
-- values lose ":" and "=" (KairosDB rejects them in tags: each becomes "_");
-- tags with an empty value are left out. Events are skipped, health samples
-- write their value; NaN and infinite values are skipped. Skipped samples
-- are counted in moonstat_forwarder_dropped_samples_total{reason="unencodable"}.
local E = require "moonstat.encoder"
local H = require "moonstat.http"
local LP = require "moonstat.lineproto"

local series, put_number = E.series, E.put_number
local EVENT = E.EVENT
local floor, huge, fmt = math.floor, math.huge, string.format

-- JSON string escapes; TAG also turns ":" and "=" into "_".
local JSON, TAG = {}, {}
for b = 0, 255 do
  local r = false
  if b < 32 or b == 127 then r = fmt("\\u%04x", b)
  elseif b == 34 then r = '\\"'
  elseif b == 92 then r = "\\\\" end
  JSON[b] = r
  TAG[b] = (b == 58 or b == 61) and "_" or r
end

local function series_prefix(id, fallback, ttl)
  local se = series(id)
  if not se then return false end
  local name = LP.map_bytes(se.name, JSON)
  if name == "" then name = "_" end
  local parts, n = {}, 0
  for i = 1, #se.keys do
    local k = se.keys[i]
    local ck, cv = LP.map_bytes(k, TAG), LP.map_bytes(se.tags[k], TAG)
    if ck ~= "" and cv ~= "" then
      n = n + 1
      parts[n] = '"' .. ck .. '":"' .. cv .. '"'
    end
  end
  if n == 0 then
    local eq = fallback:find("=", 1, true)
    local k = LP.map_bytes(eq and fallback:sub(1, eq - 1) or "source", TAG)
    local v = LP.map_bytes(eq and fallback:sub(eq + 1) or fallback, TAG)
    parts[1] = '"' .. (k ~= "" and k or "source") .. '":"' .. (v ~= "" and v or "moonstat") .. '"'
  end
  local t = ttl > 0 and fmt('"ttl":%d,', ttl) or ""
  return '{"name":"' .. name .. '","tags":{' .. table.concat(parts, ",") .. "}," .. t
    .. '"datapoints":[['
end

local caches = setmetatable({}, { __mode = "k" })

local function run(batch, out, pre, first, n, sep, skip)
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
        if ts ~= last_ts then last_ts, ts_text = ts, fmt("%d", floor(ts * 1000 + 0.5)) end
        out:put(sep, p, ts_text, ",")
        put_number(out, v)
        out:put("]]}")
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
    url = { type = "string", default = "http://127.0.0.1:8080", help = "KairosDB base URL" },
    endpoint = { type = "string", default = "/api/v1/datapoints", help = "path after url" },
    ttl = { type = "duration", default = "0s", help = "time to live of the points (0: none)" },
    fallback_tag = { type = "string", default = "source=moonstat",
                     help = "key=value tag for series without tags" },
    content_type = { type = "string", default = "application/json", help = "Content-Type" },
  },
  encode = function(batch, out, opts)
    local ttl = floor(tonumber(opts.ttl) or 0)
    local c = caches[opts]
    if c == nil or c.fallback ~= opts.fallback_tag or c.ttl ~= ttl then
      c = { fallback = opts.fallback_tag, ttl = ttl, pre = {} }
      caches[opts] = c
    end
    local pre, n = c.pre, batch.n
    local i, sep, skip = run(batch, out, pre, 0, n, "[", 0)
    while i < n do
      local id = batch.s[i].series
      pre[id] = series_prefix(id, c.fallback, ttl)
      i, sep, skip = run(batch, out, pre, i, n, sep, skip)
    end
    if sep == "," then out:put("]") end
    return skip -- NaN/Inf and events: counted by the core as unencodable
  end,
}
