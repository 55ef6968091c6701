-- forwarders/kafka.lua: the exact records (key, value, 16-byte trailer in
-- host byte order) for each format and option, the timestamps, escaping,
-- skipped values, and no JIT trace aborts in the steady state.
local T = require "moonstat.testing"
local ffi = require "ffi"

pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)

local K = "forwarders/kafka.lua"
local TS = 1700000000
local LE = ffi.abi("le")

-- Expected record bytes, built by hand (not with the encoder's ffi union).
local function u32(n)
  local b = { n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
              math.floor(n / 16777216) % 256 }
  if not LE then b = { b[4], b[3], b[2], b[1] } end
  return string.char(unpack(b))
end
local function i64(n)
  local lo, hi = n % 4294967296, math.floor(n / 4294967296)
  if LE then return u32(lo) .. u32(hi) end
  return u32(hi) .. u32(lo)
end
local function rec(key, value, ms)
  return key .. value .. u32(#key) .. u32(#value) .. i64(ms)
end

-- Records of a chunk as { key=, value=, ms= }, read from its end as the
-- transport does.
local function records(s)
  local out, pos = {}, #s
  local h = ffi.new("union { struct { uint32_t k, v; int64_t ts; } h; uint8_t b[16]; }")
  while pos > 0 do
    assert(pos >= 16, "truncated trailer")
    ffi.copy(h, s:sub(pos - 15, pos), 16)
    local kl, vl = h.h.k, h.h.v
    local start = pos - 16 - vl - kl
    assert(start >= 0, "truncated record")
    table.insert(out, 1, { key = s:sub(start + 1, start + kl),
                           value = s:sub(start + kl + 1, start + kl + vl), ms = tonumber(h.h.ts) })
    pos = start
  end
  return out
end

---------------------------------------------------------------- JIT

-- First, before the exact-bytes tests below run the cold path (new caches
-- for each option table) often enough to leave hot counters behind.

local batch = T.mixed_batch(1000, TS)
T.encoder_compiles(K, {}, batch, "kafka json")
T.encoder_compiles(K, { format = "influx" }, batch, "kafka influx")
T.encoder_compiles(K, { apikey = "k", tenant_id = "t" }, batch, "kafka json with apikey")

---------------------------------------------------------------- json

local got = T.encode(K, {}, { { name = "cpu.user", tags = { host = "web1", cpu = "0" }, value = 12.5, ts = TS } })
T.eq(got, rec("cpu.user{cpu=0,host=web1}",
  '{"name":"cpu.user","cpu":"0","host":"web1","@version":"1","@timestamp":"2023-11-14T22:13:20.000Z","value":12.5}',
  1700000000000), "json: gauge, exact bytes")

got = T.encode(K, { apikey = "k3y", tenant_id = "t1" },
  { { name = "m", tags = { host = "h" }, value = 3, ts = TS + 0.123 } })
T.eq(got, rec("m{host=h}",
  '{"name":"m","host":"h","apikey":"k3y","tenant_id":"t1","@version":"1","@timestamp":"2023-11-14T22:13:20.123Z","value":3}',
  1700000000123), "json: pystatsd's apikey and tenant_id fields, milliseconds")

got = T.encode(K, { apikey = "k3y", tenant_id = "t1", apikey_as = "sasl" },
  { { name = "m", tags = {}, value = 3, ts = TS } })
T.eq(got, rec("m", '{"name":"m","@version":"1","@timestamp":"2023-11-14T22:13:20.000Z","value":3}',
  1700000000000), "json: apikey_as sasl keeps the credentials out of the messages")

got = T.encode(K, {}, { { name = 'a"b\\c', tags = { name = "x", value = "line\nbreak" }, value = -0.25, ts = TS } })
T.eq(records(got)[1].value,
  '{"name":"a\\"b\\\\c","tag_name":"x","tag_value":"line\\u000abreak","@version":"1","@timestamp":"2023-11-14T22:13:20.000Z","value":-0.25}',
  "json: escaping, reserved tag keys renamed")

got = T.encode(K, {}, {
  { name = "svc.health", tags = {}, value = 8, kind = "health", msg = 'say "hi"', level = "WARNING", ts = TS },
  { name = "deploy", tags = {}, value = 0, kind = "event", msg = "v1.2\tout", ts = TS },
})
local r = records(got)
T.eq(#r, 2, "json: health and event, one message each")
T.eq(r[1].value,
  '{"name":"svc.health","@version":"1","@timestamp":"2023-11-14T22:13:20.000Z","value":8,"message":"say \\"hi\\"","level":"WARNING"}',
  "json: health sample")
T.eq(r[2].value, '{"name":"deploy","@version":"1","@timestamp":"2023-11-14T22:13:20.000Z","text":"v1.2\\u0009out"}',
  "json: event")
T.eq(got, rec("svc.health", r[1].value, 1700000000000) .. rec("deploy", r[2].value, 1700000000000),
  "json: records back to back, lengths exact")

got = T.encode(K, {}, {
  { name = "a", tags = {}, value = 0 / 0 }, { name = "a", tags = {}, value = math.huge },
  { name = "a", tags = {}, value = -math.huge }, { name = "b", tags = { k = "v" }, value = 1e20 },
  { name = "b", tags = { k = "v" }, value = 2 },
})
r = records(got)
T.eq(#r, 2, "json: NaN and infinities skipped")
T.eq(r[1].key .. " " .. r[2].key, "b{k=v} b{k=v}", "json: the same key for every sample of a series")
T.like(r[1].value, '"value":1e%+20}$', "json: large number")

-- @timestamp against os.date over dates across leap years and centuries.
do
  local bad, n = 0, 0
  math.randomseed(11)
  local list = { 0, 951782400, 951868800, 4107542399, 4107542400, 4102444800 + 59 * 86400 }
  for _ = 1, 300 do list[#list + 1] = math.random(0, 2 ^ 32) + math.random(0, 999) / 1000 end
  for _, t in ipairs(list) do
    local v = records(T.encode(K, {}, { { name = "t", tags = {}, value = 1, ts = t } }))[1]
    local ms = math.floor(t * 1000 + 0.5)
    local want = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000)) .. (".%03dZ"):format(ms % 1000)
    n = n + 1
    if not v.value:find('"@timestamp":"' .. want .. '"', 1, true) or v.ms ~= ms then
      bad = bad + 1
      if bad < 4 then print("# " .. t .. ": " .. v.value .. " want " .. want) end
    end
  end
  T.eq(bad, 0, ("json: @timestamp equals os.date for %d times"):format(n))
end

---------------------------------------------------------------- influx

local samples = {
  { name = "cpu usage", tags = { host = "web 1", ["a,b"] = "c=d" }, value = 12.5, ts = TS + 0.5 },
  { name = "requests", tags = { host = "web1" }, value = 5, kind = "counter", ts = TS },
  { name = "svc.health", tags = {}, value = 16, kind = "health", msg = 'down "hard"\n', level = "CRITICAL", ts = TS },
  { name = "deploy", tags = {}, value = 0, kind = "event", msg = "v2", ts = TS },
  { name = "nan", tags = {}, value = 0 / 0, ts = TS },
}
got = T.encode(K, { format = "influx" }, samples)
local want = rec("cpu usage{a,b=c=d,host=web 1}",
  "cpu\\ usage,a\\,b=c\\=d,host=web\\ 1 value=12.5 1700000000500000000", 1700000000500)
T.eq(got:sub(1, #want), want, "influx: gauge, exact bytes")
r = records(got)
local lines = {}
for l in T.encode("forwarders/file.lua", { format = "influx" }, samples):gmatch("[^\n]+") do lines[#lines + 1] = l end
T.eq(#r, 4, "influx: NaN skipped")
T.eq(#lines, #r, "influx: as many messages as file.lua writes lines")
for i = 1, #r do T.eq(r[i].value, lines[i], "influx: message " .. i .. " is file.lua's line") end
T.eq(r[2].value, "requests,host=web1 value=5i 1700000000000000000", "influx: integral counter as integer")
T.eq(r[3].key, "svc.health", "influx: key is the series")

---------------------------------------------------------------- options

local mod = dofile(K)
T.eq(mod.transport, "kafka", "kafka transport")
T.eq(mod.options.format.default, "json", "format defaults to json")
T.eq(mod.options.acks.default, "all", "acks default all")
local ok, err = pcall(T.encode, K, { format = "xml" }, { { name = "a", value = 1 } })
T.ok(not ok and err == "kafka forwarder: unknown format 'xml' (json | influx)", "unknown format is an error")

T.done()
