-- bench/proc_chain.lua: the Lua side of bench_processors.sh. Runs the
-- built-in chain rename + filter + drop_stale (lua/processors/) over a batch
-- of SAMPLES samples (SERIES series, the same ones bench/proc_chain.c uses),
-- ROUNDS times after one warm-up round; prints "ns_per_sample kept" for the
-- best round. Run as: moonstat --script bench/proc_chain.lua SAMPLES SERIES ROUNDS
local ffi = require "ffi"
local T = require "moonstat.testing"
local C = ffi.C
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; }; int clock_gettime(int clk, struct timespec *ts);")
C.ms_series_set_base_tags(nil, 0)
local n = tonumber(arg[1]) or 1000000
local nseries = tonumber(arg[2]) or 1000
local rounds = tonumber(arg[3]) or 20
local tsp = ffi.new("struct timespec")
local function now_s()
  C.clock_gettime(1, tsp)
  return tonumber(tsp.tv_sec) + tonumber(tsp.tv_nsec) * 1e-9
end

local NOW = 1700000000
-- the series, interned once (the same names and tags as proc_chain.c)
local ids = {}
for k = 0, nseries - 1 do
  local name = ("%s.%d%s"):format(k % 2 == 1 and "disk" or "cpu", k, k % 10 == 3 and ".idle" or "")
  local b = T.batch { { name = name, tags = { host = "web" .. (k % 8) }, value = 0 } }
  ids[k] = b.s[0].series
end
-- (ms_batch_new and ms_batch_add are declared by moonstat.testing)
local tmpl = ffi.gc(C.ms_batch_new(n), C.ms_batch_unref)
local work = ffi.gc(C.ms_batch_new(n), C.ms_batch_unref)
for i = 0, n - 1 do
  local k = i % nseries
  assert(C.ms_batch_add(tmpl, ids[k], 0, i, NOW - (i % 10 == 7 and 600 or 0), nil, 0, nil, 0) == 0)
end
local p = T.processors {
  { rename = { rules = { { glob = "cpu.*", to = "system.cpu.%1" } } } },
  { filter = { exclude = { "*.idle" } } },
  "drop_stale",
}
local size = ffi.sizeof("ms_sample") * n
local best = math.huge
for r = 0, rounds do -- round 0 warms the caches
  ffi.copy(work.s, tmpl.s, size)
  work.n = n
  local t0 = now_s()
  p.fn(work, NOW)
  local t1 = now_s()
  if r > 0 and t1 - t0 < best then best = t1 - t0 end
  -- after the warm-up (every series new: cold paths) start the traces
  -- afresh, so the rounds measure the steady state
  if r == 0 then jit.flush() end
end
print(("%.3f %d"):format(best * 1e9 / n, tonumber(work.n)))
