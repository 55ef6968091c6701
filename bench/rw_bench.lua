-- bench/rw_bench.lua: the Lua side of bench_remote_write.sh. Builds the
-- batch of bench/enc_bench.lua (SAMPLES samples over SERIES series with 10
-- tags each, mixed names, a tenth counters, the samples of one flush sharing
-- a timestamp, so each series has SAMPLES/SERIES samples in the batch),
-- encodes it ROUNDS times with forwarders/prometheus_remote_write.lua and
-- with the C reference (bench/rw_ref.c, loaded from REF_SO with ffi.load),
-- checks that both wrote the same bytes, then times the snappy compression
-- the http transport applies to that body (ms_compress, the C core's own
-- function, called through the FFI). Prints one line:
--   <lua samples/s> <C samples/s> <bytes> <same: 1|0> <snappy samples/s> <snappy bytes>
-- Samples per second are per core: CPU time of this process, best round
-- after a warm-up round; Lua and C rounds alternate.
-- Run as: moonstat --script bench/rw_bench.lua REF_SO SAMPLES SERIES ROUNDS
local ffi = require "ffi"
local buffer = require "string.buffer"
local T = require "moonstat.testing"
local C = ffi.C
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
pcall(ffi.cdef, "void free(void *p);")
pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; }; int clock_gettime(int clk, struct timespec *ts);")
ffi.cdef [[
int rw_ref(const ms_batch *b, const char **out, size_t *len);
typedef struct { char *data; size_t len, cap; } rwb_buf;
typedef struct { int code; char msg[512]; } rwb_error;
int ms_compress(int kind, const void *in, size_t len, rwb_buf *out, rwb_error *err);
]]
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

local mod, opts = T.encoder(arg[5] or "forwarders/prometheus_remote_write.lua")
local out = buffer.new()
local outp, outlen = ffi.new("const char *[1]"), ffi.new("size_t[1]")
mod.encode(batch, out, opts) -- warm-up: builds the per-series caches
assert(ref.rw_ref(batch, outp, outlen) == 0, "C reference failed")
jit.flush()
-- Lua and C rounds alternate, so both see the same machine state (caches,
-- clock speed); the best round of each counts.
local lua_t, c_t = math.huge, math.huge
for _ = 0, rounds do
  out:reset()
  local t0 = cpu_s()
  mod.encode(batch, out, opts)
  local t1 = cpu_s()
  ref.rw_ref(batch, outp, outlen)
  local t2 = cpu_s()
  if t1 - t0 < lua_t then lua_t = t1 - t0 end
  if t2 - t1 < c_t then c_t = t2 - t1 end
end
local lua_bytes = out:tostring()
local c_bytes = ffi.string(outp[0], outlen[0])

local function best_of(fn)
  local best = math.huge
  for _ = 0, rounds do
    local t0 = cpu_s()
    fn()
    local dt = cpu_s() - t0
    if dt < best then best = dt end
  end
  return best
end

local zb, zerr = ffi.new("rwb_buf"), ffi.new("rwb_error")
local SNAPPY = 2 -- MS_COMPRESS_SNAPPY
assert(C.ms_compress(SNAPPY, lua_bytes, #lua_bytes, zb, zerr) == 0, "snappy failed")
local z_t = best_of(function() C.ms_compress(SNAPPY, lua_bytes, #lua_bytes, zb, zerr) end)

print(("%.0f %.0f %d %d %.0f %d"):format(n / lua_t, n / c_t, #lua_bytes,
  lua_bytes == c_bytes and 1 or 0, n / z_t, tonumber(zb.len)))
if lua_bytes ~= c_bytes then
  local i = 1
  while i <= #lua_bytes and lua_bytes:byte(i) == c_bytes:byte(i) do i = i + 1 end
  io.stderr:write(("outputs differ at byte %d of %d / %d\n"):format(i, #lua_bytes, #c_bytes))
end
C.free(zb.data)
