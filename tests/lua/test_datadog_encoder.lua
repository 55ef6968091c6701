-- forwarders/datadog.lua: exact JSON for v1 and v2 series, service checks and
-- events as parts for their own endpoints (with their sample counts), the
-- counter/rate rules, Datadog's name and tag rules, UTF-8 and JSON escaping,
-- the split of a large batch, and no JIT trace aborts in the steady state.
local T = require "moonstat.testing"
local ffi = require "ffi"
local buffer = require "string.buffer"

pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)

local D = "forwarders/datadog.lua"
local TS = 1700000000

local basic = {
  { name = "cpu user", tags = { host = "web1", ["a b"] = "x y", ["9k"] = "v/1" }, value = 12.5,
    ts = TS + 0.5 },
  { name = "net.bytes", tags = { host = "web1" }, value = 1000, kind = "counter", ts = TS },
  { name = "net.bytes", tags = { host = "web1" }, value = 1500, kind = "counter", ts = TS + 10 },
  { name = "req.rate", tags = {}, value = 2.5, kind = "rate", ts = TS },
  { name = "load.health", tags = { host = "web1", role = "db" }, value = 8, kind = "health",
    msg = 'say "hi"\n', level = "WARNING", ts = TS },
  { name = "event", tags = { host = "web1" }, value = 1, kind = "event", msg = "Deploy\nv2 is out",
    ts = TS },
  { name = "bad.nan", tags = { host = "web1" }, value = 0 / 0, ts = TS },
  { name = "bad.inf", tags = { host = "web1" }, value = math.huge, ts = TS },
}

local V1 = '{"series":[' ..
  '{"metric":"cpu_user","host":"web1","tags":["k:v/1","a_b:x_y"],"type":"gauge","points":[[1700000000,12.5]]},' ..
  '{"metric":"net.bytes","host":"web1","tags":[],"type":"count","interval":10,"points":[[1700000010,500]]},' ..
  '{"metric":"req.rate","tags":[],"type":"rate","interval":10,"points":[[1700000000,2.5]]}]}'
local CHECKS = '[{"check":"load.health","host_name":"web1","tags":["role:db"],"status":1,' ..
  '"timestamp":1700000000,"message":"say \\"hi\\"\\u000a"}]'
local EVENT = '{"title":"Deploy","text":"v2 is out","date_happened":1700000000,"host":"web1",' ..
  '"tags":[],"alert_type":"info"}'

local body, _, parts = T.encode(D, {}, basic)
T.eq(body, V1 .. CHECKS .. EVENT, "v1: series, then the service checks, then the event")
T.eq(table.concat(parts, " "), #V1 .. " /api/v1/check_run 1 " .. #V1 + #CHECKS .. " /api/v1/events 1",
  "parts: check_run and events start where they are written, with their sample counts")

local V2 = '{"series":[' ..
  '{"metric":"cpu_user","resources":[{"name":"web1","type":"host"}],"tags":["k:v/1","a_b:x_y"],' ..
  '"type":3,"points":[{"timestamp":1700000000,"value":12.5}]},' ..
  '{"metric":"net.bytes","resources":[{"name":"web1","type":"host"}],"tags":[],"type":1,' ..
  '"interval":10,"points":[{"timestamp":1700000010,"value":500}]},' ..
  '{"metric":"req.rate","tags":[],"type":2,"interval":10,"points":[{"timestamp":1700000000,"value":2.5}]}]}'
body, _, parts = T.encode(D, { api_version = "v2", events = false }, basic)
T.eq(body, V2 .. CHECKS, "v2: series with resources and numeric types; events off")
T.eq(table.concat(parts, " "), #V2 .. " /api/v1/check_run 1", "v2: only the check_run part")

do -- what JSON cannot carry, and events left out, are reported as skipped
  local mod, o = T.encoder(D, { events = false })
  local out = buffer.new()
  local b = T.batch(basic)
  T.eq(mod.encode(b, out, o, T.fw.parts(out)), 3, "skipped: NaN, Inf and the event (events: false)")
end

local m = dofile(D)
T.eq(m.transport, "http", "http transport")
T.eq(m.options.endpoint.default, "/api/{api_version}/series", "series endpoint by api_version")
T.eq(m.options.url.default, "https://api.{site}", "url from the site")
T.eq(m.options.site.default, "datadoghq.com", "default site")
T.eq(m.options.auth_header.default, "DD-API-KEY: {api_key}", "the key travels as DD-API-KEY")
T.eq(m.options.compress.default, "gzip", "gzip by default")

-- counters: the first sample sets the base, a decrease is a restart (nothing
-- sent, new base); rates take the spacing of their samples as interval
body = T.encode(D, {}, {
  { name = "c", tags = {}, value = 100, kind = "counter", ts = TS },
  { name = "c", tags = {}, value = 130, kind = "counter", ts = TS + 15.4 },
  { name = "c", tags = {}, value = 5, kind = "counter", ts = TS + 30 },
  { name = "c", tags = {}, value = 9, kind = "counter", ts = TS + 31 },
  { name = "r", tags = {}, value = 1, kind = "rate", ts = TS },
  { name = "r", tags = {}, value = 3, kind = "rate", ts = TS + 5 },
})
T.eq(body, '{"series":[' ..
  '{"metric":"c","tags":[],"type":"count","interval":15,"points":[[1700000015,30]]},' ..
  '{"metric":"c","tags":[],"type":"count","interval":1,"points":[[1700000031,4]]},' ..
  '{"metric":"r","tags":[],"type":"rate","interval":10,"points":[[1700000000,1]]},' ..
  '{"metric":"r","tags":[],"type":"rate","interval":5,"points":[[1700000005,3]]}]}',
  "counter increases as counts with their interval; reset skipped; rate intervals")

-- service check statuses and names
body = T.encode(D, {}, {
  { name = "a", tags = {}, value = 0, kind = "health", msg = "fine", level = "OK", ts = TS },
  { name = "b", tags = {}, value = 16, kind = "health", msg = "down", level = "ERROR", ts = TS },
  { name = "c", tags = {}, value = 16, kind = "health", msg = "?", level = "UNKNOWN", ts = TS },
  { name = "9-d e", tags = {}, value = 3, kind = "health", level = "X", ts = TS },
})
T.eq(body, '[{"check":"a","host_name":"","tags":[],"status":0,"timestamp":1700000000,"message":"fine"},' ..
  '{"check":"b","host_name":"","tags":[],"status":2,"timestamp":1700000000,"message":"down"},' ..
  '{"check":"c","host_name":"","tags":[],"status":3,"timestamp":1700000000,"message":"?"},' ..
  '{"check":"d_e","host_name":"","tags":[],"status":3,"timestamp":1700000000,"message":""}]',
  "status 0/8/16 -> 0/1/2, UNKNOWN and others -> 3; names cleaned")

-- names, tags, UTF-8 and JSON escaping
body = T.encode(D, {}, {
  { name = "é.1x", tags = { host = 'h"\1\255', ["ünï"] = "wert ö", ["_"] = "gone" }, value = 1, ts = TS },
  { name = "123", tags = {}, value = -0.25, ts = TS },
  { name = string.rep("n", 250), tags = { k = string.rep("v", 250) }, value = 1e300, ts = TS },
})
T.eq(body, '{"series":[' ..
  '{"metric":"x","host":"h\\"\\u0001?","tags":["ünï:wert_ö"],"type":"gauge","points":[[1700000000,1]]},' ..
  '{"metric":"unnamed","tags":[],"type":"gauge","points":[[1700000000,-0.25]]},' ..
  '{"metric":"' .. string.rep("n", 200) .. '","tags":["k:' .. string.rep("v", 198) ..
  '"],"type":"gauge","points":[[1700000000,1e+300]]}]}',
  "names: leading non-letters cut, 200 max; tags: UTF-8 kept, 200 max; host JSON-escaped, bad UTF-8 -> ?")

-- a batch past max_body is split into several series bodies (parts for the same endpoint)
local many = {}
for i = 1, 10 do many[i] = { name = "m" .. i, tags = {}, value = i, ts = TS } end
body, _, parts = T.encode(D, { max_body = 150 }, many)
local bodies, from = {}, 0
for i = 1, #parts, 3 do
  bodies[#bodies + 1] = body:sub(from + 1, parts[i])
  from = parts[i]
end
bodies[#bodies + 1] = body:sub(from + 1)
local ok, count = true, 0
for _, b in ipairs(bodies) do
  ok = ok and b:match('^{"series":%[.*%]}$') ~= nil and #b < 150 + 80
  for _ in b:gmatch('"metric"') do count = count + 1 end
end
T.ok(#bodies >= 3 and ok, "max_body: " .. #bodies .. " complete series bodies")
T.eq(count, 10, "max_body: every sample in one of them")
local claimed = 0
for i = 3, #parts, 3 do
  T.eq(parts[i - 1], "/api/{api_version}/series", "split part " .. (i / 3) .. " goes to the series endpoint")
  claimed = claimed + parts[i]
end
local first = 0
for _ in bodies[1]:gmatch('"metric"') do first = first + 1 end
T.eq(claimed, 10 - first, "split parts count their own samples")

local bad = pcall(T.encode, D, { api_version = "v3" }, many)
T.ok(not bad, "an unknown api_version is an error")

-- the steady state compiles: a realistic mixed batch (every kind) of the
-- pipeline's batch size, under max_body, encoded again and again
T.encoder_compiles(D, {}, T.mixed_batch(10000, TS), "v1")
T.encoder_compiles(D, { api_version = "v2" }, T.mixed_batch(10000, TS), "v2")

T.done()
