-- Remote encoders: forwarders/influxdb.lua, influxdb2.lua, opentsdb.lua,
-- kairosdb.lua and graphite_pickle.lua. Exact bytes for each format and
-- option, the pickle checked against the issue's wire vector, and no JIT
-- trace aborts while encoding a large batch again and again.
local T = require "moonstat.testing"
local ffi = require "ffi"
local buffer = require "string.buffer"

pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)

local TS = 1700000000
local I, I2, O, K, P = "forwarders/influxdb.lua", "forwarders/influxdb2.lua",
  "forwarders/opentsdb.lua", "forwarders/kairosdb.lua", "forwarders/graphite_pickle.lua"

local function hex(s)
  local t = {}
  for i = 1, #s do t[i] = string.format("%02x", s:byte(i)) end
  return table.concat(t)
end

local basic = {
  { name = "cpu user", tags = { host = "web1", ["a b"] = "x:y=z" }, value = 12.5, ts = TS + 0.123 },
  { name = "net.bytes", tags = { host = "web1" }, value = 1234, kind = "counter", ts = TS },
  { name = "load.health", tags = { host = "web1" }, value = 8, kind = "health",
    msg = 'say "hi"', level = "WARNING", ts = TS },
  { name = "deploy", tags = { host = "web1" }, value = 1, kind = "event", msg = "v2", ts = TS },
  { name = "bad.nan", tags = { host = "web1" }, value = 0 / 0, ts = TS },
  { name = "bad.inf", tags = { host = "web1" }, value = -math.huge, ts = TS },
  { name = "bare", tags = {}, value = -0.5, ts = TS },
  { name = 'q"uote\\', tags = { ["k\n"] = "é/ü" }, value = 0.1, ts = TS },
}

---------------------------------------------------------------- influxdb

T.eq(T.encode(I, {}, basic),
  "cpu\\ user,a\\ b=x:y\\=z,host=web1 value=12.5 1700000000123000000\n" ..
  "net.bytes,host=web1 value=1234i 1700000000000000000\n" ..
  'load.health,host=web1 value=8,message="say \\"hi\\"",level="WARNING" 1700000000000000000\n' ..
  'deploy,host=web1 text="v2" 1700000000000000000\n' ..
  "bare value=-0.5 1700000000000000000\n" ..
  'q"uote\\,k_=é/ü value=0.1 1700000000000000000\n',
  "influxdb: line protocol with escapes, integer counters, health and events, no NaN/inf")
T.eq(T.encode(I2, {}, basic), T.encode(I, {}, basic), "influxdb2: same body as 1.x")
local im, i2 = dofile(I), dofile(I2)
T.eq(im.transport, "http", "influxdb: http transport")
T.eq(im.options.endpoint.default, "/write?db={db}&rp={retention_policy}&precision=ns",
  "influxdb: 1.x write endpoint")
T.eq(i2.options.endpoint.default, "/api/v2/write?org={org}&bucket={bucket}&precision=ns",
  "influxdb2: v2 write endpoint")
T.eq(i2.options.token_scheme.default, "Token", "influxdb2: Authorization: Token")

---------------------------------------------------------------- opentsdb

T.eq(T.encode(O, {}, basic),
  '[{"metric":"cpu_user","tags":{"a_b":"x_y_z","host":"web1"},"timestamp":1700000000,"value":12.5},' ..
  '{"metric":"net.bytes","tags":{"host":"web1"},"timestamp":1700000000,"value":1234},' ..
  '{"metric":"load.health","tags":{"host":"web1"},"timestamp":1700000000,"value":8},' ..
  '{"metric":"bare","tags":{"source":"moonstat"},"timestamp":1700000000,"value":-0.5},' ..
  '{"metric":"q_uote_","tags":{"k_":"é/ü"},"timestamp":1700000000,"value":0.1}]',
  "opentsdb: JSON array, charset, fallback tag, seconds, no events/NaN/inf")
T.eq(T.encode(O, { milliseconds = true, fallback_tag = "agent=ms1" }, { basic[1], basic[7] }),
  '[{"metric":"cpu_user","tags":{"a_b":"x_y_z","host":"web1"},"timestamp":1700000000123,"value":12.5},' ..
  '{"metric":"bare","tags":{"agent":"ms1"},"timestamp":1700000000000,"value":-0.5}]',
  "opentsdb: milliseconds, own fallback tag")
T.eq(T.encode(O, {}, { basic[4], basic[5] }), "", "opentsdb: nothing to send gives no body")

---------------------------------------------------------------- kairosdb

T.eq(T.encode(K, {}, basic),
  '[{"name":"cpu user","tags":{"a b":"x_y_z","host":"web1"},"datapoints":[[1700000000123,12.5]]},' ..
  '{"name":"net.bytes","tags":{"host":"web1"},"datapoints":[[1700000000000,1234]]},' ..
  '{"name":"load.health","tags":{"host":"web1"},"datapoints":[[1700000000000,8]]},' ..
  '{"name":"bare","tags":{"source":"moonstat"},"datapoints":[[1700000000000,-0.5]]},' ..
  '{"name":"q\\"uote\\\\","tags":{"k\\u000a":"é/ü"},"datapoints":[[1700000000000,0.1]]}]',
  "kairosdb: JSON array, escapes, ms timestamps, fallback tag")
T.eq(T.encode(K, { ttl = 3600 }, { basic[2] }),
  '[{"name":"net.bytes","tags":{"host":"web1"},"ttl":3600,"datapoints":[[1700000000000,1234]]}]',
  "kairosdb: ttl")

---------------------------------------------------------------- graphite_pickle

T.eq(hex(T.encode(P, {}, { { name = "foo.bar", tags = {}, value = 1.5, ts = TS } })),
  "00000022" .. "8002" .. "5d" .. "28" .. "5807000000666f6f2e626172" .. "4a00f15365" ..
  "473ff8000000000000" .. "8686" .. "65" .. "2e",
  "pickle: [('foo.bar', (1700000000, 1.5))] framed, MARK/APPENDS form of the issue's vector")
T.eq(hex(T.encode(P, { tag_mode = "tagged", prefix = "s" },
  { { name = "a", tags = { host = "h" }, value = -2, ts = 4102444800.7 } })),
  "00000029" .. "8002" .. "5d" .. "28" .. "580a000000" .. hex("s.a;host=h") .. "47" .. "41ee90cae0000000" ..
  "47c000000000000000" .. "8686652e",
  "pickle: tagged path, timestamps after 2038 as BINFLOAT")
T.eq(T.encode(P, {}, { basic[4] }), "", "pickle: nothing to send gives no frame")
-- Frames stay under carbon's 1 MiB limit: 20000 samples with long paths.
local many = {}
for i = 1, 20000 do
  many[i] = { name = "x" .. string.rep("y", 60) .. (i % 500), tags = { host = "h" }, value = i, ts = TS }
end
local big = T.encode(P, {}, many)
local pos, frames, items, okframes = 1, 0, 0, true
while pos <= #big do
  local b1, b2, b3, b4 = big:byte(pos, pos + 3)
  local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  if len > 1000000 or big:sub(pos + 4, pos + 7) ~= "\128\2](" or big:sub(pos + 3 + len - 1, pos + 3 + len) ~= "e." then
    okframes = false
  end
  local _, c = big:sub(pos + 4, pos + 3 + len):gsub("\134\134", "")
  items = items + c
  frames = frames + 1
  pos = pos + 4 + len
end
T.ok(frames >= 2 and okframes and pos == #big + 1, "pickle: a big batch splits into well-formed frames <= 1000000 bytes (" .. frames .. ")")
T.eq(items, 20000, "pickle: every sample in exactly one frame")
T.eq(dofile(P).options.address.default, "127.0.0.1:2004", "pickle: port 2004 by default")

---------------------------------------------------------------- JIT

local batch = T.mixed_batch(1000, TS)

-- The steady state of every encoder must compile (T.encoder_compiles).
local function no_aborts(file, opts, what)
  T.encoder_compiles(file, opts, batch, what)
end

no_aborts(I, {}, "influxdb")
no_aborts(O, {}, "opentsdb")
no_aborts(O, { milliseconds = true }, "opentsdb ms")
no_aborts(K, { ttl = 60 }, "kairosdb")
no_aborts(P, {}, "graphite_pickle")
no_aborts(P, { tag_mode = "tagged" }, "graphite_pickle tagged")

T.done()
