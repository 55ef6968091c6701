-- bench/kafka_bench.lua: the Lua side of bench_kafka.sh. Builds one batch of
-- SAMPLES samples over SERIES realistic series (10 tags each, mixed names, a
-- tenth counters, the others gauges with fractions; the samples of one
-- flush share a timestamp), encodes it ROUNDS times with forwarders/kafka.lua
-- (formats json and influx) and with the C reference (bench/kafka_ref.c,
-- loaded from REF_SO with ffi.load), checks that both wrote the same bytes,
-- and prints one line per format:
--   <name> <lua samples/s> <C samples/s> <bytes> <same: 1|0>
-- Samples per second are per core: CPU time of this process, best round
-- after a warm-up round that fills the per-series caches.
-- Run as: moonstat --script bench/kafka_bench.lua REF_SO SAMPLES SERIES ROUNDS
local ffi = require "ffi"
local buffer = require "string.buffer"
local T = require "moonstat.testing"
local fw = require "moonstat.forwarder"
local C = ffi.C
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; }; int clock_gettime(int clk, struct timespec *ts);")
ffi.cdef "int kafka_ref(const char *format, const ms_batch *b, const char **out, size_t *len);"
local ref = ffi.load(arg[1])
local n = tonumber(arg[2]) or 100000
local nseries = tonumber(arg[3]) or 10000
local rounds = tonumber(arg[4]) or 10
C.ms_series_set_base_tags(nil, 0)

local tsp = ffi.new("struct timespec")
local function cpu_s()
  C.clock_gettime(2, tsp) -- CLOCK_PROCESS_CPUTIME_ID
  return tonumber(tsp.tv_sec) + tonumber(tsp.tv_nsec) * 1e-9
end

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
  local counter = k % 10 == 0
  local v = counter and (i * 7919) % 100000000 or ((i * 37) % 100000) / 100
  assert(C.ms_batch_add(batch, ids[k], counter and 1 or 0, v, T0 + math.floor(i / nseries) * 10,
    nil, 0, nil, 0) == 0)
end

local outp, outlen = ffi.new("const char *[1]"), ffi.new("size_t[1]")
for _, fmt in ipairs { "json", "influx" } do
  local mod, opts = T.encoder("forwarders/kafka.lua", { format = fmt })
  local out = buffer.new()
  local parts = fw.parts(out)
  mod.encode(batch, out, opts, parts) -- warm-up: builds the per-series caches
  jit.flush()
  local best = math.huge
  for _ = 0, rounds do
    out:reset()
    local t0 = cpu_s()
    mod.encode(batch, out, opts, parts)
    local dt = cpu_s() - t0
    if dt < best then best = dt end
  end
  local lua_bytes = out:tostring()
  assert(ref.kafka_ref(fmt, batch, outp, outlen) == 0, fmt .. ": C reference failed")
  local cbest = math.huge
  for _ = 0, rounds do
    local t0 = cpu_s()
    ref.kafka_ref(fmt, batch, outp, outlen)
    local dt = cpu_s() - t0
    if dt < cbest then cbest = dt end
  end
  local c_bytes = ffi.string(outp[0], outlen[0])
  print(("kafka_%s %.0f %.0f %d %d"):format(fmt, n / best, n / cbest, #lua_bytes,
    lua_bytes == c_bytes and 1 or 0))
  if lua_bytes ~= c_bytes then
    local i = 1
    while i <= #lua_bytes and lua_bytes:byte(i) == c_bytes:byte(i) do i = i + 1 end
    io.stderr:write(("%s: outputs differ at byte %d:\n  lua: %q\n  C:   %q\n"):format(fmt, i,
      lua_bytes:sub(math.max(1, i - 60), i + 60), c_bytes:sub(math.max(1, i - 60), i + 60)))
  end
end
