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
local JP = require "moonstat.jsonpoints"

local series = E.series
local floor, fmt = math.floor, string.format

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

local function clean_tag(s) return LP.map_bytes(s, TAG) end

-- The start of a sample's object for a series, up to the timestamp:
-- {"name":"<name>","tags":{...},["ttl":<s>,]"datapoints":[[   (false: nothing to write)
local function series_prefix(id, c)
  local se = series(id)
  if not se then return false end
  local name = LP.map_bytes(se.name, JSON)
  if name == "" then name = "_" end
  local t = c.ttl > 0 and fmt('"ttl":%d,', c.ttl) or ""
  return '{"name":"' .. name .. '","tags":{' .. JP.tags(se, clean_tag, c.fallback) .. "}," .. t
    .. '"datapoints":[['
end

local caches = setmetatable({}, { __mode = "k" })

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
    -- NaN/Inf and events skipped: counted by the core as unencodable
    return JP.encode(batch, out, c.pre, series_prefix, c, ",", "]]}", 1000, 0.5)
  end,
}
