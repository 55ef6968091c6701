-- forwarders/prometheus_remote_write.lua: the protobuf WriteRequest it writes,
-- read back by a protobuf decoder written here from the wire-format rules
-- (varints, length-delimited and fixed64 fields), independent of the
-- encoder; the issue's wire vector byte for byte; sorted and sanitized
-- labels; several samples of a series in one TimeSeries; what is skipped;
-- the fixed transport options; and no JIT trace aborts in the steady state.
local T = require "moonstat.testing"
local ffi = require "ffi"

pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)

local RW = "forwarders/prometheus_remote_write.lua"
local TS = 1700000000

local function hex(s)
  local t = {}
  for i = 1, #s do t[i] = string.format("%02x", s:byte(i)) end
  return table.concat(t)
end

---------------------------------------------------------------- a decoder

local f64 = ffi.new("union { uint8_t b[8]; double d; }")

-- Read a varint at s[pos] (1-based); returns value, next pos.
local function get_varint(s, pos)
  local v, mul = 0, 1
  while true do
    local b = s:byte(pos)
    assert(b, "truncated varint")
    pos = pos + 1
    v = v + (b % 128) * mul
    if b < 128 then return v, pos end
    mul = mul * 128
  end
end

-- The fields of a message as a list of { num, value } (value: a number for
-- varints, a string for length-delimited and fixed64 fields).
local function fields(s)
  local out, pos = {}, 1
  while pos <= #s do
    local key
    key, pos = get_varint(s, pos)
    local num, wt = math.floor(key / 8), key % 8
    local v
    if wt == 0 then
      v, pos = get_varint(s, pos)
    elseif wt == 2 then
      local len
      len, pos = get_varint(s, pos)
      assert(pos + len - 1 <= #s, "length past the end")
      v = s:sub(pos, pos + len - 1)
      pos = pos + len
    elseif wt == 1 then
      v = s:sub(pos, pos + 7)
      pos = pos + 8
    else
      error("unexpected wire type " .. wt)
    end
    out[#out + 1] = { num, v, wt }
  end
  return out
end

local function double(s8)
  for i = 0, 7 do f64.b[i] = s8:byte(i + 1) end
  return f64.d
end

-- WriteRequest -> { { labels = { {name, value}, ... }, samples = { {value, ms}, ... } }, ... }
local function decode(body)
  local out = {}
  for _, ts in ipairs(fields(body)) do
    assert(ts[1] == 1 and ts[3] == 2, "WriteRequest holds only timeseries (1)")
    local series = { labels = {}, samples = {} }
    for _, f in ipairs(fields(ts[2])) do
      if f[1] == 1 then
        local l = {}
        for _, lf in ipairs(fields(f[2])) do l[lf[1]] = lf[2] end
        series.labels[#series.labels + 1] = { l[1], l[2] }
      elseif f[1] == 2 then
        local smp = {}
        for _, sf in ipairs(fields(f[2])) do
          if sf[1] == 1 then smp[1] = double(sf[2]) elseif sf[1] == 2 then smp[2] = sf[2] end
        end
        series.samples[#series.samples + 1] = smp
      else
        error("unexpected TimeSeries field " .. f[1])
      end
    end
    out[#out + 1] = series
  end
  return out
end

local function labels_text(series)
  local t = {}
  for i, l in ipairs(series.labels) do t[i] = l[1] .. "=" .. l[2] end
  return table.concat(t, ",")
end

local function samples_text(series)
  local t = {}
  for i, s in ipairs(series.samples) do t[i] = string.format("%.17g@%d", s[1], s[2]) end
  return table.concat(t, " ")
end

---------------------------------------------------------------- wire vector

local body = T.encode(RW, {}, { { name = "test_metric", tags = { job = "demo" }, value = 1.5, ts = TS } })
T.eq(hex(body),
  "0a380a170a085f5f6e616d655f5f120b746573745f6d65747269630a0b0a036a6f62120464656d6f" ..
  "121009000000000000f83f1080d095ffbc31",
  "wire vector: __name__=test_metric, job=demo, 1.5 @ 1700000000000")
local d = decode(body)
T.eq(#d, 1, "wire vector: one TimeSeries")
T.eq(labels_text(d[1]), "__name__=test_metric,job=demo", "wire vector: labels decode")
T.eq(samples_text(d[1]), "1.5@1700000000000", "wire vector: sample decodes")

---------------------------------------------------------------- labels

d = decode(T.encode(RW, {}, { { name = "http.requests", value = 3, ts = TS,
  tags = { zone = "eu", job = "api", host = "web1", instance = "10.0.0.1:80" } } }))
T.eq(labels_text(d[1]), "__name__=http_requests,host=web1,instance=10.0.0.1:80,job=api,zone=eu",
  "labels sorted, __name__ first")

d = decode(T.encode(RW, {}, { { name = "disk.used %", value = 42, ts = TS,
  tags = { mount = "/", ["1x"] = "a", ["a.b"] = "x", a_b = "y", ["__secret"] = "s",
           Env = "prod", empty = "", __name__ = "nope", ["k-1"] = "bad \255 byte" } } }))
T.eq(labels_text(d[1]),
  "Env=prod,_1x=a,__name__=disk_used__,_name__=nope,_secret=s,a_b=x,k_1=bad \239\191\189 byte,mount=/",
  "names and label names sanitized, empty values left out, first of a collision kept, bad UTF-8 replaced")
local ok = true
for i = 2, #d[1].labels do ok = ok and d[1].labels[i - 1][1] < d[1].labels[i][1] end
T.ok(ok, "label names strictly increasing byte by byte")

d = decode(T.encode(RW, {}, { { name = "5xx:rate", value = 1, ts = TS, tags = {} },
  { name = "%", value = 2, ts = TS, tags = {} } }))
T.eq(labels_text(d[1]) .. " " .. labels_text(d[2]), "__name__=_5xx:rate __name__=_",
  "metric names: ':' kept, leading digit prefixed")

---------------------------------------------------------------- samples

d = decode(T.encode(RW, {}, {
  { name = "a", tags = { host = "h" }, value = 1, ts = TS },
  { name = "b", tags = { host = "h" }, value = 10, ts = TS, kind = "counter" },
  { name = "a", tags = { host = "h" }, value = 2, ts = TS + 0.5 },
  { name = "h", tags = { host = "h" }, value = 8, ts = TS, kind = "health", msg = "m", level = "WARNING" },
  { name = "e", tags = { host = "h" }, value = 1, ts = TS, kind = "event", msg = "deployed" },
  { name = "b", tags = { host = "h" }, value = 12, ts = TS + 1, kind = "counter" },
  { name = "a", tags = { host = "h" }, value = -0.25, ts = TS + 1.0004 },
  { name = "a", tags = { host = "g" }, value = 5, ts = TS + 0.1234 },
  { name = "r", tags = {}, value = 0.5, ts = TS, kind = "rate" },
  { name = "old", tags = {}, value = 1, ts = -5 },
}))
T.eq(#d, 4, "one TimeSeries per series; health, events and pre-1970 samples skipped")
T.eq(labels_text(d[1]) .. " | " .. samples_text(d[1]),
  "__name__=a,host=h | 1@1700000000000 2@1700000000500 -0.25@1700000001000",
  "several samples of a series in one TimeSeries, in order, ms rounded")
T.eq(labels_text(d[2]) .. " | " .. samples_text(d[2]),
  "__name__=b,host=h | 10@1700000000000 12@1700000001000", "counter values as they are")
T.eq(labels_text(d[3]) .. " | " .. samples_text(d[3]),
  "__name__=a,host=g | 5@1700000000123", "same name, other tags: own TimeSeries")
T.eq(labels_text(d[4]) .. " | " .. samples_text(d[4]), "__name__=r | 0.5@1700000000000", "rates")

d = decode(T.encode(RW, {}, { { name = "x", value = 0 / 0, ts = TS }, { name = "y", value = math.huge, ts = TS },
  { name = "z", value = 0, ts = 0 } }))
T.ok(d[1].samples[1][1] ~= d[1].samples[1][1], "NaN sent as NaN")
T.eq(d[2].samples[1][1], math.huge, "+Inf sent")
T.eq(samples_text(d[3]), "0@0", "zero value at time 0")

T.eq(T.encode(RW, {}, { { name = "h", value = 8, kind = "health", msg = "x" } }), "",
  "a batch of only health samples gives no body")

-- Two batches in a row through one encoder: the grouping starts afresh.
do
  local mod, o = T.encoder(RW)
  local buffer = require "string.buffer"
  local out = buffer.new()
  local b1 = T.batch({ { name = "q", value = 1, ts = TS }, { name = "q", value = 2, ts = TS + 1 } })
  mod.encode(b1, out, o)
  out:reset()
  local b2 = T.batch({ { name = "w", value = 3, ts = TS }, { name = "q", value = 4, ts = TS + 2 } })
  mod.encode(b2, out, o)
  local dd = decode(out:tostring())
  T.eq(#dd .. " " .. labels_text(dd[1]) .. " " .. samples_text(dd[2]), "2 __name__=w 4@1700000002000",
    "second batch grouped on its own")
end

---------------------------------------------------------------- options

local mod = dofile(RW)
T.eq(mod.transport, "http", "http transport")
T.eq(mod.options.endpoint.default, "/api/v1/write", "endpoint /api/v1/write")
T.eq(mod.options.compress.default .. " " .. table.concat(mod.options.compress.choices, ","),
  "snappy snappy", "compress fixed to snappy")
T.eq(mod.options.content_type.default, "application/x-protobuf", "Content-Type")
T.eq(mod.options.fixed_headers.default, "X-Prometheus-Remote-Write-Version: 0.1.0", "version header")
T.ok(mod.options.user and mod.options.headers and mod.options.timeout, "common http options")

---------------------------------------------------------------- JIT

local big = T.mixed_batch(20000, TS)
T.encoder_compiles(RW, {}, big, "remote write encoder", 200000)
local n_series, n_samples = 0, 0
do
  local mod2, o = T.encoder(RW)
  local out = require("string.buffer").new()
  mod2.encode(big, out, o)
  for _, s in ipairs(decode(out:tostring())) do
    n_series, n_samples = n_series + 1, n_samples + #s.samples
  end
end
T.eq(n_samples, 12000, "mixed batch: every gauge, counter and rate sample written")
T.eq(n_series, 1260, "mixed batch: one TimeSeries per series (60 of the 100 names carry values)")

T.done()
