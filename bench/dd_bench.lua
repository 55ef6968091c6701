-- bench/dd_bench.lua: the Lua side of bench/bench_datadog.sh. Builds one
-- batch of SAMPLES samples over SERIES realistic series (10 tags each, mixed
-- names; a tenth counters growing from flush to flush, the others gauges with
-- fractions; the samples of one flush share a timestamp, flushes 10 s apart),
-- encodes it ROUNDS times with forwarders/datadog.lua (v1, no split) and with
-- the C reference bench/dd_ref.c (loaded from REF_SO), checks that both wrote
-- the same bytes, and prints one line:
--   datadog <lua samples/s> <C samples/s> <bytes> <same: 1|0>
-- Samples per second are per core: CPU time of this process, best round
-- after a warm-up round (the warm-up builds the caches and the counter bases).
-- Run as: moonstat --script bench/dd_bench.lua REF_SO SAMPLES SERIES ROUNDS
local ffi = require "ffi"
local buffer = require "string.buffer"
local T = require "moonstat.testing"
local fw = require "moonstat.forwarder"
local C = ffi.C
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; }; int clock_gettime(int clk, struct timespec *ts);")
ffi.cdef "int dd_ref(const ms_batch *b, double rate_interval, const char **out, size_t *len);"
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
  local flush = math.floor(i / nseries)
  local counter = k % 10 == 0
  local v = counter and flush * 1000 + k or ((i * 37) % 100000) / 100
  assert(C.ms_batch_add(batch, ids[k], counter and 1 or 0, v, T0 + flush * 10, nil, 0, nil, 0) == 0)
end

local mod, opts = T.encoder("forwarders/datadog.lua", { max_body = 1e12 })
local out = buffer.new()
mod.encode(batch, out, opts, fw.parts(out)) -- warm-up
jit.flush()
local best = math.huge
for _ = 0, rounds do
  out:reset()
  local parts = fw.parts(out)
  local t0 = cpu_s()
  mod.encode(batch, out, opts, parts)
  local dt = cpu_s() - t0
  if dt < best then best = dt end
end
local lua_bytes = out:tostring()
local outp, outlen = ffi.new("const char *[1]"), ffi.new("size_t[1]")
assert(ref.dd_ref(batch, opts.interval, outp, outlen) == 0, "C reference failed")
local cbest = math.huge
for _ = 0, rounds do
  local t0 = cpu_s()
  ref.dd_ref(batch, opts.interval, outp, outlen)
  local dt = cpu_s() - t0
  if dt < cbest then cbest = dt end
end
local c_bytes = ffi.string(outp[0], outlen[0])
print(("datadog %.0f %.0f %d %d"):format(n / best, n / cbest, #lua_bytes,
  lua_bytes == c_bytes and 1 or 0))
if lua_bytes ~= c_bytes then
  local i = 1
  while i <= #lua_bytes and lua_bytes:byte(i) == c_bytes:byte(i) do i = i + 1 end
  io.stderr:write(("datadog: outputs differ at byte %d:\n  lua: %q\n  C:   %q\n"):format(i,
    lua_bytes:sub(math.max(1, i - 80), i + 80), c_bytes:sub(math.max(1, i - 80), i + 80)))
end
