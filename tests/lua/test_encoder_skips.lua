-- Encoders count what they skip: NaN and infinite values (and events, in a
-- format that has no place for them) are left out of the bytes, and the
-- encoder returns how many it left out; the wrapper of
-- lua/moonstat/forwarder.lua hands that count to the C core (its second
-- result), which counts it in
-- moonstat_forwarder_dropped_samples_total{reason="unencodable"}
-- (tests/integration/test_batching.sh checks the counter end to end).
-- The hot loops still compile with skipped samples in the batch.
local T = require "moonstat.testing"
local ffi = require "ffi"

pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)
pcall(ffi.cdef, "typedef struct ms_buf { char *data; size_t len, cap; } ms_buf; void ms_buf_free(ms_buf *b);")

local TS = 1700000000
local nan, inf = 0 / 0, math.huge

-- 3 good values, NaN, +Inf, -Inf, one health sample, one event.
local SAMPLES = {
  { name = "ok.a", tags = { h = "x" }, value = 1.5, ts = TS },
  { name = "bad.nan", tags = { h = "x" }, value = nan, ts = TS },
  { name = "ok.b", tags = { h = "x" }, value = 2, ts = TS, kind = "counter" },
  { name = "bad.inf", tags = { h = "x" }, value = inf, ts = TS },
  { name = "bad.minf", tags = { h = "x" }, value = -inf, ts = TS },
  { name = "ok.health", tags = { h = "x" }, value = 8, ts = TS, kind = "health",
    msg = "slow", level = "WARNING" },
  { name = "ev", tags = { h = "x" }, value = 1, ts = TS, kind = "event", msg = "deployed" },
  { name = "ok.c", tags = { h = "x" }, value = 3.25, ts = TS },
}

-- encoder file, options, samples it skips (formats without events skip the
-- event too), a pattern its bytes must hold (the good values made it)
local CASES = {
  { "forwarders/opentsdb.lua", {}, 4, '"value":3.25' },
  { "forwarders/kairosdb.lua", {}, 4, ",3.25%]%]" },
  { "forwarders/graphite.lua", {}, 4, "x%.ok%.c 3%.25 1700000000" },
  { "forwarders/graphite_pickle.lua", {}, 4, "x%.ok%.c" },
  { "forwarders/influxdb.lua", { db = "d" }, 3, 'ev,h=x text="deployed"' },
  { "forwarders/influxdb2.lua", { org = "o", bucket = "b" }, 3, "ok%.c,h=x value=3%.25" },
  { "forwarders/file.lua", { format = "influx" }, 3, "ok%.c,h=x value=3%.25" },
  { "forwarders/file.lua", { format = "graphite" }, 4, "ok%.c;h=x 3%.25" },
  { "forwarders/stdout.lua", { format = "influx" }, 3, "ok%.c,h=x value=3%.25" },
}

for _, c in ipairs(CASES) do
  local file, opts, want, pat = c[1], c[2], c[3], c[4]
  local what = file:match("([%w_]+)%.lua$") .. (opts.format and (" " .. opts.format) or "")
  local mod, o = T.encoder(file, opts)
  local b = T.batch(SAMPLES)
  local fw = T.fw
  local enc = fw.wrap(mod, o)
  local cbuf = ffi.new("ms_buf[1]")
  local parts, skipped = enc(b, cbuf)
  local bytes = ffi.string(cbuf[0].data, cbuf[0].len)
  ffi.C.ms_buf_free(cbuf)
  T.eq(skipped, want, what .. ": the wrapper returns the number skipped")
  T.eq(parts, nil, what .. ": no parts")
  T.ok(bytes:find(pat) ~= nil, what .. ": the good samples are written")
  T.ok(not bytes:find("nan", 1, true) and not bytes:find("inf", 1, true)
    and not bytes:find("bad", 1, true), what .. ": nothing of NaN/Inf is written")
  -- a batch with nothing to skip returns 0
  local _, none = enc(T.batch { SAMPLES[1] }, cbuf)
  ffi.C.ms_buf_free(cbuf)
  T.eq(none, 0, what .. ": 0 when nothing is skipped")
end

-- The hot loops compile with skipped samples in them: a large batch where
-- every seventh value is NaN or infinite.
do
  local samples = {}
  for i = 1, 5000 do
    local v = i / 8
    if i % 7 == 0 then v = (i % 3 == 0) and nan or ((i % 3 == 1) and inf or -inf) end
    samples[i] = { name = "app.metric" .. (i % 100), tags = { host = "web" .. (i % 3) },
      value = v, ts = TS + (i % 4), kind = i % 11 == 0 and "event" or "gauge",
      msg = i % 11 == 0 and "e" or nil }
  end
  local batch = T.batch(samples)
  for _, c in ipairs(CASES) do
    local what = c[1]:match("([%w_]+)%.lua$") .. (c[2].format and (" " .. c[2].format) or "")
    T.encoder_compiles(c[1], c[2], batch, what .. " with NaN/Inf skipped", 20000)
  end
end

T.done()
