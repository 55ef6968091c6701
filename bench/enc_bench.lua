-- bench/enc_bench.lua: the Lua side of bench_encoders.sh. Builds one batch
-- of SAMPLES samples of realistic series (SERIES series with 10 tags each,
-- mixed names; a tenth counters growing from flush to flush, the others
-- gauges with fractions; the samples of one flush share a timestamp,
-- flushes 10 s apart), then for each encoder of forwarders/ encodes it
-- ROUNDS times in Lua and with its C reference (bench/enc_ref.c,
-- kafka_ref.c, dd_ref.c, rw_ref.c, built into REF_SO and loaded with
-- ffi.load), Lua and C rounds alternating so both see the same machine
-- state, checks that both wrote the same bytes, and prints one line each:
--   <name> <lua samples/s> <C samples/s> <bytes> <same: 1|0>
-- and a last line for the snappy compression the http transport applies to
-- the remote write body (ms_compress, the C core's function):
--   snappy <samples/s> <bytes in> <bytes out>
-- Samples per second are per core: CPU time of this process, best round
-- after a warm-up round that fills the per-series caches.
-- Run as: moonstat --script bench/enc_bench.lua REF_SO SAMPLES SERIES ROUNDS [name...]
local ffi = require "ffi"
local buffer = require "string.buffer"
local T = require "moonstat.testing"
local fw = require "moonstat.forwarder"
local C = ffi.C
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
pcall(ffi.cdef, "void free(void *p);")
pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; }; int clock_gettime(int clk, struct timespec *ts);")
ffi.cdef [[
int enc_ref(const char *format, const ms_batch *b, const char **out, size_t *len);
int kafka_ref(const char *format, const ms_batch *b, const char **out, size_t *len);
int dd_ref(const ms_batch *b, double rate_interval, const char **out, size_t *len);
int rw_ref(const ms_batch *b, const char **out, size_t *len);
typedef struct { char *data; size_t len, cap; } encb_buf;
typedef struct { int code; char msg[512]; } encb_error;
int ms_compress(int kind, const void *in, size_t len, encb_buf *out, encb_error *err);
]]
local ref = ffi.load(arg[1])
local n = tonumber(arg[2]) or 100000
local nseries = tonumber(arg[3]) or 10000
local rounds = tonumber(arg[4]) or 10
local only = {}
for i = 5, #arg do only[arg[i]] = true end
C.ms_series_set_base_tags(nil, 0)

local tsp = ffi.new("struct timespec")
local function cpu_s()
  C.clock_gettime(2, tsp) -- CLOCK_PROCESS_CPUTIME_ID
  return tonumber(tsp.tv_sec) + tonumber(tsp.tv_nsec) * 1e-9
end

-- The series: names from a few families, 10 tags each (one value with a
-- space, as region names often have).
local families = { "system.cpu.", "system.mem.", "disk.io.", "net.if.", "app.http.requests.",
  "app.db.query_time.", "nginx.conn.", "redis.keyspace." }
local fields = { "user", "system", "idle", "used", "free", "read_bytes", "write_ops", "rx", "tx", "p99" }
local ids = {}
for k = 0, nseries - 1 do
  local name = families[k % #families + 1] .. fields[math.floor(k / #families) % #fields + 1]
  local tags = {
    host = "web" .. (k % 97) .. ".example.com", region = (k % 2 == 0) and "eu west" or "us-east",
    az = "az" .. (k % 3), env = "prod", service = "svc" .. (k % 13), team = "team" .. (k % 5),
    version = "1." .. (k % 4) .. ".0", instance = "i-" .. string.format("%08x", k),
    cluster = "c" .. (k % 7), role = (k % 2 == 0) and "frontend" or "backend",
  }
  local b = T.batch { { name = name, tags = tags, value = 0 } }
  ids[k] = b.s[0].series
end
local batch = ffi.gc(C.ms_batch_new(n), C.ms_batch_unref)
local T0 = 1700000000
for i = 0, n - 1 do
  local k = i % nseries
  local flush = math.floor(i / nseries)
  local counter = k % 10 == 0
  local v = counter and flush * 1000 + k or ((i * 37) % 100000) / 100
  assert(C.ms_batch_add(batch, ids[k], counter and 1 or 0, v, T0 + flush * 10, nil, 0, nil, 0) == 0)
end

local outp, outlen = ffi.new("const char *[1]"), ffi.new("size_t[1]")
local function via(fn, fmt) return function(b) return ref[fn](fmt, b, outp, outlen) end end
local encoders = {
  { "influxdb", "forwarders/influxdb.lua", {}, via("enc_ref", "influx") },
  { "graphite", "forwarders/graphite.lua", {}, via("enc_ref", "graphite") },
  { "graphite_pickle", "forwarders/graphite_pickle.lua", {}, via("enc_ref", "pickle") },
  { "opentsdb", "forwarders/opentsdb.lua", {}, via("enc_ref", "opentsdb") },
  { "kairosdb", "forwarders/kairosdb.lua", {}, via("enc_ref", "kairosdb") },
  { "kafka_json", "forwarders/kafka.lua", { format = "json" }, via("kafka_ref", "json") },
  { "kafka_influx", "forwarders/kafka.lua", { format = "influx" }, via("kafka_ref", "influx") },
  { "datadog", "forwarders/datadog.lua", { max_body = 1e12 },
    function(b) return ref.dd_ref(b, 10, outp, outlen) end },
  { "prometheus_remote_write", "forwarders/prometheus_remote_write.lua", {},
    function(b) return ref.rw_ref(b, outp, outlen) end },
}

local rw_body
for _, e in ipairs(encoders) do
  local name, file, o, cref = e[1], e[2], e[3], e[4]
  if next(only) == nil or only[name] then
    local mod, opts = T.encoder(file, o)
    local out = buffer.new()
    mod.encode(batch, out, opts, fw.parts(out)) -- warm-up: builds the per-series caches
    assert(cref(batch) == 0, name .. ": C reference failed")
    collectgarbage()                            -- the previous encoder's garbage is not ours
    jit.flush()                                 -- then trace the steady state afresh
    local lua_t, c_t = math.huge, math.huge
    for _ = 0, rounds do
      out:reset()
      local parts = fw.parts(out)
      local t0 = cpu_s()
      mod.encode(batch, out, opts, parts)
      local t1 = cpu_s()
      cref(batch)
      local t2 = cpu_s()
      if t1 - t0 < lua_t then lua_t = t1 - t0 end
      if t2 - t1 < c_t then c_t = t2 - t1 end
    end
    local lua_bytes, c_bytes = out:tostring(), ffi.string(outp[0], outlen[0])
    print(("%s %.0f %.0f %d %d"):format(name, n / lua_t, n / c_t, #lua_bytes,
      lua_bytes == c_bytes and 1 or 0))
    if lua_bytes ~= c_bytes then
      local i = 1
      while i <= #lua_bytes and lua_bytes:byte(i) == c_bytes:byte(i) do i = i + 1 end
      io.stderr:write(("%s: outputs differ at byte %d:\n  lua: %q\n  C:   %q\n"):format(name, i,
        lua_bytes:sub(math.max(1, i - 60), i + 60), c_bytes:sub(math.max(1, i - 60), i + 60)))
    end
    if name == "prometheus_remote_write" then rw_body = lua_bytes end
  end
end

if rw_body then
  local zb, zerr = ffi.new("encb_buf"), ffi.new("encb_error")
  local SNAPPY = 2 -- MS_COMPRESS_SNAPPY
  assert(C.ms_compress(SNAPPY, rw_body, #rw_body, zb, zerr) == 0, "snappy failed")
  local best = math.huge
  for _ = 0, rounds do
    local t0 = cpu_s()
    C.ms_compress(SNAPPY, rw_body, #rw_body, zb, zerr)
    local dt = cpu_s() - t0
    if dt < best then best = dt end
  end
  print(("snappy %.0f %d %d"):format(n / best, #rw_body, tonumber(zb.len)))
  C.free(zb.data)
end
