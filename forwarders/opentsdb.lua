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
local JP = require "moonstat.jsonpoints"

local series = E.series

-- OpenTSDB's charset: everything else becomes "_".
local SAFE = {}
for b = 0, 255 do
  local ok = (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122)
    or b == 45 or b == 95 or b == 46 or b == 47 or b >= 128
  SAFE[b] = not ok and "_"
end
local function clean(s) return LP.map_bytes(s, SAFE) end

-- The start of a sample's object for a series, up to `"timestamp":`:
-- {"metric":"<name>","tags":{...},"timestamp":   (false: nothing to write)
local function series_prefix(id, fallback)
  local se = series(id)
  if not se then return false end
  local name = clean(se.name)
  if name == "" then name = "_" end
  return '{"metric":"' .. name .. '","tags":{' .. JP.tags(se, clean, fallback) .. '},"timestamp":'
end

local caches = setmetatable({}, { __mode = "k" })

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
    local scale, half = 1, 0
    if opts.milliseconds then scale, half = 1000, 0.5 end
    -- NaN/Inf and events skipped: counted by the core as unencodable
    return JP.encode(batch, out, c.pre, series_prefix, c.fallback, ',"value":', "}", scale, half)
  end,
}
